package algorithm

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func validVersion() Version {
	return Version{AlgorithmID: "face", Version: "1", Contract: imageContract(), Runtime: RuntimeEndpoint, Endpoints: []string{"http://127.0.0.1:9"}}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		field string
		edit  func(v *Version)
	}{
		{"algorithmId", func(v *Version) { v.AlgorithmID = "" }},
		{"version", func(v *Version) { v.Version = "../x" }},
		{"contract.inputs", func(v *Version) { v.Contract.Inputs = nil }},
		{"contract.inputs[0].type", func(v *Version) { v.Contract.Inputs[0].Type = "blob" }},
		{"contract.outputs[0].name", func(v *Version) { v.Contract.Outputs[0].Name = "bad name" }},
		{"contract.outputs[0].dim", func(v *Version) { v.Contract.Outputs[0].Dim = 128 }}, // objects
		{"contract.outputs[0].dim", func(v *Version) { v.Contract.Outputs[0] = Field{Name: "embedding", Type: TypeEmbedding, Dim: 4096} }},
		{"contract.outputs[0].dim", func(v *Version) { v.Contract.Outputs[0] = Field{Name: "embedding", Type: TypeEmbedding, Dim: -1} }},
		{"runtime", func(v *Version) { v.Runtime = "vm" }},
		{"protocol", func(v *Version) { v.Protocol = "grpc" }},
		{"endpoints", func(v *Version) { v.Endpoints = nil }},
		{"endpoints[0]", func(v *Version) { v.Endpoints = []string{"ftp://x"} }},
		{"package", func(v *Version) { v.Runtime, v.Endpoints = RuntimeProcess, nil }},
		{"image", func(v *Version) { v.Runtime, v.Endpoints = RuntimeContainer, nil }},
		{"replicas", func(v *Version) { v.Replicas = 3 }},
		{"resources.gpu", func(v *Version) { v.Resources.GPU = 1.5 }},
		{"resources.cpu", func(v *Version) { v.Resources.CPU = -1 }},
		{"autoscale.inFlight", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Autoscale = Autoscale{MaxReplicas: 2, InFlight: -1}
		}},
		{"scaleToZero", func(v *Version) { v.ScaleToZero = true }}, // endpoint
		{"scaleToZero", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.ScaleToZero, v.Autoscale = true, Autoscale{MaxReplicas: 2, InFlight: 3}
		}},
		{"resources.gpuSharing", func(v *Version) { v.Resources.GPU, v.Resources.GPUSharing = 1, GPUSharingTimeSliced }}, // endpoint: no GPUs to share
		{"resources.gpuSharing", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Resources.GPU, v.Resources.GPUSharing = 1, "mps"
		}},
		{"resources.gpu", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Resources.GPU, v.Resources.GPUSharing = 0.5, GPUSharingTimeSliced
		}},
		{"resources.gpuMemoryMB", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Resources.GPU, v.Resources.GPUMemoryMB, v.Resources.GPUSharing = 1, 4096, GPUSharingTimeSliced
		}},
		{"resources.gpu", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Resources.GPU, v.Resources.GPUSharing = 0.25, GPUSharingExclusive
		}},
		{"resources.addressSpaceMB", func(v *Version) { v.Resources.AddressSpaceMB = 1024 }}, // endpoint: not a process
		{"resources.addressSpaceMB", func(v *Version) {
			v.Runtime, v.Endpoints, v.Package = RuntimeProcess, nil, "/opt/pkg"
			v.Resources.AddressSpaceMB = 32
		}},
		{"batch.max", func(v *Version) { v.Batch.Max = 8 }},
		{"batch.wait", func(v *Version) { v.Batch.Wait = Duration(time.Hour) }},
		{"timeout", func(v *Version) { v.Timeout = -1 }},
		{"sticky", func(v *Version) { v.Sticky = "a..b" }},
		{"mapping.request", func(v *Version) { v.Protocol = ProtocolHTTPMapped }},
		{"mapping", func(v *Version) { v.Mapping.Request = "def main(i): return {}" }},
		{"healthPath", func(v *Version) { v.HealthPath = "health" }},
		{"placement", func(v *Version) { v.Placement.NodeSelector = map[string]string{"gpu": "a100"} }},
		{"placement.nodeSelector[gpu]", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Placement.NodeSelector = map[string]string{"gpu": "-bad"}
		}},
		{"placement.tolerations[0].operator", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Placement.Tolerations = []Toleration{{Key: "k", Operator: "Maybe"}}
		}},
		{"placement.tolerations[0].key", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Placement.Tolerations = []Toleration{{Operator: "Equal", Value: "x"}}
		}},
		{"autoscale", func(v *Version) { v.Autoscale.MaxReplicas = 2 }},
		{"autoscale.minReplicas", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Autoscale = Autoscale{MinReplicas: 3, MaxReplicas: 2}
		}},
		{"resources.cpu", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Autoscale = Autoscale{MaxReplicas: 2}
		}},
		{"placement.tolerations[0].effect", func(v *Version) {
			v.Runtime, v.Endpoints, v.Image = RuntimeContainer, nil, "r/x:1"
			v.Placement.Tolerations = []Toleration{{Key: "k", Effect: "Sometimes"}}
		}},
		{"contract.outputs[0].items[1].name", func(v *Version) {
			v.Contract.Outputs[0].Items = []Field{{Name: "box", Type: TypeList}, {Name: "box", Type: TypeNumber}}
		}},
		{"contract.outputs[0].items[0].type", func(v *Version) { v.Contract.Outputs[0].Items = []Field{{Name: "box", Type: "blob"}} }},
		{"contract.outputs[0].items[0].items", func(v *Version) {
			v.Contract.Outputs[0].Items = []Field{{Name: "parts", Type: TypeList, Items: []Field{{Name: "x", Type: TypeNumber}}}}
		}},
		{"contract.inputs[0].items", func(v *Version) { v.Contract.Inputs[0].Items = []Field{{Name: "x", Type: TypeNumber}} }},
		{"contract.outputs[1].items", func(v *Version) {
			v.Contract.Outputs = append(v.Contract.Outputs, Field{Name: "n", Type: TypeNumber, Items: []Field{{Name: "x", Type: TypeNumber}}})
		}},
		{"contract.outputs[0].items", func(v *Version) { v.Contract.Outputs[0].Items = make([]Field, 65) }},
	}
	for _, c := range cases {
		v := validVersion()
		v.Contract.Outputs = []Field{{Name: "objects", Type: TypeObjects}}
		c.edit(&v)
		err := v.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
	v := validVersion()
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	// An objects output declares the fields of its items.
	v.Contract.Outputs = []Field{{Name: "faces", Type: TypeObjects, Items: []Field{{Name: "box", Type: TypeList}, {Name: "quality", Type: TypeObject}}}}
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	v.Contract.Batch, v.Contract.MaxBatch, v.Batch.Max = true, 4, 8
	var fe *FieldError
	if err := v.Validate(); !errors.As(err, &fe) || fe.Field != "batch.max" {
		t.Fatalf("batch over contract max: %v", err)
	}
}

func TestVersionJSONRoundTrip(t *testing.T) {
	v := validVersion()
	v.Timeout = Duration(1500 * time.Millisecond)
	v.Batch = Batch{Max: 0, Wait: Duration(5 * time.Millisecond)}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back Version
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Timeout != v.Timeout || back.Batch.Wait != v.Batch.Wait || back.Endpoints[0] != v.Endpoints[0] {
		t.Fatalf("round trip: %s -> %+v", b, back)
	}
	if err := json.Unmarshal([]byte(`{"timeout": 250}`), &back); err != nil || back.Timeout.Std() != 250*time.Millisecond {
		t.Fatalf("milliseconds: %v %v", back.Timeout, err)
	}
}
