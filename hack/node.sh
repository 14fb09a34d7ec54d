#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, without Docker and without pulling any
# image: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet,
# kube-proxy, a CNI bridge, and a Postgres the pods can reach. The chart installs on it as on
# any cluster (tests/node/). Needs root.
#
# Usage: hack/node.sh <command>
#   up       build or reuse the binaries and images, start everything, import the Santokit
#            image into containerd, print the env file's path (idempotent when already up)
#   down     stop everything and leave the host as it was before `up`: processes, mounts,
#            the bridge, nftables tables, sysctls, kubelet's cgroups and host directories
#   status   show which components run (exit 1 if any is stopped)
#   env      print the env file (shell-sourceable export lines)
#   snapshot print the host state `down` restores (processes, mounts, links, nftables tables,
#            sysctls, cgroups, host directories) for before/after comparisons
#
# Addresses: a bridge `santokit0` with 10.244.0.1/24 (SANTOKIT_NODE_BRIDGE_CIDR); the API server,
# etcd, kubelet, kube-proxy and Postgres listen on the bridge address, never on loopback. Pods
# get 10.244.0.x and reach the host (API server, Postgres) directly; Services are
# 10.96.0.0/24. IP forwarding stays off, nothing is masqueraded, and containerd's registry
# hosts point at a dead loopback port, so nothing leaves the machine.
#
# Environment:
#   SANTOKIT_NODE_STATE_DIR  state directory (default <repo>/.santokit/node)
#   SANTOKIT_CACHE_DIR       binary and image cache (default ~/.cache/santokit)
#   SANTOKIT_NODE_IMAGE      image to import (default: what hack/build-image.sh builds)
#   SANTOKIT_READY_TIMEOUT   seconds to wait for each component (default 60)
#
# After `up`, <state>/env exports KUBECONFIG (admin), SANTOKIT_KUBECTL, SANTOKIT_NODE_IP,
# SANTOKIT_NODE_IMAGE, SANTOKIT_NODE_PG_ADMIN_URL (Postgres on the bridge address, reachable
# from the host and from pods), SANTOKIT_NODE_CONTAINERD_SOCK and SANTOKIT_NODE_STATE_DIR.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT

STATE="$(realpath -m -- "${SANTOKIT_NODE_STATE_DIR:-${REPO_ROOT}/.santokit/node}")"
readonly STATE
readonly READY_TIMEOUT="${SANTOKIT_READY_TIMEOUT:-60}"
readonly STOP_TIMEOUT=15

readonly BRIDGE=santokit0
readonly BRIDGE_CIDR="${SANTOKIT_NODE_BRIDGE_CIDR:-10.244.0.1/24}"
readonly NODE_IP="${BRIDGE_CIDR%/*}"
readonly POD_CIDR="${NODE_IP%.*}.0/${BRIDGE_CIDR#*/}"
readonly SERVICE_CIDR=10.96.0.0/24
readonly NODE_NAME=santokit-node

readonly MARKER="${STATE}/.santokit-node"
readonly RUN_DIR="${STATE}/run" LOG_DIR="${STATE}/logs" PKI_DIR="${STATE}/pki"
readonly HOST_DIR="${STATE}/host" # host state before `up`
readonly PORTS_FILE="${STATE}/ports" ENV_FILE="${STATE}/env"
readonly BIN_DIRS_FILE="${STATE}/bin-dirs"
readonly APISERVER_CERT_DIR="${PKI_DIR}/apiserver" KCM_CERT_DIR="${PKI_DIR}/controller-manager"
readonly SCHED_CERT_DIR="${PKI_DIR}/scheduler"
readonly CA_FILE="${APISERVER_CERT_DIR}/apiserver.crt"
readonly SA_KEY="${PKI_DIR}/sa.key" SA_PUB="${PKI_DIR}/sa.pub" TOKENS_FILE="${PKI_DIR}/tokens.csv"
readonly KUBELET_DIR="${STATE}/kubelet"
# containerd's state, sockets and network namespaces live on /run (tmpfs), as usual.
readonly RUN_ROOT=/run/santokit-node
readonly CONTAINERD_SOCK="${RUN_ROOT}/containerd.sock"
# containerd's content and snapshots are a cache (~/.cache/santokit/node/containerd): an image
# imported once is not imported again by the next `up`. One node per machine uses it at a time.
readonly CONTAINERD_ROOT="${SANTOKIT_CACHE_DIR:-${HOME:?set HOME or SANTOKIT_CACHE_DIR}/.cache/santokit}/node/containerd"
readonly CONTAINERD_STATE="${RUN_ROOT}/containerd"
readonly CNI_CONF_DIR="${STATE}/cni/net.d" CNI_DATA_DIR="${STATE}/cni/ipam"
readonly PG_DIR="${STATE}/postgres"
readonly PG_DATA="${PG_DIR}/data" PG_SOCKET_DIR="${PG_DIR}/run" PG_PASSWORD_FILE="${STATE}/postgres-password"

# Host paths the components write outside the state directory (kubelet's device-plugin
# directory, container log directories, containerd's shim sockets, network namespaces...).
# `down` removes those that did not exist before `up`.
readonly HOST_PATHS=(
  /var/lib/kubelet /var/log/pods /var/log/containers /run/containerd /run/netns /var/run/netns
  /var/lib/cni /etc/cni /opt/cni /usr/libexec/kubernetes /etc/kubernetes /var/lib/containerd
  /opt/containerd "${RUN_ROOT}"
)
# Sysctls kubelet and kube-proxy are known to set; `down` restores every sysctl that differs.
readonly WATCHED_SYSCTLS='^(kernel\.(panic|panic_on_oops|keys\.root_max(keys|bytes))|vm\.(overcommit_memory|panic_on_oom)|net\.ipv4\.(ip_forward|conf\.all\.(route_localnet|forwarding))|net\.bridge\.|net\.netfilter\.nf_conntrack_(max|tcp_timeout_established|tcp_timeout_close_wait|tcp_be_liberal)) '

COMPONENTS=(etcd apiserver controller-manager scheduler postgres containerd kubelet kube-proxy)
CP_BIN="" NODE_BIN=""
ETCD_CLIENT_PORT="" ETCD_PEER_PORT="" APISERVER_PORT="" KCM_PORT="" SCHED_PORT=""
KUBELET_PORT="" KUBELET_HEALTHZ_PORT="" PROXY_HEALTHZ_PORT="" PROXY_METRICS_PORT="" PG_PORT=""

log() { printf '[node] %s\n' "$*" >&2; }
die() { printf '[node] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/processes.sh
source "${SCRIPT_DIR}/lib/processes.sh"
# shellcheck source=node/lib.sh
source "${SCRIPT_DIR}/node/lib.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; }
sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
pid_file() { printf '%s/%s.pid\n' "${RUN_DIR}" "$1"; }
log_file() { printf '%s/%s.log\n' "${LOG_DIR}" "$1"; }
token_of() { awk -F, -v u="$1" '$2 == u { print $1 }' "${TOKENS_FILE}"; }
kubectl_admin() { "${CP_BIN}/kubectl" --kubeconfig="${STATE}/kubeconfig" "$@"; }
ctr_k8s() { ctr --address "${CONTAINERD_SOCK}" --namespace k8s.io "$@"; }

binary_of() {
  case "$1" in
    etcd) echo etcd ;;
    apiserver) echo kube-apiserver ;;
    controller-manager) echo kube-controller-manager ;;
    scheduler) echo kube-scheduler ;;
    containerd) echo containerd ;;
    kubelet) echo kubelet ;;
    kube-proxy) echo kube-proxy ;;
    postgres) echo postgres ;;
  esac
}

component_pid() {
  local c=$1 pid=""
  if [[ ${c} == postgres ]]; then
    [[ -r "${PG_DATA}/postmaster.pid" ]] && pid=$(head -n 1 "${PG_DATA}/postmaster.pid" 2>/dev/null || true)
  else
    [[ -r "$(pid_file "${c}")" ]] && pid=$(<"$(pid_file "${c}")")
  fi
  if pid_alive_as "${pid}" "$(binary_of "${c}")"; then echo "${pid}"; fi
  return 0
}
is_running() { [[ -n "$(component_pid "$1")" ]]; }

fail_with_log() {
  printf '[node] error: %s\n' "$1" >&2
  if [[ -r "$2" ]]; then
    printf '[node] last lines of %s:\n' "$2" >&2
    tail -n 30 "$2" | sed 's/^/    /' >&2
  fi
  printf '[node] state is kept in %s; "hack/node.sh down" removes it\n' "${STATE}" >&2
  exit 1
}

wait_for() {
  local what=$1 file=$2 c=$3
  shift 3
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@"; do
    [[ -z ${c} ]] || is_running "${c}" || fail_with_log "${what} exited during start-up" "${file}"
    ((SECONDS < deadline)) || fail_with_log "${what} not ready after ${READY_TIMEOUT}s" "${file}"
    sleep 0.3
  done
}

# --- host snapshot ---------------------------------------------------------------------------

# Everything `down` must restore, one "kind: value" per line. Processes: only those whose
# command line mentions this state directory, the bridge or /run/santokit-node (other users'
# processes come and go).
snapshot() {
  local p
  {
    ps -eo args= | grep -E -- "${STATE}|${RUN_ROOT}|${BRIDGE}|containerd-shim" | grep -v -E 'grep|node\.sh|snapshot' | sed 's/^/process: /' || true
    # Image builds (hack/build-image.sh) mount layers under their own store while they run.
    findmnt -rn -o TARGET | grep -vF "${SANTOKIT_CACHE_ROOT}/image/storage/" | LC_ALL=C sort | sed 's/^/mount: /'
    ip -o link show | awk -F': ' '{ print "link: " $2 }' | sed 's/@.*//' | LC_ALL=C sort
    ip -o -4 addr show | awk '{ print "addr: " $2 " " $4 }' | LC_ALL=C sort
    ip -4 route show | sed 's/^/route: /' | LC_ALL=C sort
    nft list tables 2>/dev/null | sed 's/^/nftables: /' | LC_ALL=C sort
    sysctl -a 2>/dev/null | grep -E "${WATCHED_SYSCTLS}" | sed 's/^/sysctl: /' | LC_ALL=C sort
    find /sys/fs/cgroup -maxdepth 2 -name 'kubepods*' 2>/dev/null | LC_ALL=C sort | sed 's/^/cgroup: /'
    for p in "${HOST_PATHS[@]}"; do
      if [[ -e ${p} || -L ${p} ]]; then printf 'path: %s\n' "${p}"; fi
    done
  }
}

# --- state -----------------------------------------------------------------------------------

guard_state_dir() {
  if [[ -d ${STATE} && ! -e ${MARKER} && -n "$(find "${STATE}" -mindepth 1 -maxdepth 1 -print -quit)" ]]; then
    die "${STATE} exists and is not a node state directory (no ${MARKER##*/}); choose another SANTOKIT_NODE_STATE_DIR"
  fi
}

write_kubeconfig() {
  local file=$1 user=$2
  (
    umask 077
    cat >"${file}.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: santokit-node
    cluster:
      server: https://${NODE_IP}:${APISERVER_PORT}
      certificate-authority: ${CA_FILE}
users:
  - name: ${user}
    user:
      token: $(token_of "${user}")
contexts:
  - name: santokit-node
    context:
      cluster: santokit-node
      user: ${user}
current-context: santokit-node
EOF
  )
  mv "${file}.tmp" "${file}"
}

init_state() {
  mkdir -p "${STATE}" "${RUN_DIR}" "${LOG_DIR}" "${PKI_DIR}" "${APISERVER_CERT_DIR}" "${KCM_CERT_DIR}" \
    "${SCHED_CERT_DIR}" "${HOST_DIR}" "${KUBELET_DIR}" "${CNI_CONF_DIR}" "${CNI_DATA_DIR}" "${STATE}/etcd" \
    "${STATE}/containerd/certs.d"
  chmod 755 "${STATE}"
  touch "${MARKER}"
  load_ports_file "${PORTS_FILE}" ETCD_CLIENT_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHED_PORT \
    KUBELET_PORT KUBELET_HEALTHZ_PORT PROXY_HEALTHZ_PORT PROXY_METRICS_PORT PG_PORT
  if [[ ! -s ${SA_KEY} ]]; then
    openssl genrsa -out "${SA_KEY}.tmp" 2048 2>/dev/null || die "openssl could not create an RSA key"
    openssl rsa -in "${SA_KEY}.tmp" -pubout -out "${SA_PUB}" 2>/dev/null || die "openssl could not derive the public key"
    chmod 600 "${SA_KEY}.tmp"
    mv "${SA_KEY}.tmp" "${SA_KEY}"
  fi
  # Static tokens. The kubelet is a real node identity (Node authorizer); kube-proxy and the
  # scheduler have the default RBAC bindings of their users.
  if [[ ! -s ${TOKENS_FILE} ]]; then
    (
      umask 077
      cat >"${TOKENS_FILE}.tmp" <<EOF
$(openssl rand -hex 32),santokit-admin,santokit-admin,"system:masters"
$(openssl rand -hex 32),system:node:${NODE_NAME},system:node:${NODE_NAME},"system:nodes"
$(openssl rand -hex 32),system:kube-proxy,system:kube-proxy
$(openssl rand -hex 32),system:kube-scheduler,system:kube-scheduler
$(openssl rand -hex 32),system:kube-controller-manager,system:kube-controller-manager
EOF
    )
    mv "${TOKENS_FILE}.tmp" "${TOKENS_FILE}"
  fi
  write_kubeconfig "${STATE}/kubeconfig" santokit-admin
  write_kubeconfig "${STATE}/kubelet.kubeconfig" "system:node:${NODE_NAME}"
  write_kubeconfig "${STATE}/kube-proxy.kubeconfig" system:kube-proxy
  write_kubeconfig "${STATE}/scheduler.kubeconfig" system:kube-scheduler
  write_kubeconfig "${STATE}/controller-manager.kubeconfig" system:kube-controller-manager
}

write_env() {
  {
    printf 'export KUBECONFIG=%s\n' "$(sh_quote "${STATE}/kubeconfig")"
    printf 'export SANTOKIT_KUBECTL=%s\n' "$(sh_quote "${CP_BIN}/kubectl")"
    printf 'export SANTOKIT_NODE_IP=%s\n' "${NODE_IP}"
    printf 'export SANTOKIT_NODE_NAME=%s\n' "${NODE_NAME}"
    printf 'export SANTOKIT_NODE_IMAGE=%s\n' "$(sh_quote "$(cat "${STATE}/image" 2>/dev/null || true)")"
    printf 'export SANTOKIT_NODE_APISERVER_URL=%s\n' "https://${NODE_IP}:${APISERVER_PORT}"
    printf 'export SANTOKIT_NODE_PG_ADMIN_URL=%s\n' "$(sh_quote "postgres://postgres:$(cat "${PG_PASSWORD_FILE}")@${NODE_IP}:${PG_PORT}/postgres")"
    printf 'export SANTOKIT_NODE_STATE_DIR=%s\n' "$(sh_quote "${STATE}")"
    printf 'export SANTOKIT_NODE_CONTAINERD_SOCK=%s\n' "$(sh_quote "${CONTAINERD_SOCK}")"
  } >"${ENV_FILE}.tmp"
  chmod 600 "${ENV_FILE}.tmp"
  mv "${ENV_FILE}.tmp" "${ENV_FILE}"
}

# --- network ---------------------------------------------------------------------------------

setup_bridge() {
  if ! ip link show "${BRIDGE}" >/dev/null 2>&1; then
    ip route get "${NODE_IP}" 2>/dev/null | grep -q " dev ${BRIDGE}" ||
      ! ip -4 route show | grep -q "^${POD_CIDR} " || die "${POD_CIDR} is already routed on this host; set SANTOKIT_NODE_BRIDGE_CIDR"
    ip link add "${BRIDGE}" type bridge
    ip addr add "${BRIDGE_CIDR}" dev "${BRIDGE}"
    ip link set "${BRIDGE}" up
  fi
  # The CNI bridge plugin attaches each pod's veth to the bridge. isGateway false and ipMasq
  # false: it neither turns on IP forwarding nor adds NAT rules; the gateway address is ours.
  cat >"${CNI_CONF_DIR}/10-santokit.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "santokit",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${BRIDGE}",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${CNI_DATA_DIR}",
        "ranges": [[{ "subnet": "${POD_CIDR}", "gateway": "${NODE_IP}" }]],
        "routes": [{ "dst": "0.0.0.0/0", "gw": "${NODE_IP}" }]
      }
    },
    { "type": "loopback" }
  ]
}
EOF
  # Pods resolve no names (there is no cluster DNS): lookups fail at once instead of
  # reaching the host's resolver.
  printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"${STATE}/resolv.conf"
}

# --- components ------------------------------------------------------------------------------

start_etcd() {
  mkdir -p "${STATE}/etcd/data"
  chmod 700 "${STATE}/etcd/data"
  start_daemon etcd "${CP_BIN}/etcd" --name=santokit-node --data-dir="${STATE}/etcd/data" \
    --listen-client-urls="http://${NODE_IP}:${ETCD_CLIENT_PORT}" \
    --advertise-client-urls="http://${NODE_IP}:${ETCD_CLIENT_PORT}" \
    --listen-peer-urls="http://${NODE_IP}:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls="http://${NODE_IP}:${ETCD_PEER_PORT}" \
    --initial-cluster="santokit-node=http://${NODE_IP}:${ETCD_PEER_PORT}" \
    --listen-metrics-urls="" --unsafe-no-fsync=true
}
etcd_ready() {
  local r
  r=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/${NODE_IP}/${ETCD_CLIENT_PORT}" &&
      printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "${NODE_IP}" >&3 && timeout 2 cat <&3
  ) || return 1
  [[ ${r} == *'"health":"true"'* ]]
}

start_apiserver() {
  start_daemon apiserver "${CP_BIN}/kube-apiserver" \
    --etcd-servers="http://${NODE_IP}:${ETCD_CLIENT_PORT}" \
    --bind-address="${NODE_IP}" --advertise-address="${NODE_IP}" --secure-port="${APISERVER_PORT}" \
    --cert-dir="${APISERVER_CERT_DIR}" \
    --service-cluster-ip-range="${SERVICE_CIDR}" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="${SA_PUB}" --service-account-signing-key-file="${SA_KEY}" \
    --token-auth-file="${TOKENS_FILE}" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --kubelet-preferred-address-types=InternalIP \
    --shutdown-watch-termination-grace-period=2s \
    --allow-privileged=false --profiling=false
}
apiserver_ready() {
  local out
  out=$("${CP_BIN}/kubectl" --kubeconfig=/dev/null --request-timeout=2s \
    --server="https://${NODE_IP}:${APISERVER_PORT}" --insecure-skip-tls-verify=true \
    --token="$(token_of santokit-admin)" get --raw=/readyz </dev/null 2>/dev/null) || return 1
  [[ ${out} == ok ]]
}

start_controller_manager() {
  # The default controllers (Deployments, ReplicaSets, endpoints, garbage collection, tokens,
  # node lifecycle ...), each with its own service account as on a real cluster.
  start_daemon controller-manager "${CP_BIN}/kube-controller-manager" \
    --kubeconfig="${STATE}/controller-manager.kubeconfig" \
    --use-service-account-credentials=true \
    --leader-elect=false \
    --service-account-private-key-file="${SA_KEY}" --root-ca-file="${CA_FILE}" \
    --bind-address="${NODE_IP}" --secure-port="${KCM_PORT}" --cert-dir="${KCM_CERT_DIR}" \
    --profiling=false
}
controller_manager_ready() { kubectl_admin get serviceaccount default --namespace=default >/dev/null 2>&1; }

start_scheduler() {
  start_daemon scheduler "${NODE_BIN}/kube-scheduler" \
    --kubeconfig="${STATE}/scheduler.kubeconfig" \
    --leader-elect=false \
    --bind-address="${NODE_IP}" --secure-port="${SCHED_PORT}" --cert-dir="${SCHED_CERT_DIR}" \
    --profiling=false
}
scheduler_ready() {
  "${CP_BIN}/kubectl" --kubeconfig=/dev/null --request-timeout=2s --server="https://${NODE_IP}:${SCHED_PORT}" \
    --insecure-skip-tls-verify=true --token=anonymous get --raw=/healthz </dev/null >/dev/null 2>&1
}

as_pg_owner() { (cd / && runuser -u postgres -- "$@"); }
find_pg_bin() {
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [[ -x "${dir}/initdb" ]] || die "Postgres server binaries not found: install them (Debian: apt-get install postgresql-15)"
  printf '%s\n' "${dir}"
}
start_postgres() {
  local pg_bin
  pg_bin=$(find_pg_bin)
  runuser -u postgres -- test -x "${STATE}" 2>/dev/null ||
    die "the 'postgres' user cannot enter ${STATE}: a parent directory is closed to others (chmod o+x it)"
  mkdir -p "${PG_DATA}" "${PG_SOCKET_DIR}"
  chmod 700 "${PG_DATA}"
  chown -R postgres:postgres "${PG_DIR}"
  if [[ ! -s "${PG_DATA}/PG_VERSION" ]]; then
    openssl rand -hex 16 >"${PG_PASSWORD_FILE}"
    chmod 600 "${PG_PASSWORD_FILE}"
    local pwfile="${PG_DIR}/initdb-pwfile"
    install -m 600 -o postgres /dev/null "${pwfile}"
    cat "${PG_PASSWORD_FILE}" >"${pwfile}"
    as_pg_owner "${pg_bin}/initdb" --pgdata="${PG_DATA}" --username=postgres --auth-local=trust \
      --auth-host=scram-sha-256 --pwfile="${pwfile}" --encoding=UTF8 --locale=C --no-sync \
      </dev/null >"$(log_file initdb)" 2>&1 || fail_with_log "initdb failed" "$(log_file initdb)"
    rm -f "${pwfile}"
    # Only the bridge address: the host and the pods reach it there; never loopback.
    cat >>"${PG_DATA}/postgresql.conf" <<EOF

# --- hack/node.sh ---
listen_addresses = '${NODE_IP}'
port = ${PG_PORT}
unix_socket_directories = '${PG_SOCKET_DIR}'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    printf 'host all all %s scram-sha-256\n' "${POD_CIDR}" >>"${PG_DATA}/pg_hba.conf"
  fi
  as_pg_owner "${pg_bin}/pg_ctl" --pgdata="${PG_DATA}" --log="${PG_DATA}/postgres.log" --wait \
    --timeout="${READY_TIMEOUT}" --silent start </dev/null >&2 8>&- ||
    fail_with_log "Postgres did not start" "${PG_DATA}/postgres.log"
}
postgres_ready() { "$(find_pg_bin)/pg_isready" --quiet --host="${NODE_IP}" --port="${PG_PORT}"; }

pause_image() {
  local key
  key=$(sha256sum "${SCRIPT_DIR}/node/pause.c" | cut -c1-16)
  printf 'localhost/santokit-pause:%s\n' "${key}"
}

# The sandbox image: no registry is reachable, so it is built here from hack/node/pause.c.
build_pause_image() {
  local tag ctr_id work
  tag=$(pause_image)
  podman image exists "${tag}" && return 0
  log "building the pause image ${tag}"
  work=$(mktemp -d)
  gcc -static -O2 -o "${work}/pause" "${SCRIPT_DIR}/node/pause.c" || die "gcc -static failed (install gcc and libc6-dev)"
  ctr_id=$(buildah from scratch)
  buildah copy "${ctr_id}" "${work}/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "${ctr_id}"
  buildah commit --quiet "${ctr_id}" "${tag}" >/dev/null
  buildah rm "${ctr_id}" >/dev/null
  rm -rf "${work}"
}

start_containerd() {
  local host
  mkdir -p "${CONTAINERD_ROOT}" "${CONTAINERD_STATE}"
  # Every registry, named or not, resolves to a dead loopback port: a pull fails at once and
  # nothing leaves the machine.
  for host in _default docker.io registry.k8s.io localhost quay.io ghcr.io; do
    mkdir -p "${STATE}/containerd/certs.d/${host}"
    printf 'server = "http://127.0.0.1:9"\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n' \
      >"${STATE}/containerd/certs.d/${host}/hosts.toml"
  done
  cat >"${STATE}/containerd/config.toml" <<EOF
version = 2
root = "${CONTAINERD_ROOT}"
state = "${CONTAINERD_STATE}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "${CONTAINERD_SOCK}"
[ttrpc]
  address = "${CONTAINERD_SOCK}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${STATE}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(pause_image)"
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${CNI_CONF_DIR}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${STATE}/containerd/certs.d"
EOF
  start_daemon containerd containerd --config "${STATE}/containerd/config.toml"
}
containerd_ready() { ctr --address "${CONTAINERD_SOCK}" version >/dev/null 2>&1; }

# podman save | ctr import, skipped when containerd already has the image (same id).
import_image() {
  local image=$1 id
  id=$(podman image inspect --format '{{.Digest}}' "${image}" 2>/dev/null) || die "image ${image} not found in the image store; run hack/build-image.sh"
  local marker="${CONTAINERD_ROOT}/santokit-imported/${image//\//_}"
  if [[ -s ${marker} && $(<"${marker}") == "${id}" ]] &&
    ctr_k8s images ls -q | grep -qx "${image}"; then
    return 0
  fi
  log "importing ${image} into containerd"
  mkdir -p "${marker%/*}"
  local archive="${STATE}/import.tar"
  rm -f "${archive}"
  podman save --quiet --format docker-archive -o "${archive}" "${image}"
  nice -n 10 ctr --address "${CONTAINERD_SOCK}" --namespace k8s.io images import "${archive}" >/dev/null || die "ctr images import ${image} failed"
  rm -f "${archive}"
  printf '%s\n' "${id}" >"${marker}"
}

start_kubelet() {
  mkdir -p "${KUBELET_DIR}/pki" "${KUBELET_DIR}/root" "${KUBELET_DIR}/volume-plugins" "${KUBELET_DIR}/pod-logs"
  cat >"${KUBELET_DIR}/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: ${KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: ${NODE_IP}
healthzPort: ${KUBELET_HEALTHZ_PORT}
# The API server calls the kubelet (logs, exec) without a client certificate here.
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
cgroupDriver: cgroupfs
# This machine kind runs cgroup v1 (hybrid); kubelet 1.34 only warns when told so.
failCgroupV1: false
failSwapOn: false
resolvConf: ${STATE}/resolv.conf
clusterDomain: cluster.local
podLogsDir: ${KUBELET_DIR}/pod-logs
volumePluginDir: ${KUBELET_DIR}/volume-plugins
maxPods: 30
# Images are imported, never pulled: never collect them, evict only on real shortage.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
rotateCertificates: false
serverTLSBootstrap: false
registerNode: true
EOF
  start_daemon kubelet "${NODE_BIN}/kubelet" \
    --config="${KUBELET_DIR}/config.yaml" \
    --kubeconfig="${STATE}/kubelet.kubeconfig" \
    --root-dir="${KUBELET_DIR}/root" --cert-dir="${KUBELET_DIR}/pki" \
    --hostname-override="${NODE_NAME}" --node-ip="${NODE_IP}" \
    --v=1
}
kubelet_ready() {
  [[ $(kubectl_admin get node "${NODE_NAME}" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

start_kube_proxy() {
  cat >"${STATE}/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: ${STATE}/kube-proxy.kubeconfig
hostnameOverride: ${NODE_NAME}
bindAddress: ${NODE_IP}
healthzBindAddress: ${NODE_IP}:${PROXY_HEALTHZ_PORT}
metricsBindAddress: ${NODE_IP}:${PROXY_METRICS_PORT}
clusterCIDR: ${POD_CIDR}
nodePortAddresses: ["${NODE_IP}/32"]
# 0: leave the host's conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
  masqueradeAll: false
EOF
  start_daemon kube-proxy "${NODE_BIN}/kube-proxy" --config="${STATE}/kube-proxy.yaml"
}
kube_proxy_ready() {
  local r
  r=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/${NODE_IP}/${PROXY_HEALTHZ_PORT}" &&
      printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "${NODE_IP}" >&3 && timeout 2 cat <&3
  ) || return 1
  [[ ${r} == *' 200 '* ]]
}

# kubelet sets kernel.panic, kernel.panic_on_oops and vm.overcommit_memory once at start;
# put back every watched sysctl that differs from the snapshot taken before `up`.
restore_sysctls() {
  [[ -s "${HOST_DIR}/sysctls" ]] || return 0
  local line key want have
  while IFS= read -r line; do
    key=${line%% = *}
    want=${line#* = }
    have=$(sysctl -n "${key}" 2>/dev/null) || continue
    if [[ ${have} != "${want}" ]]; then
      log "restoring sysctl ${key}=${want} (was ${have})"
      sysctl -q -w "${key}=${want}" >/dev/null || log "could not restore ${key}"
    fi
  done <"${HOST_DIR}/sysctls"
}

# --- commands --------------------------------------------------------------------------------

cmd_up() {
  [[ ${EUID} -eq 0 ]] || die "hack/node.sh needs root (bridge, containerd, kubelet)"
  guard_state_dir
  local t0=${SECONDS} t
  ensure_packages
  setup_podman_env
  CP_BIN=$(bash "${SCRIPT_DIR}/build-control-plane.sh" | tail -n 1)
  NODE_BIN=$(bash "${SCRIPT_DIR}/node/build-binaries.sh" | tail -n 1)
  init_state
  printf '%s\n%s\n' "${CP_BIN}" "${NODE_BIN}" >"${BIN_DIRS_FILE}"
  # The host as it was, once per state directory: `down` restores this.
  if [[ ! -s "${HOST_DIR}/snapshot" ]]; then
    snapshot >"${HOST_DIR}/snapshot.tmp" && mv "${HOST_DIR}/snapshot.tmp" "${HOST_DIR}/snapshot"
    sysctl -a 2>/dev/null | grep -E "${WATCHED_SYSCTLS}" >"${HOST_DIR}/sysctls" || true
    nft list tables 2>/dev/null >"${HOST_DIR}/nftables" || true
    local p
    for p in "${HOST_PATHS[@]}"; do
      if [[ -e ${p} || -L ${p} ]]; then printf '%s\n' "${p}"; fi
    done >"${HOST_DIR}/paths"
  fi
  local image=${SANTOKIT_NODE_IMAGE:-}
  if [[ -z ${image} ]]; then
    image=$(bash "${SCRIPT_DIR}/build-image.sh" | tail -n 1)
  fi
  printf '%s\n' "${image}" >"${STATE}/image"
  build_pause_image
  log "binaries and images ready ($((SECONDS - t0))s)"

  setup_bridge
  local c
  for c in etcd apiserver controller-manager scheduler postgres containerd; do
    t=${SECONDS}
    if ! is_running "${c}"; then "start_${c//-/_}"; fi
    wait_for "${c}" "$(log_file "${c}")" "${c}" "${c//-/_}_ready"
    log "${c} ready ($((SECONDS - t))s)"
  done
  t=${SECONDS}
  import_image "$(pause_image)"
  import_image "${image}"
  log "images imported ($((SECONDS - t))s)"
  for c in kubelet kube-proxy; do
    t=${SECONDS}
    if ! is_running "${c}"; then "start_${c//-/_}"; fi
    wait_for "${c}" "$(log_file "${c}")" "${c}" "${c//-/_}_ready"
    log "${c} ready ($((SECONDS - t))s)"
  done
  restore_sysctls
  write_env
  log "up in $((SECONDS - t0))s: API server https://${NODE_IP}:${APISERVER_PORT}, node ${NODE_NAME}, image ${image}"
  printf '%s\n' "${ENV_FILE}"
}

stop_component() {
  local c=$1 pid
  pid=$(component_pid "${c}")
  [[ -n ${pid} ]] || return 0
  if [[ ${c} == postgres ]]; then
    as_pg_owner "$(find_pg_bin)/pg_ctl" --pgdata="${PG_DATA}" --mode=fast --wait --timeout="${STOP_TIMEOUT}" \
      --silent stop </dev/null >/dev/null 2>&1 8>&- && return 0
  fi
  stop_pid "${pid}" "$(binary_of "${c}")" "${c}"
}

# Stops every container containerd runs for the node (their shims exit with them).
stop_containers() {
  containerd_ready || return 0
  local id
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
    ctr_k8s tasks kill --signal SIGKILL "${id}" >/dev/null 2>&1 || true
  done
  local i
  for ((i = 0; i < 50; i++)); do
    ctr_k8s tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"' | grep -q . || break
    sleep 0.2
  done
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
    ctr_k8s tasks delete --force "${id}" >/dev/null 2>&1 || true
  done
  for id in $(ctr_k8s containers ls -q 2>/dev/null); do
    ctr_k8s containers delete "${id}" >/dev/null 2>&1 || true
  done
}

# Unmounts every mount below the given prefixes, deepest first.
unmount_under() {
  local prefix target
  for prefix in "$@"; do
    findmnt -rn -o TARGET | awk -v p="${prefix}" 'index($0, p) == 1' | LC_ALL=C sort -r | while IFS= read -r target; do
      umount "${target}" 2>/dev/null || umount -l "${target}" 2>/dev/null || log "could not unmount ${target}"
    done
  done
}

cmd_down() {
  [[ -d ${STATE} ]] || {
    log "nothing to do: ${STATE} does not exist"
    return 0
  }
  [[ -e ${MARKER} ]] || die "${STATE} is not a node state directory (no ${MARKER##*/}); not touching it"
  if [[ -s ${BIN_DIRS_FILE} ]]; then
    CP_BIN=$(sed -n 1p "${BIN_DIRS_FILE}")
    NODE_BIN=$(sed -n 2p "${BIN_DIRS_FILE}")
  fi
  # shellcheck source=/dev/null
  [[ -s ${PORTS_FILE} ]] && source "${PORTS_FILE}"
  stop_component kube-proxy
  # kube-proxy's own cleanup of its iptables chains (the tables themselves go below).
  if [[ -x "${NODE_BIN}/kube-proxy" ]]; then
    "${NODE_BIN}/kube-proxy" --cleanup >"$(log_file kube-proxy-cleanup)" 2>&1 || true
  fi
  stop_component kubelet
  stop_containers
  stop_component containerd
  local c
  for c in postgres scheduler controller-manager apiserver etcd; do stop_component "${c}"; done
  # Shims left behind by a containerd that died first.
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -id [0-9a-f]+ -address ${CONTAINERD_SOCK}" || true); do
    kill -KILL "${pid}" 2>/dev/null || true
  done

  unmount_under "${STATE}/" "${RUN_ROOT}" "${CONTAINERD_ROOT}/" /var/lib/kubelet /run/netns /var/run/netns "${CONTAINERD_STATE}"
  if ip link show "${BRIDGE}" >/dev/null 2>&1; then ip link delete "${BRIDGE}"; fi
  # Pod veths die with their network namespaces; any left on the bridge go with it.

  # nftables tables kubelet and kube-proxy made (through iptables-nft) that were not there.
  if [[ -e "${HOST_DIR}/nftables" ]]; then
    local t
    while IFS= read -r t; do
      [[ -n ${t} ]] || continue
      grep -qxF "${t}" "${HOST_DIR}/nftables" || nft "delete ${t}" || log "could not delete nftables ${t}"
    done < <(nft list tables 2>/dev/null)
  fi
  # kubelet's cgroups (cgroupfs driver), deepest first.
  find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name 'kubepods*' 2>/dev/null | while IFS= read -r c; do
    find "${c}" -depth -type d -exec rmdir {} \; 2>/dev/null || log "could not remove cgroup ${c}"
  done
  restore_sysctls
  local p
  for p in "${HOST_PATHS[@]}"; do
    if [[ -e ${p} || -L ${p} ]] && ! grep -qxF "${p}" "${HOST_DIR}/paths" 2>/dev/null; then
      rm -rf "${p}"
    fi
  done
  # Compare with the snapshot before removing it.
  if [[ -s "${HOST_DIR}/snapshot" ]]; then
    local diff
    diff=$(diff <(grep -v '^process: ' "${HOST_DIR}/snapshot") <(snapshot | grep -v '^process: ') || true)
    [[ -z ${diff} ]] || log "the host differs from before 'up':"$'\n'"${diff}"
  fi
  rm -rf "${STATE}"
  log "down: ${STATE} removed"
}

cmd_status() {
  [[ -s ${BIN_DIRS_FILE} ]] || die "no node in ${STATE}; run 'hack/node.sh up'"
  # shellcheck source=/dev/null
  source "${PORTS_FILE}"
  local c rc=0 pid
  for c in "${COMPONENTS[@]}"; do
    pid=$(component_pid "${c}")
    if [[ -n ${pid} ]]; then
      printf '%-20s running (pid %s)\n' "${c}" "${pid}"
    else
      printf '%-20s stopped\n' "${c}"
      rc=1
    fi
  done
  return "${rc}"
}

main() {
  local cmd=${1:-}
  case "${cmd}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cat "${ENV_FILE}" ;;
    snapshot) snapshot ;;
    -h | --help | help) usage ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
