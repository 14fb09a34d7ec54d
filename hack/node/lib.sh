# Shared by hack/build-image.sh and hack/node.sh: the Debian packages they need and
# the podman/buildah settings this machine kind requires.
# shellcheck shell=bash

NODE_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly NODE_LIB_DIR
readonly SANTOKIT_CACHE_ROOT="${SANTOKIT_CACHE_DIR:-${HOME:?set HOME or SANTOKIT_CACHE_DIR}/.cache/santokit}"

# Debian 12 packages (buildah 1.28, podman 4.3, containerd 1.6, runc 1.1, CNI plugins 1.1).
readonly NODE_PACKAGES=(
  buildah podman debootstrap iptables nftables containerd runc containernetworking-plugins
  fuse-overlayfs uidmap conmon golang-github-containers-common
)

# Installs whatever of NODE_PACKAGES is missing (no-op when all are present). Installing
# containerd does not start it here: the script runs its own instance with its own config.
ensure_packages() {
  local missing=() p
  for p in "${NODE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q 'install ok installed' || missing+=("${p}")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get: install them"
  log "installing ${missing[*]}"
  # policy-rc.d 101: do not start the distribution's containerd service on install.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e ${policy} ]]; then
    printf '#!/bin/sh\nexit 101\n' >"${policy}" && chmod +x "${policy}" && created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive nice -n 15 apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    { ((created_policy)) && rm -f "${policy}"; die "apt-get install ${missing[*]} failed"; }
  ((created_policy)) && rm -f "${policy}"
  return 0
}

# podman/buildah: their own storage under the cache (images survive between runs and
# nothing mixes with other users of podman), runc (crun 1.8 refuses cgroup hybrid mode),
# ulimits this root may set (it lacks CAP_SYS_RESOURCE), and no default network (podman's
# would turn on IP forwarding and add a masquerade rule): every run passes --network.
setup_podman_env() {
  local dir="${SANTOKIT_CACHE_ROOT}/image"
  mkdir -p "${dir}/storage"
  cat >"${dir}/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "${dir}/storage"
runroot = "/run/santokit-image-storage"
CONF
  export CONTAINERS_STORAGE_CONF="${dir}/storage.conf"
  export CONTAINERS_CONF="${NODE_LIB_DIR}/containers.conf"
  # buildah reads registries from here; an empty search list: only fully named local images.
  export CONTAINERS_REGISTRIES_CONF="${NODE_LIB_DIR}/registries.conf"
}
