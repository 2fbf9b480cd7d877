package kubetest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestControlPlane starts etcd and kube-apiserver, registers a node with
// GPUs, stores and reads back a Deployment, and checks that RBAC denies
// the limited user: the harness every Kubernetes test builds on.
func TestControlPlane(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if err := e.CreateNode(ctx, "gpu-node-1", map[string]string{"tianshu.ai/site": "a"},
		map[string]string{"cpu": "8", "memory": "32Gi", "pods": "110", "nvidia.com/gpu": "2"}); err != nil {
		t.Fatal(err)
	}
	var node struct {
		Status struct {
			Allocatable map[string]string `json:"allocatable"`
		} `json:"status"`
	}
	if err := e.Do(ctx, "", http.MethodGet, "/api/v1/nodes/gpu-node-1", nil, &node); err != nil {
		t.Fatal(err)
	}
	if got := node.Status.Allocatable["nvidia.com/gpu"]; got != "2" {
		t.Fatalf("node allocatable nvidia.com/gpu = %q, want 2", got)
	}

	ns := e.CreateNamespace(t)
	dep := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "labels": map[string]string{"app": "web"}},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]string{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]string{"app": "web"}},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "web", "image": "registry.example/web:1",
					"resources": map[string]any{"limits": map[string]string{"nvidia.com/gpu": "1"}},
				}}},
			},
		},
	}
	if err := e.Do(ctx, "", http.MethodPost, "/apis/apps/v1/namespaces/"+ns+"/deployments", dep, nil); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Spec struct {
			Replicas *int `json:"replicas"`
		} `json:"spec"`
	}
	if err := e.Do(ctx, "", http.MethodGet, "/apis/apps/v1/namespaces/"+ns+"/deployments/web", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Replicas == nil || *got.Spec.Replicas != 1 {
		t.Fatalf("defaulted replicas = %v, want 1 (the API server's defaulting)", got.Spec.Replicas)
	}

	err := e.Do(ctx, e.LimitedToken, http.MethodGet, "/apis/apps/v1/namespaces/"+ns+"/deployments", nil, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("limited user listing deployments: %v, want HTTP 403", err)
	}

	// The kubeconfig works for kubectl, where one is installed (it is
	// optional: client-go is what the code uses).
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", e.Kubeconfig, "get", "nodes", "-o", "name").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "node/gpu-node-1") {
			t.Fatalf("kubectl get nodes: %v\n%s", err, out)
		}
	} else if b, err := os.ReadFile(e.Kubeconfig); err != nil || len(b) == 0 {
		t.Fatalf("kubeconfig %s: %v", e.Kubeconfig, err)
	}
}
