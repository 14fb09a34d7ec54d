#!/usr/bin/env bash
# Flux (source-controller and kustomize-controller) against the local control
# plane of hack/cluster.sh, as local processes: no Pod ever runs there.
#
# Usage: hack/flux.sh <command>
#   up      build or reuse the controllers (hack/build-flux.sh), install the
#           Flux CRDs and namespace flux-system, start both controllers
#           (idempotent) and wait until they are healthy
#   down    stop both controllers (the CRDs and objects stay)
#   status  show whether they run (exit 1 if one is stopped)
#
# Environment:
#   SANTOKIT_STATE_DIR      the cluster's state directory (as for hack/cluster.sh;
#                           default <repo>/.santokit/cluster); the cluster must be up
#   SANTOKIT_READY_TIMEOUT  seconds to wait for a controller to become healthy (60)
#
# State: $STATE/flux/ (ports, artifact storage), pid files $STATE/run/flux-*.pid
# (so `hack/cluster.sh down` stops the controllers too), logs $STATE/logs/flux-*.log.
# source-controller serves its artifacts on a loopback port, from which
# kustomize-controller fetches them.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT

STATE="$(realpath -m -- "${SANTOKIT_STATE_DIR:-${REPO_ROOT}/.santokit/cluster}")"
readonly STATE
readonly READY_TIMEOUT="${SANTOKIT_READY_TIMEOUT:-60}"
readonly STOP_TIMEOUT=15

readonly FLUX_STATE="${STATE}/flux"
readonly PORTS_FILE="${FLUX_STATE}/ports"
readonly STORAGE_DIR="${FLUX_STATE}/storage"
readonly RUN_DIR="${STATE}/run"
readonly LOG_DIR="${STATE}/logs"
readonly NAMESPACE="flux-system"
readonly CONTROLLERS=(source-controller kustomize-controller)

log() { printf '[flux] %s\n' "$*" >&2; }
die() { printf '[flux] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/processes.sh
source "${SCRIPT_DIR}/lib/processes.sh"

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

pid_file() { printf '%s/flux-%s.pid\n' "${RUN_DIR}" "$1"; }
log_file() { printf '%s/flux-%s.log\n' "${LOG_DIR}" "$1"; }

# KUBECONFIG and SANTOKIT_KUBECTL of the running cluster.
load_cluster_env() {
  [[ -r "${STATE}/env" ]] || die "no cluster in ${STATE}: run 'hack/cluster.sh up' (same SANTOKIT_STATE_DIR) first"
  # shellcheck source=/dev/null
  source "${STATE}/env"
}

kubectl_admin() { "${SANTOKIT_KUBECTL}" --kubeconfig="${KUBECONFIG}" "$@"; }

# Pid of a running controller, or nothing.
controller_pid() {
  local pid=""
  [[ -r "$(pid_file "$1")" ]] && pid=$(<"$(pid_file "$1")")
  if pid_alive_as "${pid}" "$1"; then echo "${pid}"; fi
  return 0
}

is_running() { [[ -n "$(controller_pid "$1")" ]]; }


# Ports are chosen once per state directory, so a restart keeps the artifact
# URLs that GitRepository statuses already advertise.
load_ports() {
  mkdir -p "${FLUX_STATE}"
  load_ports_file "${PORTS_FILE}" SOURCE_STORAGE_PORT SOURCE_METRICS_PORT SOURCE_HEALTH_PORT KUSTOMIZE_METRICS_PORT KUSTOMIZE_HEALTH_PORT
}

health_port() {
  case "$1" in
    source-controller) echo "${SOURCE_HEALTH_PORT}" ;;
    kustomize-controller) echo "${KUSTOMIZE_HEALTH_PORT}" ;;
  esac
}

# GET /readyz on the controller's health port, with bash's /dev/tcp.
controller_ready() {
  local response
  response=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$(health_port "$1")" &&
      printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
      timeout 2 cat <&3
  ) || return 1
  [[ "${response}" == 'HTTP/1.'?' 200'* ]]
}


start_controller() {
  local c=$1 bin=$2
  if is_running "${c}"; then
    log "${c} already running (pid $(controller_pid "${c}"))"
    return 0
  fi
  log "starting ${c}"
  # Leader election is off (one replica); --events-addr is unset, so no
  # notification-controller is needed.
  case "${c}" in
    source-controller)
      mkdir -p "${STORAGE_DIR}"
      start_daemon "${c}" env RUNTIME_NAMESPACE="${NAMESPACE}" KUBECONFIG="${KUBECONFIG}" "${bin}/source-controller" \
        --storage-path="${STORAGE_DIR}" \
        --storage-addr="127.0.0.1:${SOURCE_STORAGE_PORT}" \
        --storage-adv-addr="127.0.0.1:${SOURCE_STORAGE_PORT}" \
        --metrics-addr="127.0.0.1:${SOURCE_METRICS_PORT}" \
        --health-addr="127.0.0.1:${SOURCE_HEALTH_PORT}" \
        --enable-leader-election=false \
        --log-level=info
      ;;
    kustomize-controller)
      # --requeue-dependency: a Kustomization whose dependsOn is not ready yet
      # looks again after 2 s instead of the default 30 s.
      start_daemon "${c}" env RUNTIME_NAMESPACE="${NAMESPACE}" KUBECONFIG="${KUBECONFIG}" "${bin}/kustomize-controller" \
        --requeue-dependency=2s \
        --metrics-addr="127.0.0.1:${KUSTOMIZE_METRICS_PORT}" \
        --health-addr="127.0.0.1:${KUSTOMIZE_HEALTH_PORT}" \
        --enable-leader-election=false \
        --log-level=info
      ;;
  esac
}

wait_ready() {
  local c=$1 deadline=$((SECONDS + READY_TIMEOUT))
  until controller_ready "${c}"; do
    if ! is_running "${c}"; then
      log "${c} exited during start-up; last lines of $(log_file "${c}"):"
      tail -n 30 "$(log_file "${c}")" | sed 's/^/    /' >&2
      exit 1
    fi
    ((SECONDS < deadline)) || die "${c} not healthy after ${READY_TIMEOUT}s; see $(log_file "${c}")"
    sleep 0.2
  done
}

stop_controller() {
  local c=$1 pid
  pid=$(controller_pid "${c}")
  if [[ -n "${pid}" ]]; then
    log "stopping ${c} (pid ${pid})"
    stop_pid "${pid}" "${c}" "${c}"
  fi
  rm -f "$(pid_file "${c}")"
}

install_crds() {
  local dir=$1
  log "applying Flux CRDs from ${dir}/crds"
  kubectl_admin apply --server-side --force-conflicts --field-manager=santokit-hack -f "${dir}/crds" >&2 ||
    die "kubectl apply of the Flux CRDs failed"
  kubectl_admin wait --for=condition=Established -f "${dir}/crds" --timeout=60s >/dev/null ||
    die "the Flux CRDs did not become Established within 60s"
  kubectl_admin create namespace "${NAMESPACE}" --dry-run=client -o yaml |
    kubectl_admin apply --server-side --field-manager=santokit-hack -f - >/dev/null ||
    die "could not create namespace ${NAMESPACE}"
}

cmd_up() {
  load_cluster_env
  local flux_dir c
  flux_dir=$(bash "${SCRIPT_DIR}/build-flux.sh" | tail -n 1)
  [[ -x "${flux_dir}/bin/source-controller" ]] || die "build-flux.sh did not produce binaries"
  mkdir -p "${RUN_DIR}" "${LOG_DIR}"
  load_ports
  install_crds "${flux_dir}"
  for c in "${CONTROLLERS[@]}"; do
    start_controller "${c}" "${flux_dir}/bin"
  done
  for c in "${CONTROLLERS[@]}"; do
    wait_ready "${c}"
  done
  log "up: source-controller artifacts on http://127.0.0.1:${SOURCE_STORAGE_PORT}, logs in ${LOG_DIR}/flux-*.log"
}

cmd_down() {
  local c
  for c in "${CONTROLLERS[@]}"; do
    stop_controller "${c}"
  done
}

cmd_status() {
  local c pid all=0
  for c in "${CONTROLLERS[@]}"; do
    pid=$(controller_pid "${c}")
    if [[ -n "${pid}" ]]; then
      printf '%-21s running  pid %s\n' "${c}" "${pid}"
    else
      printf '%-21s stopped\n' "${c}"
      all=1
    fi
  done
  return "${all}"
}

main() {
  local cmd=${1:-}
  case "${cmd}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    -h | --help | help) usage ;;
    *)
      usage
      [[ -z "${cmd}" ]] && die "missing command"
      die "unknown command '${cmd}'"
      ;;
  esac
}

main "$@"
