package studio_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/studio"
)

// functionDoc is a flow of one function node whose script has top as its
// top-level code.
func functionDoc(top string) string {
	script := top + "\ndef main(input):\n    return {'ok': True}\n"
	b, _ := json.Marshal(script)
	return `{"nodes": [{"id": "fn", "kind": "function", "config": {"script": ` + string(b) + `}}]}`
}

// ValidateFlow needs only read permission, so it must not run a script's
// top-level code: a viewer could otherwise spend the server's CPU and
// memory (issue #26). CreateFlow, a write, still runs it within the limits.
func TestValidateFlowRunsNoUserCode(t *testing.T) {
	e := newEnv(t)
	viewer := &api.Caller{AppID: "app-v", ProjectID: "prj-a", Role: api.RoleViewer}
	for _, top := range []string{
		"fail('top-level code ran')",
		"while True:\n    pass",
		"x = ['a' * 1000000 for i in range(300)]",
		"x = int('9' * 1000000)",
	} {
		var val studio.ValidateFlowResponse
		if err := call(t, e, viewer, "ValidateFlow", map[string]any{"Document": functionDoc(top)}, &val); err != nil {
			t.Fatalf("%q: %v", top, err)
		}
		if !val.Valid {
			t.Errorf("%q: ValidateFlow = %+v; it should not have run the top-level code", top, val)
		}
	}
	// Compile-time problems are still reported.
	var val studio.ValidateFlowResponse
	if err := call(t, e, viewer, "ValidateFlow", map[string]any{"Document": functionDoc("load('os', 'x')")}, &val); err != nil {
		t.Fatal(err)
	}
	if val.Valid || len(val.ErrorSet) != 1 || !strings.Contains(val.ErrorSet[0].Message, "load() is not allowed") {
		t.Errorf("ValidateFlow of a load = %+v", val)
	}
	for _, src := range []string{"x = 1", "def main():\n    return 1", "x = undefined_name"} {
		b, _ := json.Marshal(src)
		doc := `{"nodes": [{"id": "fn", "kind": "function", "config": {"script": ` + string(b) + `}}]}`
		if err := call(t, e, viewer, "ValidateFlow", map[string]any{"Document": doc}, &val); err != nil {
			t.Fatal(err)
		}
		if val.Valid {
			t.Errorf("ValidateFlow of %q = valid", src)
		}
	}
	// CreateFlow runs the top level and names the limit and the node.
	admin := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAdmin}
	err := call(t, e, admin, "CreateFlow", map[string]any{"Name": "spin", "Document": functionDoc("while True:\n    pass")}, nil)
	if ae, ok := api.AsError(err); !ok || !strings.Contains(ae.Message, "steps limit exceeded") || !strings.Contains(ae.Message, `"fn"`) {
		t.Errorf("CreateFlow of a spinning top level: %v", err)
	}
	// InvokeFlow answers a script over its limits with LimitExceeded,
	// naming the node and the limit.
	b, _ := json.Marshal("def main(input):\n    return len(['a' * 1000000 for i in range(300)])")
	var created studio.CreateFlowResponse
	if err := call(t, e, admin, "CreateFlow", map[string]any{"Name": "hog", "Document": `{"nodes": [{"id": "fn", "kind": "function", "config": {"script": ` + string(b) + `}}]}`}, &created); err != nil {
		t.Fatal(err)
	}
	err = call(t, e, admin, "InvokeFlow", map[string]any{"FlowId": created.FlowId, "Input": map[string]any{}}, nil)
	// (On a loaded machine the time limit can stop it first; either way it is
	// a limit, named. internal/function tests the memory limit itself.)
	if ae, ok := api.AsError(err); !ok || ae.Code != api.LimitExceeded || !strings.Contains(ae.Message, "limit exceeded") || !strings.Contains(ae.Message, `"fn"`) {
		t.Errorf("InvokeFlow of a memory hog: %v", err)
	}
}
