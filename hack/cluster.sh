#!/usr/bin/env bash
# Local control plane for Santokit development and tests, without Docker:
# etcd, kube-apiserver, kube-controller-manager and a throwaway Postgres, all on
# loopback ports, all state in one directory. There is no kubelet, so no Pod
# ever runs: the operator and data plane run as local processes against it.
#
# Usage: hack/cluster.sh <command>
#   up                 start everything (idempotent), install crds/, print env
#   down               stop everything and delete the state directory (also
#                      stops other tools' processes listed as run/<name>.pid,
#                      e.g. the demo's operator, if they refer to this state dir)
#   status             show which components run (exit 1 if any is stopped)
#   env                print the env file (shell-sourceable export lines)
#   stop  <component>  stop one component, keeping its ports, certs and data
#   start <component>  start it again and wait until it is ready
#   crds               re-apply crds/ (after editing CRDs)
# Components: etcd, apiserver, controller-manager, postgres.
#
# Environment:
#   SANTOKIT_STATE_DIR      state directory (default: <repo>/.santokit/cluster);
#                           give each test run its own to run clusters side by side
#   SANTOKIT_CACHE_DIR      binary cache (see hack/build-control-plane.sh)
#   SANTOKIT_READY_TIMEOUT  seconds to wait for a component to become ready (60)
#   SANTOKIT_PG_BIN_DIR     Postgres server binaries (default: pg_config --bindir,
#                           else the newest /usr/lib/postgresql/*/bin)
#
# After `up`, $SANTOKIT_STATE_DIR/env exports KUBECONFIG (admin),
# SANTOKIT_KUBECONFIG_RESTRICTED, SANTOKIT_KUBECTL, SANTOKIT_BIN_DIR,
# SANTOKIT_APISERVER_URL, SANTOKIT_PG_ADMIN_URL and SANTOKIT_STATE_DIR.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT
readonly CRD_DIR="${REPO_ROOT}/crds"

# Absolute, so that the paths written into kubeconfigs and the env file work
# from any working directory.
STATE="$(realpath -m -- "${SANTOKIT_STATE_DIR:-${REPO_ROOT}/.santokit/cluster}")"
readonly STATE

readonly READY_TIMEOUT="${SANTOKIT_READY_TIMEOUT:-60}"
readonly STOP_TIMEOUT=15

readonly COMPONENTS=(etcd apiserver controller-manager postgres)

# Layout of the state directory.
readonly MARKER="${STATE}/.santokit-cluster" # proves `down` may delete STATE
readonly LOCK_FILE="${STATE}/.lock"
readonly PORTS_FILE="${STATE}/ports"
readonly BIN_DIR_FILE="${STATE}/bin-dir" # binaries `up` used; `start` reuses them
readonly ENV_FILE="${STATE}/env"
readonly RUN_DIR="${STATE}/run"
readonly LOG_DIR="${STATE}/logs"
readonly PKI_DIR="${STATE}/pki"
readonly APISERVER_CERT_DIR="${PKI_DIR}/apiserver"
readonly CA_FILE="${APISERVER_CERT_DIR}/apiserver.crt" # self-signed by kube-apiserver
readonly KCM_CERT_DIR="${PKI_DIR}/controller-manager"
readonly SA_KEY="${PKI_DIR}/sa.key"
readonly SA_PUB="${PKI_DIR}/sa.pub"
readonly TOKENS_FILE="${PKI_DIR}/tokens.csv"
readonly ETCD_DATA="${STATE}/etcd/data"
readonly PG_DIR_FILE="${STATE}/postgres-dir" # where Postgres' directory is, when not ${STATE}/postgres
readonly PG_PASSWORD_FILE="${STATE}/postgres-password"
# Postgres' directory: ${STATE}/postgres, unless (as root) the 'postgres' user cannot walk down to
# the state directory (a clone in a 0700 mktemp directory or in root's home): then a directory of
# its own under the postgres user's home, named after the state directory and recorded in
# ${PG_DIR_FILE}, so that the state (kubeconfig, env, logs) stays where the user expects.
PG_DIR="" PG_DATA="" PG_SOCKET_DIR="" PG_LOG=""
readonly KUBECONFIG_ADMIN="${STATE}/kubeconfig"
readonly KUBECONFIG_RESTRICTED="${STATE}/kubeconfig-restricted"

# The deepest existing directory at or above $1.
existing_ancestor() {
  local dir=$1
  until [[ -d "${dir}" ]]; do dir=$(dirname -- "${dir}"); done
  printf '%s\n' "${dir}"
}

postgres_user_can_enter() {
  runuser -u postgres -- test -x "$1" -a -r "$1" 2>/dev/null
}

# Sets PG_DIR and the paths in it. `up` records an outside directory before creating it.
resolve_pg_dir() {
  if [[ -s "${PG_DIR_FILE}" ]]; then
    PG_DIR=$(<"${PG_DIR_FILE}")
  elif [[ ${EUID} -eq 0 ]] && id postgres >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1 &&
    ! postgres_user_can_enter "$(existing_ancestor "${STATE}")"; then
    local home hash
    home=$(getent passwd postgres | cut -d: -f6)
    [[ -n "${home}" && -d "${home}" ]] || home=/var/tmp
    hash=$(printf '%s' "${STATE}" | sha256sum | cut -c1-16)
    PG_DIR="${home}/santokit/${hash}"
  else
    PG_DIR="${STATE}/postgres"
  fi
  PG_DATA="${PG_DIR}/data"
  PG_SOCKET_DIR="${PG_DIR}/run"
  PG_LOG="${PG_DATA}/postgres.log" # inside the data dir: the postgres user can write there
}

readonly ADMIN_USER="santokit-admin"
readonly RESTRICTED_USER="restricted"
readonly RESTRICTED_GROUP="santokit:restricted"

# Filled by init_state / try_load_state.
BIN_DIR=""
ETCD_CLIENT_PORT="" ETCD_PEER_PORT="" APISERVER_PORT="" KCM_PORT="" PG_PORT=""

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/processes.sh
source "${SCRIPT_DIR}/lib/processes.sh"

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# --- prerequisites ------------------------------------------------------------

require_tool() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH: $2"
}

# Postgres server binaries are usually not on PATH (Debian keeps them in
# /usr/lib/postgresql/<major>/bin), and pg_config may come from libpq-dev
# without a server next to it, so look for initdb explicitly.
find_pg_bin_dir() {
  local dir
  if [[ -n "${SANTOKIT_PG_BIN_DIR:-}" ]]; then
    [[ -x "${SANTOKIT_PG_BIN_DIR}/initdb" ]] || die "SANTOKIT_PG_BIN_DIR=${SANTOKIT_PG_BIN_DIR} has no initdb"
    printf '%s\n' "${SANTOKIT_PG_BIN_DIR}"
    return
  fi
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    if [[ -n "${dir}" && -x "${dir}/initdb" ]]; then
      printf '%s\n' "${dir}"
      return
    fi
  fi
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  if [[ -n "${dir}" && -x "${dir}/initdb" ]]; then
    printf '%s\n' "${dir}"
    return
  fi
  die "Postgres server binaries (initdb, pg_ctl, postgres) not found: install them (Debian: apt-get install postgresql-15) or set SANTOKIT_PG_BIN_DIR"
}

PG_BIN=""
pg_bin() {
  [[ -n "${PG_BIN}" ]] || PG_BIN=$(find_pg_bin_dir)
  printf '%s\n' "${PG_BIN}"
}

check_prerequisites() {
  require_tool openssl "needed to create the service-account key and tokens (Debian: apt-get install openssl)"
  require_tool setsid "part of util-linux"
  PG_BIN=$(find_pg_bin_dir)
  local tool
  for tool in initdb pg_ctl postgres pg_isready; do
    [[ -x "${PG_BIN}/${tool}" ]] || die "'${tool}' not found in ${PG_BIN}: install the Postgres server package"
  done
  # initdb refuses to run as root, so as root the server runs as 'postgres'.
  if [[ ${EUID} -eq 0 ]]; then
    require_tool runuser "needed to run Postgres as the 'postgres' user when running as root (part of util-linux)"
    id postgres >/dev/null 2>&1 ||
      die "running as root needs a 'postgres' user to own the database (Debian's postgresql package creates it)"
  fi
}

# --- helpers ------------------------------------------------------------------

# Quote a value for a shell `export` line.
sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Serialise commands that change one state directory (two `up`s of the same
# directory must not race); other state directories are independent.
take_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "${STATE}"
  exec 8>"${LOCK_FILE}"
  if ! flock -n 8; then
    log "another cluster.sh command is using ${STATE}; waiting"
    flock 8
  fi
}


pid_file() { printf '%s/%s.pid\n' "${RUN_DIR}" "$1"; }
log_file() { printf '%s/%s.log\n' "${LOG_DIR}" "$1"; }

binary_of() {
  case "$1" in
    etcd) echo etcd ;;
    apiserver) echo kube-apiserver ;;
    controller-manager) echo kube-controller-manager ;;
    *) die "no binary for component '$1'" ;;
  esac
}


# Pid of a running component, or nothing.
component_pid() {
  local c=$1 pid=""
  if [[ "${c}" == postgres ]]; then
    [[ -r "${PG_DATA}/postmaster.pid" ]] && pid=$(head -n 1 "${PG_DATA}/postmaster.pid" 2>/dev/null || true)
    if pid_alive_as "${pid}" postgres; then echo "${pid}"; fi
    return 0
  fi
  [[ -r "$(pid_file "${c}")" ]] && pid=$(<"$(pid_file "${c}")")
  if pid_alive_as "${pid}" "$(binary_of "${c}")"; then echo "${pid}"; fi
  return 0
}

is_running() { [[ -n "$(component_pid "$1")" ]]; }



fail_with_log() {
  local what=$1 file=$2
  printf '[cluster] error: %s\n' "${what}" >&2
  if [[ -r "${file}" ]]; then
    printf '[cluster] last lines of %s:\n' "${file}" >&2
    tail -n 30 "${file}" | sed 's/^/    /' >&2
  fi
  printf '[cluster] state is kept in %s; "hack/cluster.sh down" removes it\n' "${STATE}" >&2
  exit 1
}

kubectl_admin() { "${BIN_DIR}/kubectl" --kubeconfig="${KUBECONFIG_ADMIN}" "$@"; }

token_of() { awk -F, -v u="$1" '$2 == u { print $1 }' "${TOKENS_FILE}"; }

# Run a command as the owner of the Postgres data directory. cd / first: the
# postgres user may not be allowed into the caller's working directory.
as_pg_owner() {
  if [[ ${EUID} -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# --- state --------------------------------------------------------------------

# SANTOKIT_STATE_DIR could point at anything: only ever use (and later delete)
# a directory that is new, empty, or was made by this script.
guard_state_dir() {
  if [[ -d "${STATE}" && ! -e "${MARKER}" &&
    -n "$(find "${STATE}" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ]]; then
    die "${STATE} exists and is not a cluster state directory (no ${MARKER##*/}); choose another SANTOKIT_STATE_DIR"
  fi
}

# Read ports and the binaries' location; fails (without exiting) when the
# state directory was never brought up or its cached binaries were deleted.
try_load_state() {
  [[ -r "${PORTS_FILE}" && -r "${BIN_DIR_FILE}" ]] || return 1
  # shellcheck source=/dev/null
  source "${PORTS_FILE}"
  BIN_DIR=$(<"${BIN_DIR_FILE}")
  [[ -n "${BIN_DIR}" && -x "${BIN_DIR}/kubectl" ]]
}

load_state() {
  try_load_state ||
    die "no usable cluster in ${STATE} (never brought up, or its cached binaries are gone); run 'hack/cluster.sh up'"
}

# Ports, keys, tokens and kubeconfigs are made once per state directory and
# reused by every later start, so that a restarted component keeps its
# address and identity.
init_state() {
  mkdir -p "${STATE}" "${RUN_DIR}" "${LOG_DIR}" "${PKI_DIR}" "${APISERVER_CERT_DIR}" "${KCM_CERT_DIR}" "$(dirname "${ETCD_DATA}")"
  chmod 755 "${STATE}"
  touch "${MARKER}"

  load_ports_file "${PORTS_FILE}" ETCD_CLIENT_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT PG_PORT

  if [[ ! -s "${SA_KEY}" ]]; then
    openssl genrsa -out "${SA_KEY}.tmp" 2048 2>/dev/null || die "openssl could not create an RSA key"
    openssl rsa -in "${SA_KEY}.tmp" -pubout -out "${SA_PUB}" 2>/dev/null || die "openssl could not derive the public key"
    chmod 600 "${SA_KEY}.tmp"
    mv "${SA_KEY}.tmp" "${SA_KEY}"
  fi

  # Static tokens: token,user,uid,"groups". The restricted user has no RBAC
  # grants at all, which is what permission tests need.
  if [[ ! -s "${TOKENS_FILE}" ]]; then
    (
      umask 077
      cat >"${TOKENS_FILE}.tmp" <<EOF
$(openssl rand -hex 32),${ADMIN_USER},${ADMIN_USER},"system:masters"
$(openssl rand -hex 32),${RESTRICTED_USER},santokit-restricted-uid,"${RESTRICTED_GROUP}"
EOF
    )
    mv "${TOKENS_FILE}.tmp" "${TOKENS_FILE}"
  fi

  write_kubeconfig "${KUBECONFIG_ADMIN}" santokit-local "${ADMIN_USER}" "$(token_of "${ADMIN_USER}")"
  write_kubeconfig "${KUBECONFIG_RESTRICTED}" santokit-restricted "${RESTRICTED_USER}" "$(token_of "${RESTRICTED_USER}")"
}

# As root, Postgres runs as the 'postgres' user, which must be able to walk down to its data
# directory; resolve_pg_dir put it outside the state directory when it cannot. Recorded here so
# that later commands (start, stop, down) find it; checked before anything starts.
prepare_postgres_dir() {
  if [[ "${PG_DIR}" != "${STATE}/postgres" && ! -s "${PG_DIR_FILE}" ]]; then
    log "the 'postgres' user cannot enter ${STATE}; Postgres keeps its data in ${PG_DIR}"
    printf '%s\n' "${PG_DIR}" >"${PG_DIR_FILE}"
  fi
  if [[ "${PG_DIR}" != "${STATE}/postgres" ]]; then
    mkdir -p "${PG_DIR}"
    chmod 755 "$(dirname -- "${PG_DIR}")"
    # Names its state directory: `down` deletes only a directory that says it is ours.
    printf '%s\n' "${STATE}" >"${PG_DIR}/.santokit-state-dir"
  fi
  [[ ${EUID} -eq 0 ]] || return 0
  mkdir -p "${PG_DIR}"
  postgres_user_can_enter "${PG_DIR}" || chown postgres:postgres "${PG_DIR}"
  postgres_user_can_enter "${PG_DIR}" ||
    die "the 'postgres' user cannot enter ${PG_DIR}: a parent directory is closed to others (try 'chmod o+x' on it, or use a SANTOKIT_STATE_DIR under a world-traversable directory)"
}

# The CA is the API server's self-signed serving certificate (valid for
# 127.0.0.1), referenced by path; kubectl and @kubernetes/client-node both
# verify TLS against it without any insecure flag.
write_kubeconfig() {
  local file=$1 context=$2 user=$3 token=$4
  (
    umask 077
    cat >"${file}.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: santokit-local
    cluster:
      server: https://127.0.0.1:${APISERVER_PORT}
      certificate-authority: ${CA_FILE}
users:
  - name: ${user}
    user:
      token: ${token}
contexts:
  - name: ${context}
    context:
      cluster: santokit-local
      user: ${user}
current-context: ${context}
preferences: {}
EOF
  )
  mv "${file}.tmp" "${file}"
}

write_env() {
  {
    printf 'export KUBECONFIG=%s\n' "$(sh_quote "${KUBECONFIG_ADMIN}")"
    printf 'export SANTOKIT_KUBECONFIG_RESTRICTED=%s\n' "$(sh_quote "${KUBECONFIG_RESTRICTED}")"
    printf 'export SANTOKIT_KUBECTL=%s\n' "$(sh_quote "${BIN_DIR}/kubectl")"
    printf 'export SANTOKIT_BIN_DIR=%s\n' "$(sh_quote "${BIN_DIR}")"
    printf 'export SANTOKIT_APISERVER_URL=%s\n' "$(sh_quote "https://127.0.0.1:${APISERVER_PORT}")"
    printf 'export SANTOKIT_PG_ADMIN_URL=%s\n' "$(sh_quote "postgres://postgres:$(cat "${PG_PASSWORD_FILE}")@127.0.0.1:${PG_PORT}/postgres")"
    printf 'export SANTOKIT_STATE_DIR=%s\n' "$(sh_quote "${STATE}")"
  } >"${ENV_FILE}.tmp"
  mv "${ENV_FILE}.tmp" "${ENV_FILE}"
}

# --- components ---------------------------------------------------------------

start_etcd() {
  mkdir -p "${ETCD_DATA}"
  chmod 700 "${ETCD_DATA}" # etcd warns about data dirs others can read
  # --unsafe-no-fsync: a throwaway test store; durability only costs time here.
  start_daemon etcd "${BIN_DIR}/etcd" \
    --name=santokit \
    --data-dir="${ETCD_DATA}" \
    --listen-client-urls="http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --advertise-client-urls="http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster="santokit=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --unsafe-no-fsync=true
}

# etcd's /health over plain HTTP, with bash's /dev/tcp so curl is not needed.
etcd_healthy() {
  local response
  response=$(
    exec 2>/dev/null # "connection refused" is the expected answer while starting
    exec 3<>"/dev/tcp/127.0.0.1/${ETCD_CLIENT_PORT}" &&
      printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
      timeout 2 cat <&3
  ) || return 1
  [[ "${response}" == *'"health":"true"'* ]]
}

start_apiserver() {
  # --endpoint-reconciler-type=none: the default reconciler would publish
  # 127.0.0.1 as the endpoint of the `kubernetes` Service, which validation
  # rejects (loopback), logging an error every 10 s; nothing here needs it.
  # --shutdown-watch-termination-grace-period: on SIGTERM, close open watches
  # within 2 s; by default the server waits up to 60 s for watchers (the
  # controller manager, the operator under test) to hang up on their own.
  start_daemon apiserver "${BIN_DIR}/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="${APISERVER_PORT}" \
    --cert-dir="${APISERVER_CERT_DIR}" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="${SA_PUB}" \
    --service-account-signing-key-file="${SA_KEY}" \
    --token-auth-file="${TOKENS_FILE}" \
    --authorization-mode=RBAC \
    --endpoint-reconciler-type=none \
    --shutdown-watch-termination-grace-period=2s \
    --allow-privileged=false \
    --profiling=false
}

# /readyz through the built kubectl. --kubeconfig=/dev/null and the insecure
# flag are only for this probe: the CA file appears when the API server first
# starts, so the real kubeconfig cannot be used before that.
apiserver_ready() {
  local out
  out=$("${BIN_DIR}/kubectl" --kubeconfig=/dev/null --request-timeout=2s \
    --server="https://127.0.0.1:${APISERVER_PORT}" --insecure-skip-tls-verify=true \
    --token="$(token_of "${ADMIN_USER}")" get --raw=/readyz </dev/null 2>/dev/null) || return 1
  [[ "${out}" == ok ]]
}

start_controller_manager() {
  # Only the controllers that matter without a kubelet: namespace deletion,
  # garbage collection of owner references, the default ServiceAccount and its
  # token, and aggregated ClusterRoles (admin/edit/view pick up CRD rules).
  # --cert-dir: the default (/var/run/kubernetes) would be shared between
  # clusters running side by side. No --authentication-kubeconfig: it makes the
  # controller manager poll for the kube-system/extension-apiserver-authentication
  # ConfigMap, which an API server without a client CA never writes (an error
  # line every few seconds); /healthz is open to anonymous callers anyway.
  start_daemon controller-manager "${BIN_DIR}/kube-controller-manager" \
    --kubeconfig="${KUBECONFIG_ADMIN}" \
    --controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token,clusterrole-aggregation \
    --leader-elect=false \
    --service-account-private-key-file="${SA_KEY}" \
    --root-ca-file="${CA_FILE}" \
    --bind-address=127.0.0.1 \
    --secure-port="${KCM_PORT}" \
    --cert-dir="${KCM_CERT_DIR}" \
    --profiling=false
}

controller_manager_ready() {
  local out
  out=$("${BIN_DIR}/kubectl" --kubeconfig=/dev/null --request-timeout=2s \
    --server="https://127.0.0.1:${KCM_PORT}" --insecure-skip-tls-verify=true \
    --token="$(token_of "${ADMIN_USER}")" get --raw=/healthz </dev/null 2>/dev/null) || return 1
  [[ "${out}" == ok ]] || return 1
  # Proves the controllers act, not just that the process serves: tests rely on
  # every namespace getting its default ServiceAccount.
  kubectl_admin get serviceaccount default --namespace=default >/dev/null 2>&1
}

init_postgres() {
  mkdir -p "${PG_DATA}" "${PG_SOCKET_DIR}"
  chmod 700 "${PG_DATA}"
  if [[ ${EUID} -eq 0 ]]; then
    chown -R postgres:postgres "${PG_DIR}"
  fi
  [[ -s "${PG_DATA}/PG_VERSION" ]] && return 0

  log "initialising Postgres in ${PG_DATA}"
  # TCP logins need a password (scram-sha-256), as on a real server, so tests can tell an
  # authentication failure from other errors; the unix socket stays trust for local tooling.
  # The password is made here and kept in the state dir only.
  openssl rand -hex 16 >"${PG_PASSWORD_FILE}"
  chmod 600 "${PG_PASSWORD_FILE}"
  local pwfile="${PG_DIR}/initdb-pwfile"
  install -m 600 /dev/null "${pwfile}"
  cat "${PG_PASSWORD_FILE}" >"${pwfile}"
  [[ ${EUID} -eq 0 ]] && chown postgres:postgres "${pwfile}"
  as_pg_owner "$(pg_bin)/initdb" --pgdata="${PG_DATA}" --username=postgres \
    --auth-local=trust --auth-host=scram-sha-256 --pwfile="${pwfile}" \
    --encoding=UTF8 --locale=C --no-sync </dev/null >"${LOG_DIR}/initdb.log" 2>&1 8>&- ||
    fail_with_log "initdb failed" "${LOG_DIR}/initdb.log"
  rm -f "${pwfile}"
  # Throwaway server: loopback only, no durability, socket inside the state dir
  # (not /var/run/postgresql) so several clusters never collide.
  cat >>"${PG_DATA}/postgresql.conf" <<EOF

# --- hack/cluster.sh ---
listen_addresses = '127.0.0.1'
port = ${PG_PORT}
unix_socket_directories = '${PG_SOCKET_DIR}'
max_connections = 200
max_locks_per_transaction = 1024
max_prepared_transactions = 20
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start_postgres() {
  init_postgres
  # pg_ctl detaches the postmaster itself (its output goes to the log), so no
  # setsid here; --wait returns once it accepts connections.
  as_pg_owner "$(pg_bin)/pg_ctl" --pgdata="${PG_DATA}" --log="${PG_LOG}" \
    --wait --timeout="${READY_TIMEOUT}" --silent start </dev/null >&2 8>&- ||
    fail_with_log "Postgres did not start" "${PG_LOG}"
}

postgres_ready() {
  "$(pg_bin)/pg_isready" --quiet --host=127.0.0.1 --port="${PG_PORT}" --username=postgres --dbname=postgres
}

stop_postgres() {
  local pid
  pid=$(component_pid postgres)
  [[ -n "${pid}" ]] || return 0
  # fast: roll back open sessions and stop; it is a throwaway server.
  as_pg_owner "$(pg_bin)/pg_ctl" --pgdata="${PG_DATA}" --mode=fast --wait \
    --timeout="${STOP_TIMEOUT}" --silent stop </dev/null >/dev/null 2>&1 8>&- ||
    stop_pid "${pid}" postgres postgres
}

# A component cannot become ready while what it talks to is down; say so at
# once instead of timing out.
require_dependency() {
  local dep
  case "$1" in
    apiserver) dep=etcd ;;
    controller-manager) dep=apiserver ;;
    *) return 0 ;;
  esac
  is_running "${dep}" || die "$1 needs ${dep}, which is not running; run 'hack/cluster.sh start ${dep}' first"
  require_dependency "${dep}"
}

start_component() {
  local c=$1
  require_dependency "${c}"
  if is_running "${c}"; then
    log "${c} already running (pid $(component_pid "${c}"))"
  else
    log "starting ${c}"
    case "${c}" in
      etcd) start_etcd ;;
      apiserver) start_apiserver ;;
      controller-manager) start_controller_manager ;;
      postgres) start_postgres ;;
    esac
  fi
  wait_ready "${c}"
}

wait_ready() {
  local c=$1 probe file deadline=$((SECONDS + READY_TIMEOUT))
  case "${c}" in
    etcd) probe=etcd_healthy file=$(log_file etcd) ;;
    apiserver) probe=apiserver_ready file=$(log_file apiserver) ;;
    controller-manager) probe=controller_manager_ready file=$(log_file controller-manager) ;;
    postgres) probe=postgres_ready file=${PG_LOG} ;;
  esac
  until "${probe}"; do
    is_running "${c}" || fail_with_log "${c} exited during start-up" "${file}"
    ((SECONDS < deadline)) || fail_with_log "${c} not ready after ${READY_TIMEOUT}s" "${file}"
    sleep 0.2
  done
}

stop_component() {
  local c=$1 pid
  if [[ "${c}" == postgres ]]; then
    stop_postgres
  else
    pid=$(component_pid "${c}")
    [[ -z "${pid}" ]] || stop_pid "${pid}" "$(binary_of "${c}")" "${c}"
    rm -f "$(pid_file "${c}")"
  fi
}

apply_crds() {
  if ! compgen -G "${CRD_DIR}/*.yaml" >/dev/null; then
    log "no CRDs in ${CRD_DIR}; skipping"
    return 0
  fi
  log "applying CRDs from ${CRD_DIR}"
  # Server-side apply: client-side apply stores the whole object in an
  # annotation, which large CRD schemas overflow (262144-byte limit).
  kubectl_admin apply --server-side --force-conflicts --field-manager=santokit-hack -f "${CRD_DIR}" >&2 ||
    die "kubectl apply -f ${CRD_DIR} failed"
  kubectl_admin wait --for=condition=Established crd --all --timeout=60s >&2 ||
    die "CRDs did not become Established within 60s"
}

cluster_healthy() {
  [[ -r "${ENV_FILE}" ]] || return 1
  try_load_state || return 1
  local c
  for c in "${COMPONENTS[@]}"; do
    is_running "${c}" || return 1
  done
  apiserver_ready && postgres_ready
}

require_component() {
  local c
  for c in "${COMPONENTS[@]}"; do
    [[ "${c}" == "${1:-}" ]] && return 0
  done
  die "unknown component '${1:-}'; expected one of: ${COMPONENTS[*]}"
}

# Other tools (hack/demo.sh's operator, say) record their processes as
# run/<name>.pid next to ours, so that `down` leaves nothing behind. A pid is
# only signalled if that process's command line or environment names this
# state directory: a stale pid file must never take down an unrelated process.
proc_file_mentions_state() {
  local entry
  while IFS= read -r -d '' entry; do
    # The state dir itself or a path inside it, not a sibling (/x/cluster2).
    [[ "${entry}" == *"${STATE}" || "${entry}" == *"${STATE}/"* ]] && return 0
  done 2>/dev/null <"$1"
  return 1
}

stop_other_recorded_processes() {
  local pidf name pid argv0=""
  for pidf in "${RUN_DIR}"/*.pid; do
    [[ -e "${pidf}" ]] || continue
    name=$(basename -- "${pidf}" .pid)
    [[ " ${COMPONENTS[*]} " != *" ${name} "* ]] || continue
    pid=$(<"${pidf}")
    [[ "${pid}" =~ ^[0-9]+$ && -r "/proc/${pid}/cmdline" ]] || continue
    if proc_file_mentions_state "/proc/${pid}/cmdline" || proc_file_mentions_state "/proc/${pid}/environ"; then
      { IFS= read -r -d '' argv0 <"/proc/${pid}/cmdline"; } 2>/dev/null || true
      log "stopping ${name} (pid ${pid})"
      stop_pid "${pid}" "${argv0##*/}" "${name}"
    fi
  done
}

# --- commands -----------------------------------------------------------------

cmd_up() {
  guard_state_dir
  take_lock
  if cluster_healthy; then
    log "already up in ${STATE}"
    cat "${ENV_FILE}"
    return 0
  fi
  check_prerequisites
  log "building or reusing control-plane binaries"
  BIN_DIR=$(bash "${SCRIPT_DIR}/build-control-plane.sh" | tail -n 1)
  [[ -x "${BIN_DIR}/kube-apiserver" ]] || die "build-control-plane.sh did not produce binaries"

  init_state
  prepare_postgres_dir
  printf '%s\n' "${BIN_DIR}" >"${BIN_DIR_FILE}"

  local c
  for c in "${COMPONENTS[@]}"; do
    start_component "${c}"
  done
  apply_crds
  write_env
  log "up: API server https://127.0.0.1:${APISERVER_PORT}, Postgres 127.0.0.1:${PG_PORT}, state ${STATE}"
  cat "${ENV_FILE}"
}

cmd_down() {
  if [[ ! -d "${STATE}" ]]; then
    log "nothing to do: ${STATE} does not exist"
    return 0
  fi
  guard_state_dir
  take_lock
  # Clients first (an operator under test), then the components in reverse
  # start order, so nothing logs errors about a dependency going away.
  stop_other_recorded_processes
  local c i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    if is_running "${c}"; then
      log "stopping ${c}"
      stop_component "${c}"
    fi
  done
  if [[ "${PG_DIR}" != "${STATE}/postgres" && -d "${PG_DIR}" ]]; then
    if [[ "$(cat "${PG_DIR}/.santokit-state-dir" 2>/dev/null)" == "${STATE}" ]]; then
      rm -rf -- "${PG_DIR}"
      log "down: removed ${PG_DIR}"
    else
      log "not removing ${PG_DIR}: it does not name ${STATE} as its state directory"
    fi
  fi
  rm -rf -- "${STATE}"
  log "down: removed ${STATE}"
}

cmd_status() {
  if [[ ! -r "${PORTS_FILE}" ]]; then
    echo "no cluster in ${STATE}"
    return 1
  fi
  # shellcheck source=/dev/null
  source "${PORTS_FILE}"
  local c pid where all=0
  for c in "${COMPONENTS[@]}"; do
    case "${c}" in
      etcd) where="http://127.0.0.1:${ETCD_CLIENT_PORT}" ;;
      apiserver) where="https://127.0.0.1:${APISERVER_PORT}" ;;
      controller-manager) where="https://127.0.0.1:${KCM_PORT}" ;;
      postgres) where="127.0.0.1:${PG_PORT}" ;;
    esac
    pid=$(component_pid "${c}")
    if [[ -n "${pid}" ]]; then
      printf '%-19s running  pid %-8s %s\n' "${c}" "${pid}" "${where}"
    else
      printf '%-19s stopped  %-12s %s\n' "${c}" "" "${where}"
      all=1
    fi
  done
  return "${all}"
}

cmd_env() {
  [[ -r "${ENV_FILE}" ]] || die "no env file at ${ENV_FILE}; run 'hack/cluster.sh up' first"
  cat "${ENV_FILE}"
}

cmd_stop() {
  require_component "${1:-}"
  load_state
  take_lock
  if is_running "$1"; then
    log "stopping $1"
    stop_component "$1"
  else
    log "$1 is not running"
  fi
}

cmd_start() {
  require_component "${1:-}"
  load_state
  take_lock
  [[ "$1" != postgres ]] || check_prerequisites
  start_component "$1"
}

cmd_crds() {
  load_state
  is_running apiserver || die "the API server is not running; run 'hack/cluster.sh up' first"
  apply_crds
}

main() {
  resolve_pg_dir
  local cmd=${1:-}
  shift || true
  case "${cmd}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    stop) cmd_stop "$@" ;;
    start) cmd_start "$@" ;;
    crds) cmd_crds ;;
    -h | --help | help) usage ;;
    *)
      usage
      [[ -z "${cmd}" ]] && die "missing command"
      die "unknown command '${cmd}'"
      ;;
  esac
}

main "$@"
