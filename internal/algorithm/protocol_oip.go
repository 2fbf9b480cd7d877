package algorithm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"github.com/tianshu-ai/tianshu/internal/media"
)

// oipV2 is a client of the Open Inference Protocol (KServe v2) over REST:
// each input becomes a tensor, each output tensor an output.
type oipV2 struct {
	httpBase
	modelPath  string // "/v2/models/{name}[/versions/{v}]"
	healthPath string
}

func newOIP(h httpBase, v *Version) *oipV2 {
	model := v.Model
	if model == "" {
		model = v.AlgorithmID
	}
	mp := "/v2/models/" + url.PathEscape(model)
	if v.ModelVersion != "" {
		mp += "/versions/" + url.PathEscape(v.ModelVersion)
	}
	hp := v.HealthPath
	if hp == "" {
		hp = mp + "/ready"
	}
	return &oipV2{httpBase: h, modelPath: mp, healthPath: hp}
}

// Tensor is one OIP v2 tensor in JSON form.
type Tensor struct {
	Name       string         `json:"name"`
	Shape      []int          `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data"`
}

type oipRequest struct {
	Inputs []Tensor `json:"inputs"`
}

type oipResponse struct {
	ModelName string   `json:"model_name"`
	Outputs   []Tensor `json:"outputs"`
}

func (p *oipV2) infer(ctx context.Context, in *instance, inputs map[string]any) (map[string]any, error) {
	names := make([]string, 0, len(inputs))
	for k := range inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	req := oipRequest{Inputs: make([]Tensor, 0, len(inputs))}
	for _, k := range names {
		t, err := toTensor(k, inputs[k])
		if err != nil {
			return nil, err
		}
		req.Inputs = append(req.Inputs, t)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, in.address()+p.modelPath+"/infer", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header["Content-Type"] = []string{"application/json"}
	resp, err := p.do(hr)
	if err != nil {
		return nil, err
	}
	var out oipResponse
	if err := p.readJSON(resp, &out); err != nil {
		return nil, err
	}
	res := make(map[string]any, len(out.Outputs))
	for _, t := range out.Outputs {
		v, err := fromTensor(t)
		if err != nil {
			return nil, err
		}
		res[t.Name] = v
	}
	return res, nil
}

func (p *oipV2) inferBatch(context.Context, *instance, []map[string]any) ([]itemResult, error) {
	return nil, errNoBatch
}

func (p *oipV2) health(ctx context.Context, in *instance) error {
	return httpHealth(ctx, &p.httpBase, in.address()+p.healthPath)
}

// toTensor maps one input onto a tensor: images as a BYTES tensor of one
// base64 element (parameter content_type "base64"), strings as BYTES,
// numbers and bools as [1]-shaped FP64/INT64/BOOL, (nested) lists of
// numbers as FP64 or INT64 tensors of their shape, anything else as a
// BYTES element of its JSON.
func toTensor(name string, v any) (Tensor, error) {
	if data, ct, ok := media.AsImage(v); ok {
		return Tensor{Name: name, Shape: []int{1}, Datatype: "BYTES",
			Parameters: map[string]any{"content_type": "base64", "mime_type": ct},
			Data:       []string{base64.StdEncoding.EncodeToString(data)}}, nil
	}
	switch x := v.(type) {
	case string:
		return Tensor{Name: name, Shape: []int{1}, Datatype: "BYTES", Data: []string{x}}, nil
	case bool:
		return Tensor{Name: name, Shape: []int{1}, Datatype: "BOOL", Data: []bool{x}}, nil
	case int, int32, int64:
		return Tensor{Name: name, Shape: []int{1}, Datatype: "INT64", Data: []any{x}}, nil
	case float32, float64:
		return Tensor{Name: name, Shape: []int{1}, Datatype: "FP64", Data: []any{x}}, nil
	case []float64:
		return Tensor{Name: name, Shape: []int{len(x)}, Datatype: "FP64", Data: x}, nil
	case []float32:
		return Tensor{Name: name, Shape: []int{len(x)}, Datatype: "FP32", Data: x}, nil
	case []any:
		var shape []int
		var flat []any
		isFloat := false
		if flattenNumbers(x, 0, &shape, &flat, &isFloat) {
			dt := "INT64"
			if isFloat {
				dt = "FP64"
			}
			return Tensor{Name: name, Shape: shape, Datatype: dt, Data: flat}, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Tensor{}, fmt.Errorf("%w: input %q: %v", ErrBadInput, name, err)
	}
	return Tensor{Name: name, Shape: []int{1}, Datatype: "BYTES", Data: []string{string(b)}}, nil
}

// flattenNumbers flattens a rectangular nested list of numbers row-major,
// recording its shape; false when it is not one.
func flattenNumbers(l []any, depth int, shape *[]int, flat *[]any, isFloat *bool) bool {
	if depth == len(*shape) {
		*shape = append(*shape, len(l))
	} else if (*shape)[depth] != len(l) {
		return false
	}
	for _, e := range l {
		switch x := e.(type) {
		case []any:
			if !flattenNumbers(x, depth+1, shape, flat, isFloat) {
				return false
			}
		case float64:
			if depth != len(*shape)-1 {
				return false
			}
			if x != float64(int64(x)) {
				*isFloat = true
			}
			*flat = append(*flat, x)
		case int, int64:
			if depth != len(*shape)-1 {
				return false
			}
			*flat = append(*flat, x)
		default:
			return false
		}
	}
	return len(l) > 0 || depth == 0
}

// fromTensor turns an output tensor back into a value: a single element
// as a scalar, a 1-D tensor as a list, higher ranks as nested lists.
func fromTensor(t Tensor) (any, error) {
	var flat []any
	switch d := t.Data.(type) {
	case []any:
		// Servers may send nested data; flatten it first.
		var walk func(v any)
		walk = func(v any) {
			if l, ok := v.([]any); ok {
				for _, e := range l {
					walk(e)
				}
				return
			}
			flat = append(flat, v)
		}
		walk(d)
	case nil:
	default:
		flat = []any{d}
	}
	n := 1
	for _, s := range t.Shape {
		if s < 0 {
			return nil, fmt.Errorf("%w: output %q has shape %v", ErrBadResponse, t.Name, t.Shape)
		}
		n *= s
	}
	if len(t.Shape) == 0 {
		n = len(flat)
	}
	if n != len(flat) {
		return nil, fmt.Errorf("%w: output %q has shape %v but %d elements", ErrBadResponse, t.Name, t.Shape, len(flat))
	}
	if n == 1 && len(t.Shape) <= 1 {
		return flat[0], nil
	}
	if len(t.Shape) <= 1 {
		return flat, nil
	}
	var build func(dim int, off int) ([]any, int)
	build = func(dim int, off int) ([]any, int) {
		out := make([]any, t.Shape[dim])
		for i := range out {
			if dim == len(t.Shape)-1 {
				out[i] = flat[off]
				off++
			} else {
				out[i], off = build(dim+1, off)
			}
		}
		return out, off
	}
	v, _ := build(0, 0)
	return v, nil
}
