#!/usr/bin/env bash
# Builds Flux source-controller and kustomize-controller from the pinned wrapper
# modules in hack/flux/<controller>/ and caches the binaries, together with the
# controllers' CRDs, by a key derived from those pins and the Go version.
#
# Usage: hack/build-flux.sh
#
# The last line of stdout is the absolute cache directory, holding bin/ (one
# binary per controller) and crds/ (their CustomResourceDefinitions); progress
# goes to stderr.
# Environment:
#   SANTOKIT_CACHE_DIR  cache root (default: $HOME/.cache/santokit)
#   GOPROXY, GOFLAGS    as usual for the go command
#
# A cold build takes about 5 minutes on 2 cores (source-controller ~3 min,
# kustomize-controller ~2 min); later calls with the same pins return at once.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
# shellcheck source=lib/build-lock.sh
source "${SCRIPT_DIR}/lib/build-lock.sh"
readonly MODULES_DIR="${SCRIPT_DIR}/flux"
readonly CACHE_ROOT="${SANTOKIT_CACHE_DIR:-${HOME:?set HOME or SANTOKIT_CACHE_DIR}/.cache/santokit}/flux"

# Go is not always on PATH (Debian images keep it in /usr/local/go/bin).
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:${PATH}"
fi

# -mod=mod: the wrapper go.mod only names the controller; the go command fills
# in what its build needs (the committed go.sum makes that a no-op). -trimpath
# keeps local paths out of the binaries.
readonly BUILD_FLAGS=(-mod=mod -trimpath)
readonly LDFLAGS="-s -w"

# binary name (= wrapper module directory) -> main package, built in this order
# (sequentially: on 2 cores parallel builds only add memory pressure).
readonly CONTROLLERS=(
  "source-controller=github.com/fluxcd/source-controller"
  "kustomize-controller=github.com/fluxcd/kustomize-controller"
)

log() { printf '[build-flux] %s\n' "$*" >&2; }
die() { printf '[build-flux] error: %s\n' "$*" >&2; exit 1; }

go_version() {
  command -v go >/dev/null 2>&1 || { echo none; return; }
  GOTOOLCHAIN=local go env GOVERSION
}

# Changes whenever anything that decides the binaries' content changes: the
# pins (go.mod without its comment lines, go.sum), the Go version, the flags,
# the platform.
cache_key() {
  local entry name
  {
    for entry in "${CONTROLLERS[@]}"; do
      name=${entry%%=*}
      printf '== %s\n' "${name}"
      grep -v '^[[:space:]]*//' "${MODULES_DIR}/${name}/go.mod"
      [[ ! -f "${MODULES_DIR}/${name}/go.sum" ]] || cat "${MODULES_DIR}/${name}/go.sum"
    done
    printf 'go=%s\n' "$(go_version)"
    printf 'ldflags=%s\n' "${LDFLAGS}"
    printf 'buildflags=%s cgo=0\n' "${BUILD_FLAGS[*]}"
    printf 'platform=%s/%s\n' "$(uname -s)" "$(uname -m)"
  } | sha256sum | cut -c1-16
}

all_present() {
  local dir=$1 entry
  for entry in "${CONTROLLERS[@]}"; do
    [[ -x "${dir}/bin/${entry%%=*}" ]] || return 1
  done
  compgen -G "${dir}/crds/*.yaml" >/dev/null
}

build_missing() {
  local dir=$1 tmp_dir=$2 entry name pkg start module_dir
  mkdir -p "${dir}/bin" "${dir}/crds"
  for entry in "${CONTROLLERS[@]}"; do
    name=${entry%%=*}
    pkg=${entry#*=}
    if [[ -x "${dir}/bin/${name}" ]]; then
      log "${name}: cached"
    else
      log "${name}: building ${pkg} ..."
      start=${SECONDS}
      (
        cd "${MODULES_DIR}/${name}"
        GOTOOLCHAIN=local CGO_ENABLED=0 \
          go build "${BUILD_FLAGS[@]}" -ldflags "${LDFLAGS}" -o "${tmp_dir}/${name}" "${pkg}"
      ) >&2 || die "building ${name} (${pkg}) failed; see the go output above"
      # rename(2) within one file system is atomic: a reader sees either no
      # binary or a complete one.
      mv -f "${tmp_dir}/${name}" "${dir}/bin/${name}"
      log "${name}: built in $((SECONDS - start))s"
    fi
    # The CRDs ship in the controller's module (config/crd/bases/).
    module_dir=$(cd "${MODULES_DIR}/${name}" && GOTOOLCHAIN=local go list -mod=mod -m -f '{{.Dir}}' "${pkg}")
    [[ -d "${module_dir}/config/crd/bases" ]] || die "no config/crd/bases in ${module_dir}"
    install -m 644 "${module_dir}"/config/crd/bases/*.yaml "${tmp_dir}/"
  done
  mv -f "${tmp_dir}"/*.yaml "${dir}/crds/"
}

main() {
  local entry key dir
  for entry in "${CONTROLLERS[@]}"; do
    [[ -f "${MODULES_DIR}/${entry%%=*}/go.mod" ]] || die "missing ${MODULES_DIR}/${entry%%=*}/go.mod"
  done
  key=$(cache_key)
  dir="${CACHE_ROOT}/${key}"

  if all_present "${dir}"; then
    printf '%s\n' "${dir}"
    return 0
  fi

  mkdir -p "${dir}"
  take_build_lock "${dir}/.lock" "${key}"

  if ! all_present "${dir}"; then
    command -v go >/dev/null 2>&1 ||
      die "'go' not found on PATH: install Go (at least the 'go' line of hack/flux/*/go.mod) to build Flux"
    log "building Flux controllers into ${dir} (a cold build takes about 5 min)"
    local tmp_dir
    tmp_dir=$(mktemp -d "${dir}/.tmp.XXXXXX")
    # shellcheck disable=SC2064 # expand now: tmp_dir is local
    trap "rm -rf '${tmp_dir}'" EXIT
    build_missing "${dir}" "${tmp_dir}"
  fi

  printf '%s\n' "${dir}"
}

main "$@"
