package kube

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/kube/kubetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// One real etcd + kube-apiserver (+ kube-controller-manager, for the
// garbage collector) for the package; each test works in a namespace and
// on nodes of its own.
var cluster = &kubetest.Shared{Options: kubetest.Options{ControllerManager: true}}

func TestMain(m *testing.M) { cluster.Main(m) }

func config(e *kubetest.Env, token string) Config {
	return Config{Host: e.Host, BearerToken: token, CAPEM: e.CAPEM}
}

// fixture is a namespace, a runtime in it, admin clients to inspect what
// it made, and GPU nodes labelled for this test only.
type fixture struct {
	env  *kubetest.Env
	ns   string
	rt   *Runtime
	c    *client           // the admin's, to inspect what the runtime made
	pool map[string]string // the node selector that picks this test's nodes
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := cluster.Get(t)
	ns := e.CreateNamespace(t)
	cfg := config(e, e.AdminToken)
	rt, err := New(cfg, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: e, ns: ns, rt: rt, pool: map[string]string{"tianshu.ai/pool": ns}}
	f.c = rt.c
	ctx := context.Background()
	// Two nodes as a kubelet with the NVIDIA device plugin and HAMi would
	// report them: 2 and 4 GPUs, 24 GiB of GPU memory each.
	for i, gpus := range []string{"2", "4"} {
		name := ns + "-n" + string(rune('0'+i))
		if err := e.CreateNode(ctx, name, f.pool, map[string]string{
			"cpu": "16", "memory": "64Gi", "pods": "110",
			"nvidia.com/gpu": gpus, "nvidia.com/gpucores": "100", "nvidia.com/gpumem": "24576",
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.c.remove(context.Background(), groupCore, "", nodes, name) })
	}
	return f
}

func (f *fixture) configMap(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	out := &corev1.ConfigMap{}
	return out, f.c.get(ctx, groupCore, f.ns, configMaps, name, out)
}

func (f *fixture) deployment(ctx context.Context, name string) (*appsv1.Deployment, error) {
	out := &appsv1.Deployment{}
	return out, f.c.get(ctx, groupApps, f.ns, deployments, name, out)
}

// editDeployment changes a Deployment as a person with kubectl edit
// would, again on a fresh copy when a controller wrote in between.
func (f *fixture) editDeployment(ctx context.Context, name string, edit func(*appsv1.Deployment)) error {
	for {
		d, err := f.deployment(ctx, name)
		if err != nil {
			return err
		}
		edit(d)
		if err := f.c.update(ctx, groupApps, f.ns, deployments, name, d, nil); !IsConflict(err) {
			return err
		}
	}
}

func (f *fixture) service(ctx context.Context, name string) (*corev1.Service, error) {
	out := &corev1.Service{}
	return out, f.c.get(ctx, groupCore, f.ns, services, name, out)
}

func (f *fixture) version(id string) algorithm.Version {
	return algorithm.Version{
		AlgorithmID: id, Version: "1.0",
		Runtime: algorithm.RuntimeContainer, Image: "registry.example/face-detect:1.0",
		Contract: algorithm.Contract{
			Inputs:  []algorithm.Field{{Name: "image", Type: "image"}},
			Outputs: []algorithm.Field{{Name: "objects", Type: "objects"}},
		},
		Replicas:  2,
		Resources: algorithm.Resources{CPU: 1.5, MemoryMB: 2048, GPU: 1},
		Placement: algorithm.Placement{NodeSelector: f.pool, Tolerations: []algorithm.Toleration{
			{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestDeployCreatesVersionObjects checks the Deployment and Service a
// version becomes: image, replicas, resources, probes on the protocol's
// health path, placement, labels, and owner references to the anchor.
func TestDeployCreatesVersionObjects(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	v := f.version("Face_Detect")
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	ref := algorithm.Ref{ID: v.AlgorithmID, Version: v.Version}
	name := Name(ref)
	anchor, err := f.configMap(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := f.deployment(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", *dep.Spec.Replicas)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != v.Image {
		t.Errorf("image = %q", c.Image)
	}
	for res, want := range map[corev1.ResourceName]string{"cpu": "1500m", "memory": "2Gi", ResourceGPU: "1"} {
		if q := c.Resources.Limits[res]; q.String() != want {
			t.Errorf("limits[%s] = %s, want %s", res, q.String(), want)
		}
	}
	if q := c.Resources.Requests[ResourceGPU]; q.String() != "1" {
		t.Errorf("requests[nvidia.com/gpu] = %s, want 1 (equal to the limit)", q.String())
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != algorithm.TianshuHealthPath {
		t.Errorf("readiness probe = %+v, want GET %s", c.ReadinessProbe, algorithm.TianshuHealthPath)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != algorithm.TianshuHealthPath {
		t.Errorf("liveness probe = %+v", c.LivenessProbe)
	}
	ps := dep.Spec.Template.Spec
	if ps.NodeSelector["tianshu.ai/pool"] != f.ns || len(ps.Tolerations) != 1 || ps.Tolerations[0].Key != "nvidia.com/gpu" {
		t.Errorf("placement: nodeSelector %v, tolerations %+v", ps.NodeSelector, ps.Tolerations)
	}
	if dep.Annotations[AnnotAlgorithm] != "Face_Detect" || dep.Labels[LabelVersionKey] == "" {
		t.Errorf("labels %v annotations %v", dep.Labels, dep.Annotations)
	}
	svc, err := f.service(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector[LabelVersionKey] != dep.Spec.Selector.MatchLabels[LabelVersionKey] || svc.Spec.Ports[0].Port != ContainerPort {
		t.Errorf("service selector %v ports %+v", svc.Spec.Selector, svc.Spec.Ports)
	}
	for _, o := range []metav1.Object{dep, svc} {
		refs := o.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != anchor.UID || refs[0].Kind != "ConfigMap" {
			t.Errorf("%s owner references = %+v, want the anchor %s", o.GetName(), refs, anchor.UID)
		}
	}
	// Everything of the version answers its selector.
	var list appsv1.DeploymentList
	err = f.c.list(ctx, groupApps, f.ns, deployments, Selector(ref), &list)
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("deployments by selector: %v, %d", err, len(list.Items))
	}
}

// TestFractionalGPUUsesHAMiResources checks that half a GPU with 4 GiB
// becomes one shared GPU, 50 % of its cores and 4096 MiB of its memory.
func TestFractionalGPUUsesHAMiResources(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	v := f.version("half")
	v.Resources = algorithm.Resources{GPU: 0.5, GPUMemoryMB: 4096}
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	dep, err := f.deployment(ctx, Name(algorithm.Ref{ID: "half", Version: "1.0"}))
	if err != nil {
		t.Fatal(err)
	}
	lim := dep.Spec.Template.Spec.Containers[0].Resources.Limits
	for res, want := range map[corev1.ResourceName]string{ResourceGPU: "1", ResourceGPUCores: "50", ResourceGPUMem: "4096"} {
		if q := lim[res]; q.String() != want {
			t.Errorf("limits[%s] = %s, want %s", res, q.String(), want)
		}
	}
}

// TestTimeSlicedGPUAsksForSlices checks that a time-sliced version asks
// for slices of shared GPUs (nvidia.com/gpu.shared), not whole ones, and is
// refused, naming resources.gpu, where no node offers enough slices.
func TestTimeSlicedGPUAsksForSlices(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if err := f.env.CreateNode(ctx, f.ns+"-ts", f.pool, map[string]string{
		"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu.shared": "8",
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.c.remove(context.Background(), groupCore, "", nodes, f.ns+"-ts") })
	v := f.version("slices")
	v.Resources = algorithm.Resources{GPU: 2, GPUSharing: algorithm.GPUSharingTimeSliced}
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	dep, err := f.deployment(ctx, Name(algorithm.Ref{ID: "slices", Version: "1.0"}))
	if err != nil {
		t.Fatal(err)
	}
	res := dep.Spec.Template.Spec.Containers[0].Resources
	if q := res.Limits[ResourceGPUShared]; q.String() != "2" {
		t.Errorf("limits[%s] = %s, want 2", ResourceGPUShared, q.String())
	}
	if q := res.Requests[ResourceGPUShared]; q.String() != "2" {
		t.Errorf("requests[%s] = %s, want 2 (extended resources are not overcommitted)", ResourceGPUShared, q.String())
	}
	if _, ok := res.Limits[ResourceGPU]; ok {
		t.Errorf("a time-sliced version asks for whole GPUs: %v", res.Limits)
	}

	big := f.version("manyslices")
	big.Resources = algorithm.Resources{GPU: 16, GPUSharing: algorithm.GPUSharingTimeSliced}
	err = f.rt.Deploy(ctx, big)
	var fe *algorithm.FieldError
	if !errors.As(err, &fe) || fe.Field != "resources.gpu" || !strings.Contains(fe.Msg, string(ResourceGPUShared)) {
		t.Fatalf("16 slices where a node has 8: %v", err)
	}
	if _, err := f.deployment(ctx, Name(algorithm.Ref{ID: "manyslices", Version: "1.0"})); err == nil {
		t.Error("the refused version's Deployment exists")
	}
}

// TestScaleToZero checks that a version that scales to zero is created
// with no replica, that Scale sets the count, and that deploying again (the
// manager's reconcile) keeps the count Scale set.
func TestScaleToZero(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	v := f.version("idle")
	v.Replicas, v.ScaleToZero = 3, true
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	ref := algorithm.Ref{ID: "idle", Version: "1.0"}
	replicas := func() int32 {
		t.Helper()
		dep, err := f.deployment(ctx, Name(ref))
		if err != nil {
			t.Fatal(err)
		}
		return *dep.Spec.Replicas
	}
	if n := replicas(); n != 0 {
		t.Fatalf("a new scale-to-zero version has %d replicas", n)
	}
	if err := f.rt.Scale(ctx, ref, 3); err != nil {
		t.Fatal(err)
	}
	if n := replicas(); n != 3 {
		t.Fatalf("after Scale(3): %d replicas", n)
	}
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	if n := replicas(); n != 3 {
		t.Fatalf("deploying again reset the count to %d", n)
	}
	if err := f.rt.Scale(ctx, ref, 0); err != nil {
		t.Fatal(err)
	}
	if n := replicas(); n != 0 {
		t.Fatalf("after Scale(0): %d replicas", n)
	}
	if err := f.rt.Scale(ctx, algorithm.Ref{ID: "never", Version: "1"}, 1); err == nil {
		t.Fatal("scaling a version with no Deployment succeeded")
	}
}

// TestAutoscalerOnTheInvokersQueue checks that autoscale.inFlight makes
// the autoscaler read the platform's in-flight calls to the version as an
// external metric (average per replica), alone or beside CPU, and that the
// API server takes the object as written.
func TestAutoscalerOnTheInvokersQueue(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name    string
		a       algorithm.Autoscale
		metrics int
	}{
		{"queue", algorithm.Autoscale{MaxReplicas: 6, InFlight: 4}, 1},
		{"queuecpu", algorithm.Autoscale{MaxReplicas: 6, InFlight: 4, CPUPercent: 70}, 2},
	} {
		v := f.version(tc.name)
		v.Resources = algorithm.Resources{CPU: 1}
		if tc.a.CPUPercent == 0 {
			v.Resources = algorithm.Resources{} // no CPU request needed for the queue alone
		}
		v.Autoscale = tc.a
		if err := v.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := f.rt.Deploy(ctx, v); err != nil {
			t.Fatal(err)
		}
		ref := algorithm.Ref{ID: tc.name, Version: "1.0"}
		var hpa autoscalingv2.HorizontalPodAutoscaler
		if err := f.c.get(ctx, groupAutoscaling, f.ns, autoscalers, Name(ref), &hpa); err != nil {
			t.Fatal(err)
		}
		ms := hpa.Spec.Metrics
		if len(ms) != tc.metrics {
			t.Fatalf("%s: %d metrics, want %d: %+v", tc.name, len(ms), tc.metrics, ms)
		}
		ext := ms[len(ms)-1].External
		if ext == nil || ext.Metric.Name != InFlightMetric || ext.Metric.Selector.MatchLabels["algorithm"] != tc.name ||
			ext.Metric.Selector.MatchLabels["version"] != "1.0" || ext.Target.Type != autoscalingv2.AverageValueMetricType || ext.Target.AverageValue.String() != "4" {
			t.Errorf("%s: external metric %+v", tc.name, ext)
		}
	}
}

// TestDeployedListsThisPlatformsVersions checks that each platform lists
// only the versions it deployed in a namespace it shares, and that a
// runtime with no platform id lists none (it cannot tell them apart).
func TestDeployedListsThisPlatformsVersions(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	other, err := New(config(f.env, f.env.AdminToken), f.ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.rt.SetPlatform("p1")
	other.SetPlatform("p2")
	for _, id := range []string{"a", "b"} {
		if err := f.rt.Deploy(ctx, f.version(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Deploy(ctx, f.version("c")); err != nil {
		t.Fatal(err)
	}
	mine, err := f.rt.Deployed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].ID < mine[j].ID })
	if len(mine) != 2 || mine[0] != (algorithm.Ref{ID: "a", Version: "1.0"}) || mine[1].ID != "b" {
		t.Errorf("p1 deployed %v", mine)
	}
	if theirs, err := other.Deployed(ctx); err != nil || len(theirs) != 1 || theirs[0].ID != "c" {
		t.Errorf("p2 deployed %v, %v", theirs, err)
	}
	anon, err := New(config(f.env, f.env.AdminToken), f.ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	if none, err := anon.Deployed(ctx); err != nil || none != nil {
		t.Errorf("a runtime without a platform id lists %v, %v", none, err)
	}
}

// TestImpossibleGPURequestIsRefused checks that asking for more than any
// node has fails with the field named, and leaves nothing behind.
func TestImpossibleGPURequestIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	cases := []struct {
		res   algorithm.Resources
		field string
	}{
		{algorithm.Resources{GPU: 8}, "resources.gpu"},
		{algorithm.Resources{GPU: 0.5, GPUMemoryMB: 32768}, "resources.gpuMemoryMB"},
	}
	for _, c := range cases {
		v := f.version("toobig")
		v.Resources = c.res
		err := f.rt.Deploy(ctx, v)
		var fe *algorithm.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Fatalf("resources %+v: err = %v, want a FieldError on %s", c.res, err, c.field)
		}
		t.Logf("refused: %v", err)
	}
	// A selector that matches no node is refused as well.
	v := f.version("nowhere")
	v.Placement.NodeSelector = map[string]string{"tianshu.ai/pool": "none"}
	if err := f.rt.Deploy(ctx, v); err == nil {
		t.Fatal("a GPU version placed on no node was accepted")
	}
	f.assertEmpty(t)
}

// TestRedeployReconciles checks that deploying again brings objects back
// to the definition: a changed image and replica count, a Service someone
// deleted by hand recreated, and a Deployment edited by hand reset.
func TestRedeployReconciles(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	v := f.version("recon")
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	name := Name(algorithm.Ref{ID: "recon", Version: "1.0"})
	if err := f.c.remove(ctx, groupCore, f.ns, services, name); err != nil {
		t.Fatal(err)
	}
	if err := f.editDeployment(ctx, name, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "evil.example/other:1"
	}); err != nil {
		t.Fatal(err)
	}
	v.Replicas = 3
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	dep, err := f.deployment(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != v.Image || *dep.Spec.Replicas != 3 {
		t.Fatalf("after redeploy: image %s replicas %d", got, *dep.Spec.Replicas)
	}
	if _, err := f.service(ctx, name); err != nil {
		t.Fatalf("service not recreated: %v", err)
	}
}

// TestRemoveDeletesEverything checks that Remove leaves nothing of the
// version, and that removing twice is fine.
func TestRemoveDeletesEverything(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	v := f.version("gone")
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	ref := algorithm.Ref{ID: "gone", Version: "1.0"}
	for range 2 {
		if err := f.rt.Remove(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	name := Name(ref)
	if _, err := f.deployment(ctx, name); !IsNotFound(err) {
		t.Errorf("deployment: %v, want not found", err)
	}
	if _, err := f.service(ctx, name); !IsNotFound(err) {
		t.Errorf("service: %v, want not found", err)
	}
	if _, err := f.configMap(ctx, name); !IsNotFound(err) {
		t.Errorf("anchor: %v, want not found", err)
	}
}

// TestAnchorDeletionCascades checks the owner references with the real
// garbage collector: deleting only the anchor ConfigMap removes the
// Deployment and Service; and the Deployment controller made a
// ReplicaSet for the version's pods meanwhile.
func TestAnchorDeletionCascades(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	v := f.version("cascade")
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	ref := algorithm.Ref{ID: "cascade", Version: "1.0"}
	testenv.Eventually(t, time.Minute, "a ReplicaSet of the version", func() bool {
		var rs appsv1.ReplicaSetList
		err := f.c.list(ctx, groupApps, f.ns, "replicasets", Selector(ref), &rs)
		return err == nil && len(rs.Items) == 1
	})
	if err := f.c.remove(ctx, groupCore, f.ns, configMaps, Name(ref)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "the garbage collector to delete the Deployment and Service", func() bool {
		_, errD := f.deployment(ctx, Name(ref))
		_, errS := f.service(ctx, Name(ref))
		return IsNotFound(errD) && IsNotFound(errS)
	})
}

// TestRBACDeniedLeavesNothing checks a runtime whose identity may not
// create objects in the namespace: a clear error, nothing created.
func TestRBACDeniedLeavesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	limited, err := New(config(f.env, f.env.LimitedToken), f.ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := f.version("denied")
	v.Resources = algorithm.Resources{CPU: 1} // no GPU: no node listing needed
	err = limited.Deploy(ctx, v)
	if !IsForbidden(err) {
		t.Fatalf("err = %v, want forbidden", err)
	}
	t.Logf("denied: %v", err)
	f.assertEmpty(t)

	// Allowed the anchor but not the Deployment: what was created goes.
	role := map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
		"metadata": map[string]any{"name": "anchors-only"},
		"rules": []any{map[string]any{"apiGroups": []string{""}, "resources": []string{"configmaps", "services"},
			"verbs": []string{"get", "create", "update", "delete"}}},
	}
	binding := map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": "anchors-only"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "anchors-only"},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": kubetest.LimitedUser}},
	}
	base := "/apis/rbac.authorization.k8s.io/v1/namespaces/" + f.ns
	if err := f.env.Do(ctx, "", "POST", base+"/roles", role, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.env.Do(ctx, "", "POST", base+"/rolebindings", binding, nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the role to take effect", func() bool {
		err := limited.c.get(ctx, groupCore, f.ns, configMaps, "none", &corev1.ConfigMap{})
		return IsNotFound(err)
	})
	err = limited.Deploy(ctx, v)
	if !IsForbidden(err) || !strings.Contains(err.Error(), "deployment") {
		t.Fatalf("err = %v, want the deployment forbidden", err)
	}
	t.Logf("denied: %v", err)
	f.assertEmpty(t)
}

// assertEmpty fails the test if any anchor or Deployment is left in the
// fixture's namespace.
func (f *fixture) assertEmpty(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var cms corev1.ConfigMapList
	var deps appsv1.DeploymentList
	err1 := f.c.list(ctx, groupCore, f.ns, configMaps, LabelManagedBy+"="+managedBy, &cms)
	err2 := f.c.list(ctx, groupApps, f.ns, deployments, "", &deps)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if len(cms.Items)+len(deps.Items) != 0 {
		t.Fatalf("left behind: %d anchors, %d deployments", len(cms.Items), len(deps.Items))
	}
}

// TestManagerRunsContainerVersion checks the algorithm manager with this
// runtime: applying a container version creates its objects, the manager
// recreates one deleted by hand, an impossible update is refused,
// stopping the version removes everything, and closing the manager leaves
// a running version in the cluster. (No kubelet runs the image, so the instance never
// becomes ready here.)
func TestManagerRunsContainerVersion(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	m, err := algorithm.New(algorithm.Options{Containers: f.rt, HealthInterval: 50 * time.Millisecond,
		ReconcileInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	v := f.version("managed")
	if err := m.Apply(ctx, v); err != nil {
		t.Fatal(err)
	}
	ref := algorithm.Ref{ID: "managed", Version: "1.0"}
	if _, err := f.deployment(ctx, Name(ref)); err != nil {
		t.Fatalf("deployment after Apply: %v", err)
	}
	insts, err := m.Instances(ref)
	if err != nil || len(insts) != 1 {
		t.Fatalf("instances: %v %+v", err, insts)
	}
	// Someone deletes the Service by hand: the manager puts it back.
	if err := f.c.remove(ctx, groupCore, f.ns, services, Name(ref)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the manager to recreate the Service", func() bool {
		_, err := f.service(ctx, Name(ref))
		return err == nil
	})
	v.Resources.GPU = 16
	var fe *algorithm.FieldError
	if err := m.Apply(ctx, v); !errors.As(err, &fe) || fe.Field != "resources.gpu" {
		t.Fatalf("apply with 16 GPUs: %v, want a FieldError on resources.gpu", err)
	}
	if err := m.Stop(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := f.deployment(ctx, Name(ref)); !IsNotFound(err) {
		t.Fatalf("deployment after Stop: %v, want not found", err)
	}
	// Closing the manager (the platform stops or restarts) leaves the
	// version running in the cluster.
	v.Resources.GPU = 1
	if err := m.Apply(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.deployment(ctx, Name(ref)); err != nil {
		t.Fatalf("deployment after Close: %v, want it kept", err)
	}
}

// TestStatusFollowsDeployment plays the kubelet's part: it marks one of
// the version's two pods (made by the real Deployment and ReplicaSet
// controllers) running and ready, and checks that Status sees one ready
// replica of two; then the other pod's image cannot be pulled, and Status
// says so.
func TestStatusFollowsDeployment(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	ref := algorithm.Ref{ID: "status", Version: "1.0"}
	if _, err := f.rt.Status(ctx, ref); !IsNotFound(err) {
		t.Fatalf("status before deploy: %v, want not found", err)
	}
	if err := f.rt.Deploy(ctx, f.version("status")); err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	testenv.Eventually(t, time.Minute, "the ReplicaSet controller to create 2 pods", func() bool {
		err := f.c.list(ctx, groupCore, f.ns, "pods", Selector(ref), &pods)
		return err == nil && len(pods.Items) == 2
	})
	pod := pods.Items[0]
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	path := resourcePath(groupCore, f.ns, "pods") + "/" + pod.Name + "/status"
	if err := f.c.do(ctx, http.MethodPut, path, nil, &pod, nil); err != nil {
		t.Fatal(err)
	}
	var st Status
	var err error
	testenv.Eventually(t, time.Minute, "one ready replica in the Deployment's status", func() bool {
		st, err = f.rt.Status(ctx, ref)
		return err == nil && st.Ready == 1
	})
	if st.Desired != 2 || st.Updated != 2 || st.Message != "" {
		t.Fatalf("status = %+v", st)
	}
	t.Logf("status: %+v", st)

	// The other pod's image cannot be pulled, as its kubelet reports.
	pod = pods.Items[1]
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "algorithm", Image: "registry.example/face-detect:1.0",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "ErrImagePull", Message: "manifest unknown: registry.example/face-detect:1.0"}}}}
	path = resourcePath(groupCore, f.ns, "pods") + "/" + pod.Name + "/status"
	if err := f.c.do(ctx, http.MethodPut, path, nil, &pod, nil); err != nil {
		t.Fatal(err)
	}
	if st, err = f.rt.Status(ctx, ref); err != nil || !strings.Contains(st.Message, "ErrImagePull: manifest unknown") {
		t.Fatalf("status with a missing image = %+v, %v", st, err)
	}
	t.Logf("status: %+v", st)
}

// TestAPIServerGoneIsAnError stops a control plane of its own under the
// runtime: Deploy, Status and Remove then answer errors naming what they
// tried, promptly, instead of hanging or succeeding.
func TestAPIServerGoneIsAnError(t *testing.T) {
	e := kubetest.Start(t, kubetest.Options{})
	ctx := ctxT(t)
	cfg := config(e, e.AdminToken)
	cfg.Timeout = 5 * time.Second
	rt, err := New(cfg, "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	v := algorithm.Version{AlgorithmID: "gone", Version: "1", Runtime: algorithm.RuntimeContainer, Image: "r/x:1",
		Contract: algorithm.Contract{Inputs: []algorithm.Field{{Name: "image", Type: "image"}}}}
	if err := rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	e.Stop()
	ref := algorithm.Ref{ID: "gone", Version: "1"}
	v.Replicas = 2
	if err := rt.Deploy(ctx, v); err == nil || !strings.Contains(err.Error(), "configmap") {
		t.Fatalf("deploy with the API server gone: %v", err)
	} else {
		t.Logf("deploy: %v", err)
	}
	if _, err := rt.Status(ctx, ref); err == nil {
		t.Fatal("status with the API server gone succeeded")
	}
	if err := rt.Remove(ctx, ref); err == nil {
		t.Fatal("remove with the API server gone succeeded")
	}
}

// TestAutoscalerOwnsReplicas checks the HorizontalPodAutoscaler of an
// autoscaled version, that deploying again leaves the replica count the
// autoscaler set, and that turning autoscaling off removes it.
func TestAutoscalerOwnsReplicas(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	v := f.version("scaled")
	v.Resources = algorithm.Resources{CPU: 1, MemoryMB: 512}
	v.Autoscale = algorithm.Autoscale{MinReplicas: 1, MaxReplicas: 5, CPUPercent: 60}
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	ref := algorithm.Ref{ID: "scaled", Version: "1.0"}
	name := Name(ref)
	var hpa autoscalingv2.HorizontalPodAutoscaler
	if err := f.c.get(ctx, groupAutoscaling, f.ns, autoscalers, name, &hpa); err != nil {
		t.Fatal(err)
	}
	anchor, err := f.configMap(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	sp := hpa.Spec
	if sp.ScaleTargetRef.Name != name || *sp.MinReplicas != 1 || sp.MaxReplicas != 5 ||
		*sp.Metrics[0].Resource.Target.AverageUtilization != 60 || hpa.OwnerReferences[0].UID != anchor.UID {
		t.Fatalf("autoscaler = %+v", hpa)
	}
	// The autoscaler (played by hand) scales to 4; a reconcile keeps it.
	four := int32(4)
	if err := f.editDeployment(ctx, name, func(d *appsv1.Deployment) { d.Spec.Replicas = &four }); err != nil {
		t.Fatal(err)
	}
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	dep, err := f.deployment(ctx, name)
	if err != nil || *dep.Spec.Replicas != 4 {
		t.Fatalf("replicas after reconcile = %d (%v), want the autoscaler's 4", *dep.Spec.Replicas, err)
	}
	v.Autoscale = algorithm.Autoscale{}
	if err := f.rt.Deploy(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := f.c.get(ctx, groupAutoscaling, f.ns, autoscalers, name, &hpa); !IsNotFound(err) {
		t.Fatalf("autoscaler after turning it off: %v, want not found", err)
	}
	if dep, err = f.deployment(ctx, name); err != nil || *dep.Spec.Replicas != 2 {
		t.Fatalf("replicas without autoscaler = %d (%v), want the version's 2", *dep.Spec.Replicas, err)
	}
}
