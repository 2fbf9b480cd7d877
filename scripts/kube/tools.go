//go:build tools

// Package kubebuild pins the Kubernetes control plane programs that
// scripts/install-kube.sh builds for the tests (internal/kube/kubetest).
// It is a module of its own so that k8s.io/kubernetes never enters the
// Tianshu module's dependency graph.
package kubebuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
