package app_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/tracing/otlptest"
)

// traceFlow detects faces in each frame, stores a record and publishes it.
const traceFlow = `{"name": "traced", "nodes": [
  {"id": "detect", "kind": "algorithm", "config": {"algorithm": "alg-face-detect"}, "inputs": {"image": "$input.image"}},
  {"id": "save", "kind": "store", "config": {"type": "faces"}, "inputs": {"faces": "$detect.faces", "device": "$input.device"}},
  {"id": "tell", "kind": "publish", "config": {"type": "tianshu.faces.found"}, "inputs": {"recordId": "$save.recordId"}}],
  "edges": [{"from": "detect", "to": "save"}, {"from": "save", "to": "tell"}]}`

// One frame of a replay camera makes one connected trace, exported over
// OTLP gRPC to a real receiver (otlptest stands in for a collector: the
// OTLP trace service with the protocol's own types): the message, its
// source read, each flow node, the algorithm call (protocol, instance,
// batch size), the records write, the publish and the webhook delivery,
// each under its parent; the webhook receiver sees the delivery span's
// traceparent, and DescribeTrace returns the same trace by record id.
func TestFrameTraceEndToEnd(t *testing.T) {
	rcv := otlptest.Start(t)
	dir := t.TempDir()
	for i := range 2 {
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".jpg"), jpegImage(t, 32, 24, uint8(90*i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", dir, "--otel.endpoint", rcv.GRPCURL, "--otel.protocol", "grpc",
		"--otel.sample-ratio", "1", "--otel.recent-traces", "1000"}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)

	type hook struct {
		traceparent string
		recordID    string
	}
	var mu sync.Mutex
	var hooks []hook
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ce struct {
			TraceParent string `json:"traceparent"`
			Data        struct {
				RecordID string `json:"recordId"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ce)
		mu.Lock()
		hooks = append(hooks, hook{r.Header.Get("traceparent"), ce.Data.RecordID})
		mu.Unlock()
	}))
	defer receiver.Close()
	c.mustCall("CreateSubscription", map[string]any{"Name": "hook", "Channel": map[string]any{"Type": "webhook", "Webhook": map[string]any{"Url": receiver.URL}},
		"Filter": map[string]any{"Types": []string{"tianshu.faces.*"}}})
	devID := c.mustCall("CreateDevice", map[string]any{"Name": "replay-1", "Driver": "replay", "Address": dir, "Fps": 5})["DeviceId"].(string)
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": traceFlow})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "traced", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)

	var h hook
	testenv.Eventually(t, 60*time.Second, "a webhook", func() bool {
		if st := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID}); st["LastError"] != nil && st["LastError"] != "" {
			t.Fatalf("task: %v", st["LastError"])
		}
		mu.Lock()
		defer mu.Unlock()
		if len(hooks) > 0 {
			h = hooks[0]
		}
		return len(hooks) > 0
	})
	tp, ok := event.ParseTraceParent(h.traceparent)
	if !ok || h.recordID == "" {
		t.Fatalf("webhook traceparent %q, record %q", h.traceparent, h.recordID)
	}
	want := []string{"task.message", "source.read device", "flow.node detect", "algorithm.call alg-face-detect", "flow.node save",
		"records.write", "flow.node tell", "bus.publish", "push.webhook"}
	var spans map[string]*tracepb.Span
	testenv.Eventually(t, 30*time.Second, "the frame's spans at the receiver", func() bool {
		spans = map[string]*tracepb.Span{}
		for _, s := range rcv.Trace(tp.TraceID) {
			spans[s.GetName()] = s
		}
		for _, n := range want {
			if spans[n] == nil {
				return false
			}
		}
		return true
	})
	parentOf := map[string]string{"source.read device": "task.message", "flow.node detect": "task.message", "algorithm.call alg-face-detect": "flow.node detect",
		"flow.node save": "task.message", "records.write": "flow.node save", "flow.node tell": "task.message", "bus.publish": "flow.node tell", "push.webhook": "bus.publish"}
	for child, parent := range parentOf {
		if got, want := hex.EncodeToString(spans[child].GetParentSpanId()), hex.EncodeToString(spans[parent].GetSpanId()); got != want {
			t.Errorf("%s: parent span %s, want %s (%s)", child, got, want, parent)
		}
	}
	if len(spans["task.message"].GetParentSpanId()) != 0 {
		t.Error("task.message has a parent: a device frame starts its trace")
	}
	if got := hex.EncodeToString(spans["push.webhook"].GetSpanId()); got != tp.SpanID {
		t.Errorf("webhook traceparent span %s, want the delivery span %s", tp.SpanID, got)
	}
	attrs := map[string]string{}
	for _, kv := range spans["algorithm.call alg-face-detect"].GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().String()
	}
	if attrs["tianshu.protocol"] == "" || attrs["tianshu.instance"] == "" || attrs["tianshu.batch_size"] == "" {
		t.Errorf("algorithm span attributes %v", attrs)
	}
	for _, kv := range spans["records.write"].GetAttributes() {
		if kv.GetKey() == "tianshu.record_id" && kv.GetValue().GetStringValue() != h.recordID {
			t.Errorf("records.write span names record %s, the webhook %s", kv.GetValue().GetStringValue(), h.recordID)
		}
	}

	// The console's view: the same trace from memory, by record id.
	var got map[string]any
	testenv.Eventually(t, 30*time.Second, "DescribeTrace by record", func() bool {
		var code string
		got, code = c.call("DescribeTrace", map[string]any{"RecordId": h.recordID})
		return code == "" && len(got["SpanSet"].([]any)) >= len(want)
	})
	if got["TraceId"] != tp.TraceID {
		t.Errorf("DescribeTrace TraceId %v, want %s", got["TraceId"], tp.TraceID)
	}
	names := map[string]bool{}
	for _, s := range got["SpanSet"].([]any) {
		s := s.(map[string]any)
		names[s["Name"].(string)] = true
		if s["ProjectId"] != "default" {
			t.Errorf("span %v of project %v", s["Name"], s["ProjectId"])
		}
	}
	for _, n := range want {
		if !names[n] {
			t.Errorf("DescribeTrace lacks %s: %v", n, names)
		}
	}
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
}

// failFlow fails every message in its check node.
const failFlow = `{"name": "refuses", "nodes": [
  {"id": "check", "kind": "function", "inputs": {"dev": "$input.device"},
   "config": {"script": "def main(input, params):\n    fail(\"no entry for \" + input[\"dev\"])"}},
  {"id": "save", "kind": "store", "config": {"type": "never"}, "inputs": {"ok": "$check.ok"}}],
  "edges": [{"from": "check", "to": "save"}]}`

// A node's failure on a message is kept in the task's stats with the
// message's trace id, and that trace is kept whatever the sampling: with
// a ratio of 0 it is exported to the OTLP receiver because it failed, and
// DescribeTrace by the error's TraceId shows the message's spans with the
// failed node's (and the message's) error status and message.
func TestNodeErrorCarriesItsTrace(t *testing.T) {
	rcv := otlptest.Start(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.jpg"), jpegImage(t, 32, 24, 90), 0o644); err != nil {
		t.Fatal(err)
	}
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", dir, "--otel.endpoint", rcv.GRPCURL,
		"--otel.sample-ratio", "0", "--otel.recent-traces", "100"}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	devID := c.mustCall("CreateDevice", map[string]any{"Name": "replay-1", "Driver": "replay", "Address": dir, "Fps": 5})["DeviceId"].(string)
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": failFlow})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "refuses", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)

	var nodeErr map[string]any
	testenv.Eventually(t, 60*time.Second, "a node error in the task's stats", func() bool {
		errs, _ := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID})["NodeErrors"].([]any)
		if len(errs) == 0 {
			return false
		}
		nodeErr = errs[0].(map[string]any)
		return true
	})
	traceID, _ := nodeErr["TraceId"].(string)
	if nodeErr["NodeId"] != "check" || !strings.Contains(nodeErr["Message"].(string), "no entry for "+devID) || len(traceID) != 32 {
		t.Fatalf("node error %v", nodeErr)
	}
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})

	got := c.mustCall("DescribeTrace", map[string]any{"TraceId": traceID})
	byName := map[string]map[string]any{}
	for _, s := range got["SpanSet"].([]any) {
		s := s.(map[string]any)
		byName[s["Name"].(string)] = s
	}
	for _, name := range []string{"flow.node check", "task.message"} {
		s := byName[name]
		if s == nil || s["Status"] != "error" || !strings.Contains(fmt.Sprint(s["StatusMessage"]), "no entry for "+devID) {
			t.Errorf("DescribeTrace: span %s = %v, want error status naming the failure; spans %v", name, s, got["SpanSet"])
		}
	}
	if byName["source.read device"] == nil || byName["flow.node save"] != nil {
		t.Errorf("DescribeTrace spans %v: want the source read and no save", got["SpanSet"])
	}
	// Sampled out (ratio 0) yet exported: the trace failed.
	testenv.Eventually(t, 30*time.Second, "the failed trace at the receiver", func() bool {
		for _, s := range rcv.Trace(traceID) {
			if s.GetName() == "flow.node check" && s.GetStatus().GetMessage() != "" {
				return true
			}
		}
		return false
	})
}
