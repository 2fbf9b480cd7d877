package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

const echoFlow = `{"name": "echo", "nodes": [
  {"id": "shape", "kind": "function", "inputs": {"n": "$input.n"},
   "config": {"script": "def main(input, params):\n    return {\"double\": input[\"n\"] * 2, \"label\": params[\"label\"]}"}},
  {"id": "tell", "kind": "publish", "config": {"type": "tianshu.test.doubled"}, "inputs": {"double": "$shape.double", "label": "$shape.label"}}],
  "parameters": {"label": {"type": "string", "default": "x"}},
  "edges": [{"from": "shape", "to": "tell"}]}`

// A task consumes a bus topic, runs its flow per message and publishes
// CloudEvents with stable ids; it can be stopped, and its flow cannot be
// deleted while it exists.
func TestTaskOverBusTopic(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	ctx := context.Background()

	var mu sync.Mutex
	got := map[string]event.Event{}
	sub, err := e.P.Bus.Subscribe(ctx, event.Topic("default"), "test-reader", bus.SubscribeOptions{}, func(_ context.Context, m bus.Message) error {
		var ce event.Event
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			return err
		}
		mu.Lock()
		got[ce.ID] = ce
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()

	flowID := c.mustCall("CreateFlow", map[string]any{"Document": echoFlow})["FlowId"].(string)
	r := c.mustCall("CreateTask", map[string]any{"Name": "doubler", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "topic", "Id": "in.numbers"}}, "Parameters": map[string]any{"label": "L"}})
	taskID := r["TaskId"].(string)
	status := func() string {
		r := c.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})
		return r["TaskSet"].([]any)[0].(map[string]any)["Status"].(string)
	}
	testenv.Eventually(t, 30*time.Second, "task Running", func() bool { return status() == "Running" })

	for i := 0; i < 20; i++ {
		if _, err := e.P.Bus.Publish(ctx, "in.numbers", "cam-1", []byte(fmt.Sprintf(`{"n": %d}`, i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, "20 events", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 20 })
	mu.Lock()
	for id, ce := range got {
		if ce.TaskID != taskID || ce.Type != "tianshu.test.doubled" || ce.SpecVersion != "1.0" || ce.Data["label"] != "L" || ce.Subject != "cam-1" ||
			len(ce.TraceParent) != 55 {
			t.Fatalf("event %s = %+v", id, ce)
		}
	}
	mu.Unlock()

	testenv.Eventually(t, 30*time.Second, "stats saved", func() bool {
		s := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID})
		return s["Completed"].(float64) == 20 && len(s["NodeLatency"].([]any)) == 2 && s["NodeId"] != ""
	})
	if _, code := c.call("DeleteFlow", map[string]any{"FlowId": flowID}); code != "ResourceInUse" {
		t.Errorf("DeleteFlow while a task uses it: %q", code)
	}
	if _, code := c.call("DeleteTask", map[string]any{"TaskId": taskID}); code != "ResourceInUse" {
		t.Errorf("DeleteTask while running: %q", code)
	}
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
	testenv.Eventually(t, 30*time.Second, "task Stopped", func() bool { return status() == "Stopped" })
	evs := c.mustCall("DescribeTaskEvents", map[string]any{"TaskId": taskID})["EventSet"].([]any)
	types := map[string]bool{}
	for _, ev := range evs {
		types[ev.(map[string]any)["Type"].(string)] = true
	}
	for _, want := range []string{"created", "running", "stopped"} {
		if !types[want] {
			t.Errorf("no %q event in %v", want, evs)
		}
	}
	// Restarting resumes the durable consumer: new messages only.
	c.mustCall("StartTask", map[string]any{"TaskId": taskID})
	testenv.Eventually(t, 30*time.Second, "task Running again", func() bool { return status() == "Running" })
	if _, err := e.P.Bus.Publish(ctx, "in.numbers", "cam-1", []byte(`{"n": 100}`), nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "21 events", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 21 })
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
	testenv.Eventually(t, 30*time.Second, "task Stopped", func() bool { return status() == "Stopped" })
	c.mustCall("DeleteTask", map[string]any{"TaskId": taskID})
	c.mustCall("DeleteFlow", map[string]any{"FlowId": flowID})
}

func TestTaskFailsClearly(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": echoFlow})["FlowId"].(string)
	if _, code := c.call("CreateTask", map[string]any{"Name": "x", "FlowId": "flow-none", "Sources": []any{map[string]any{"Type": "topic", "Id": "a"}}}); code != "ResourceNotFound" {
		t.Errorf("unknown flow: %q", code)
	}
	if _, code := c.call("CreateTask", map[string]any{"Name": "x", "FlowId": flowID, "Sources": []any{map[string]any{"Type": "fax", "Id": "a"}}}); code != "InvalidParameterValue" {
		t.Errorf("unknown source type: %q", code)
	}
	// A topic name the bus refuses fails the task with the reason.
	id := c.mustCall("CreateTask", map[string]any{"Name": "bad", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "topic", "Id": "Not A Topic"}}})["TaskId"].(string)
	testenv.Eventually(t, 30*time.Second, "task Failed", func() bool {
		r := c.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{id}})["TaskSet"].([]any)[0].(map[string]any)
		return r["Status"] == "Failed" && r["Reason"] != ""
	})
}
