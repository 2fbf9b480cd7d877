package studio_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/studio"
)

// DescribeFlowNodeKinds lists every kind the engine knows with its ports
// and config schema, the project's algorithms with their contracts' ports,
// and the port type compatibility an editor enforces when connecting.
func TestDescribeFlowNodeKinds(t *testing.T) {
	e := newEnv(t)
	viewer := &api.Caller{AppID: "app-v", ProjectID: "prj-a", Role: api.RoleViewer}
	var out studio.DescribeFlowNodeKindsResponse
	if err := call(t, e, viewer, "DescribeFlowNodeKinds", map[string]any{}, &out); err != nil {
		t.Fatal(err)
	}
	var names []string
	kinds := map[string]studio.FlowNodeKind{}
	for _, k := range out.KindSet {
		names = append(names, k.Name)
		kinds[k.Name] = k
	}
	var want []string
	for _, k := range flow.NewRegistry().Kinds() {
		want = append(want, k.Name)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("kinds %v, want %v", names, want)
	}
	zone := kinds["zone"]
	if zone.Category != flow.CategoryStream || len(zone.Inputs) != 4 || !reflect.DeepEqual(zone.Inputs[0], studio.FlowPort{Name: "objects", Type: "objects", Required: true, Doc: zone.Inputs[0].Doc}) || zone.OutputsOpen {
		t.Errorf("zone = %+v", zone)
	}
	props, _ := zone.ConfigSchema["properties"].(map[string]any)
	anchor, _ := props["anchor"].(map[string]any)
	if anchor["default"] != "bottom" || len(anchor["enum"].([]any)) != 2 || props["key"] != nil || zone.ConfigSchema["additionalProperties"] != false {
		t.Errorf("zone schema %v", zone.ConfigSchema)
	}
	if fn := kinds["function"]; !fn.OutputsOpen || !fn.MoreInputs || fn.ConfigSchema["required"].([]any)[0] != "script" {
		t.Errorf("function = %+v", fn)
	}
	if alg := kinds["algorithm"]; !alg.FromContract || alg.OutputsOpen {
		t.Errorf("algorithm = %+v", alg)
	}
	if len(out.AlgorithmSet) != 1 {
		t.Fatalf("algorithms %+v", out.AlgorithmSet)
	}
	a := out.AlgorithmSet[0]
	if a.AlgorithmId != "alg-double" || a.Kind != "algorithm" || a.Config["algorithm"] != "alg-double" || a.Version != "1" ||
		len(a.Inputs) != 1 || a.Inputs[0].Name != "x" || a.Inputs[0].Type != "integer" || !a.Inputs[0].Required ||
		len(a.Outputs) != 1 || a.Outputs[0].Name != "y" {
		t.Errorf("algorithm entry %+v", a)
	}
	compat := map[string][]string{}
	for _, pt := range out.PortTypeSet {
		compat[pt.Name] = pt.CompatibleWith
	}
	if !slices.Contains(compat["objects"], "list") || slices.Contains(compat["objects"], "image") || len(compat["any"]) != len(flow.PortTypes()) {
		t.Errorf("port types %v", compat)
	}
	// The gateway keeps an app of prj-a out of other projects.
	err := call(t, e, viewer, "DescribeFlowNodeKinds", map[string]any{"ProjectId": "default"}, nil)
	wantCode(t, err, api.AuthFailureUnauthorizedOperation, "")
}

// ValidateFlow pins a miswiring on its edge: the algorithm's integer
// output mapped into a zone's objects port.
func TestValidateFlowNamesTheEdge(t *testing.T) {
	e := newEnv(t)
	doc := `{"nodes": [
	  {"id": "twice", "kind": "algorithm", "config": {"algorithm": "alg-double"}, "inputs": {"x": "$input.x"}, "next": ["z"]},
	  {"id": "z", "kind": "zone", "config": {"polygon": [[0, 0], [9, 0], [9, 9]]}, "inputs": {"objects": "$twice.y"}}
	], "edges": [{"from": "z", "to": "ghost"}]}`
	var val studio.ValidateFlowResponse
	root := &api.Caller{UserName: "alice", Role: api.RoleAdmin}
	if err := call(t, e, root, "ValidateFlow", map[string]any{"Document": json.RawMessage(doc)}, &val); err != nil {
		t.Fatal(err)
	}
	want := []studio.FlowError{
		{Edge: &studio.FlowEdge{From: "z", To: "ghost"}, Field: "edges[0].to", Message: `unknown node "ghost"`},
		{NodeId: "z", Edge: &studio.FlowEdge{From: "twice", To: "z"}, Field: "inputs.objects", Message: `$twice.y is an integer, but input "objects" takes a list of objects`},
	}
	if val.Valid || len(val.ErrorSet) != len(want) {
		t.Fatalf("ValidateFlow = %+v", val)
	}
	for i, w := range want {
		g := val.ErrorSet[i]
		if g.NodeId != w.NodeId || g.Field != w.Field || g.Message != w.Message || g.Edge == nil || *g.Edge != *w.Edge {
			t.Errorf("error %d = %+v (edge %+v), want %+v (edge %+v)", i, g, g.Edge, w, w.Edge)
		}
	}
}
