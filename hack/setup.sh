#!/usr/bin/env bash
# Installs what Santokit needs on a fresh Debian machine: system packages (Postgres 15 server
# binaries, OpenSSH server for bootstrap tests, tmux for the terminal UI test, openssl, Lua for the
# Argo CD health checks in config/argocd/), then the
# npm dependencies, including the pinned Node 24 that every npm script runs on.
# Go (for building the local control plane in hack/) must already be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15)
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v lua5.4 >/dev/null 2>&1 || need_apt+=(lua5.4)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install these Debian packages first: ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "setup: Go is required to build the local control plane (hack/build-control-plane.sh); install Go 1.24 or later" >&2
  exit 1
fi

# npm ci starts from an empty node_modules: skip it when the installed tree already matches
# package.json and the lock file (a second run, or a checkout whose node_modules is shared).
if [ -d node_modules ] && node hack/lib/deps-installed.mjs 2>/dev/null; then
  echo "setup: npm dependencies already installed" >&2
elif [ -L node_modules ]; then
  # Never empty a node_modules that belongs to another checkout.
  node hack/lib/deps-installed.mjs || true
  echo "setup: node_modules is a link to $(readlink node_modules) and does not match package-lock.json; install there, or remove the link" >&2
  exit 1
else
  npm ci --no-audit --no-fund --loglevel=error
fi
