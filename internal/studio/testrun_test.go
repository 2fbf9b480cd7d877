package studio_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/studio"
)

// RunFlowTest runs an unsaved document through the real algorithm
// runtime, or one node alone on pinned outputs without calling what is
// upstream; a failing run still answers with how far it got; oversized
// or contradictory requests are refused naming the field.
func TestRunFlowTest(t *testing.T) {
	e := newEnv(t)
	admin := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAdmin}
	var run studio.RunFlowTestResponse
	if err := call(t, e, admin, "RunFlowTest", map[string]any{"Document": doubleDoc, "Input": map[string]any{"x": 4}}, &run); err != nil {
		t.Fatal(err)
	}
	if out, _ := run.Output["out"].(map[string]any); out["y"] != float64(8) || len(run.NodeSet) != 2 || run.RunError != "" || e.calls.Load() != 1 {
		t.Fatalf("RunFlowTest = %+v", run)
	}
	if err := call(t, e, admin, "RunFlowTest", map[string]any{"Document": doubleDoc, "NodeId": "out",
		"PinnedOutputs": map[string]any{"twice": map[string]any{"y": 10}}}, &run); err != nil {
		t.Fatal(err)
	}
	if len(run.NodeSet) != 1 || run.NodeSet[0].NodeId != "out" || e.calls.Load() != 1 {
		t.Fatalf("single-node run = %+v (algorithm called %d times)", run, e.calls.Load())
	}
	if out, _ := run.NodeSet[0].Output.(map[string]any); out["y"] != float64(10) {
		t.Errorf("single-node output %v", run.NodeSet[0].Output)
	}

	script, _ := json.Marshal("def main(input, params):\n    fail('no luck')")
	failing := `{"nodes": [{"id": "ok", "kind": "passthrough", "inputs": {"v": 1}, "next": ["bad"]},
	  {"id": "bad", "kind": "function", "config": {"script": ` + string(script) + `}}]}`
	if err := call(t, e, admin, "RunFlowTest", map[string]any{"Document": failing}, &run); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(run.RunError, "no luck") || len(run.NodeSet) != 2 || run.NodeSet[0].Status != "ok" || run.NodeSet[1].Status != "failed" {
		t.Errorf("failing run = %+v", run)
	}

	for _, c := range []struct {
		req  map[string]any
		code api.Code
		msg  string
	}{
		{map[string]any{"Document": doubleDoc, "Input": map[string]any{"x": strings.Repeat("a", 1<<20)}}, api.LimitExceeded, "Input: 1048584 bytes of JSON; the limit is 1048576"},
		{map[string]any{"Document": doubleDoc, "PinnedOutputs": map[string]any{"twice": 1}}, api.InvalidParameterValue, "PinnedOutputs: pinned outputs need NodeId, the node to run alone"},
		{map[string]any{"Document": doubleDoc, "NodeId": "twice", "PinnedOutputs": map[string]any{"twice": 1}}, api.InvalidParameterValue, `NodeId: bad input: pinned output of "twice": not another node of the flow`},
		{map[string]any{"Document": doubleDoc, "UploadId": "up-1"}, api.ResourceUnavailable, "UploadId: test runs on stored pictures are not available on this platform"},
		{map[string]any{"Document": doubleDoc, "UploadId": "up-1", "RecordId": "rec-1"}, api.InvalidParameterValue, "RecordId: give one of UploadId, DeviceId and RecordId, not UploadId and RecordId"},
		{map[string]any{}, api.MissingParameter, "Document or FlowId: required"},
		{map[string]any{"Document": badDoc}, api.InvalidParameterValue, ""},
	} {
		err := call(t, e, admin, "RunFlowTest", c.req, nil)
		wantCode(t, err, c.code, c.msg)
	}
	viewer := &api.Caller{AppID: "app-v", ProjectID: "prj-a", Role: api.RoleViewer}
	if err := call(t, e, viewer, "RunFlowTest", map[string]any{"Document": doubleDoc}, nil); err == nil {
		t.Error("a viewer ran a test")
	}
}
