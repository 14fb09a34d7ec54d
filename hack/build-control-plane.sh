#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kubectl) from the pinned wrapper module in hack/controlplane and caches the
# binaries by a key derived from that pin.
#
# Usage: hack/build-control-plane.sh
#
# The last line of stdout is the absolute bin directory; progress goes to stderr.
# Environment:
#   SANTOKIT_CACHE_DIR  cache root (default: $HOME/.cache/santokit)
#
# A cold build takes 5-12 minutes on 2 cores (kube-apiserver alone 3.5-8 min
# and ~2 GB RAM); later calls with the same pin return at once.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly MODULE_DIR="${SCRIPT_DIR}/controlplane"
readonly CACHE_ROOT="${SANTOKIT_CACHE_DIR:-${HOME:?set HOME or SANTOKIT_CACHE_DIR}/.cache/santokit}/controlplane"

readonly KUBE_VERSION="v1.34.1"
readonly KUBE_MAJOR="1"
readonly KUBE_MINOR="34"

# Without these -X flags the binaries report v0.0.0-master, and kubectl would
# warn about version skew against its own server. client-go's copy only feeds
# the User-Agent, but keeping it consistent makes API server logs readable.
readonly LDFLAGS="-s -w \
-X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} \
-X k8s.io/component-base/version.gitMajor=${KUBE_MAJOR} \
-X k8s.io/component-base/version.gitMinor=${KUBE_MINOR} \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=${KUBE_VERSION} \
-X k8s.io/client-go/pkg/version.gitMajor=${KUBE_MAJOR} \
-X k8s.io/client-go/pkg/version.gitMinor=${KUBE_MINOR} \
-X k8s.io/client-go/pkg/version.gitTreeState=clean"

# -mod=readonly: build exactly what the committed go.mod/go.sum say and fail
# loudly instead of silently rewriting them. -trimpath keeps local paths out of
# the binaries so the same pin gives the same binaries on every machine.
readonly BUILD_FLAGS=(-mod=readonly -trimpath)

# binary name -> main package, built in this order (sequentially: on 2 cores
# parallel builds only add memory pressure; kube-apiserver peaks at ~2 GB).
readonly BINARIES=(
  "etcd=go.etcd.io/etcd/server/v3"
  "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
  "kubectl=k8s.io/kubernetes/cmd/kubectl"
)

log() { printf '[build-control-plane] %s\n' "$*" >&2; }
die() { printf '[build-control-plane] error: %s\n' "$*" >&2; exit 1; }

# The cache key changes whenever anything that decides the binaries' content
# changes: the pin (go.mod, go.sum), the flags, the target platform. Bumping the
# pin therefore rebuilds, and everything else reuses the cached binaries.
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
        go build "${BUILD_FLAGS[@]}" -ldflags "${LDFLAGS}" -o "${tmp_dir}/${name}" "${pkg}"
    ) >&2 || die "building ${name} (${pkg}) failed; see the go output above"
    # rename(2) within one file system is atomic: a reader sees either no
    # binary or a complete one, never a half-written file.
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
  # Several test runs may call this at once; only one should build, the others
  # wait and then find the binaries in place.
  # (flock is util-linux; without it we simply do not serialise.)
  if command -v flock >/dev/null 2>&1; then
    exec 9>"${CACHE_ROOT}/${key}/.lock"
    if ! flock -n 9; then
      log "another build of ${key} is running; waiting for it"
      flock 9
    fi
  fi

  if ! all_present "${bin_dir}"; then
    # Only needed when something must be built: cached binaries run without Go.
    command -v go >/dev/null 2>&1 ||
      die "'go' not found on PATH: install Go (at least the 'go' line of ${MODULE_DIR}/go.mod) to build the control plane"
    log "building control plane ${KUBE_VERSION} into ${bin_dir} (a cold build takes 5-12 min)"
    local tmp_dir
    tmp_dir=$(mktemp -d "${CACHE_ROOT}/${key}/.tmp.XXXXXX")
    # shellcheck disable=SC2064 # expand now: tmp_dir is local
    trap "rm -rf '${tmp_dir}'" EXIT
    build_missing "${bin_dir}" "${tmp_dir}"
  fi

  printf '%s\n' "${bin_dir}"
}

main "$@"
