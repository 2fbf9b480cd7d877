package task

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/tracing"
	"github.com/tianshu-ai/tianshu/internal/tracing/otlptest"
	"github.com/tianshu-ai/tianshu/internal/tracing/tracesdk"
)

// failAtD is six nodes in a row whose fourth, d, fails a message that
// asks it to.
const failAtD = `{"name": "chain", "nodes": [{"id": "a", "kind": "passthrough", "inputs": {"fail": "$input.fail"}},
  {"id": "b", "kind": "passthrough", "inputs": {"fail": "$a.fail"}}, {"id": "c", "kind": "passthrough", "inputs": {"fail": "$b.fail"}},
  {"id": "d", "kind": "function", "inputs": {"fail": "$c.fail"},
   "config": {"script": "def main(input, params):\n    if input[\"fail\"]:\n        fail(\"camera lost\")\n    return input"}},
  {"id": "e", "kind": "passthrough", "inputs": {"v": "$d.fail"}}, {"id": "f", "kind": "passthrough", "inputs": {"v": "$e.v"}}],
  "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "d"}, {"from": "d", "to": "e"}, {"from": "e", "to": "f"}]}`

// A sampled-out message (ratio 0) starts no span; when it fails at node
// 4 of 6, its trace is made after the fact and kept: the message's span,
// its source read and the failing node's span, connected (the node and
// the read under the message), with the error status, the node error's
// trace id, and their real start times, in the ring of recent traces and
// at a real OTLP receiver. A message that does not fail leaves nothing.
func TestSampledOutFailureIsTraced(t *testing.T) {
	ctx := context.Background()
	rcv := otlptest.Start(t)
	cfg := telemetry.DefaultTraceConfig()
	cfg.Endpoint, cfg.SampleRatio, cfg.RecentTraces = rcv.GRPCURL, 0, 16
	tr, err := tracesdk.New(cfg, tracesdk.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(ctx) }()
	ot := tracing.Tracer(tr.Provider(), "tianshu/task")
	spec, err := flow.Parse([]byte(failAtD), flow.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	st := &taskStats{nodes: map[string]*nodeStats{}}
	plan, err := flow.Compile(ctx, spec, flow.Options{Tracer: newTracer(st, ot)})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{task: &Task{ID: "task-1", ProjectID: "default", Sources: []pipeline.SourceSpec{{Type: "device", Id: "dev-1"}}},
		plan: plan, log: slog.New(slog.DiscardHandler), stats: st, ot: ot}

	good := r.newItem(pipeline.Message{ID: "m-good", Key: "dev-1", Time: time.Now(), Data: map[string]any{"fail": false}}, 0)
	r.process(ctx, good)
	bad := r.newItem(pipeline.Message{ID: "m-bad", Key: "dev-1", Time: time.Now(), Data: map[string]any{"fail": true}}, 0)
	before := time.Now()
	r.process(ctx, bad)
	if st.failed.Load() != 1 || len(st.nodeErrors) != 1 || st.nodeErrors[0].NodeId != "d" {
		t.Fatalf("failed %d, node errors %+v; want one, at d", st.failed.Load(), st.nodeErrors)
	}
	id := st.nodeErrors[0].TraceId
	if id != bad.root.SpanContext().TraceID().String() {
		t.Fatalf("node error's trace %s, the message's %s", id, bad.root.SpanContext().TraceID())
	}
	if n := len(tr.Recent().Trace(good.root.SpanContext().TraceID().String())); n != 0 {
		t.Errorf("the ring holds %d spans of the message that did not fail", n)
	}

	spans := tr.Recent().Trace(id)
	by := map[string]tracesdk.Span{}
	for _, s := range spans {
		by[s.Name] = s
	}
	msg, read, d := by["task.message"], by["source.read device"], by["flow.node d"]
	switch {
	case len(spans) != 3 || msg.SpanId == "" || read.SpanId == "" || d.SpanId == "":
		t.Fatalf("ring: trace %s = %+v, want the message, its read and node d", id, spans)
	case msg.SpanId != bad.root.SpanContext().SpanID().String() || msg.ParentSpanId != "":
		t.Errorf("ring: message span %s (parent %q), the message carried span %s", msg.SpanId, msg.ParentSpanId, bad.root.SpanContext().SpanID())
	case d.ParentSpanId != msg.SpanId || read.ParentSpanId != msg.SpanId || read.SpanId == msg.SpanId || d.SpanId == msg.SpanId:
		t.Errorf("ring: node d's parent %s, read's %s; message %s", d.ParentSpanId, read.ParentSpanId, msg.SpanId)
	case d.Status != "error" || msg.Status != "error" || d.Attributes["tianshu.node"] != "d" || msg.TaskId != "task-1" || msg.Attributes["tianshu.message"] != "m-bad":
		t.Errorf("ring: node d %+v, message %+v", d, msg)
	}
	if start, err := time.Parse(time.RFC3339Nano, d.StartTime); err != nil || start.After(time.Now()) || start.Before(before) || d.DurationUs < 0 {
		t.Errorf("ring: node d started at %s (%v), the message was processed from %s", d.StartTime, err, before)
	}

	sid := bad.root.SpanContext().SpanID()
	var got map[string]string
	testenv.Eventually(t, 20*time.Second, "the failed trace at the receiver", func() bool {
		got = map[string]string{}
		parents := map[string]string{}
		for _, s := range rcv.Trace(id) {
			got[s.GetName()] = s.GetStatus().GetMessage()
			parents[s.GetName()] = string(s.GetParentSpanId())
		}
		return len(got) == 3 && parents["flow.node d"] == string(sid[:]) &&
			got["flow.node d"] != "" && got["task.message"] != ""
	})
}
