{{/*
Names. The release name is part of every cluster-scoped name, so two releases
(in two namespaces) never share a ClusterRole or ClusterRoleBinding.
*/}}
{{- define "santokit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "santokit.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* <fullname>-operator / <fullname>-bridge, kept within 63 characters. */}}
{{- define "santokit.operator.fullname" -}}
{{- printf "%s-operator" (include "santokit.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{- define "santokit.bridge.fullname" -}}
{{- printf "%s-bridge" (include "santokit.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "santokit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "santokit.labels" -}}
helm.sh/chart: {{ include "santokit.chart" . }}
app.kubernetes.io/name: {{ include "santokit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: santokit
{{- with .Values.commonLabels }}
{{ include "santokit.stringMap" . | trim }}
{{- end }}
{{- end }}

{{/* Selector labels of one component ("operator" or "bridge"): immutable in a Deployment, so never add to them. */}}
{{- define "santokit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "santokit.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "santokit.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "santokit.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "santokit.bridge.serviceAccountName" -}}
{{- if .Values.bridge.serviceAccount.create }}
{{- default (include "santokit.bridge.fullname" .) .Values.bridge.serviceAccount.name }}
{{- else }}
{{- required "bridge.serviceAccount.name is required when bridge.serviceAccount.create is false" .Values.bridge.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: a digest wins over a tag; the tag defaults to the chart's appVersion. */}}
{{- define "santokit.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The project ClusterRoles the operator creates at start-up (operator/bootstrap.ts,
projectClusterRoles). Their names are fixed by the operator, not by the release.
*/}}
{{- define "santokit.projectClusterRoles" -}}
- santokit-project-admin
- santokit-project-deployer
- santokit-project-viewer
{{- end }}

{{/* Objects the operator creates in its own namespace at start-up (operator/bootstrap.ts). */}}
{{- define "santokit.sealingSecret" -}}santokit-sealing-key{{- end }}
{{- define "santokit.sealingConfigMap" -}}santokit-sealing-cert{{- end }}
{{- define "santokit.sealingReader" -}}santokit-sealing-cert-reader{{- end }}

{{/*
The ClusterRoles that give the operator and the data plane their rights inside one project
namespace. The operator binds them there with each Project (RoleBindings named below); it holds
`bind` on exactly these two names, never the rights themselves cluster-wide.
*/}}
{{- define "santokit.operator.projectRole" -}}
{{- printf "%s-project" (include "santokit.operator.fullname" .) }}
{{- end }}
{{- define "santokit.bridge.projectRole" -}}
{{- printf "%s-project" (include "santokit.bridge.fullname" .) }}
{{- end }}
{{/* RoleBinding names in project namespaces (operator/reconcilers/project.ts ProjectBindingNames). */}}
{{- define "santokit.projectBindings" -}}
- santokit-data-plane
- santokit-operator
{{- end }}

{{/*
A map of labels or annotations, every key and value a quoted string: `--set
bridge.podAnnotations.rollout=140221` gives a number, which the API server refuses there.
*/}}
{{- define "santokit.stringMap" -}}
{{- range $key, $value := . }}
{{ $key | quote }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
