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
# A repository of the kind teams keep: schema/*.yaml and config/permissions.yaml, committed.
repo="${SANTOKIT_STATE_DIR}/demo-repo"
if [[ ! -d "$repo/.git" ]]; then
  mkdir -p "$repo/schema" "$repo/config"
  cp config/schema/*.yaml "$repo/schema/"
  cp config/permissions.yaml "$repo/config/"
  git -C "$repo" init -q --initial-branch=main
  git -C "$repo" add -A
  git -C "$repo" -c user.email=demo@santokit.io -c user.name=demo commit -q -m "example app"
fi
ref=$(git -C "$repo" rev-parse HEAD)

# One database per connection (main, analytics) on the local Postgres.
for db in "${project}_dev_main" "${project}_dev_analytics"; do
  psql -q "$SANTOKIT_PG_ADMIN_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
    psql -q "$SANTOKIT_PG_ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null
done
base="${SANTOKIT_PG_ADMIN_URL%/*}"
echo "\$ stk connections set --project $project --env dev --name main --db-url -"
echo "$base/${project}_dev_main" | stk connections set --project "$project" --env dev --name main --db-url -
echo "$base/${project}_dev_analytics" | stk connections set --project "$project" --env dev --name analytics --db-url -
echo "\$ stk connections test --project $project --env dev --name main"; stk connections test --project "$project" --env dev --name main
echo "\$ stk apply --project $project --env dev --ref ${ref:0:12} --repo $repo"
stk apply --project "$project" --env dev --ref "$ref" --repo "$repo"
echo "\$ stk env list --project $project"; stk env list --project "$project"
echo "\$ stk release list --project $project"; stk release list --project "$project"
echo "\$ kubectl get projects,environments,connections,releases -A"; "$SANTOKIT_KUBECTL" get projects,environments,connections,releases -A
echo
echo "Santokit is running. Try:"
echo "  source ${SANTOKIT_STATE_DIR}/env   # KUBECONFIG and friends"
echo "  npx stk --help"
echo "Stop everything with: npm run cluster:down"
