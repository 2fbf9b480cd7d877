package app_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/kube"
	"github.com/tianshu-ai/tianshu/internal/kube/kubetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestContainerVersionOnKubernetes runs a container version through the
// platform's API against a real kube-apiserver and controller manager
// (kubetest; there is no kubelet, so this test writes the pods' status as
// one would): --kube.kubeconfig configures the cluster, CreateAlgorithmVersion
// deploys the version, an impossible GPU request is refused with nothing
// saved or created, DescribeAlgorithmInstances shows the replicas and why one cannot
// start (ErrImagePull), and DeleteAlgorithm removes every object.
func TestContainerVersionOnKubernetes(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{ControllerManager: true})
	ns := env.CreateNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool := map[string]string{"tianshu.ai/pool": ns}
	node := ns + "-gpu"
	if err := env.CreateNode(ctx, node, pool, map[string]string{"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "2"}); err != nil {
		t.Fatal(err)
	}

	e := apptest.Start(t, apptest.Options{Args: []string{"--kube.kubeconfig", env.Kubeconfig, "--kube.namespace", ns}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "k8s-detector"})["AlgorithmId"].(string)
	def := func(gpu float64) map[string]any {
		return map[string]any{"runtime": "container", "protocol": "tianshu-v1", "image": "registry.example/detector:1.0",
			"replicas": 2, "resources": map[string]any{"cpu": 1, "memoryMB": 512, "gpu": gpu},
			"placement": map[string]any{"nodeSelector": pool},
			"contract": map[string]any{"inputs": []any{map[string]any{"name": "image", "type": "image", "required": true}},
				"outputs": []any{map[string]any{"name": "objects", "type": "objects"}}}}
	}
	c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Version": "1", "Definition": def(1), "Start": true})
	ref := algorithm.Ref{ID: algID, Version: "1"}
	name := kube.Name(ref)
	var dep appsv1.Deployment
	if err := env.Do(ctx, "", http.MethodGet, "/apis/apps/v1/namespaces/"+ns+"/deployments/"+name, nil, &dep); err != nil {
		t.Fatalf("the version's Deployment: %v", err)
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	if *dep.Spec.Replicas != 2 || ctr.Image != "registry.example/detector:1.0" || ctr.Resources.Limits.Name(kube.ResourceGPU, "").String() != "1" {
		t.Fatalf("deployment: replicas %d, image %s, limits %v", *dep.Spec.Replicas, ctr.Image, ctr.Resources.Limits)
	}
	if err := env.Do(ctx, "", http.MethodGet, "/api/v1/namespaces/"+ns+"/services/"+name, nil, nil); err != nil {
		t.Fatalf("the version's Service: %v", err)
	}

	// More GPUs than any node has: refused as a bad parameter, not saved,
	// and nothing of it is created in the cluster.
	if _, code := c.call("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Version": "2", "Definition": def(4), "Start": true}); code != "InvalidParameterValue" {
		t.Fatalf("4 GPUs on a 2-GPU node: code %q, want InvalidParameterValue", code)
	}
	if vs := c.mustCall("DescribeAlgorithmVersions", map[string]any{"AlgorithmId": algID})["VersionSet"].([]any); len(vs) != 1 {
		t.Fatalf("versions after the refused one: %v, want only 1", vs)
	}
	if n := countObjects(ctx, t, env, ns, algorithm.Ref{ID: algID, Version: "2"}); n != 0 {
		t.Fatalf("the refused version left %d objects", n)
	}

	// Play the kubelet: one pod runs and is ready, the other's image
	// cannot be pulled.
	var pods corev1.PodList
	testenv.Eventually(t, time.Minute, "the ReplicaSet controller to create 2 pods", func() bool {
		err := env.Do(ctx, "", http.MethodGet, "/api/v1/namespaces/"+ns+"/pods?labelSelector="+kube.Selector(ref), nil, &pods)
		return err == nil && len(pods.Items) == 2
	})
	ready, stuck := pods.Items[0], pods.Items[1]
	ready.Status.Phase = corev1.PodRunning
	ready.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	stuck.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "algorithm", Image: "registry.example/detector:1.0",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "manifest unknown"}}}}
	for _, p := range []corev1.Pod{ready, stuck} {
		if err := env.Do(ctx, "", http.MethodPut, "/api/v1/namespaces/"+ns+"/pods/"+p.Name+"/status", &p, nil); err != nil {
			t.Fatal(err)
		}
	}
	var inst map[string]any
	testenv.Eventually(t, time.Minute, "DescribeAlgorithmInstances to show 1 of 2 replicas ready and the ErrImagePull", func() bool {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID, "Version": "1"})["InstanceSet"].([]any)
		if len(is) != 1 {
			return false
		}
		inst = is[0].(map[string]any)
		r, _ := inst["Replicas"].(map[string]any)
		return r != nil && r["Ready"] == 1.0 && r["Desired"] == 2.0 && strings.Contains(r["Message"].(string), "ErrImagePull: manifest unknown")
	})
	if !strings.Contains(inst["LastError"].(string), "ErrImagePull") || inst["Status"] == "ready" {
		t.Errorf("instance = %v; want not ready, with the ErrImagePull as its last error", inst)
	}
	t.Logf("instance: %v", inst)

	c.mustCall("DeleteAlgorithm", map[string]any{"AlgorithmId": algID})
	if n := countObjects(ctx, t, env, ns, ref); n != 0 {
		t.Fatalf("DeleteAlgorithm left %d objects", n)
	}
}

// TestContainerVersionScalesToZero runs a container version that scales
// to zero through the API against a real kube-apiserver: it is deployed
// with no replica, a task whose flow calls it (naming no version) brings
// its replicas up, and stopping the task takes them back to zero; the
// instance says why it has none.
func TestContainerVersionScalesToZero(t *testing.T) {
	env, ns, ctx, e := startOnKube(t)
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "idle-detector"})["AlgorithmId"].(string)
	c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Version": "1", "Start": true, "Definition": map[string]any{
		"runtime": "container", "protocol": "tianshu-v1", "image": "registry.example/detector:1.0", "replicas": 2, "scaleToZero": true,
		"contract": map[string]any{"inputs": []any{map[string]any{"name": "image", "type": "image", "required": true}},
			"outputs": []any{map[string]any{"name": "objects", "type": "objects"}}}}})
	if _, code := c.call("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Version": "2", "Definition": map[string]any{
		"runtime": "container", "image": "registry.example/detector:1.0", "scaleToZero": true, "resources": map[string]any{"cpu": 1},
		"autoscale": map[string]any{"maxReplicas": 3}, "contract": map[string]any{"inputs": []any{}}}}); code != "InvalidParameterValue" {
		t.Errorf("scale to zero with an autoscaler: %q, want InvalidParameterValue", code)
	}
	name := kube.Name(algorithm.Ref{ID: algID, Version: "1"})
	replicas := func() int32 {
		var dep appsv1.Deployment
		if err := env.Do(ctx, "", http.MethodGet, "/apis/apps/v1/namespaces/"+ns+"/deployments/"+name, nil, &dep); err != nil {
			t.Fatalf("the version's Deployment: %v", err)
		}
		return *dep.Spec.Replicas
	}
	if n := replicas(); n != 0 {
		t.Fatalf("no task uses the version, yet it has %d replicas", n)
	}
	testenv.Eventually(t, time.Minute, "the instance to say it is scaled to zero", func() bool {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)
		return len(is) == 1 && strings.Contains(is[0].(map[string]any)["LastError"].(string), "scaled to zero")
	})

	doc := map[string]any{"name": "detect", "nodes": []any{map[string]any{"id": "d", "kind": "algorithm",
		"config": map[string]any{"algorithm": algID}, "inputs": map[string]any{"image": "$input.image"}}}}
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "uses-it", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "topic", "Id": "in.frames"}}})["TaskId"].(string)
	testenv.Eventually(t, time.Minute, "a running task to bring the replicas up", func() bool { return replicas() == 2 })

	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
	testenv.Eventually(t, time.Minute, "the stopped task to let them go", func() bool { return replicas() == 0 })
}

// TestContainerVersionsPruned checks that the objects of a version this
// platform deployed but no longer wants (stopped or deleted while no
// process with the runtime ran: here, deployed by hand under the
// platform's id with no version in the store) are removed, and that
// another platform's objects in the same namespace are left alone.
func TestContainerVersionsPruned(t *testing.T) {
	env, ns, ctx, e := startOnKube(t)
	var platform string
	if err := e.P.DB.QueryRow(ctx, "SELECT value FROM settings WHERE name = 'platform_id'").Scan(&platform); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := kube.LoadKubeconfig(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	deploy := func(platform, id string) algorithm.Ref {
		rt, err := kube.New(cfg, ns, nil)
		if err != nil {
			t.Fatal(err)
		}
		rt.SetPlatform(platform)
		v := algorithm.Version{AlgorithmID: id, Version: "1", Runtime: algorithm.RuntimeContainer, Image: "registry.example/x:1",
			Contract: algorithm.Contract{Inputs: []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true}}}}
		if err := rt.Deploy(ctx, v); err != nil {
			t.Fatal(err)
		}
		return algorithm.Ref{ID: id, Version: "1"}
	}
	ghost := deploy(platform, "alg-ghost")
	foreign := deploy("another-platform", "alg-theirs")
	testenv.Eventually(t, time.Minute, "the unwanted version's objects removed", func() bool { return countObjects(ctx, t, env, ns, ghost) == 0 })
	if n := countObjects(ctx, t, env, ns, foreign); n != 3 {
		t.Errorf("another platform's version has %d objects left, want its 3", n)
	}
}

// startOnKube starts a platform whose container runtime is a real
// kube-apiserver's fresh namespace (no controller manager).
func startOnKube(t *testing.T) (*kubetest.Env, string, context.Context, *apptest.Env) {
	t.Helper()
	env := kubetest.Start(t, kubetest.Options{})
	ns := env.CreateNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	e := apptest.Start(t, apptest.Options{Args: []string{"--kube.kubeconfig", env.Kubeconfig, "--kube.namespace", ns}})
	return env, ns, ctx, e
}

// countObjects counts a version's anchor, Deployment, Service and
// autoscaler in ns.
func countObjects(ctx context.Context, t *testing.T, env *kubetest.Env, ns string, ref algorithm.Ref) int {
	t.Helper()
	n := 0
	for _, p := range []string{"/api/v1/namespaces/" + ns + "/configmaps/", "/apis/apps/v1/namespaces/" + ns + "/deployments/",
		"/api/v1/namespaces/" + ns + "/services/", "/apis/autoscaling/v2/namespaces/" + ns + "/horizontalpodautoscalers/"} {
		err := env.Do(ctx, "", http.MethodGet, p+kube.Name(ref), nil, nil)
		var se *kubetest.StatusError
		switch {
		case err == nil:
			n++
		case !errors.As(err, &se) || se.Code != http.StatusNotFound:
			t.Fatalf("GET %s%s: %v", p, kube.Name(ref), err)
		}
	}
	return n
}
