// Package nodego only exists to pin the dependencies of the node binaries that
// hack/node/build-binaries.sh builds from this module:
//
//	kubelet         k8s.io/kubernetes/cmd/kubelet
//	kube-proxy      k8s.io/kubernetes/cmd/kube-proxy
//	kube-scheduler  k8s.io/kubernetes/cmd/kube-scheduler
//
// Main packages cannot be imported, and `go mod tidy` only keeps what a package
// of this module imports, so this file imports the packages those mains import.
package nodego

import (
	_ "k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"

	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
)
