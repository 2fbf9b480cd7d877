package task_test

import (
	"context"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/task"
)

// CreateTask checks Parameters against the parameters the flow version
// declares, so that a task that cannot start is refused when it is
// created, naming the parameter.
func TestCreateTaskChecksParameters(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "sqlite")
	f, err := w.flows.Create(ctx, "", "params", "", []byte(`{"parameters": {"threshold": {"type": "number", "required": true}, "zone": {"type": "string"}},
		"nodes": [{"id": "a", "kind": "noop"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	cam, err := w.newDevice(ctx, "cam")
	if err != nil {
		t.Fatal(err)
	}
	reg := api.NewRegistry()
	task.RegisterActions(reg, w.tasks)
	a, _ := reg.Lookup("CreateTask")
	create := func(params string) error {
		_, err := a.Call(ctx, &api.Caller{AppID: "app-t", ProjectID: "default", Role: api.RoleAdmin},
			[]byte(`{"Name": "t", "FlowId": "`+f.ID+`", "Sources": [{"Type": "device", "Id": "`+cam+`"}], "Parameters": `+params+`}`))
		return err
	}
	for _, c := range []struct {
		params string
		code   api.Code
		msg    string
	}{
		{`{}`, api.MissingParameter, "Parameters.threshold: required"},
		{`{"threshold": "high"}`, api.InvalidParameterValue, "Parameters.threshold: high is not a number"},
		{`{"threshold": 0.5, "zoen": "north"}`, api.InvalidParameterValue, "Parameters.zoen: unknown parameter"},
		{`{"threshold": 0.5, "zone": 3}`, api.InvalidParameterValue, "Parameters.zone: 3 is not a string"},
	} {
		err := create(c.params)
		if e, ok := api.AsError(err); !ok || e.Code != c.code || e.Message != c.msg {
			t.Errorf("Parameters %s: %v; want %s %q", c.params, err, c.code, c.msg)
		}
	}
	for _, params := range []string{`{"threshold": 1}`, `{"threshold": 0.5, "zone": "north"}`} {
		if err := create(params); err != nil {
			t.Errorf("Parameters %s: %v", params, err)
		}
	}
}
