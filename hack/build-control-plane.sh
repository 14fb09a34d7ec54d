#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kubectl) from the pinned wrapper module in hack/controlplane and caches the
# binaries by a key derived from that pin (hack/lib/go-binaries.sh).
#
# Usage: hack/build-control-plane.sh
#
# The last line of stdout is the absolute bin directory; progress goes to stderr.
# Environment:
#   SANTOKIT_CACHE_DIR  cache root (default: $HOME/.cache/santokit)
#
# A cold build takes 5-12 minutes on 2 cores (kube-apiserver alone 3.5-8 min
# and ~2 GB RAM); later calls with the same pin return at once.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly GO_BUILD_TAG="build-control-plane"
readonly MODULE_DIR="${SCRIPT_DIR}/controlplane"
readonly CACHE_ROOT="${SANTOKIT_CACHE_DIR:-${HOME:?set HOME or SANTOKIT_CACHE_DIR}/.cache/santokit}/controlplane"
readonly GO_BUILD_WHAT="the control plane (a cold build takes 5-12 min)"
readonly GO_BUILD_NICE=0

# binary name -> main package, built in this order (sequentially: on 2 cores
# parallel builds only add memory pressure; kube-apiserver peaks at ~2 GB).
readonly BINARIES=(
  "etcd=go.etcd.io/etcd/server/v3"
  "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
  "kubectl=k8s.io/kubernetes/cmd/kubectl"
)

# shellcheck source=lib/go-binaries.sh
source "${SCRIPT_DIR}/lib/go-binaries.sh"
build_go_binaries
