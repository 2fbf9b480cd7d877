package studio_test

import (
	"encoding/json"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/studio"
)

// ValidateFlow places a script's and an expression's error at its line
// and column, so an editor can mark it in the code; other problems have
// none.
func TestValidateFlowScriptPositions(t *testing.T) {
	e := newEnv(t)
	script, _ := json.Marshal("def main(input):\n    x = 1\n    return x +\n")
	doc := `{"nodes": [
	  {"id": "fn", "kind": "function", "config": {"script": ` + string(script) + `}, "next": ["sw"]},
	  {"id": "sw", "kind": "switch", "config": {"cases": [{"when": "True", "next": "a"}, {"when": "fn > treshold", "next": "a"}]}, "inputs": {"fn": "$fn"}},
	  {"id": "a", "kind": "noop", "config": {"nope": 1}}
	]}`
	var val studio.ValidateFlowResponse
	viewer := &api.Caller{AppID: "app-v", ProjectID: "prj-a", Role: api.RoleViewer}
	if err := call(t, e, viewer, "ValidateFlow", map[string]any{"Document": json.RawMessage(doc)}, &val); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{"config.script": {3, 15}, "config.cases[1].when": {1, 6}, "config.nope": {0, 0}}
	if val.Valid || len(val.ErrorSet) != len(want) {
		t.Fatalf("ValidateFlow = %+v", val)
	}
	for _, g := range val.ErrorSet {
		w, ok := want[g.Field]
		if !ok || g.Line != w[0] || g.Column != w[1] {
			t.Errorf("%s: %s at %d:%d, want %v", g.Field, g.Message, g.Line, g.Column, w)
		}
	}
}

// RunFlowTest places a script's run-time failure at the line of the
// script that failed.
func TestRunFlowTestScriptPosition(t *testing.T) {
	e := newEnv(t)
	script, _ := json.Marshal("def main(input):\n    n = input['x']\n    return n // 0\n")
	doc := `{"nodes": [{"id": "fn", "kind": "function", "config": {"script": ` + string(script) + `}, "inputs": {"x": "$input.x"}}]}`
	admin := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAdmin}
	var run studio.RunFlowTestResponse
	if err := call(t, e, admin, "RunFlowTest", map[string]any{"Document": json.RawMessage(doc), "Input": map[string]any{"x": 4}}, &run); err != nil {
		t.Fatal(err)
	}
	if run.RunError == "" || len(run.NodeSet) != 1 {
		t.Fatalf("RunFlowTest = %+v", run)
	}
	if n := run.NodeSet[0]; n.Line != 3 || n.Column != 14 || n.Error == "" {
		t.Errorf("node = %+v, want the error at 3:14", n)
	}
}
