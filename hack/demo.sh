#!/usr/bin/env bash
# Runs Santokit locally: the local control plane and Postgres (hack/cluster.sh), the operator and
# the data plane as processes, then a demo flow through the built `stk`: a project with dev and
# prod, connections, a release applied from a Git ref, an API key, and `/call`s to the data plane
# (an insert, a select and one the permissions refuse). Safe to run again: what exists is kept
# (the same release, the same key). Leaves everything running; `npm run cluster:down` stops it
# all (the operator and the data plane by their pid files in the state directory).
set -euo pipefail
cd "$(dirname "$0")/.."
export SANTOKIT_STATE_DIR="${SANTOKIT_STATE_DIR:-$PWD/.santokit/cluster}"

bash hack/cluster.sh up >/dev/null
# shellcheck source=/dev/null
source "${SANTOKIT_STATE_DIR}/env"
node=$PWD/node_modules/.bin/node
stk() { "$node" dist/cli/main.js "$@"; }

log() { printf 'demo: %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }
pid_file() { printf '%s/run/%s.pid\n' "${SANTOKIT_STATE_DIR}" "$1"; }
log_file() { printf '%s/logs/%s.log\n' "${SANTOKIT_STATE_DIR}" "$1"; }
# shellcheck source=lib/processes.sh
source hack/lib/processes.sh
mkdir -p "${SANTOKIT_STATE_DIR}/run" "${SANTOKIT_STATE_DIR}/logs"

# The operator and the data plane: started once, kept across runs (cluster.sh down stops them).
# The data plane keeps its ports across runs (recorded in the state directory): POST /call on one,
# /readyz and /metrics on the other (never on the public port).
load_ports_file "${SANTOKIT_STATE_DIR}/demo-ports" BRIDGE_PORT BRIDGE_PROBE_PORT
if [[ -z "${BRIDGE_PROBE_PORT:-}" ]]; then
  # a state directory from before the probe port: pick both again
  rm -f "${SANTOKIT_STATE_DIR}/demo-ports"
  load_ports_file "${SANTOKIT_STATE_DIR}/demo-ports" BRIDGE_PORT BRIDGE_PROBE_PORT
fi
bridge_url="http://127.0.0.1:${BRIDGE_PORT}"
bridge_probe_url="http://127.0.0.1:${BRIDGE_PROBE_PORT}"
start_once() {
  local name=$1 pid
  shift
  pid=$(cat "$(pid_file "${name}")" 2>/dev/null || true)
  if pid_alive_as "${pid}" node; then
    echo "demo: ${name} already running (pid ${pid})"
  else
    start_daemon "${name}" "$node" "$@"
    echo "demo: ${name} started (pid $(cat "$(pid_file "${name}")"), log $(log_file "${name}"))"
  fi
}
start_once operator dist/operator/main.js --bind-address 127.0.0.1 --health-port 0
start_once data-plane dist/operator/main.js bridge --bind-address 127.0.0.1 --port "${BRIDGE_PORT}" --health-port "${BRIDGE_PROBE_PORT}"

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
release_id=$(stk release current --project "$project" --env dev --json | "$node" -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).releaseId')
echo "\$ stk env list --project $project"; stk env list --project "$project"
echo "\$ stk release list --project $project"; stk release list --project "$project"
echo "\$ kubectl get projects,environments,connections,releases -A"; "$SANTOKIT_KUBECTL" get projects,environments,connections,releases -A

# The data plane: an API key for dev (shown once by stk; kept in the state directory, mode 0600,
# and reused by the next run while the data plane still knows it), then calls.
echo
keyfile="${SANTOKIT_STATE_DIR}/demo-api-key.json"
"$node" hack/lib/wait-http.mjs "${bridge_probe_url}/readyz" 200 60 || die "the data plane is not ready; see $(log_file data-plane)"
if [[ -s "$keyfile" ]] && "$node" hack/lib/wait-http.mjs "${bridge_url}/call" 400 2 "$keyfile" '{}' 2>/dev/null; then
  echo "demo: reusing API key $(sed -n 's/.*"keyId": *"\([^"]*\)".*/\1/p' "$keyfile") from ${keyfile}"
else
  name="demo-admin-$(date +%s)"
  echo "\$ stk apikey create --project $project --env dev --name $name --roles admin --json"
  (umask 077 && stk apikey create --project "$project" --env dev --name "$name" --roles admin --json >"$keyfile")
  echo "demo: the key is shown once; saved in ${keyfile}"
  # The data plane learns new keys from its watch: a known key with an empty body is a 400, not a 401.
  "$node" hack/lib/wait-http.mjs "${bridge_url}/call" 400 30 "$keyfile" '{}' || die "the data plane did not learn the new key; see $(log_file data-plane)"
fi
call() { "$node" hack/lib/demo-call.mjs "$bridge_url" "$keyfile" "$@"; }
email="ada-$(date +%s)@example.com"
call db/users/insert "{\"data\":{\"email\":\"${email}\",\"name\":\"Ada\",\"role\":\"admin\"}}"
call db/users/select '{"select":["id","email","name","role"],"orderBy":{"created_at":"desc"},"limit":3}'
echo "demo: refused: config/permissions.yaml has no delete rule for users, so no role may delete"
call db/users/delete "{\"where\":{\"email\":\"${email}\"}}"

echo
echo "Santokit is running (state in ${SANTOKIT_STATE_DIR}). Try next:"
echo "  source ${SANTOKIT_STATE_DIR}/env     # KUBECONFIG and friends for stk and kubectl"
echo "  npx stk release show --project $project --release-id ${release_id}"
echo "  npx stk apikey list --project $project --env dev"
echo "  KEY=\$(node -pe 'require(\"${keyfile}\").apiKey')"
echo "  curl -s ${bridge_url}/call -H \"X-Santokit-Api-Key: \$KEY\" -d '{\"path\":\"db/posts/select\",\"params\":{\"limit\":5}}'"
echo "  npx stk release promote --project $project --from dev --to prod   # needs prod connections (see README)"
echo "  npx stk ui                            # the dashboard, on a terminal"
echo "  npx stk --help"
echo "Stop everything with: npm run cluster:down"
