/**
 * The Santokit custom resources as TypeScript types, and where each lives in the API.
 * The CRDs in crds/ are the schema of record; these types mirror them.
 */

export const GROUP = 'santokit.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Labels and annotations Santokit sets on objects. */
export const Labels = {
  project: 'santokit.io/project',
  environment: 'santokit.io/environment',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

export const Annotations = {
  /** set by `stk connections test` to ask for a fresh probe; the operator echoes it in status.probe */
  probe: 'santokit.io/probe',
  /** a ReleaseRequest as JSON, written by `stk` on an Environment */
  request: 'santokit.io/request',
} as const;

/** Finalizer that keeps a Release while an Environment names it. */
export const RELEASE_IN_USE_FINALIZER = 'santokit.io/release-in-use';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface CommonStatus {
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface Resource<Spec, Status extends CommonStatus = CommonStatus> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export interface ProjectSpec {
  namespace?: string;
  displayName?: string;
}
export interface ProjectStatus extends CommonStatus {
  namespace?: string;
}
export type Project = Resource<ProjectSpec, ProjectStatus>;

export interface EnvironmentSpec {
  project: string;
  release?: string;
  force?: boolean;
  historyLimit?: number;
  /** how schema changes run (default transactional); see ApplyMode */
  applyMode?: ApplyMode;
}
/**
 * How schema changes run: `transactional` (each connection in one transaction, committed one after
 * the other), `two-phase` (prepared on every connection, then committed together), `online` (no
 * long locks; index builds and validations outside transactions; not atomic).
 */
export type ApplyMode = 'transactional' | 'two-phase' | 'online';
/** Per connection: the release its database is at, and how the last apply went there. */
export interface ConnectionReleaseState {
  name: string;
  /** the release recorded in the database's bookkeeping; absent when none was ever applied */
  release?: string;
  mode?: string;
  /** AtTarget: at the release asked for; Behind: not yet; Failed: its apply failed; InDoubt: prepared, not committed */
  state?: 'AtTarget' | 'Behind' | 'Failed' | 'InDoubt';
  failedStep?: string;
  reason?: string;
  message?: string;
}
export interface ReleaseHistoryEntry {
  release: string;
  ref?: string;
  at: string;
  action: 'apply' | 'promote' | 'rollback';
  /**
   * who asked, as the request claims it (stk writes the user the API server names for its own
   * credentials; any client that may patch the Environment can write any name, and there is no
   * admission check: a claim, not an audit record), or `spec` when the desired pointer was written
   * directly (GitOps)
   */
  by?: string;
}
export type PipelineStepName = 'plan' | 'apply' | 'drift' | 'permissions' | 'release';
export interface PipelineStep {
  name: PipelineStepName;
  connection?: string;
  state: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Skipped';
  reason?: string;
  message?: string;
}

/** A one-shot request to an Environment (annotation santokit.io/request), written by `stk`. */
export interface ReleaseRequest {
  id: string;
  action: 'apply' | 'plan' | 'promote' | 'rollback' | 'drift';
  release: string;
  /** pipeline parts to run (apply only): default all */
  only?: Array<'schema' | 'permissions' | 'release'>;
  force?: boolean;
  /** how schema changes run for this request; default the environment's spec.applyMode */
  mode?: ApplyMode;
  /** the Kubernetes user who made the request, as the API server named it to stk */
  by?: string;
}

export interface PlannedConnection {
  connection: string;
  text: string;
  steps: Array<{ description: string; sql: string; destructive: boolean; hazards: string[] }>;
  /** the mode it will run in, and which statements run outside the transaction */
  mode?: ApplyMode;
  /** steps left out of `steps` (and lines of `text`) to keep the Environment's status small; destructive steps are always kept */
  omittedSteps?: number;
}

export interface RequestOutcome {
  id: string;
  action: ReleaseRequest['action'];
  release: string;
  outcome: 'Succeeded' | 'Failed';
  reason?: string;
  message?: string;
  plans?: PlannedConnection[];
  drift?: string[];
  /** generation of the Environment when the request was handled */
  generation?: number;
  /** the failure may go away by itself (a database that was down); the spec path retries it */
  retryable?: boolean;
  /** the connection whose step failed, when one did */
  connection?: string;
  /** when the request was handled */
  at?: string;
}

export interface EnvironmentStatus extends CommonStatus {
  currentRelease?: string;
  history?: ReleaseHistoryEntry[];
  drift?: string[];
  lastDriftCheck?: string;
  liveSchemaHash?: string;
  steps?: PipelineStep[];
  /** per connection of the last apply: the release it is at and the step that failed */
  connections?: ConnectionReleaseState[];
  lastRequest?: RequestOutcome;
  /** id of the last request annotation answered; `lastRequest` may since hold a spec (GitOps) change */
  handledRequest?: string;
}
export type Environment = Resource<EnvironmentSpec, EnvironmentStatus>;

export interface SealedValue {
  keyId?: string;
  encryptedKey: string;
  iv: string;
  ciphertext: string;
  tag: string;
}
export interface SecretKeyRef {
  name: string;
  key: string;
}
export interface ConnectionSpec {
  project: string;
  environment: string;
  name: string;
  engine: 'postgres';
  sealedUrl?: SealedValue;
  secretRef?: SecretKeyRef;
}
export interface ConnectionStatus extends CommonStatus {
  target?: string;
  lastTestedTime?: string;
  probe?: string;
}
export type Connection = Resource<ConnectionSpec, ConnectionStatus>;

export interface ReleaseSpec {
  project: string;
  ref: string;
  repo?: string;
  contentHash?: string;
  /** inline format: the schema IR per connection (absent in the chunked format) */
  schema?: Record<string, unknown>;
  /** inline format: the compiled permission policy (absent in the chunked format) */
  permissions?: Record<string, unknown>;
  /** chunked format: where the content is (immutable ConfigMaps) and a summary of it; see core/release/content.ts */
  content?: ReleaseContentRef;
  github?: { repository: string; tokenSecretRef: SecretKeyRef };
}
/** One immutable ConfigMap holding a piece of a chunked Release's compressed content. */
export interface ReleaseChunkRef {
  /** the ConfigMap's name: `<release-id>-<n>` */
  name: string;
  /** SHA-256 (hex) of the piece's bytes */
  sha256: string;
  /** the piece's size in bytes */
  size: number;
}
/** What a chunked Release shows of its content without reading the chunks. */
export interface ReleaseContentSummary {
  connections: Array<{ name: string; tables: number }>;
  /** tables the permission policy has rules for */
  policyTables: number;
  /** size of the canonical JSON of schema and permissions, before compression */
  jsonBytes: number;
}
/** `spec.content` of a chunked Release. */
export interface ReleaseContentRef {
  encoding: 'gzip+json';
  chunks: ReleaseChunkRef[];
  summary: ReleaseContentSummary;
}
/** A GitHub commit status the operator posted for one environment (context `santokit/<env>`). */
export interface GitHubStatusReport {
  environment: string;
  state: 'pending' | 'success' | 'failure' | 'error';
  description: string;
}
export interface ReleaseStatus extends CommonStatus {
  /** environments whose current release this is (sorted) */
  servedBy?: string[];
  /** the commit statuses posted on spec.ref, one per environment: a resync or restart does not post them again */
  github?: GitHubStatusReport[];
}
export type Release = Resource<ReleaseSpec, ReleaseStatus>;

export interface InfraHostSpec {
  project: string;
  environment: string;
  host: string;
  role?: string;
  provider: 'digitalocean';
  region: string;
  size: string;
  image: string;
  tags?: string[];
  credentialsSecretRef: SecretKeyRef;
  sshKey: { name?: string; generate?: boolean; privateKeySecretRef?: SecretKeyRef };
  bootstrap?: {
    docker?: { enabled?: boolean };
    tailscale?: { authKeySecretRef: SecretKeyRef; tags?: string[] };
  };
  deletionPolicy?: 'Delete' | 'Orphan';
  /** `byName`: a droplet that already has the host's name (but not its ownership tag) is adopted instead of refused */
  adopt?: 'byName';
}
export interface InfraHostStatus extends CommonStatus {
  phase?: 'Pending' | 'Provisioning' | 'WaitingForSSH' | 'Bootstrapping' | 'Ready' | 'Failed' | 'Deleting';
  providerId?: string;
  publicIPv4?: string;
  hostKeyFingerprint?: string;
  action?: 'created' | 'unchanged' | 'reconciled';
  steps?: Record<string, string>;
  /** while a bootstrap runs: the step at work (its result lands in `steps` when the run ends) */
  bootstrapStage?: 'ssh' | 'docker' | 'network';
  drift?: string[];
}
export type InfraHost = Resource<InfraHostSpec, InfraHostStatus>;

/** Where a kind lives in the API: enough to build any URL for it. */
export interface KindInfo {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

const santokitKind = (kind: string, plural: string, namespaced: boolean): KindInfo => ({ group: GROUP, version: VERSION, kind, plural, namespaced });

export const Kinds = {
  Project: santokitKind('Project', 'projects', false),
  Environment: santokitKind('Environment', 'environments', true),
  Connection: santokitKind('Connection', 'connections', true),
  Release: santokitKind('Release', 'releases', true),
  InfraHost: santokitKind('InfraHost', 'infrahosts', true),
  Namespace: { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false },
  Secret: { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
  ConfigMap: { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
  Lease: { group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true },
  Role: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'Role', plural: 'roles', namespaced: true },
  RoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding', plural: 'rolebindings', namespaced: true },
  ClusterRole: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', plural: 'clusterroles', namespaced: false },
} as const satisfies Record<string, KindInfo>;

export function apiVersionOf(k: KindInfo): string {
  return k.group === '' ? k.version : `${k.group}/${k.version}`;
}

/** The namespace a project owns. */
export function projectNamespace(project: Pick<Project, 'metadata' | 'spec'>): string {
  return project.spec.namespace ?? `stk-${project.metadata.name}`;
}
