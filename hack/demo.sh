#!/usr/bin/env bash
# Runs Santokit locally: the local control plane and Postgres (hack/cluster.sh), the operator as a
# process, then a demo flow through the built `stk`. Leaves everything running; `npm run
# cluster:down` stops it all (the operator is stopped by its pid file in the state directory).
set -euo pipefail
cd "$(dirname "$0")/.."
export SANTOKIT_STATE_DIR="${SANTOKIT_STATE_DIR:-$PWD/.santokit/cluster}"

bash hack/cluster.sh up >/dev/null
# shellcheck source=/dev/null
source "${SANTOKIT_STATE_DIR}/env"
node=node_modules/.bin/node
stk() { "$node" dist/cli/main.js "$@"; }

pidfile="${SANTOKIT_STATE_DIR}/run/operator.pid"
if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "demo: operator already running (pid $(cat "$pidfile"))"
else
  mkdir -p "${SANTOKIT_STATE_DIR}/run" "${SANTOKIT_STATE_DIR}/logs"
  nohup "$node" dist/operator/main.js --bind-address 127.0.0.1 --health-port 0 \
    >"${SANTOKIT_STATE_DIR}/logs/operator.log" 2>&1 &
  echo $! >"$pidfile"
  echo "demo: operator started (pid $!, log ${SANTOKIT_STATE_DIR}/logs/operator.log)"
fi

project="${DEMO_PROJECT:-demo}"
echo
echo "\$ stk login"; stk login
echo "\$ stk project create $project"
stk project create "$project" || [[ $? -eq 2 ]]   # exit 2: it already exists from an earlier run
for env in dev prod; do
  echo "\$ stk env create --project $project $env"
  stk env create --project "$project" "$env" || [[ $? -eq 2 ]]
done
echo "\$ stk env list --project $project"; stk env list --project "$project"
echo "\$ kubectl get santokit -A"; "$SANTOKIT_KUBECTL" get santokit -A
echo
echo "Santokit is running. Try:"
echo "  source ${SANTOKIT_STATE_DIR}/env   # KUBECONFIG and friends"
echo "  npx stk --help"
echo "Stop everything with: npm run cluster:down"
