#!/usr/bin/env bash
# Builds Helm (the chart tests lint and render charts/santokit with it) from the
# Go module proxy and caches the binary by version.
#
# Usage: hack/build-helm.sh
#
# The last line of stdout is the absolute path of the helm binary; progress goes
# to stderr.
# Environment:
#   SANTOKIT_CACHE_DIR  cache root (default: $HOME/.cache/santokit)
#   SANTOKIT_HELM       use this helm binary instead (printed as is, nothing built)
#
# A cold build takes about 1.5 minutes on 2 cores; later calls return at once.
set -euo pipefail

readonly HELM_VERSION="v3.22.0"
# The Kubernetes version Helm assumes when it renders without a cluster (`helm template`,
# `helm lint`: .Capabilities.KubeVersion, the chart's kubeVersion check, deprecation rules).
# Helm's Makefile derives it from the k8s.io/client-go it builds with (v0.37 for v3.22 → 1.37);
# without these flags a `go install` build assumes 1.20.
readonly KUBE_MAJOR="1"
readonly KUBE_MINOR="37"
readonly LDFLAGS="-s -w \
-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
-X helm.sh/helm/v3/internal/version.gitTreeState=clean \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${KUBE_MAJOR} \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${KUBE_MINOR} \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${KUBE_MAJOR} \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${KUBE_MINOR}"
readonly CACHE_ROOT="${SANTOKIT_CACHE_DIR:-${HOME:?set HOME or SANTOKIT_CACHE_DIR}/.cache/santokit}/helm"

# shellcheck source=lib/build-lock.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/build-lock.sh"

log() { printf '[build-helm] %s\n' "$*" >&2; }
die() { printf '[build-helm] error: %s\n' "$*" >&2; exit 1; }

# Go is often installed outside PATH (the official tarball unpacks to /usr/local/go).
find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    die "'go' not found (PATH or /usr/local/go/bin): install Go to build Helm ${HELM_VERSION}"
  fi
}

main() {
  if [[ -n "${SANTOKIT_HELM:-}" ]]; then
    [[ -x "${SANTOKIT_HELM}" ]] || die "SANTOKIT_HELM=${SANTOKIT_HELM} is not an executable"
    printf '%s\n' "${SANTOKIT_HELM}"
    return 0
  fi

  # Anything that decides the binary's content is in the cache key: a changed flag rebuilds.
  local key dir
  key=$(printf 'ldflags=%s\nplatform=%s/%s\n' "${LDFLAGS}" "$(uname -s)" "$(uname -m)" | sha256sum | cut -c1-16)
  dir="${CACHE_ROOT}/${HELM_VERSION}/${key}"
  local bin="${dir}/helm"
  if [[ -x "${bin}" ]]; then
    printf '%s\n' "${bin}"
    return 0
  fi

  mkdir -p "${dir}"
  take_build_lock "${dir}/.lock" "helm ${HELM_VERSION}"

  if [[ ! -x "${bin}" ]]; then
    local go tmp_dir start=${SECONDS}
    go=$(find_go)
    tmp_dir=$(mktemp -d "${dir}/.tmp.XXXXXX")
    # shellcheck disable=SC2064 # expand now: tmp_dir is local
    trap "rm -rf '${tmp_dir}'" EXIT
    log "building helm ${HELM_VERSION} into ${dir} (about 1.5 min cold)"
    # `go install pkg@version` resolves the module from the proxy, outside any
    # module of ours; GOBIN puts the binary in the scratch directory first, and
    # rename(2) then publishes it atomically.
    GOBIN="${tmp_dir}" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath \
      "${go}" install -ldflags "${LDFLAGS}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2 ||
      die "go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION} failed; see the go output above"
    mv -f "${tmp_dir}/helm" "${bin}"
    log "built in $((SECONDS - start))s"
  fi

  printf '%s\n' "${bin}"
}

main "$@"
