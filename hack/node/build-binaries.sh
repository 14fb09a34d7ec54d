#!/usr/bin/env bash
# Builds the node components of the local single-node cluster (kubelet,
# kube-proxy, kube-scheduler) from the pinned wrapper module in hack/node/go and
# caches them by a key derived from that pin. The control plane (etcd,
# kube-apiserver, kube-controller-manager, kubectl) comes from
# hack/build-control-plane.sh, unchanged.
#
# Usage: hack/node/build-binaries.sh
#
# The last line of stdout is the absolute bin directory; progress goes to stderr.
# Environment:
#   SANTOKIT_CACHE_DIR  cache root (default: $HOME/.cache/santokit); binaries go
#                       to <root>/node/<key>/bin
#
# With a warm Go build cache (the control plane built before): kubelet ~80 s,
# kube-proxy ~20 s, kube-scheduler ~10 s; cold on a busy 2-core machine up to
# ~10 min. Later calls with the same pin return at once.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly MODULE_DIR="${SCRIPT_DIR}/go"
readonly CACHE_ROOT="${SANTOKIT_CACHE_DIR:-${HOME:?set HOME or SANTOKIT_CACHE_DIR}/.cache/santokit}/node"

readonly KUBE_VERSION="v1.34.1"
readonly KUBE_MAJOR="1"
readonly KUBE_MINOR="34"

# Same version stamping as hack/build-control-plane.sh: the kubelet reports its
# version to the API server, which checks the skew.
readonly LDFLAGS="-s -w \
-X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} \
-X k8s.io/component-base/version.gitMajor=${KUBE_MAJOR} \
-X k8s.io/component-base/version.gitMinor=${KUBE_MINOR} \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=${KUBE_VERSION} \
-X k8s.io/client-go/pkg/version.gitMajor=${KUBE_MAJOR} \
-X k8s.io/client-go/pkg/version.gitMinor=${KUBE_MINOR} \
-X k8s.io/client-go/pkg/version.gitTreeState=clean"

readonly BUILD_FLAGS=(-mod=readonly -trimpath)

# Smallest first, so a slow machine has something usable early. Sequential: on
# 2 cores parallel builds only add memory pressure.
readonly BINARIES=(
  "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler"
  "kube-proxy=k8s.io/kubernetes/cmd/kube-proxy"
  "kubelet=k8s.io/kubernetes/cmd/kubelet"
)

log() { printf '[build-node-binaries] %s\n' "$*" >&2; }
die() { printf '[build-node-binaries] error: %s\n' "$*" >&2; exit 1; }

cache_key() {
  {
    cat "${MODULE_DIR}/go.mod" "${MODULE_DIR}/go.sum"
    printf 'ldflags=%s\n' "${LDFLAGS}"
    printf 'buildflags=%s cgo=0\n' "${BUILD_FLAGS[*]}"
    printf 'binaries=%s\n' "${BINARIES[*]}"
    printf 'platform=%s/%s\n' "$(uname -s)" "$(uname -m)"
  } | sha256sum | cut -c1-16
}

all_present() {
  local entry
  for entry in "${BINARIES[@]}"; do
    [[ -x "$1/${entry%%=*}" ]] || return 1
  done
}

build_missing() {
  local bin_dir=$1 tmp_dir=$2 entry name pkg start
  for entry in "${BINARIES[@]}"; do
    name=${entry%%=*}
    pkg=${entry#*=}
    if [[ -x "${bin_dir}/${name}" ]]; then
      log "${name}: cached"
      continue
    fi
    log "${name}: building ${pkg} ..."
    start=${SECONDS}
    (
      cd "${MODULE_DIR}"
      GOTOOLCHAIN=local CGO_ENABLED=0 \
        nice -n "${SANTOKIT_NICE:-15}" go build "${BUILD_FLAGS[@]}" -ldflags "${LDFLAGS}" -o "${tmp_dir}/${name}" "${pkg}"
    ) >&2 || die "building ${name} (${pkg}) failed; see the go output above"
    mv -f "${tmp_dir}/${name}" "${bin_dir}/${name}"
    log "${name}: built in $((SECONDS - start))s"
  done
}

main() {
  [[ -f "${MODULE_DIR}/go.mod" && -f "${MODULE_DIR}/go.sum" ]] ||
    die "missing ${MODULE_DIR}/go.mod or go.sum"

  local key bin_dir
  key=$(cache_key)
  bin_dir="${CACHE_ROOT}/${key}/bin"

  if all_present "${bin_dir}"; then
    printf '%s\n' "${bin_dir}"
    return 0
  fi

  mkdir -p "${bin_dir}"
  exec 9>"${CACHE_ROOT}/${key}/.lock"
  if ! flock -n 9; then
    log "another build of ${key} is running; waiting for it"
    flock 9
  fi

  if ! all_present "${bin_dir}"; then
    command -v go >/dev/null 2>&1 ||
      die "'go' not found on PATH: install Go (at least the 'go' line of ${MODULE_DIR}/go.mod) to build the node binaries"
    log "building kubelet, kube-proxy, kube-scheduler ${KUBE_VERSION} into ${bin_dir}"
    local tmp_dir
    tmp_dir=$(mktemp -d "${CACHE_ROOT}/${key}/.tmp.XXXXXX")
    # shellcheck disable=SC2064 # expand now: tmp_dir is local
    trap "rm -rf '${tmp_dir}'" EXIT
    build_missing "${bin_dir}" "${tmp_dir}"
  fi

  printf '%s\n' "${bin_dir}"
}

main "$@"
