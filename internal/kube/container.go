// Package kube runs container algorithm versions on Kubernetes: each
// version becomes a Deployment, a Service and, when it autoscales, a
// HorizontalPodAutoscaler, anchored on a ConfigMap that owns them all, so that everything of a version is found by its labels and
// removed together (by us, or by Kubernetes' garbage collector when the
// anchor goes). It talks to the API server with plain REST requests whose
// bodies are the k8s.io/api types (see client.go for why not client-go),
// and is loaded only where a Kubernetes runtime is configured.
package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
)

// Extended resource names of GPUs: the NVIDIA device plugin's whole GPUs,
// and HAMi's memory (MiB) and core share (percent of one GPU) of a
// fraction of one.
const (
	ResourceGPU      corev1.ResourceName = "nvidia.com/gpu"
	ResourceGPUMem   corev1.ResourceName = "nvidia.com/gpumem"
	ResourceGPUCores corev1.ResourceName = "nvidia.com/gpucores"
	// ResourceGPUShared is a time slice of a GPU as the NVIDIA device
	// plugin names it when time-slicing renames shared GPUs
	// (renameByDefault), so that a pod asks for a slice or a whole GPU.
	ResourceGPUShared corev1.ResourceName = "nvidia.com/gpu.shared"
)

// InFlightMetric is the platform's metric of calls in flight to an
// algorithm instance, which an autoscaler on the invoker's queue reads
// through the cluster's external metrics API.
const InFlightMetric = "tianshu_algorithm_in_flight_requests"

// gpuResources are the extended resources a version's GPUs may ask for.
var gpuResources = []corev1.ResourceName{ResourceGPU, ResourceGPUShared, ResourceGPUCores, ResourceGPUMem}

// Labels and annotations on every object of a version.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	LabelComponent  = "app.kubernetes.io/component"
	LabelVersionKey = "tianshu.ai/version-key" // the selector: a hash of algorithm@version
	LabelPlatform   = "tianshu.ai/platform"    // the platform that deployed it (SetPlatform)
	AnnotAlgorithm  = "tianshu.ai/algorithm"
	AnnotVersion    = "tianshu.ai/version"
	managedBy       = "tianshu"
	component       = "algorithm"
)

// ContainerPort is the port a container version's image listens on; the
// container gets it in $PORT too, as processes do.
const ContainerPort = 8080

// Runtime creates, updates and removes the Kubernetes objects of container
// versions in one namespace.
type Runtime struct {
	ns       string
	c        *client
	log      *slog.Logger
	platform string // labels what this platform deploys; "" : unlabelled, never pruned
}

// SetPlatform labels every object deployed from now on with the
// platform's id, which Deployed lists by; call it before the first Deploy.
func (r *Runtime) SetPlatform(id string) { r.platform = id }

// Deployed lists the versions whose objects this platform deployed in the
// namespace (by their anchors): none when no platform id is set, since
// then nothing tells this platform's objects from another's.
func (r *Runtime) Deployed(ctx context.Context) ([]algorithm.Ref, error) {
	if r.platform == "" {
		return nil, nil
	}
	var list corev1.ConfigMapList
	sel := LabelManagedBy + "=" + managedBy + "," + LabelComponent + "=" + component + "," + LabelPlatform + "=" + r.platform
	if err := r.c.list(ctx, groupCore, r.ns, configMaps, sel, &list); err != nil {
		return nil, fmt.Errorf("kube: list the platform's versions: %w", err)
	}
	out := make([]algorithm.Ref, 0, len(list.Items))
	for _, cm := range list.Items {
		id, ver := cm.Annotations[AnnotAlgorithm], cm.Annotations[AnnotVersion]
		if id != "" && ver != "" {
			out = append(out, algorithm.Ref{ID: id, Version: ver})
		}
	}
	return out, nil
}

var _ algorithm.ContainerRuntime = (*Runtime)(nil)

// New returns a runtime working in namespace through the API server cfg
// points at. It makes no request.
func New(cfg Config, namespace string, log *slog.Logger) (*Runtime, error) {
	if namespace == "" {
		return nil, errors.New("kube: namespace is required")
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runtime{ns: namespace, c: c, log: log}, nil
}

// Kinds of objects the runtime touches: API group and plural.
const (
	groupCore, groupApps = "", "apps/v1"
	groupAutoscaling     = "autoscaling/v2"
	configMaps           = "configmaps"
	services             = "services"
	deployments          = "deployments"
	autoscalers          = "horizontalpodautoscalers"
	nodes                = "nodes"
)

// Name is the Kubernetes name of a version's objects: "algo-", the id and
// version made DNS-safe and shortened, and a hash of both, so two versions
// never share a name and every name is a valid DNS label (≤ 63).
func Name(ref algorithm.Ref) string {
	return "algo-" + dnsPart(ref.ID, 20) + "-" + dnsPart(ref.Version, 16) + "-" + key(ref)[:10]
}

// key is the label value that selects a version's objects.
func key(ref algorithm.Ref) string {
	sum := sha256.Sum256([]byte(ref.ID + "@" + ref.Version))
	return hex.EncodeToString(sum[:])[:40]
}

// Selector is the label selector of everything of one version.
func Selector(ref algorithm.Ref) string { return LabelVersionKey + "=" + key(ref) }

// dnsPart lower-cases s, maps what a DNS label cannot hold to '-', and
// cuts it to n characters.
func dnsPart(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return strings.Trim(s, "-")
}

// Deploy creates a version's objects, or brings existing ones to the
// version's definition. A request no node can satisfy is refused before
// anything is created, as a *algorithm.FieldError naming the field. When
// creating the Deployment or Service fails, what was created is removed.
func (r *Runtime) Deploy(ctx context.Context, v algorithm.Version) error {
	if v.Runtime != algorithm.RuntimeContainer {
		return &algorithm.FieldError{Field: "runtime", Msg: "the Kubernetes runtime runs container versions only"}
	}
	if err := v.Validate(); err != nil {
		return err
	}
	res, err := r.check(ctx, v)
	if err != nil {
		return err
	}
	ref := algorithm.Ref{ID: v.AlgorithmID, Version: v.Version}
	anchor, created, err := r.ensureAnchor(ctx, v)
	if err != nil {
		return err
	}
	owner := []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "ConfigMap", Name: anchor.Name, UID: anchor.UID,
		Controller: ptr(true), BlockOwnerDeletion: ptr(true),
	}}
	dep := r.deployment(v, res, owner)
	svc := r.service(ref, owner)
	err = r.apply(ctx, dep, svc, v.Autoscale.MaxReplicas > 0 || v.ScaleToZero)
	if err == nil {
		err = r.applyAutoscaler(ctx, v, owner)
	}
	if err != nil {
		if created {
			// Nothing half-made stays behind: the anchor and whatever
			// was created under it go.
			if rmErr := r.Remove(context.WithoutCancel(ctx), ref); rmErr != nil {
				r.log.Warn("kube cleanup after failed deploy failed", "algorithm", ref.ID, "version", ref.Version, "err", rmErr)
			}
		}
		return err
	}
	r.log.Info("kube version deployed", "algorithm", ref.ID, "version", ref.Version, "name", anchor.Name, "namespace", r.ns)
	return nil
}

// Check refuses, as a *algorithm.FieldError, a version's resources that no
// node the placement admits can give one replica; it creates nothing.
func (r *Runtime) Check(ctx context.Context, v algorithm.Version) error {
	_, err := r.check(ctx, v)
	return err
}

func (r *Runtime) check(ctx context.Context, v algorithm.Version) (corev1.ResourceRequirements, error) {
	res, err := podResources(v.Resources)
	if err != nil {
		return res, err
	}
	return res, r.checkCapacity(ctx, v, res)
}

// ensureAnchor creates or updates the ConfigMap that owns a version's
// objects and records its definition.
func (r *Runtime) ensureAnchor(ctx context.Context, v algorithm.Version) (*corev1.ConfigMap, bool, error) {
	ref := algorithm.Ref{ID: v.AlgorithmID, Version: v.Version}
	def, err := json.Marshal(v) // Secrets are not marshalled (json:"-")
	if err != nil {
		return nil, false, err
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: r.meta(ref),
		Data:       map[string]string{"version.json": string(def)},
	}
	got := &corev1.ConfigMap{}
	created, err := upsert(ctx, r, groupCore, configMaps, cm.Name, cm, got, func(old *corev1.ConfigMap) {
		old.Labels, old.Annotations, old.Data = cm.Labels, cm.Annotations, cm.Data
	})
	return got, created, err
}

// apply creates the Deployment and Service, or updates their specs.
func (r *Runtime) apply(ctx context.Context, dep *appsv1.Deployment, svc *corev1.Service, keepReplicas bool) error {
	if _, err := upsert(ctx, r, groupApps, deployments, dep.Name, dep, nil, func(old *appsv1.Deployment) {
		replicas := old.Spec.Replicas
		old.Labels, old.Annotations, old.OwnerReferences, old.Spec = dep.Labels, dep.Annotations, dep.OwnerReferences, dep.Spec
		if keepReplicas {
			// The autoscaler (or the platform's scaling to zero) owns
			// the count; setting it back would undo its work on every
			// reconcile.
			old.Spec.Replicas = replicas
		}
	}); err != nil {
		return err
	}
	_, err := upsert(ctx, r, groupCore, services, svc.Name, svc, nil, func(old *corev1.Service) {
		// The cluster IP the API server assigned stays.
		old.Labels, old.Annotations, old.OwnerReferences = svc.Labels, svc.Annotations, svc.OwnerReferences
		old.Spec.Selector, old.Spec.Ports = svc.Spec.Selector, svc.Spec.Ports
	})
	return err
}

// upsert creates obj (the API server's copy into out, when not nil), or,
// when it exists, reads the stored object, lets merge copy what the
// runtime owns into it and writes it back: what others own (a Service's
// cluster IP, status, fields the API server defaulted) stays. A write
// that lost a race with another writer (a controller) is retried on a
// fresh read. It reports whether it created the object.
func upsert[T any](ctx context.Context, r *Runtime, group, plural, name string, obj, out *T, merge func(old *T)) (bool, error) {
	kind := strings.TrimSuffix(plural, "s")
	var dst any // a nil *T in an interface is not a nil interface
	if out != nil {
		dst = out
	}
	err := r.c.create(ctx, group, r.ns, plural, obj, dst)
	if err == nil {
		return true, nil
	}
	if !IsAlreadyExists(err) {
		return false, fmt.Errorf("kube: create %s %s/%s: %w", kind, r.ns, name, err)
	}
	for attempt := 1; ; attempt++ {
		old := new(T)
		if err := r.c.get(ctx, group, r.ns, plural, name, old); err != nil {
			return false, fmt.Errorf("kube: get %s %s/%s: %w", kind, r.ns, name, err)
		}
		merge(old)
		err := r.c.update(ctx, group, r.ns, plural, name, old, dst)
		if err == nil {
			return false, nil
		}
		if !IsConflict(err) || attempt == maxConflictRetries {
			return false, fmt.Errorf("kube: update %s %s/%s: %w", kind, r.ns, name, err)
		}
	}
}

// maxConflictRetries bounds upsert's read-merge-write attempts.
const maxConflictRetries = 5

// Scale sets the replica count of a version's Deployment (which must
// exist); setting what it already has changes nothing.
func (r *Runtime) Scale(ctx context.Context, ref algorithm.Ref, replicas int) error {
	name := Name(ref)
	for attempt := 0; ; attempt++ {
		dep := &appsv1.Deployment{}
		if err := r.c.get(ctx, groupApps, r.ns, deployments, name, dep); err != nil {
			return err
		}
		if dep.Spec.Replicas != nil && int(*dep.Spec.Replicas) == replicas {
			return nil
		}
		n := int32(replicas)
		dep.Spec.Replicas = &n
		err := r.c.update(ctx, groupApps, r.ns, deployments, name, dep, nil)
		if IsConflict(err) && attempt < 4 {
			continue // the controller wrote its status meanwhile: read it again
		}
		if err != nil {
			return err
		}
		r.log.Info("kube version scaled", "algorithm", ref.ID, "version", ref.Version, "replicas", replicas)
		return nil
	}
}

// Remove deletes everything of a version: the Deployment (and, through
// the garbage collector, its ReplicaSets and Pods), the Service and the
// anchor. Removing what does not exist is not an error.
func (r *Runtime) Remove(ctx context.Context, ref algorithm.Ref) error {
	name := Name(ref)
	var errs []error
	for _, k := range []struct{ group, plural, kind string }{
		{groupAutoscaling, autoscalers, "horizontalpodautoscaler"}, {groupApps, deployments, "deployment"},
		{groupCore, services, "service"}, {groupCore, configMaps, "configmap"},
	} {
		if err := r.c.remove(ctx, k.group, r.ns, k.plural, name); err != nil && !IsNotFound(err) {
			errs = append(errs, fmt.Errorf("kube: delete %s %s/%s: %w", k.kind, r.ns, name, err))
		}
	}
	if len(errs) == 0 {
		r.log.Info("kube version removed", "algorithm", ref.ID, "version", ref.Version, "name", name, "namespace", r.ns)
	}
	return errors.Join(errs...)
}

// applyAutoscaler creates or updates the version's HorizontalPodAutoscaler
// on CPU use, or deletes one the version no longer asks for.
func (r *Runtime) applyAutoscaler(ctx context.Context, v algorithm.Version, owner []metav1.OwnerReference) error {
	ref := algorithm.Ref{ID: v.AlgorithmID, Version: v.Version}
	name := Name(ref)
	a := v.Autoscale
	if a.MaxReplicas == 0 {
		if err := r.c.remove(ctx, groupAutoscaling, r.ns, autoscalers, name); err != nil && !IsNotFound(err) {
			return fmt.Errorf("kube: delete horizontalpodautoscaler %s/%s: %w", r.ns, name, err)
		}
		return nil
	}
	minR, cpu := int32(max(a.MinReplicas, 1)), int32(a.CPUPercent)
	if cpu == 0 {
		cpu = 80
	}
	var metrics []autoscalingv2.MetricSpec
	if a.CPUPercent > 0 || a.InFlight == 0 {
		metrics = append(metrics, autoscalingv2.MetricSpec{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{
				Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &cpu}},
		})
	}
	if a.InFlight > 0 {
		// The invoker's queue, as the platform exports it: an external
		// metric (the calls are counted where they are made, not in the
		// pods), divided by the replicas for the average.
		metrics = append(metrics, autoscalingv2.MetricSpec{
			Type: autoscalingv2.ExternalMetricSourceType,
			External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: InFlightMetric, Selector: &metav1.LabelSelector{
					MatchLabels: map[string]string{"algorithm": ref.ID, "version": ref.Version}}},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType,
					AverageValue: resource.NewQuantity(int64(a.InFlight), resource.DecimalSI)},
			},
		})
	}
	meta := r.meta(ref)
	meta.OwnerReferences = owner
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: meta,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    &minR,
			MaxReplicas:    int32(a.MaxReplicas),
			Metrics:        metrics,
		},
	}
	_, err := upsert(ctx, r, groupAutoscaling, autoscalers, name, hpa, nil, func(old *autoscalingv2.HorizontalPodAutoscaler) {
		old.Labels, old.Annotations, old.OwnerReferences, old.Spec = hpa.Labels, hpa.Annotations, hpa.OwnerReferences, hpa.Spec
	})
	return err
}

// Status is how far a version's Deployment has come, as its controller
// and the kubelets report it (see algorithm.ContainerStatus).
type Status = algorithm.ContainerStatus

// Waiting reasons of a container that mean it will not start by itself.
var stuckReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"CrashLoopBackOff": true, "CreateContainerConfigError": true, "CreateContainerError": true,
}

// Status reads the Deployment's status. A version that was never deployed
// (or was removed) answers an error for which IsNotFound holds.
func (r *Runtime) Status(ctx context.Context, ref algorithm.Ref) (Status, error) {
	var dep appsv1.Deployment
	if err := r.c.get(ctx, groupApps, r.ns, deployments, Name(ref), &dep); err != nil {
		return Status{}, fmt.Errorf("kube: get deployment %s/%s: %w", r.ns, Name(ref), err)
	}
	st := Status{
		Updated:   int(dep.Status.UpdatedReplicas),
		Ready:     int(dep.Status.ReadyReplicas),
		Available: int(dep.Status.AvailableReplicas),
	}
	if dep.Spec.Replicas != nil {
		st.Desired = int(*dep.Spec.Replicas)
	}
	for _, c := range dep.Status.Conditions {
		failing := (c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse) ||
			(c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue)
		if failing {
			st.Message = c.Reason + ": " + c.Message
		}
	}
	if st.Message == "" && st.Ready < st.Desired {
		// The kubelet reports why a container does not start on its
		// pod, not on the Deployment.
		var pods corev1.PodList
		if err := r.c.list(ctx, groupCore, r.ns, "pods", Selector(ref), &pods); err != nil {
			return st, fmt.Errorf("kube: list pods of %s/%s: %w", r.ns, Name(ref), err)
		}
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && stuckReasons[w.Reason] {
					st.Message = fmt.Sprintf("pod %s: %s: %s", p.Name, w.Reason, w.Message)
					return st, nil
				}
			}
		}
	}
	return st, nil
}

// URL is the in-cluster base URL of a version's Service, which the
// invoker calls.
func (r *Runtime) URL(ref algorithm.Ref) string {
	return "http://" + Name(ref) + "." + r.ns + ".svc:" + strconv.Itoa(ContainerPort)
}

// meta is the name, labels and annotations of a version's objects.
func (r *Runtime) meta(ref algorithm.Ref) metav1.ObjectMeta {
	m := metav1.ObjectMeta{
		Name:      Name(ref),
		Namespace: r.ns,
		Labels: map[string]string{
			LabelManagedBy:  managedBy,
			LabelComponent:  component,
			LabelVersionKey: key(ref),
		},
		// Ids may hold characters label values may not; annotations
		// keep them exact.
		Annotations: map[string]string{AnnotAlgorithm: ref.ID, AnnotVersion: ref.Version},
	}
	if r.platform != "" {
		m.Labels[LabelPlatform] = r.platform
	}
	return m
}

// deployment renders a version's Deployment.
func (r *Runtime) deployment(v algorithm.Version, res corev1.ResourceRequirements, owner []metav1.OwnerReference) *appsv1.Deployment {
	ref := algorithm.Ref{ID: v.AlgorithmID, Version: v.Version}
	meta := r.meta(ref)
	meta.OwnerReferences = owner
	replicas := int32(max(v.Replicas, 1))
	if v.ScaleToZero {
		replicas = 0 // until a running task uses it (Scale)
	}
	c := corev1.Container{
		Name:      "algorithm",
		Image:     v.Image,
		Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: ContainerPort, Protocol: corev1.ProtocolTCP}},
		Env:       []corev1.EnvVar{{Name: "PORT", Value: strconv.Itoa(ContainerPort)}},
		Resources: res,
	}
	handler := corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}}
	if p := v.HealthCheckPath(); p != "" {
		handler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: p, Port: intstr.FromString("http")}}
	}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: handler, PeriodSeconds: 5, FailureThreshold: 2}
	// Liveness is slower to act than readiness: a busy instance is taken
	// out of rotation long before it is restarted.
	c.LivenessProbe = &corev1.Probe{ProbeHandler: handler, InitialDelaySeconds: 30, PeriodSeconds: 10, FailureThreshold: 6}
	var tol []corev1.Toleration
	for _, t := range v.Placement.Tolerations {
		tol = append(tol, corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator),
			Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	podMeta := metav1.ObjectMeta{Labels: meta.Labels, Annotations: meta.Annotations}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelVersionKey: key(ref)}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podMeta,
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{c},
					NodeSelector: v.Placement.NodeSelector,
					Tolerations:  tol,
					// An algorithm needs no API access.
					AutomountServiceAccountToken: ptr(false),
				},
			},
		},
	}
}

// service renders a version's Service.
func (r *Runtime) service(ref algorithm.Ref, owner []metav1.OwnerReference) *corev1.Service {
	meta := r.meta(ref)
	meta.OwnerReferences = owner
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta,
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{LabelVersionKey: key(ref)},
			Ports: []corev1.ServicePort{{Name: "http", Port: ContainerPort,
				TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// podResources turns a version's resources into a container's requests
// and limits: CPU and memory requested and limited alike (a predictable
// QoS class); whole GPUs as nvidia.com/gpu; a fraction of one as HAMi's
// one shared GPU with a core share (nvidia.com/gpucores, percent) and,
// when given, its memory (nvidia.com/gpumem, MiB); time slices as
// nvidia.com/gpu.shared.
func podResources(r algorithm.Resources) (corev1.ResourceRequirements, error) {
	req := corev1.ResourceList{}
	lim := corev1.ResourceList{}
	if r.CPU > 0 {
		q := resource.NewMilliQuantity(int64(math.Ceil(r.CPU*1000)), resource.DecimalSI)
		req[corev1.ResourceCPU], lim[corev1.ResourceCPU] = *q, *q
	}
	if r.MemoryMB > 0 {
		q := resource.NewQuantity(int64(r.MemoryMB)<<20, resource.BinarySI)
		req[corev1.ResourceMemory], lim[corev1.ResourceMemory] = *q, *q
	}
	switch {
	case r.GPUSharing == algorithm.GPUSharingTimeSliced:
		lim[ResourceGPUShared] = *resource.NewQuantity(int64(r.GPU), resource.DecimalSI)
	case r.GPU >= 1:
		lim[ResourceGPU] = *resource.NewQuantity(int64(r.GPU), resource.DecimalSI)
	case r.GPU > 0:
		lim[ResourceGPU] = *resource.NewQuantity(1, resource.DecimalSI)
		lim[ResourceGPUCores] = *resource.NewQuantity(int64(math.Ceil(r.GPU*100)), resource.DecimalSI)
	}
	if r.GPUMemoryMB > 0 {
		if r.GPU == 0 {
			return corev1.ResourceRequirements{}, &algorithm.FieldError{Field: "resources.gpuMemoryMB", Msg: "needs resources.gpu"}
		}
		lim[ResourceGPUMem] = *resource.NewQuantity(int64(r.GPUMemoryMB), resource.DecimalSI)
	}
	// Extended resources cannot be overcommitted: their requests must
	// equal their limits. Kubernetes copies limits to requests on Pods
	// but not in a Deployment's template, so say it here.
	for _, name := range gpuResources {
		if q, ok := lim[name]; ok {
			req[name] = q
		}
	}
	out := corev1.ResourceRequirements{}
	if len(req) > 0 {
		out.Requests = req
	}
	if len(lim) > 0 {
		out.Limits = lim
	}
	return out, nil
}

// checkCapacity refuses a version whose GPU request no node can meet: for
// each GPU resource it asks for, some node that the placement's node
// selector admits must have at least that much allocatable. Versions that
// ask for no GPU are not checked (CPU and memory fit somewhere as the
// cluster scales; a GPU request that fits nowhere never will).
func (r *Runtime) checkCapacity(ctx context.Context, v algorithm.Version, res corev1.ResourceRequirements) error {
	want := map[corev1.ResourceName]resource.Quantity{}
	for _, name := range gpuResources {
		if q, ok := res.Limits[name]; ok {
			want[name] = q
		}
	}
	if len(want) == 0 {
		return nil
	}
	sel := ""
	if len(v.Placement.NodeSelector) > 0 {
		var parts []string
		for k, val := range v.Placement.NodeSelector {
			parts = append(parts, k+"="+val)
		}
		sel = strings.Join(parts, ",")
	}
	var nodeList corev1.NodeList
	if err := r.c.list(ctx, groupCore, "", nodes, sel, &nodeList); err != nil {
		return fmt.Errorf("kube: list nodes to check GPU capacity: %w", err)
	}
	field := map[corev1.ResourceName]string{
		ResourceGPU: "resources.gpu", ResourceGPUShared: "resources.gpu", ResourceGPUCores: "resources.gpu", ResourceGPUMem: "resources.gpuMemoryMB",
	}
	for _, name := range gpuResources {
		q, ok := want[name]
		if !ok {
			continue
		}
		var best resource.Quantity
		bestNode := ""
		for _, n := range nodeList.Items {
			have, ok := n.Status.Allocatable[name]
			if !ok {
				continue
			}
			if have.Cmp(q) >= 0 {
				bestNode = n.Name
				best = have
				break
			}
			if bestNode == "" || have.Cmp(best) > 0 {
				best, bestNode = have, n.Name
			}
		}
		if bestNode != "" && best.Cmp(q) >= 0 {
			continue
		}
		where := "no node"
		if sel != "" {
			where = "no node matching placement.nodeSelector " + sel
		}
		msg := fmt.Sprintf("asks for %s %s per replica but %s offers any", q.String(), name, where)
		if bestNode != "" {
			msg = fmt.Sprintf("asks for %s %s per replica but the largest node (%s) has %s allocatable", q.String(), name, bestNode, best.String())
		}
		return &algorithm.FieldError{Field: field[name], Msg: msg}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
