package studio

import (
	"context"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
)

// DescribeFlowNodeKindsRequest is the request of DescribeFlowNodeKinds.
type DescribeFlowNodeKindsRequest struct {
	// ProjectId lists that project's algorithms (and the built-ins) in
	// AlgorithmSet; default: the caller's project, else default.
	ProjectId string `json:"ProjectId" validate:"max=64"`
}

// FlowPort is one input port or output field of a node kind or algorithm.
// Items, on an algorithm's objects or list output, are the fields its
// contract declares for each element (absent when it declares none).
type FlowPort struct {
	Name     string          `json:"Name"`
	Type     string          `json:"Type"`
	Required bool            `json:"Required"`
	Doc      string          `json:"Doc"`
	Items    []FlowItemField `json:"Items,omitempty"`
}

// FlowItemField is one field of each element of a list output.
type FlowItemField struct {
	Name string `json:"Name"`
	Type string `json:"Type"`
	Doc  string `json:"Doc"`
}

// FlowNodeKind describes one node kind: its ports and its config's JSON
// Schema, so that an editor builds its palette and forms from it.
type FlowNodeKind struct {
	Name     string `json:"Name"`
	Doc      string `json:"Doc"`
	Category string `json:"Category"`
	// Inputs are the ports the kind reads by name; MoreInputs: it takes
	// inputs of any other name too (a script's, a record's fields).
	Inputs     []FlowPort `json:"Inputs"`
	MoreInputs bool       `json:"MoreInputs"`
	// Outputs are the fields of the node's output; OutputsOpen: its shape
	// is not fixed (a script's result), and paths into it are not checked.
	Outputs     []FlowPort `json:"Outputs"`
	OutputsOpen bool       `json:"OutputsOpen"`
	// FromContract: the ports are those of the algorithm the config names
	// (see AlgorithmSet).
	FromContract bool           `json:"FromContract"`
	ConfigSchema map[string]any `json:"ConfigSchema"`
}

// FlowAlgorithmEntry is an algorithm as a palette entry: a node of kind
// algorithm with Config, and the ports of its current version's contract.
type FlowAlgorithmEntry struct {
	AlgorithmId string         `json:"AlgorithmId"`
	Name        string         `json:"Name"`
	Description string         `json:"Description"`
	Version     string         `json:"Version"`
	Kind        string         `json:"Kind"`
	Config      map[string]any `json:"Config"`
	Inputs      []FlowPort     `json:"Inputs"`
	Outputs     []FlowPort     `json:"Outputs"`
	// OutputsOpen: the contract declares no outputs.
	OutputsOpen bool `json:"OutputsOpen"`
}

// FlowPortType is one port type and the types it connects to (either
// way): equal types, any, and the same family ({number, integer},
// {list, objects}).
type FlowPortType struct {
	Name           string   `json:"Name"`
	CompatibleWith []string `json:"CompatibleWith"`
}

// DescribeFlowNodeKindsResponse is the response of DescribeFlowNodeKinds.
type DescribeFlowNodeKindsResponse struct {
	KindSet      []FlowNodeKind       `json:"KindSet"`
	AlgorithmSet []FlowAlgorithmEntry `json:"AlgorithmSet"`
	PortTypeSet  []FlowPortType       `json:"PortTypeSet"`
}

func flowPorts(ports []flow.Port) []FlowPort {
	out := make([]FlowPort, len(ports))
	for i, p := range ports {
		typ := p.Type
		if typ == "" {
			typ = flow.TypeAny
		}
		out[i] = FlowPort{Name: p.Name, Type: typ, Required: p.Required, Doc: p.Doc}
		for _, it := range p.Items {
			out[i].Items = append(out[i].Items, FlowItemField{Name: it.Name, Type: it.Type, Doc: it.Doc})
		}
	}
	return out
}

// DescribeKinds lists the node kinds, the algorithms a flow of projectID
// may call, and the port types.
func (s *Service) DescribeKinds(ctx context.Context, projectID string) (*DescribeFlowNodeKindsResponse, error) {
	out := &DescribeFlowNodeKindsResponse{KindSet: []FlowNodeKind{}, AlgorithmSet: []FlowAlgorithmEntry{}, PortTypeSet: []FlowPortType{}}
	for _, k := range s.reg.Kinds() {
		out.KindSet = append(out.KindSet, FlowNodeKind{Name: k.Name, Doc: k.Doc, Category: k.Category,
			Inputs: flowPorts(k.Inputs), MoreInputs: k.MoreInputs, Outputs: flowPorts(k.Outputs), OutputsOpen: k.Outputs == nil && !k.FromContract,
			FromContract: k.FromContract, ConfigSchema: k.ConfigSchema()})
	}
	if s.o.Catalog != nil {
		algs, err := s.o.Catalog(ctx, projectID)
		if err != nil {
			return nil, err
		}
		for _, a := range algs {
			e := FlowAlgorithmEntry{AlgorithmId: a.ID, Name: a.Name, Description: a.Description, Version: a.Version, Kind: "algorithm",
				Config: map[string]any{"algorithm": a.ID}, Inputs: []FlowPort{}, Outputs: []FlowPort{}, OutputsOpen: true}
			if a.Contract != nil {
				e.Inputs = flowPorts(flow.ContractPorts(a.Contract.Inputs))
				e.Outputs = flowPorts(flow.ContractPorts(a.Contract.Outputs))
				e.OutputsOpen = len(a.Contract.Outputs) == 0
			}
			out.AlgorithmSet = append(out.AlgorithmSet, e)
		}
	}
	for _, t := range flow.PortTypes() {
		pt := FlowPortType{Name: t}
		for _, u := range flow.PortTypes() {
			if flow.Compatible(t, u) {
				pt.CompatibleWith = append(pt.CompatibleWith, u)
			}
		}
		out.PortTypeSet = append(out.PortTypeSet, pt)
	}
	return out, nil
}

// projectOf is the project an action that may name none acts on: the one
// named, else the calling app's, else default.
func projectOf(c *api.Caller, projectID string) string {
	switch {
	case projectID != "":
		return projectID
	case c.ProjectID != "":
		return c.ProjectID
	}
	return "default"
}

func registerKindActions(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "DescribeFlowNodeKinds", Summary: "List every flow node kind with its typed input ports, output fields and config JSON Schema, the algorithms a flow of the project may call with their contracts' ports (palette entries), and which port types connect.", Permission: flowRead},
		func(ctx context.Context, c *api.Caller, r *DescribeFlowNodeKindsRequest) (*DescribeFlowNodeKindsResponse, error) {
			project := projectOf(c, r.ProjectId)
			if !c.Sees(project) {
				return nil, api.NotFound("ProjectId", project)
			}
			return s.DescribeKinds(ctx, project)
		})
}
