package algorithm

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Protocol names accepted in Version.Protocol.
const (
	ProtocolTianshuV1  = "tianshu-v1"
	ProtocolOIPV2      = "oip-v2"
	ProtocolHTTPMapped = "http-mapped"
)

// Runtime names accepted in Version.Runtime.
const (
	RuntimeBuiltin   = "builtin"
	RuntimeEndpoint  = "endpoint"
	RuntimeProcess   = "process"
	RuntimeContainer = "container"
)

// Limits on a version definition.
const (
	maxReplicas  = 64
	maxEndpoints = 64
	maxBatch     = 1024
	maxBatchWait = time.Second
	maxTimeout   = 10 * time.Minute
	maxScript    = 64 << 10
)

// Version is the definition of one algorithm version: what it takes and
// returns, how to reach it and where it runs. It is plain data, meant to
// be stored as JSON and handed to Manager.Apply unchanged.
type Version struct {
	// AlgorithmID and Version name the version; together they are unique.
	AlgorithmID string `json:"algorithmId"`
	Version     string `json:"version"`
	// Contract declares inputs and outputs; flow validation uses it.
	Contract Contract `json:"contract"`
	// Protocol is the wire protocol (tianshu-v1, oip-v2, http-mapped);
	// empty for the builtin runtime, tianshu-v1 by default otherwise.
	Protocol string `json:"protocol,omitempty"`
	// Runtime is where the version runs: builtin, endpoint, process or
	// container.
	Runtime string `json:"runtime"`
	// Endpoints are the base URLs of an endpoint runtime, one instance
	// each (e.g. "http://10.0.0.5:8080").
	Endpoints []string `json:"endpoints,omitempty"`
	// Package is, for the process runtime, a local directory holding the
	// unpacked package, a local .tar.gz/.tgz/.zip file, or a blob key read
	// through Options.OpenPackage; for the builtin runtime, the registered
	// builtin name (default AlgorithmID).
	Package string `json:"package,omitempty"`
	// Image is the OCI image reference of a container runtime version.
	Image string `json:"image,omitempty"`
	// ImageBuild, for a container version created with an install
	// package, has the platform build Image from it (internal/imagebuild):
	// the package as one layer on the base image of that name, pushed to
	// Repository; Image then records the result by digest.
	ImageBuild *ImageBuild `json:"imageBuild,omitempty"`
	// Model and ModelVersion name the model on an oip-v2 server (Model
	// defaults to AlgorithmID; ModelVersion may be empty).
	Model        string `json:"model,omitempty"`
	ModelVersion string `json:"modelVersion,omitempty"`
	// Replicas is the number of process instances (default 1).
	Replicas int `json:"replicas,omitempty"`
	// Resources are what one replica needs.
	Resources Resources `json:"resources"`
	// Placement says which Kubernetes nodes may run a container
	// version's replicas.
	Placement Placement `json:"placement,omitzero"`
	// Autoscale, for a container version, lets Kubernetes scale its
	// replicas between MinReplicas and MaxReplicas on CPU use; Replicas
	// is then only the starting count.
	Autoscale Autoscale `json:"autoscale,omitzero"`
	// ScaleToZero, for a container version, keeps no replica running while
	// no running task's flow calls the version, and Replicas while one
	// does (algorepo decides; the runtime's Scale carries it out).
	ScaleToZero bool `json:"scaleToZero,omitempty"`
	// Sticky, when set, is the input path (e.g. "camera" or "meta.device")
	// whose value routes calls consistently to the same instance.
	Sticky string `json:"sticky,omitempty"`
	// Batch configures micro-batching (Max > 1 enables it).
	Batch Batch `json:"batch"`
	// Timeout bounds one call (default Options.DefaultTimeout).
	Timeout Duration `json:"timeout,omitempty"`
	// Idempotent says a call may be repeated without harm, which allows
	// retrying after a request may already have been processed (a reset
	// connection, a 502/504).
	Idempotent bool `json:"idempotent,omitempty"`
	// Mapping holds the scripts of the http-mapped protocol.
	Mapping Mapping `json:"mapping"`
	// HealthPath overrides the protocol's health check path; for
	// http-mapped an empty path means no health check.
	HealthPath string `json:"healthPath,omitempty"`
	// SecretNames names the version's secrets; the repository sets it from
	// the secrets given when the version was created.
	SecretNames []string `json:"secretNames,omitempty"`
	// Secrets are the secrets' values by name, given to the runtime when
	// the version is applied and never written with the definition: an
	// http-mapped request's header values name them as ${secret:NAME}, a
	// process receives them in its environment. Errors, LastError and
	// process logs show them masked.
	Secrets map[string]string `json:"-"`
	// Serving makes the version a model file run by a serving runtime
	// (runtime process, protocol oip-v2): no package, the platform's own
	// server runs the model and does the pre- and post-processing the
	// descriptor declares. See serving.go.
	Serving *Serving `json:"serving,omitempty"`
}

// secretValues returns the values of the version's secrets, for masking.
func (v *Version) secretValues() []string {
	out := make([]string, 0, len(v.Secrets))
	for _, val := range v.Secrets {
		out = append(out, val)
	}
	return out
}

// ImageBuild says how to build a container version's image from its
// install package.
type ImageBuild struct {
	// Base names one of the operator's base images.
	Base string `json:"base"`
	// Repository is where the image is pushed, in an allowed registry
	// ("registry.example.com/algorithms/plates"); the tag is
	// <algorithm>-<version>.
	Repository string `json:"repository"`
	// BaseDigest is the digest of the base image the build used; the
	// platform sets it.
	BaseDigest string `json:"baseDigest,omitempty"`
}

// Resources are what one replica of a version needs. GPU may be a
// fraction; fractional sharing is accounted but not isolated.
type Resources struct {
	CPU         float64 `json:"cpu,omitempty"`
	MemoryMB    int     `json:"memoryMB,omitempty"`
	GPU         float64 `json:"gpu,omitempty"`
	GPUMemoryMB int     `json:"gpuMemoryMB,omitempty"`
	// GPUSharing says how a container version's GPUs are shared (one of
	// the GPUSharing* names; empty: whole GPUs from 1 up, HAMi below 1).
	GPUSharing string `json:"gpuSharing,omitempty"`
	// AddressSpaceMB is each process replica's address space limit
	// (RLIMIT_AS) in MiB, under the operator's --exec.rlimit-as: what makes
	// a model that allocates too much fail alone. MemoryMB is not used for
	// it: Node.js and ONNX Runtime reserve far more address space than the
	// memory they use, so a memory figure would stop them from starting.
	AddressSpaceMB int `json:"addressSpaceMB,omitempty"`
}

// How a container version's GPUs are shared with other pods.
const (
	// GPUSharingExclusive: whole GPUs (the NVIDIA device plugin's
	// nvidia.com/gpu), gpu a whole number.
	GPUSharingExclusive = "exclusive"
	// GPUSharingHAMi: HAMi's shared GPUs, a fraction of one (or whole ones)
	// with its cores and memory accounted and isolated.
	GPUSharingHAMi = "hami"
	// GPUSharingTimeSliced: time slices of GPUs the NVIDIA device plugin
	// shares by time-slicing (renamed nvidia.com/gpu.shared), gpu a whole
	// number of slices; no memory isolation, so gpuMemoryMB is refused.
	GPUSharingTimeSliced = "time-sliced"
)

// Placement constrains where a container version's pods run: on nodes
// carrying every NodeSelector label, and on tainted nodes only when a
// toleration matches the taint.
type Placement struct {
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	Tolerations  []Toleration      `json:"tolerations,omitempty"`
}

// Autoscale bounds a HorizontalPodAutoscaler: MaxReplicas > 0 enables
// it; CPUPercent is the target average CPU use, as a percentage of
// resources.cpu (default 80).
type Autoscale struct {
	MinReplicas int `json:"minReplicas,omitempty"`
	MaxReplicas int `json:"maxReplicas,omitempty"`
	CPUPercent  int `json:"cpuPercent,omitempty"`
	// InFlight, when set, scales on the invoker's queue instead of (or,
	// with CPUPercent, as well as) CPU: the target of calls in flight to the
	// version per replica, read as the external metric
	// tianshu_algorithm_in_flight_requests{algorithm,version} (the cluster
	// needs a metrics adapter serving it, e.g. prometheus-adapter).
	InFlight int `json:"inFlight,omitempty"`
}

// usesCPU reports whether the autoscaler scales on CPU use.
func (a Autoscale) usesCPU() bool { return a.CPUPercent > 0 || a.InFlight == 0 }

// Toleration lets pods run on nodes with a matching taint (Kubernetes'
// toleration: Operator "Equal" (default) or "Exists"; Effect empty for
// all, or NoSchedule, PreferNoSchedule, NoExecute).
type Toleration struct {
	Key      string `json:"key,omitempty"`
	Operator string `json:"operator,omitempty"`
	Value    string `json:"value,omitempty"`
	Effect   string `json:"effect,omitempty"`
}

// Batch configures micro-batching: up to Max requests, or what arrived
// within Wait of the first one, go to the algorithm in one call.
type Batch struct {
	Max  int      `json:"max,omitempty"`
	Wait Duration `json:"wait,omitempty"`
}

// Mapping holds the Starlark scripts of the http-mapped protocol. Request
// defines main(input) returning {method, path, query, headers, json |
// body | bodyInput}; Response defines main(response) turning
// {status, headers, json, text} into the version's outputs.
type Mapping struct {
	Request  string `json:"request,omitempty"`
	Response string `json:"response,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("250ms", "30s"); a JSON number is read as milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// FieldError is one problem in a version definition, located by a field
// path such as "contract.inputs[1].type" or "batch.max".
type FieldError struct {
	Field string
	Msg   string
}

// Error formats as "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks the definition and returns the first problem as a
// *FieldError naming the field; errors.As finds it.
func (v *Version) Validate() error {
	bad := fieldErr
	if !idPattern.MatchString(v.AlgorithmID) {
		return bad("algorithmId", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if !idPattern.MatchString(v.Version) {
		return bad("version", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if err := v.Contract.validate("contract"); err != nil {
		return err
	}
	switch v.Runtime {
	case RuntimeBuiltin:
		if v.Protocol != "" {
			return bad("protocol", "must be empty for the builtin runtime")
		}
	case RuntimeEndpoint, RuntimeProcess, RuntimeContainer:
		switch v.Protocol {
		case "", ProtocolTianshuV1, ProtocolOIPV2, ProtocolHTTPMapped:
		default:
			return bad("protocol", "unknown protocol %q; use tianshu-v1, oip-v2 or http-mapped", v.Protocol)
		}
	case "":
		return bad("runtime", "required: builtin, endpoint, process or container")
	default:
		return bad("runtime", "unknown runtime %q; use builtin, endpoint, process or container", v.Runtime)
	}
	switch v.Runtime {
	case RuntimeEndpoint:
		if len(v.Endpoints) == 0 {
			return bad("endpoints", "the endpoint runtime needs at least one URL")
		}
		if len(v.Endpoints) > maxEndpoints {
			return bad("endpoints", "at most %d endpoints", maxEndpoints)
		}
		for i, e := range v.Endpoints {
			u, err := url.Parse(e)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return bad(fmt.Sprintf("endpoints[%d]", i), "must be an http or https URL, got %q", e)
			}
			if u.RawQuery != "" || u.Fragment != "" {
				return bad(fmt.Sprintf("endpoints[%d]", i), "must not carry a query or fragment")
			}
		}
	case RuntimeProcess:
		if v.Serving != nil {
			if v.Package != "" {
				return bad("package", "a model-file version (serving) takes no package")
			}
			if v.Protocol != ProtocolOIPV2 {
				return bad("protocol", "a model-file version (serving) speaks oip-v2, not %q", v.Protocol)
			}
			if err := v.Serving.validate("serving"); err != nil {
				return err
			}
		} else if v.Package == "" {
			return bad("package", "the process runtime needs a package")
		}
	case RuntimeContainer:
		if v.Image == "" {
			return bad("image", "the container runtime needs an image reference (or imageBuild and a package or a model file)")
		}
		if v.Serving != nil {
			switch {
			case v.ImageBuild == nil:
				return bad("serving", "a model file runs in a container built from it: give imageBuild")
			case v.Package != "":
				return bad("package", "a model-file version (serving) takes no package")
			case v.Protocol != ProtocolOIPV2:
				return bad("protocol", "a model-file version (serving) speaks oip-v2, not %q", v.Protocol)
			}
			if err := v.Serving.validate("serving"); err != nil {
				return err
			}
		}
	}
	if b := v.ImageBuild; b != nil {
		switch {
		case v.Runtime != RuntimeContainer:
			return bad("imageBuild", "only the container runtime builds an image")
		case b.Base == "" || len(b.Base) > 64:
			return bad("imageBuild.base", "required, up to 64 characters")
		case b.Repository == "" || len(b.Repository) > 255:
			return bad("imageBuild.repository", "required, up to 255 characters")
		}
	}
	if v.Serving != nil && v.Runtime != RuntimeProcess && v.Runtime != RuntimeContainer {
		return bad("serving", "a model file runs on the process runtime, or in a container built from it, not %q", v.Runtime)
	}
	if v.Runtime != RuntimeEndpoint && len(v.Endpoints) > 0 {
		return bad("endpoints", "only the endpoint runtime takes endpoints")
	}
	if v.Replicas < 0 || v.Replicas > maxReplicas {
		return bad("replicas", "must be between 0 (meaning 1) and %d", maxReplicas)
	}
	if v.Replicas > 1 && v.Runtime != RuntimeProcess && v.Runtime != RuntimeContainer {
		return bad("replicas", "only process and container runtimes run replicas")
	}
	r := v.Resources
	switch {
	case r.CPU < 0 || r.CPU > 1024:
		return bad("resources.cpu", "must be between 0 and 1024")
	case r.MemoryMB < 0:
		return bad("resources.memoryMB", "must not be negative")
	case r.GPU < 0 || r.GPU > 64:
		return bad("resources.gpu", "must be between 0 and 64")
	case r.GPU > 1 && r.GPU != float64(int(r.GPU)):
		return bad("resources.gpu", "above 1 must be a whole number of GPUs")
	case r.GPUMemoryMB < 0:
		return bad("resources.gpuMemoryMB", "must not be negative")
	case r.AddressSpaceMB != 0 && (r.AddressSpaceMB < 64 || r.AddressSpaceMB > 1<<20):
		return bad("resources.addressSpaceMB", "must be between 64 and 1048576 (1 TiB), or 0 for the operator's limit")
	case r.AddressSpaceMB != 0 && v.Runtime != RuntimeProcess:
		return bad("resources.addressSpaceMB", "applies to the process runtime only")
	}
	if err := r.validateSharing(v.Runtime); err != nil {
		return err
	}
	if err := v.Placement.validate(v.Runtime); err != nil {
		return err
	}
	if a := v.Autoscale; a != (Autoscale{}) {
		switch {
		case v.Runtime != RuntimeContainer:
			return bad("autoscale", "only the container runtime autoscales")
		case a.MaxReplicas < 1 || a.MaxReplicas > maxReplicas:
			return bad("autoscale.maxReplicas", "must be between 1 and %d", maxReplicas)
		case a.MinReplicas < 0 || a.MinReplicas > a.MaxReplicas:
			return bad("autoscale.minReplicas", "must be between 0 (meaning 1) and autoscale.maxReplicas")
		case a.CPUPercent < 0 || a.CPUPercent > 100:
			return bad("autoscale.cpuPercent", "must be between 0 (meaning 80) and 100")
		case a.InFlight < 0 || a.InFlight > 10000:
			return bad("autoscale.inFlight", "must be between 0 (not used) and 10000 calls per replica")
		case a.usesCPU() && r.CPU == 0:
			return bad("resources.cpu", "autoscaling on CPU use needs a CPU request")
		}
	}
	if v.ScaleToZero {
		switch {
		case v.Runtime != RuntimeContainer:
			return bad("scaleToZero", "only the container runtime scales to zero")
		case v.Autoscale.MaxReplicas > 0:
			return bad("scaleToZero", "cannot be combined with autoscale (a HorizontalPodAutoscaler keeps at least one replica)")
		}
	}
	if v.Sticky != "" {
		for _, part := range strings.Split(v.Sticky, ".") {
			if part == "" {
				return bad("sticky", "must be an input path such as \"camera\" or \"meta.device\"")
			}
		}
	}
	if v.Batch.Max < 0 || v.Batch.Max > maxBatch {
		return bad("batch.max", "must be between 0 and %d", maxBatch)
	}
	if v.Batch.Max > 1 {
		if !v.Contract.Batch {
			return bad("batch.max", "the contract does not declare batching")
		}
		if v.Contract.MaxBatch > 0 && v.Batch.Max > v.Contract.MaxBatch {
			return bad("batch.max", "%d is over the contract's maxBatch %d", v.Batch.Max, v.Contract.MaxBatch)
		}
		if v.Runtime != RuntimeBuiltin && v.protocol() != ProtocolTianshuV1 {
			return bad("batch.max", "micro-batching needs the tianshu-v1 protocol or a builtin")
		}
		if v.Sticky != "" {
			return bad("batch.max", "cannot batch a sticky version")
		}
	}
	if v.Batch.Wait < 0 || v.Batch.Wait.Std() > maxBatchWait {
		return bad("batch.wait", "must be between 0 and %v", maxBatchWait)
	}
	if v.Timeout < 0 || v.Timeout.Std() > maxTimeout {
		return bad("timeout", "must be between 0 (the default) and %v", maxTimeout)
	}
	if v.protocol() == ProtocolHTTPMapped && v.Runtime != RuntimeBuiltin {
		if strings.TrimSpace(v.Mapping.Request) == "" {
			return bad("mapping.request", "http-mapped needs a request script")
		}
		if strings.TrimSpace(v.Mapping.Response) == "" {
			return bad("mapping.response", "http-mapped needs a response script")
		}
	} else if v.Mapping.Request != "" || v.Mapping.Response != "" {
		return bad("mapping", "only the http-mapped protocol takes scripts")
	}
	if len(v.Mapping.Request) > maxScript {
		return bad("mapping.request", "longer than %d bytes", maxScript)
	}
	if len(v.Mapping.Response) > maxScript {
		return bad("mapping.response", "longer than %d bytes", maxScript)
	}
	if v.HealthPath != "" && !strings.HasPrefix(v.HealthPath, "/") {
		return bad("healthPath", "must start with '/'")
	}
	return nil
}

// Limits on a placement.
const (
	maxNodeSelector = 32
	maxTolerations  = 32
	maxLabelPart    = 253 // a label key's prefix may be a DNS subdomain
)

var labelValuePattern = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)

// validate checks a placement: only container versions take one, with
// Kubernetes label keys and values and known toleration operators and
// effects.
func (p *Placement) validate(runtime string) error {
	bad := fieldErr
	if runtime != RuntimeContainer && (len(p.NodeSelector) > 0 || len(p.Tolerations) > 0) {
		return bad("placement", "only the container runtime takes a placement")
	}
	if len(p.NodeSelector) > maxNodeSelector {
		return bad("placement.nodeSelector", "at most %d labels", maxNodeSelector)
	}
	for k, val := range p.NodeSelector {
		if k == "" || len(k) > maxLabelPart {
			return bad("placement.nodeSelector", "label key %q must be 1-%d characters", k, maxLabelPart)
		}
		if !labelValuePattern.MatchString(val) {
			return bad("placement.nodeSelector["+k+"]", "label value %q must be at most 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit", val)
		}
	}
	if len(p.Tolerations) > maxTolerations {
		return bad("placement.tolerations", "at most %d tolerations", maxTolerations)
	}
	for i, t := range p.Tolerations {
		field := fmt.Sprintf("placement.tolerations[%d]", i)
		if len(t.Key) > maxLabelPart {
			return bad(field+".key", "longer than %d characters", maxLabelPart)
		}
		switch t.Operator {
		case "", "Equal":
			if t.Key == "" {
				return bad(field+".key", "required with operator Equal")
			}
		case "Exists":
			if t.Value != "" {
				return bad(field+".value", "must be empty with operator Exists")
			}
		default:
			return bad(field+".operator", "unknown operator %q; use Equal or Exists", t.Operator)
		}
		if !labelValuePattern.MatchString(t.Value) {
			return bad(field+".value", "must be at most 63 letters, digits, '.', '_' or '-'")
		}
		switch t.Effect {
		case "", "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			return bad(field+".effect", "unknown effect %q; use NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
		}
	}
	return nil
}

// HealthCheckPath is the path a version's instances answer health checks
// on: its own HealthPath, else its protocol's; "" means none (http-mapped
// without a HealthPath, builtins).
func (v *Version) HealthCheckPath() string { return healthPathOf(v) }

// protocol is the effective protocol: tianshu-v1 when empty, except for
// builtins which speak none.
func (v *Version) protocol() string {
	if v.Runtime == RuntimeBuiltin {
		return ""
	}
	if v.Protocol == "" {
		return ProtocolTianshuV1
	}
	return v.Protocol
}

// replicas is the effective replica count.
func (v *Version) replicas() int {
	if v.Replicas < 1 {
		return 1
	}
	return v.Replicas
}

// ref names the version for logs and errors, "id@version".
func (v *Version) ref() string { return v.AlgorithmID + "@" + v.Version }

// itoa is strconv.Itoa, kept short for labels.
func itoa(i int) string { return strconv.Itoa(i) }

// fieldErr is a *FieldError on field with a formatted message.
func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (r Resources) validateSharing(runtime string) error {
	bad := fieldErr
	whole := r.GPU >= 1 && r.GPU == float64(int(r.GPU))
	switch r.GPUSharing {
	case "":
		return nil
	case GPUSharingExclusive:
		if !whole {
			return bad("resources.gpu", "exclusive GPUs are whole: 1 or more")
		}
	case GPUSharingHAMi:
		if r.GPU <= 0 {
			return bad("resources.gpu", "HAMi sharing needs a share of a GPU (above 0)")
		}
	case GPUSharingTimeSliced:
		if !whole {
			return bad("resources.gpu", "time-sliced GPUs are counted in whole slices: 1 or more")
		}
		if r.GPUMemoryMB > 0 {
			return bad("resources.gpuMemoryMB", "time-slicing does not isolate GPU memory; use gpuSharing hami to reserve it")
		}
	default:
		return bad("resources.gpuSharing", "must be %s, %s or %s", GPUSharingExclusive, GPUSharingHAMi, GPUSharingTimeSliced)
	}
	if runtime != RuntimeContainer {
		return bad("resources.gpuSharing", "applies to the container runtime only")
	}
	return nil
}
