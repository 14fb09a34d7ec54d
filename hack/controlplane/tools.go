// Package controlplane only exists to pin the dependencies of the control-plane
// binaries that hack/build-control-plane.sh builds from this module:
//
//	etcd                    go.etcd.io/etcd/server/v3
//	kube-apiserver          k8s.io/kubernetes/cmd/kube-apiserver
//	kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
//	kubectl                 k8s.io/kubernetes/cmd/kubectl
//
// Main packages cannot be imported, and `go mod tidy` only keeps what a package
// of this module imports, so this file imports the packages those mains import.
// That keeps go.mod and go.sum complete for `go build` of all four binaries.
package controlplane

import (
	// etcd
	_ "go.etcd.io/etcd/server/v3/etcdmain"

	// shared by the Kubernetes mains
	_ "k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"

	// kube-apiserver and kube-controller-manager
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"

	// kubectl
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubectl/pkg/cmd/util"
)
