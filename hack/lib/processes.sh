# Process helpers shared by hack/cluster.sh and hack/flux.sh: free loopback ports, pid checks,
# daemons that outlive the script, and stopping them. The sourcing script defines log, die,
# pid_file <name> and log_file <name>, and may set STOP_TIMEOUT (seconds, default 10).
# shellcheck shell=bash

# Print n distinct free loopback ports. Asking the kernel (listen on port 0)
# while holding all n sockets open at once guarantees they are distinct; bash
# probing is the fallback when node is absent.
pick_free_ports() {
  local n=$1
  if command -v node >/dev/null 2>&1; then
    node -e '
      const net = require("net");
      const n = Number(process.argv[1]);
      const servers = [];
      for (let i = 0; i < n; i++) {
        const s = net.createServer();
        s.listen(0, "127.0.0.1", () => {
          servers.push(s);
          if (servers.length === n) {
            console.log(servers.map((x) => x.address().port).join(" "));
            servers.forEach((x) => x.close());
          }
        });
      }' "${n}"
    return
  fi
  local ports=() port tries=0
  while ((${#ports[@]} < n)); do
    ((tries++ < 1000)) || die "could not find ${n} free loopback ports"
    # 20000-32767 stays below Linux's ephemeral range, where outgoing
    # connections could grab the port before our server binds it.
    port=$((20000 + RANDOM % 12768))
    [[ " ${ports[*]-} " == *" ${port} "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
      ports+=("${port}")
    fi
  done
  echo "${ports[*]}"
}

# True when pid is a live (not zombie) process whose program is named $2. The
# name check keeps a stale pid file from making us signal an unrelated process
# that reused the pid.
pid_alive_as() {
  local pid=$1 name=$2 stat state argv0=""
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  # Builtins only: this runs in tight polling loops.
  { read -r stat <"/proc/${pid}/stat"; } 2>/dev/null || return 1
  state=${stat##*) }
  state=${state%% *}
  [[ "${state}" != Z && "${state}" != X ]] || return 1
  { IFS= read -r -d '' argv0 <"/proc/${pid}/cmdline"; } 2>/dev/null || true
  [[ "${argv0##*/}" == "${name}" ]]
}

# Start a daemon in its own session so that it outlives this script and is not
# hit by signals sent to the caller's process group (Ctrl-C, a test runner
# killing its children). stdin/stdout/stderr are redirected so a caller that
# captures our output is not kept waiting by the daemon; fd 8 (our lock) is
# closed so the daemon does not hold the state-dir lock forever. The child
# writes its own pid before exec, which is correct even if setsid had to fork.
start_daemon() {
  local c=$1
  shift
  local pidf
  pidf=$(pid_file "${c}")
  rm -f "${pidf}"
  printf '\n===== %s starting %s =====\n' "$(date -u +%FT%TZ)" "${c}" >>"$(log_file "${c}")"
  # shellcheck disable=SC2016 # $$, $0 and $@ are the child's
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "${pidf}" "$@" \
    </dev/null >>"$(log_file "${c}")" 2>&1 8>&- &
  disown $! 2>/dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "${pidf}" ]] && return 0
    sleep 0.1
  done
  die "${c} did not start; see $(log_file "${c}")"
}

# TERM, then KILL after STOP_TIMEOUT seconds.
stop_pid() {
  local pid=$1 name=$2 c=$3 i
  kill -TERM "${pid}" 2>/dev/null || return 0
  for ((i = 0; i < ${STOP_TIMEOUT:-10} * 10; i++)); do
    pid_alive_as "${pid}" "${name}" || return 0
    sleep 0.1
  done
  log "${c} (pid ${pid}) ignored SIGTERM for ${STOP_TIMEOUT:-10}s; sending SIGKILL"
  kill -KILL "${pid}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive_as "${pid}" "${name}" || return 0
    sleep 0.1
  done
  die "could not stop ${c} (pid ${pid})"
}

# Loads NAME=port lines from file into the shell, picking a free loopback port for each name the
# first time: later runs keep the recorded ports, so a restarted process keeps its address.
load_ports_file() {
  local file=$1 i
  shift
  if [[ ! -s "${file}" ]]; then
    local p
    read -r -a p <<<"$(pick_free_ports $#)"
    ((${#p[@]} == $#)) || die "could not pick free ports"
    for ((i = 1; i <= $#; i++)); do printf '%s=%s\n' "${!i}" "${p[i - 1]}"; done >"${file}.tmp"
    mv "${file}.tmp" "${file}"
  fi
  # shellcheck source=/dev/null
  source "${file}"
}
