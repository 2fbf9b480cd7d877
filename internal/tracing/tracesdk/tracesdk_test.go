package tracesdk

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/bus"
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/peers"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/tracing"
	"github.com/tianshu-ai/tianshu/internal/tracing/otlptest"
)

func newTracing(t testing.TB, cfg telemetry.TraceConfig) *Tracing {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tr, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Instance: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// attrs are a root span's attributes (tracing.Describer).
type attrs []attribute.KeyValue

func (a attrs) SpanAttributes() []attribute.KeyValue { return a }
func (attrs) SpanStarted(context.Context)            {}

// twoSpans makes a trace the way a task's message is traced: a root
// (tracing.Root) and a child (tracing.Child) failing with err, the root
// failing with it; it returns the trace id.
func twoSpans(tp trace.TracerProvider, project string, err error) string {
	tr := tp.Tracer("test")
	var root tracing.Root
	ctx, _ := root.Start(context.Background(), tr, "", "root", time.Now(), trace.SpanKindConsumer, attrs{tracing.KeyProject.String(project)})
	_, child := tracing.Child(ctx, tr, "child", time.Now(),
		trace.WithAttributes(tracing.KeyProject.String(project), tracing.KeyRecord.String("rec-"+project)))
	child.End(err)
	root.Finish(err)
	return root.SpanContext().TraceID().String()
}

// Spans reach a real OTLP receiver (otlptest: the collector's trace
// service with the protocol's own types) over gRPC and over HTTP, parent
// links intact.
func TestExportOverGRPCAndHTTP(t *testing.T) {
	rcv := otlptest.Start(t)
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			cfg := telemetry.DefaultTraceConfig()
			cfg.Endpoint, cfg.Protocol, cfg.SampleRatio = rcv.GRPCURL, proto, 1
			if proto == "http" {
				cfg.Endpoint = rcv.HTTPURL
			}
			tr := newTracing(t, cfg)
			id := twoSpans(tr.Provider(), "default", nil)
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := rcv.Trace(id)
			if len(spans) != 2 || rcv.Requests(proto) == 0 {
				t.Fatalf("received %d spans of the trace, %d %s requests", len(spans), rcv.Requests(proto), proto)
			}
			byName := map[string][]byte{}
			for _, s := range spans {
				byName[s.GetName()] = s.GetSpanId()
			}
			for _, s := range spans {
				if s.GetName() == "child" && string(s.GetParentSpanId()) != string(byName["root"]) {
					t.Fatal("child's parent is not root")
				}
			}
		})
	}
}

// At ratio 0 a trace is recorded only when one of its spans failed: a
// sampled-out message starts no span, and its failure makes the root's
// span and the failing child's after the fact, connected, with their
// start times and the trace id the message carried; the ring (when on)
// and the exporter get them both. A span started the SDK's way (not a
// tracing.Root's child) whose trace was sampled out still exports its
// failure as a lone error span under it.
func TestErrorsAlwaysExported(t *testing.T) {
	rcv := otlptest.Start(t)
	for _, ring := range []int{10, 0} {
		cfg := telemetry.DefaultTraceConfig()
		cfg.Endpoint, cfg.SampleRatio, cfg.RecentTraces = rcv.GRPCURL, 0, ring
		tr := newTracing(t, cfg)
		ok := twoSpans(tr.Provider(), "default", nil)
		failed := twoSpans(tr.Provider(), "default", errors.New("algorithm timed out"))
		_, action := tr.Provider().Tracer("test").Start(context.Background(), "api.action")
		tracing.End(action, errors.New("denied"))
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(rcv.Trace(ok)); n != 0 {
			t.Errorf("ring %d: sampled-out trace: %d spans exported", ring, n)
		}
		got := rcv.Trace(failed)
		byName := map[string]*tracepb.Span{}
		for _, s := range got {
			byName[s.GetName()] = s
		}
		root, child := byName["root"], byName["child"]
		switch {
		case len(got) != 2 || root == nil || child == nil:
			t.Fatalf("ring %d: failed trace: exported %v, want root and child", ring, got)
		case string(child.GetParentSpanId()) != string(root.GetSpanId()) || len(root.GetParentSpanId()) != 0:
			t.Errorf("ring %d: child's parent %x, root %x (parent %x)", ring, child.GetParentSpanId(), root.GetSpanId(), root.GetParentSpanId())
		case child.GetStatus().GetMessage() != "algorithm timed out" || root.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR:
			t.Errorf("ring %d: statuses child %v, root %v", ring, child.GetStatus(), root.GetStatus())
		case child.GetStartTimeUnixNano() < root.GetStartTimeUnixNano() || root.GetEndTimeUnixNano() < child.GetEndTimeUnixNano():
			t.Errorf("ring %d: child [%d, %d] not inside root [%d, %d]", ring, child.GetStartTimeUnixNano(), child.GetEndTimeUnixNano(),
				root.GetStartTimeUnixNano(), root.GetEndTimeUnixNano())
		}
		lone := rcv.Trace(action.SpanContext().TraceID().String())
		if len(lone) != 1 || lone[0].GetName() != "error" || lone[0].GetStatus().GetMessage() != "denied" {
			t.Errorf("ring %d: a sampled-out SDK span's failure exported %v, want one error span", ring, lone)
		}
		if ring > 0 {
			if n := len(tr.Recent().Trace(action.SpanContext().TraceID().String())); n != 0 {
				t.Errorf("ring on: it holds %d spans of the failed action, which names no project", n)
			}
			if n := len(tr.Recent().Trace(ok)); n != 0 {
				t.Errorf("ring on: it holds %d spans of the sampled-out trace", n)
			}
			if spans := tr.Recent().Trace(failed); len(spans) != 2 || spans[0].Name != "root" || spans[1].ParentSpanId != spans[0].SpanId ||
				spans[1].Status != "error" || spans[0].ProjectId != "default" {
				t.Errorf("ring on: failed trace %+v, want root then its failed child", spans)
			}
		}
	}
}

// The ring forgets the oldest trace beyond its bound, and DescribeTrace
// shows a caller only its own project's spans.
func TestRecentAndDescribeTrace(t *testing.T) {
	cfg := telemetry.DefaultTraceConfig()
	cfg.RecentTraces, cfg.SampleRatio = 2, 1
	tr := newTracing(t, cfg)
	first := twoSpans(tr.Provider(), "prj-a", nil)
	a := twoSpans(tr.Provider(), "prj-a", errors.New("boom"))
	b := twoSpans(tr.Provider(), "prj-b", nil)
	r := tr.Recent()
	if r.Trace(first) != nil {
		t.Error("the oldest trace is still in a ring of 2")
	}
	caller := &api.Caller{AppID: "app-1", ProjectID: "prj-a", Role: "viewer"}
	got, err := describeTrace(context.Background(), caller, r, nil, &DescribeTraceRequest{RecordId: "rec-prj-a"})
	if err != nil || got.TraceId != a || len(got.SpanSet) != 2 {
		t.Fatalf("DescribeTrace by record = %+v, %v", got, err)
	}
	if s := got.SpanSet[1]; s.Name != "child" || s.Status != "error" || s.StatusMessage != "boom" || s.ParentSpanId != got.SpanSet[0].SpanId {
		t.Errorf("child span = %+v", s)
	}
	if _, err := describeTrace(context.Background(), caller, r, nil, &DescribeTraceRequest{TraceId: b}); !isCode(err, api.ResourceNotFound) {
		t.Errorf("another project's trace: %v", err)
	}
	if _, err := describeTrace(context.Background(), caller, r, nil, &DescribeTraceRequest{TraceId: "xyz"}); !isCode(err, api.InvalidParameterValue) {
		t.Errorf("malformed TraceId: %v", err)
	}
	if _, err := describeTrace(context.Background(), caller, nil, nil, &DescribeTraceRequest{TraceId: a}); !isCode(err, api.FailedOperation) {
		t.Errorf("ring off: %v", err)
	}
}

func isCode(err error, code api.Code) bool {
	e, ok := api.AsError(err)
	return ok && e.Code == code
}

// Off, there is no provider at all: instrumented code starts no span.
func TestOffByDefault(t *testing.T) {
	tr := newTracing(t, telemetry.DefaultTraceConfig())
	if tr.Provider() != nil || tr.Recent() != nil {
		t.Fatal("tracing is on by default")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A failed trace outlives the good ones that follow it while failed
// traces hold at most a quarter of the ring; past that share, the oldest
// failed trace goes first.
func TestRecentKeepsFailedTracesLonger(t *testing.T) {
	cfg := telemetry.DefaultTraceConfig()
	cfg.RecentTraces, cfg.SampleRatio = 8, 1
	tr := newTracing(t, cfg)
	r := tr.Recent()
	failed := twoSpans(tr.Provider(), "default", errors.New("node failed"))
	var good []string
	for range 20 {
		good = append(good, twoSpans(tr.Provider(), "default", nil))
	}
	if len(r.Trace(failed)) != 2 {
		t.Fatal("the failed trace was evicted by 20 good ones in a ring of 8")
	}
	if r.Trace(good[12]) != nil || len(r.Trace(good[19])) != 2 {
		t.Error("good traces are not evicted oldest first")
	}
	// A ring of 8 keeps 2 failed traces ahead of good ones: a third
	// makes the oldest failed one go.
	second := twoSpans(tr.Provider(), "default", errors.New("node failed"))
	third := twoSpans(tr.Provider(), "default", errors.New("node failed"))
	for range 10 {
		twoSpans(tr.Provider(), "default", nil)
	}
	if r.Trace(failed) != nil || len(r.Trace(second)) != 2 || len(r.Trace(third)) != 2 {
		t.Errorf("failed traces kept: first %d, second %d, third %d spans; want 0, 2, 2",
			len(r.Trace(failed)), len(r.Trace(second)), len(r.Trace(third)))
	}
}

// With roles in two processes (two rings, two peers on one embedded
// NATS), DescribeTrace by record id on the process that did not write the
// record finds the trace at the other, and shows both processes' parts:
// the writer's spans and its own (a delivery in the same trace).
func TestDescribeTraceGathersOtherProcesses(t *testing.T) {
	b, err := bus.Open(context.Background(), "nats://embedded", bus.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	eph := b.(bus.Ephemeral)
	cfg := telemetry.DefaultTraceConfig()
	cfg.RecentTraces, cfg.SampleRatio = 10, 1
	worker, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Instance: "w1", Process: "w1 (worker)"})
	if err != nil {
		t.Fatal(err)
	}
	control, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Instance: "cp", Process: "cp (control)"})
	if err != nil {
		t.Fatal(err)
	}
	id := twoSpans(worker.Provider(), "default", nil)
	// The control plane's part of the same trace: a delivery under the
	// worker's root, as the bus carries its traceparent.
	sc, _ := tracing.SpanContext(fmt.Sprintf("00-%s-%s-01", id, worker.Recent().Trace(id)[0].SpanId))
	_, d := control.Provider().Tracer("test").Start(trace.ContextWithRemoteSpanContext(context.Background(), sc), "push.webhook",
		trace.WithAttributes(tracing.KeyProject.String("default")))
	d.End()

	wp, err := peers.Serve(eph, "t.trace", worker.Recent().Answer, peers.Options{Name: "w1 (worker)"})
	if err != nil {
		t.Fatal(err)
	}
	defer wp.Stop()
	cp, err := peers.Serve(eph, "t.trace", control.Recent().Answer, peers.Options{Name: "cp (control)"})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	testenv.Eventually(t, 10*time.Second, "the control plane knows the worker", func() bool { return cp.Known() == 1 })

	caller := &api.Caller{AppID: "app-1", ProjectID: "default", Role: "viewer"}
	got, err := describeTrace(context.Background(), caller, control.Recent(), cp, &DescribeTraceRequest{RecordId: "rec-default"})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]string{}
	for _, s := range got.SpanSet {
		by[s.Name] = s.Process
	}
	if got.TraceId != id || len(got.SpanSet) != 3 || by["root"] != "w1 (worker)" || by["child"] != "w1 (worker)" || by["push.webhook"] != "cp (control)" {
		t.Errorf("DescribeTrace %s: spans by process %v, want root and child from the worker, push.webhook here", got.TraceId, by)
	}
	if got.SpanSet[0].Name != "root" {
		t.Errorf("spans not by start time: first %s", got.SpanSet[0].Name)
	}
}
