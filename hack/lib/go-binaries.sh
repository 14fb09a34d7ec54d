# shellcheck shell=bash
# Builds Kubernetes binaries from a pinned Go wrapper module and caches them by a key derived from
# that pin. Sourced by hack/build-control-plane.sh and hack/node/build-binaries.sh, which say what
# to build; the last line of stdout is the absolute bin directory, progress goes to stderr.
#
# The caller sets, before calling build_go_binaries:
#   GO_BUILD_TAG   log prefix, e.g. build-control-plane
#   MODULE_DIR     the wrapper module (go.mod, go.sum, tools.go)
#   CACHE_ROOT     where keyed bin directories go: <CACHE_ROOT>/<key>/bin
#   BINARIES       array of "name=main package", built in this order
#   GO_BUILD_WHAT  what a cold build makes, for the log line
#   GO_BUILD_NICE  nice level of `go build` (0: none)

# shellcheck source=build-lock.sh
source "$(dirname "${BASH_SOURCE[0]}")/build-lock.sh"

readonly KUBE_VERSION="v1.34.1"
readonly KUBE_MAJOR="1"
readonly KUBE_MINOR="34"

# Without these -X flags the binaries report v0.0.0-master: kubectl would warn about version skew
# against its own server and the kubelet reports its version to the API server, which checks the
# skew. client-go's copy only feeds the User-Agent, but keeping it consistent makes API server logs
# readable.
readonly LDFLAGS="-s -w \
-X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} \
-X k8s.io/component-base/version.gitMajor=${KUBE_MAJOR} \
-X k8s.io/component-base/version.gitMinor=${KUBE_MINOR} \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=${KUBE_VERSION} \
-X k8s.io/client-go/pkg/version.gitMajor=${KUBE_MAJOR} \
-X k8s.io/client-go/pkg/version.gitMinor=${KUBE_MINOR} \
-X k8s.io/client-go/pkg/version.gitTreeState=clean"

# -mod=readonly: build exactly what the committed go.mod/go.sum say and fail loudly instead of
# silently rewriting them. -trimpath keeps local paths out of the binaries so the same pin gives the
# same binaries on every machine.
readonly BUILD_FLAGS=(-mod=readonly -trimpath)

log() { printf '[%s] %s\n' "${GO_BUILD_TAG}" "$*" >&2; }
die() { printf '[%s] error: %s\n' "${GO_BUILD_TAG}" "$*" >&2; exit 1; }

# The cache key changes whenever anything that decides the binaries' content changes: the pin
# (go.mod, go.sum), the flags, the binaries, the target platform. Bumping the pin therefore
# rebuilds, and everything else reuses the cached binaries.
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
  local -a nice_cmd=()
  [[ "${GO_BUILD_NICE:-0}" == 0 ]] || nice_cmd=(nice -n "${GO_BUILD_NICE}")
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
        "${nice_cmd[@]}" go build "${BUILD_FLAGS[@]}" -ldflags "${LDFLAGS}" -o "${tmp_dir}/${name}" "${pkg}"
    ) >&2 || die "building ${name} (${pkg}) failed; see the go output above"
    # rename(2) within one file system is atomic: a reader sees either no binary or a complete
    # one, never a half-written file.
    mv -f "${tmp_dir}/${name}" "${bin_dir}/${name}"
    log "${name}: built in $((SECONDS - start))s"
  done
}

build_go_binaries() {
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
  take_build_lock "${CACHE_ROOT}/${key}/.lock" "${key}"

  if ! all_present "${bin_dir}"; then
    # Only needed when something must be built: cached binaries run without Go.
    command -v go >/dev/null 2>&1 ||
      die "'go' not found on PATH: install Go (at least the 'go' line of ${MODULE_DIR}/go.mod) to build ${GO_BUILD_WHAT}"
    log "building ${GO_BUILD_WHAT} ${KUBE_VERSION} into ${bin_dir}"
    local tmp_dir
    tmp_dir=$(mktemp -d "${CACHE_ROOT}/${key}/.tmp.XXXXXX")
    # shellcheck disable=SC2064 # expand now: tmp_dir is local
    trap "rm -rf '${tmp_dir}'" EXIT
    build_missing "${bin_dir}" "${tmp_dir}"
  fi

  printf '%s\n' "${bin_dir}"
}
