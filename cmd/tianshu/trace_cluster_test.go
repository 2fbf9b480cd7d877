package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
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

	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/tracing/otlptest"
)

// One frame's trace across two processes: a control plane (API, push)
// and a worker (the task, the algorithm call) on PostgreSQL and the
// external NATS, both exporting to one OTLP receiver. The trace is one
// connected trace at the receiver (the worker's message, nodes, algorithm
// call, records write and publish; the control plane's webhook delivery
// under the publish, the context carried in the bus message's header),
// and DescribeTrace on the control plane, by record id, shows the spans
// of both processes: it asks the worker for its part over the bus.
func TestTraceAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	dbURL := storetest.URL(t, "postgres")
	rcv := otlptest.Start(t)
	env := cleanEnv("TIANSHU_MASTER_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"TIANSHU_ADMIN_SECRET_ID="+clusterSecretID, "TIANSHU_ADMIN_SECRET_KEY="+clusterSecretKey, "TIANSHU_ADMIN_PASSWORD=cluster-pass")
	folder := t.TempDir()
	for i, shade := range []uint8{40, 200} {
		if err := os.WriteFile(filepath.Join(folder, string(rune('a'+i))+".jpg"), grayJPEG(t, shade), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shared := []string{"--db", dbURL, "--bus", testenv.NATSURL(), "--log.level", "info", "--media.root", folder, "--outbound.allow-loopback",
		"--otel.endpoint", rcv.GRPCURL, "--otel.sample-ratio", "1", "--otel.recent-traces", "1000"}
	cp := startProc(t, "control", env, append([]string{"--target", "control", "--worker.name", "cp", "--data-dir", t.TempDir()}, shared...)...)
	startProc(t, "worker", env, append([]string{"--target", "worker", "--worker.name", "w1", "--data-dir", t.TempDir()}, shared...)...)
	ep := "http://" + cp.addr

	var mu sync.Mutex
	var traceparent, recordID string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ce struct {
			Data struct {
				RecordID string `json:"recordId"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ce)
		mu.Lock()
		if traceparent == "" {
			traceparent, recordID = r.Header.Get("traceparent"), ce.Data.RecordID
		}
		mu.Unlock()
	}))
	defer hook.Close()
	run := strings.ReplaceAll(t.Name(), "/", "-")
	call(t, ep, "CreateSubscription", map[string]any{"Name": "hook", "Channel": map[string]any{"Type": "webhook", "Webhook": map[string]any{"Url": hook.URL}},
		"Filter": map[string]any{"Types": []string{"tianshu.traced.*"}}})
	dev := call(t, ep, "CreateDevice", map[string]any{"Name": "replay-" + run, "Driver": "replay", "Address": folder, "Fps": 5})["DeviceId"].(string)
	flow := `{"name": "traced-` + run + `", "nodes": [
	  {"id": "detect", "kind": "algorithm", "config": {"algorithm": "alg-face-detect"}, "inputs": {"image": "$input.image"}},
	  {"id": "save", "kind": "store", "config": {"type": "faces"}, "inputs": {"faces": "$detect.faces"}},
	  {"id": "tell", "kind": "publish", "config": {"type": "tianshu.traced.frame"}, "inputs": {"recordId": "$save.recordId"}}],
	  "edges": [{"from": "detect", "to": "save"}, {"from": "save", "to": "tell"}]}`
	flowID := call(t, ep, "CreateFlow", map[string]any{"Document": flow})["FlowId"].(string)
	taskID := call(t, ep, "CreateTask", map[string]any{"Name": "traced-" + run, "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": dev}}})["TaskId"].(string)
	defer call(t, ep, "StopTask", map[string]any{"TaskId": taskID})

	testenv.Eventually(t, 90*time.Second, "a webhook delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return traceparent != ""
	})
	tp, ok := event.ParseTraceParent(traceparent)
	if !ok || recordID == "" {
		t.Fatalf("webhook traceparent %q, record %q", traceparent, recordID)
	}

	// At the receiver: one connected trace, each span from the process
	// that recorded it.
	from := map[string]string{"task.message": "w1", "source.read device": "w1", "flow.node detect": "w1", "algorithm.call alg-face-detect": "w1",
		"flow.node save": "w1", "records.write": "w1", "flow.node tell": "w1", "bus.publish": "w1", "push.webhook": "cp"}
	parentOf := map[string]string{"source.read device": "task.message", "flow.node detect": "task.message", "algorithm.call alg-face-detect": "flow.node detect",
		"flow.node save": "task.message", "records.write": "flow.node save", "flow.node tell": "task.message", "bus.publish": "flow.node tell", "push.webhook": "bus.publish"}
	spans := map[string]*tracepb.Span{}
	lacking := func() []string {
		var lack []string
		for name := range from {
			if spans[name] == nil {
				lack = append(lack, name)
			}
		}
		return lack
	}
	testenv.EventuallyExplained(t, 30*time.Second, "the frame's spans from both processes at the receiver", func() bool {
		for _, s := range rcv.Trace(tp.TraceID) {
			spans[s.GetName()] = s
		}
		return len(lacking()) == 0
	}, func() string { return "missing " + strings.Join(lacking(), ", ") })
	for name, proc := range from {
		if got := rcv.Instance(spans[name]); got != proc {
			t.Errorf("%s came from %q, want %q", name, got, proc)
		}
	}
	for child, parent := range parentOf {
		if got, want := hex.EncodeToString(spans[child].GetParentSpanId()), hex.EncodeToString(spans[parent].GetSpanId()); got != want {
			t.Errorf("%s: parent span %s, want %s (%s)", child, got, want, parent)
		}
	}
	if got := hex.EncodeToString(spans["push.webhook"].GetSpanId()); got != tp.SpanID {
		t.Errorf("the webhook's traceparent names span %s, want the delivery span %s", tp.SpanID, got)
	}

	// Through DescribeTrace on the control plane, by record id: the
	// record was written on the worker, whose spans come over the bus.
	var got map[string]any
	names := map[string]bool{}
	testenv.EventuallyExplained(t, 30*time.Second, "DescribeTrace on the control plane shows both processes' spans", func() bool {
		got = call(t, ep, "DescribeTrace", map[string]any{"RecordId": recordID})
		clear(names)
		for _, s := range got["SpanSet"].([]any) {
			names[s.(map[string]any)["Name"].(string)] = true
		}
		for name := range from {
			if !names[name] {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("spans %v, unanswered %v", names, got["UnansweredProcesses"]) })
	if got["TraceId"] != tp.TraceID || got["UnansweredProcesses"] != nil {
		t.Errorf("DescribeTrace TraceId %v (want %s), unanswered %v", got["TraceId"], tp.TraceID, got["UnansweredProcesses"])
	}
	for _, x := range got["SpanSet"].([]any) {
		s := x.(map[string]any)
		name, proc := s["Name"].(string), s["Process"].(string)
		if want, ok := from[name]; ok && !strings.HasPrefix(proc, want+" (") {
			t.Errorf("DescribeTrace: %s recorded by %q, want %s", name, proc, want)
		}
	}

	// DescribeLogs on the control plane shows the worker's lines too,
	// each naming its process; narrowed to the worker, only its lines.
	logs := call(t, ep, "DescribeLogs", map[string]any{"Process": "w1 (worker)", "Contains": taskID, "Limit": 1000})
	procs := fmt.Sprint(logs["ProcessSet"])
	if !strings.Contains(procs, "cp (control)") || !strings.Contains(procs, "w1 (worker)") {
		t.Errorf("DescribeLogs ProcessSet %s, want both processes", procs)
	}
	lines := logs["LogSet"].([]any)
	if len(lines) == 0 {
		t.Errorf("DescribeLogs: no line of the worker names task %s", taskID)
	}
	for _, x := range lines {
		if l := x.(map[string]any); l["Process"] != "w1 (worker)" {
			t.Errorf("DescribeLogs narrowed to the worker: a line of %v", l["Process"])
		}
	}
}

// grayJPEG is a small gray picture for a replay camera.
func grayJPEG(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 32, 24))
	for p := range img.Pix {
		img.Pix[p] = shade
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
