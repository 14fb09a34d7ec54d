#!/usr/bin/env bash
# Builds the node components of the local single-node cluster (kubelet,
# kube-proxy, kube-scheduler) from the pinned wrapper module in hack/node/go and
# caches them by a key derived from that pin (hack/lib/go-binaries.sh). The
# control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) comes
# from hack/build-control-plane.sh, unchanged.
#
# Usage: hack/node/build-binaries.sh
#
# The last line of stdout is the absolute bin directory; progress goes to stderr.
# Environment:
#   SANTOKIT_CACHE_DIR  cache root (default: $HOME/.cache/santokit); binaries go
#                       to <root>/node/<key>/bin
#   SANTOKIT_NICE       nice level of the builds (default 15)
#
# With a warm Go build cache (the control plane built before): kubelet ~80 s,
# kube-proxy ~20 s, kube-scheduler ~10 s; cold on a busy 2-core machine up to
# ~10 min. Later calls with the same pin return at once.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly GO_BUILD_TAG="build-node-binaries"
readonly MODULE_DIR="${SCRIPT_DIR}/go"
readonly CACHE_ROOT="${SANTOKIT_CACHE_DIR:-${HOME:?set HOME or SANTOKIT_CACHE_DIR}/.cache/santokit}/node"
readonly GO_BUILD_WHAT="kubelet, kube-proxy, kube-scheduler"
readonly GO_BUILD_NICE="${SANTOKIT_NICE:-15}"

# Smallest first, so a slow machine has something usable early. Sequential: on
# 2 cores parallel builds only add memory pressure.
readonly BINARIES=(
  "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler"
  "kube-proxy=k8s.io/kubernetes/cmd/kube-proxy"
  "kubelet=k8s.io/kubernetes/cmd/kubelet"
)

# shellcheck source=../lib/go-binaries.sh
source "${SCRIPT_DIR}/../lib/go-binaries.sh"
build_go_binaries
