package task_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/task"
)

// ModifyTaskFlowVersion moves a task to another version of its flow once
// the version exists and its declared parameters are satisfied; refusals
// name the field. DescribeTasks tells a task's version from its flow's
// latest.
func TestModifyTaskFlowVersion(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "sqlite")
	f, err := w.flows.Create(ctx, "", "versions", "", []byte(noopFlow), "")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := w.flows.Modify(ctx, f.ID, nil, nil, []byte(`{"parameters": {"threshold": {"type": "number", "required": true}},
		"nodes": [{"id": "a", "kind": "noop"}, {"id": "b", "kind": "noop"}]}`), "threshold", "alice")
	if err != nil || v2 != 2 {
		t.Fatalf("version 2: %d, %v", v2, err)
	}
	cam, err := w.newDevice(ctx, "cam")
	if err != nil {
		t.Fatal(err)
	}
	tk := &task.Task{Name: "t", FlowID: f.ID, FlowVersion: 1, Sources: []pipeline.SourceSpec{{Type: "device", Id: cam}}}
	if err := w.tasks.Create(ctx, tk, false); err != nil {
		t.Fatal(err)
	}
	reg := api.NewRegistry()
	task.RegisterActions(reg, w.tasks)
	caller := &api.Caller{AppID: "app-t", ProjectID: "default", Role: api.RoleAdmin}
	call := func(action, body string, out any) error {
		a, _ := reg.Lookup(action)
		res, err := a.Call(ctx, caller, []byte(body))
		if err == nil && out != nil {
			b, _ := json.Marshal(res)
			err = json.Unmarshal(b, out)
		}
		return err
	}
	latest := func() (int64, int64) {
		var out task.DescribeTasksResponse
		if err := call("DescribeTasks", `{"TaskIds": ["`+tk.ID+`"]}`, &out); err != nil || len(out.TaskSet) != 1 {
			t.Fatalf("DescribeTasks: %+v, %v", out, err)
		}
		return out.TaskSet[0].FlowVersion, out.TaskSet[0].LatestFlowVersion
	}
	if v, l := latest(); v != 1 || l != 2 {
		t.Fatalf("before the move: version %d, latest %d; want 1 and 2", v, l)
	}
	for _, c := range []struct {
		body string
		code api.Code
		msg  string
	}{
		{`{"FlowVersion": 2}`, api.MissingParameter, "TaskId"},
		{`{"TaskId": "task-none", "FlowVersion": 2}`, api.ResourceNotFound, "TaskId"},
		{`{"TaskId": "` + tk.ID + `", "FlowVersion": -1}`, api.InvalidParameterValue, "FlowVersion"},
		{`{"TaskId": "` + tk.ID + `", "FlowVersion": 7}`, api.ResourceNotFound, "FlowVersion"},
		{`{"TaskId": "` + tk.ID + `", "FlowVersion": 2}`, api.MissingParameter, "Parameters.threshold: required"},
		{`{"TaskId": "` + tk.ID + `", "FlowVersion": 2, "Parameters": {"threshold": "high"}}`, api.InvalidParameterValue, "Parameters.threshold: high is not a number"},
	} {
		err := call("ModifyTaskFlowVersion", c.body, nil)
		if e, ok := api.AsError(err); !ok || e.Code != c.code || len(e.Message) < len(c.msg) || e.Message[:len(c.msg)] != c.msg {
			t.Errorf("%s: %v; want %s %q", c.body, err, c.code, c.msg)
		}
	}
	var out task.ModifyTaskFlowVersionResponse
	if err := call("ModifyTaskFlowVersion", `{"TaskId": "`+tk.ID+`", "Parameters": {"threshold": 0.5}}`, &out); err != nil {
		t.Fatal(err)
	}
	if out.PreviousFlowVersion != 1 || out.FlowVersion != 2 {
		t.Fatalf("ModifyTaskFlowVersion to the latest: %+v", out)
	}
	if v, l := latest(); v != 2 || l != 2 {
		t.Fatalf("after the move: version %d, latest %d; want 2 and 2", v, l)
	}
	var evs task.DescribeTaskEventsResponse
	if err := call("DescribeTaskEvents", `{"TaskId": "`+tk.ID+`"}`, &evs); err != nil || len(evs.EventSet) == 0 || evs.EventSet[0].Type != "version_changed" {
		t.Fatalf("events after the move: %+v, %v", evs, err)
	}
	// The same version and parameters again: nothing changes, no event.
	if err := call("ModifyTaskFlowVersion", `{"TaskId": "`+tk.ID+`", "FlowVersion": 2}`, &out); err != nil || out.PreviousFlowVersion != 2 {
		t.Fatalf("a move to the version it runs: %+v, %v", out, err)
	}
	if err := call("DescribeTaskEvents", `{"TaskId": "`+tk.ID+`"}`, &evs); err != nil || len(evs.EventSet) != 2 {
		t.Fatalf("events after a move that changed nothing: %+v, %v", evs, err)
	}
}
