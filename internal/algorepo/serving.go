package algorepo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
)

// DescribeServingRuntimesRequest is the request of DescribeServingRuntimes.
type DescribeServingRuntimesRequest struct {
	// Names keeps the runtimes named (default: all).
	Names []string `json:"Names" validate:"max=16"`
}

// ServingRuntimeInfo is one serving runtime: what it takes and whether the
// answering node can run it.
type ServingRuntimeInfo struct {
	Name        string `json:"Name"`
	Description string `json:"Description"`
	// Protocol is what the platform speaks to it (oip-v2).
	Protocol string `json:"Protocol"`
	// ModelFormats are the model file formats it loads ("onnx").
	ModelFormats []string `json:"ModelFormats"`
	// OutputKinds are the descriptor's output kinds it decodes
	// (classification, detection, ocr), and DetectionFormats the output
	// layouts of kind detection (yolov8, yolov5).
	OutputKinds      []string `json:"OutputKinds"`
	DetectionFormats []string `json:"DetectionFormats"`
	// Available says whether the answering node can start it; Reason says
	// why not (not installed, its command not allowed, no runtime in this
	// process), in the words a version's start would fail with.
	Available bool   `json:"Available"`
	Reason    string `json:"Reason"`
}

// DescribeServingRuntimesResponse is the response of DescribeServingRuntimes.
type DescribeServingRuntimesResponse struct {
	TotalCount int                  `json:"TotalCount"`
	RuntimeSet []ServingRuntimeInfo `json:"RuntimeSet"`
}

// ServingRuntimes returns the serving runtimes this build knows, those
// named (all when names is empty), with whether this process's algorithm
// runtime can run each.
func (s *Service) ServingRuntimes(names []string) ([]ServingRuntimeInfo, error) {
	var known []string
	for _, rt := range algorithm.ServingRuntimes() {
		known = append(known, rt.Name)
	}
	for i, n := range names {
		if _, ok := algorithm.LookupServingRuntime(n); !ok {
			return nil, api.InvalidValue(fmt.Sprintf("Names[%d]", i), "unknown serving runtime %q; known: %s", n, strings.Join(known, ", "))
		}
	}
	out := []ServingRuntimeInfo{}
	for _, rt := range algorithm.ServingRuntimes() {
		if len(names) > 0 && !slices.Contains(names, rt.Name) {
			continue
		}
		info := ServingRuntimeInfo{Name: rt.Name, Description: rt.Doc, Protocol: rt.Protocol, ModelFormats: []string{rt.Format},
			OutputKinds: rt.Kinds, DetectionFormats: rt.DetectionFormats, Available: true}
		if s.m == nil {
			info.Available, info.Reason = false, ErrNoRuntime.Error()
		} else if err := s.m.ServingRuntimeAvailable(rt.Name); err != nil {
			info.Available, info.Reason = false, err.Error()
		}
		out = append(out, info)
	}
	return out, nil
}

func registerServingActions(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "DescribeServingRuntimes", Summary: "List the serving runtimes that run model files (CreateAlgorithmVersion with Definition.serving): protocol, model formats, output kinds and detection layouts, and whether the answering node can run each, with why not.", Permission: algRead},
		func(_ context.Context, _ *api.Caller, r *DescribeServingRuntimesRequest) (*DescribeServingRuntimesResponse, error) {
			rts, err := s.ServingRuntimes(r.Names)
			if err != nil {
				return nil, err
			}
			return &DescribeServingRuntimesResponse{TotalCount: len(rts), RuntimeSet: rts}, nil
		})
}
