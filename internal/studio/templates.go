package studio

import (
	"context"
	"encoding/json"
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
// category and the placeholder algorithm ids it names for algorithms the
// user brings (CreateFlow's TemplateAlgorithms replaces them).
var templateInfo = map[string]struct {
	category   string
	algorithms []string
}{
	"face-structuring":    {"faces", nil},
	"face-bestshot-group": {"faces", nil},
	"face-watchlist":      {"faces", []string{"alg-face-embedding"}},
	"zone-intrusion":      {"security", nil},
	"line-crossing-count": {"counting", nil},
	"zone-occupancy":      {"counting", nil},
	"text-reading":        {"text", []string{"alg-ocr"}},
}

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
			Algorithms: append([]string{}, templateInfo[n].algorithms...)}
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
		if !slices.Contains(info.algorithms, k) {
			return nil, api.InvalidValue("TemplateAlgorithms", "the template %s has no placeholder algorithm %q (it has: %v)", name, k, info.algorithms)
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
	if len(info.algorithms) == 0 {
		return doc, nil
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	replaceAlgorithms(v, algs)
	return json.Marshal(v)
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
