package studio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"

	"github.com/tianshu-ai/tianshu/examples"
	"github.com/tianshu-ai/tianshu/internal/api"
)

// The template gallery: the example flows shipped in the binary
// (examples/flows), offered to the editor with what a person must set up
// before a task can use one — its parameters and the zones it expects drawn
// on the device. CreateFlow takes a TemplateName to start from one.

// templateInfo is what a flow document does not say about itself: its
// category, the placeholder algorithm ids it names for algorithms the user
// brings (CreateFlow's TemplateAlgorithms replaces them) and the optional
// ones the user may bring.
var templateInfo = map[string]struct {
	category   string
	algorithms []string
	optional   []string
}{
	"face-structuring":    {"faces", nil, []string{FaceDescriptorPlaceholder}},
	"face-bestshot-group": {"faces", nil, []string{FaceDescriptorPlaceholder}},
	"face-watchlist":      {"faces", []string{FaceDescriptorPlaceholder}, nil},
	"zone-intrusion":      {"security", nil, nil},
	"line-crossing-count": {"counting", nil, nil},
	"zone-occupancy":      {"counting", nil, nil},
	"text-reading":        {"text", []string{"alg-ocr"}, nil},
}

// FaceDescriptorPlaceholder is the face templates' optional algorithm:
// mapped by CreateFlow's TemplateAlgorithms to an algorithm whose contract
// has an embedding output (examples/algorithms/face-descriptor-node), each
// best shot is cropped as SearchFaces crops a photo's face (margin 0.4),
// described by it and stored with its embedding, so SearchFaces finds it.
// It is chosen when the flow is made, not as a task parameter: a flow's
// algorithm nodes are checked against their contracts when it is compiled.
const FaceDescriptorPlaceholder = "alg-face-descriptor"

// The crop that the face descriptor sees: SearchFaces' photo path
// (internal/app/faceembed.go) crops with the same margin, so both sides of
// a search are described from the same framing.
const (
	descriptorCropMargin  = 0.4
	descriptorCropQuality = 90
)

// FlowTemplate is one entry of the gallery.
type FlowTemplate struct {
	Name        string `json:"Name"`
	Description string `json:"Description"`
	// Category groups templates in the gallery: faces, security, counting, text.
	Category   string                  `json:"Category"`
	Parameters []FlowTemplateParameter `json:"Parameters"`
	// Zones are the zones and lines the flow looks up by name on the
	// task's devices (draw them in Devices → Zones and lines).
	Zones []FlowTemplateZone `json:"Zones"`
	// Algorithms are placeholder algorithm ids the document names for an
	// algorithm of yours (text-reading: alg-ocr, an OCR model-file
	// version); CreateFlow's TemplateAlgorithms maps each to yours.
	Algorithms []string `json:"Algorithms"`
	// OptionalAlgorithms are placeholders CreateFlow's TemplateAlgorithms
	// may map: the face templates' alg-face-descriptor, an algorithm with
	// an embedding output (face-descriptor-node), makes the flow store each
	// best shot's embedding for SearchFaces; without it none is stored.
	OptionalAlgorithms []string `json:"OptionalAlgorithms"`
	// Document is the flow document, ready for CreateFlow.
	Document json.RawMessage `json:"Document"`
}

// FlowTemplateParameter is a parameter a task may set.
type FlowTemplateParameter struct {
	Name        string `json:"Name"`
	Type        string `json:"Type"`
	Default     any    `json:"Default"`
	Description string `json:"Description"`
}

// FlowTemplateZone is a device zone a template needs: polygon or line.
type FlowTemplateZone struct {
	Name string `json:"Name"`
	Kind string `json:"Kind"`
}

// DescribeFlowTemplatesRequest is the request of DescribeFlowTemplates.
type DescribeFlowTemplatesRequest struct {
	// Category keeps the templates of one category.
	Category string `json:"Category" validate:"max=64"`
}

// DescribeFlowTemplatesResponse is the response of DescribeFlowTemplates.
type DescribeFlowTemplatesResponse struct {
	TemplateSet []FlowTemplate `json:"TemplateSet"`
	TotalCount  int            `json:"TotalCount"`
}

// templates reads the gallery from the embedded example flows, by name.
func templates() ([]FlowTemplate, error) {
	names := make([]string, 0, len(templateInfo))
	for n := range templateInfo {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]FlowTemplate, 0, len(names))
	for _, n := range names {
		doc, err := fs.ReadFile(examples.FS, "flows/"+n+".json")
		if err != nil {
			return nil, fmt.Errorf("flow template %s: %w", n, err)
		}
		var d struct {
			Description string `json:"description"`
			Parameters  map[string]struct {
				Type        string `json:"type"`
				Default     any    `json:"default"`
				Description string `json:"description"`
			} `json:"parameters"`
			Nodes []struct {
				Kind   string `json:"kind"`
				Config struct {
					Zone string `json:"zone"`
					Mode string `json:"mode"`
				} `json:"config"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			return nil, fmt.Errorf("flow template %s: %w", n, err)
		}
		t := FlowTemplate{Name: n, Description: d.Description, Category: templateInfo[n].category,
			Parameters: []FlowTemplateParameter{}, Zones: []FlowTemplateZone{}, Document: doc,
			Algorithms: append([]string{}, templateInfo[n].algorithms...), OptionalAlgorithms: append([]string{}, templateInfo[n].optional...)}
		for _, p := range sortedNames(d.Parameters) {
			ps := d.Parameters[p]
			t.Parameters = append(t.Parameters, FlowTemplateParameter{Name: p, Type: ps.Type, Default: ps.Default, Description: ps.Description})
		}
		for _, node := range d.Nodes {
			if node.Kind != "zone" || node.Config.Zone == "" {
				continue
			}
			kind := "polygon"
			if node.Config.Mode == "cross" {
				kind = "line"
			}
			t.Zones = append(t.Zones, FlowTemplateZone{Name: node.Config.Zone, Kind: kind})
		}
		out = append(out, t)
	}
	return out, nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// templateDocument is the document of the template called name, its
// placeholder algorithm ids replaced as algs says.
func templateDocument(name string, algs map[string]string) (json.RawMessage, error) {
	info, ok := templateInfo[name]
	if !ok {
		return nil, api.InvalidValue("TemplateName", "no flow template %q; DescribeFlowTemplates lists them", name)
	}
	for k, v := range algs {
		if len(v) > 64 {
			return nil, api.InvalidValue("TemplateAlgorithms."+k, "longer than 64 bytes")
		}
		if !slices.Contains(info.algorithms, k) && !slices.Contains(info.optional, k) {
			return nil, api.InvalidValue("TemplateAlgorithms", "the template %s has no placeholder algorithm %q (it has: %v)", name, k, slices.Concat(info.algorithms, info.optional))
		}
	}
	for _, a := range info.algorithms {
		if algs[a] == "" {
			return nil, api.Missing("TemplateAlgorithms." + a)
		}
	}
	doc, err := fs.ReadFile(examples.FS, "flows/"+name+".json")
	if err != nil {
		return nil, err
	}
	if len(algs) == 0 {
		return doc, nil
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	replaceAlgorithms(v, algs)
	if d := algs[FaceDescriptorPlaceholder]; d != "" && slices.Contains(templateInfo[name].optional, FaceDescriptorPlaceholder) {
		if err := describeBestShots(v, d); err != nil {
			return nil, fmt.Errorf("flow template %s: %w", name, err)
		}
	}
	return json.Marshal(v)
}

// describeBestShots adds the face descriptor to a face template: in the
// body of its node "keep" (one best shot per run), "facecrop" crops the
// face as SearchFaces does, "embed" describes it with alg, and "save"
// stores the result as the record's Embedding (kept beside the record, not
// in its JSON). A description that fails leaves the best shot stored
// without one (onError skip: the Embedding is null, which the data center
// drops), rather than losing the record.
func describeBestShots(doc any, alg string) error {
	nodes, _ := doc.(map[string]any)["nodes"].([]any)
	for _, n := range nodes {
		keep, _ := n.(map[string]any)
		if keep["id"] != "keep" {
			continue
		}
		cfg, _ := keep["config"].(map[string]any)
		body, _ := cfg["body"].(map[string]any)
		inner, _ := body["nodes"].([]any)
		var save map[string]any
		for _, b := range inner {
			if m, _ := b.(map[string]any); m["id"] == "save" {
				save = m
			}
		}
		inputs, _ := save["inputs"].(map[string]any)
		if inputs == nil {
			return errors.New(`node "keep" has no "save" node with inputs`)
		}
		inputs["Embedding"] = "$embed.embedding"
		body["nodes"] = append(inner,
			map[string]any{"id": "facecrop", "kind": "algorithm", "config": map[string]any{"algorithm": "alg-image-ops"},
				"inputs": map[string]any{"image": "$item.frame", "op": "crop", "box": "$item.box", "margin": descriptorCropMargin, "quality": descriptorCropQuality}},
			map[string]any{"id": "embed", "kind": "algorithm", "config": map[string]any{"algorithm": alg}, "onError": "skip",
				"inputs": map[string]any{"image": "$facecrop.image", "embedding": true}})
		edges, _ := body["edges"].([]any)
		body["edges"] = append(edges, map[string]any{"from": "facecrop", "to": "embed"}, map[string]any{"from": "embed", "to": "save"})
		return nil
	}
	return errors.New(`no node "keep" stores the best shots`)
}

// replaceAlgorithms sets config.algorithm of every algorithm node, in
// foreach bodies too, that names a key of algs to its value.
func replaceAlgorithms(v any, algs map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if x["kind"] == "algorithm" {
			if cfg, ok := x["config"].(map[string]any); ok {
				if id, ok := cfg["algorithm"].(string); ok && algs[id] != "" {
					cfg["algorithm"] = algs[id]
				}
			}
		}
		for _, e := range x {
			replaceAlgorithms(e, algs)
		}
	case []any:
		for _, e := range x {
			replaceAlgorithms(e, algs)
		}
	}
}

func registerTemplateActions(reg *api.Registry) {
	api.Register(reg, api.Spec{Name: "DescribeFlowTemplates", Summary: "List the flow templates shipped with Tianshu (face structuring, face best shot per camera group, zone intrusion, line crossing count, zone occupancy, text reading in a zone): each with its category, parameters, the device zones it expects and its document. CreateFlow with TemplateName creates a flow from one.", Permission: flowRead},
		func(_ context.Context, _ *api.Caller, r *DescribeFlowTemplatesRequest) (*DescribeFlowTemplatesResponse, error) {
			all, err := templates()
			if err != nil {
				return nil, err
			}
			out := &DescribeFlowTemplatesResponse{TemplateSet: []FlowTemplate{}}
			for _, t := range all {
				if r.Category == "" || r.Category == t.Category {
					out.TemplateSet = append(out.TemplateSet, t)
				}
			}
			out.TotalCount = len(out.TemplateSet)
			return out, nil
		})
}
