//go:build tools

// Package helmbuild pins the chart tools that scripts/install-helm.sh
// builds for the chart checks (deploy/helm): helm and kubeconform. It is a
// module of its own so that Helm's dependencies never enter the Tianshu
// module's graph.
package helmbuild

import (
	_ "github.com/yannh/kubeconform/cmd/kubeconform"
	_ "helm.sh/helm/v3/cmd/helm"
)
