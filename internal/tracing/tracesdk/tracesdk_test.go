package tracesdk

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

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

// twoSpans makes a trace of a root and a child failing with err, and
// returns its trace id.
func twoSpans(tp trace.TracerProvider, project string, err error) string {
	tr := tp.Tracer("test")
	ctx, root := tr.Start(context.Background(), "root", trace.WithAttributes(tracing.KeyProject.String(project)))
	_, child := tr.Start(ctx, "child", trace.WithAttributes(tracing.KeyProject.String(project), tracing.KeyRecord.String("rec-"+project)))
	tracing.End(child, err)
	root.End()
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

// At ratio 0 a trace is exported only when one of its spans failed. With
// the ring on, every span is recorded and the failed trace is exported
// whole (the tail decision), and the ring keeps both; with it off,
// sampled-out spans are not recorded and the failure is exported as a
// lone error span in its trace, under the span that failed.
func TestErrorsAlwaysExported(t *testing.T) {
	rcv := otlptest.Start(t)
	for _, ring := range []int{10, 0} {
		cfg := telemetry.DefaultTraceConfig()
		cfg.Endpoint, cfg.SampleRatio, cfg.RecentTraces = rcv.GRPCURL, 0, ring
		tr := newTracing(t, cfg)
		ok := twoSpans(tr.Provider(), "default", nil)
		failed := twoSpans(tr.Provider(), "default", errors.New("algorithm timed out"))
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(rcv.Trace(ok)); n != 0 {
			t.Errorf("ring %d: sampled-out trace: %d spans exported", ring, n)
		}
		got := rcv.Trace(failed)
		switch {
		case ring > 0 && len(got) != 2:
			t.Errorf("ring on: failed trace: %d spans exported, want 2", len(got))
		case ring > 0 && len(tr.Recent().Trace(ok)) != 2:
			t.Errorf("ring on: it holds %d spans of the sampled-out trace, want 2", len(tr.Recent().Trace(ok)))
		case ring == 0 && (len(got) != 1 || got[0].GetName() != "error" || got[0].GetStatus().GetMessage() != "algorithm timed out"):
			t.Errorf("ring off: failed trace exported %v, want one error span", got)
		}
	}
}

// The ring forgets the oldest trace beyond its bound, and DescribeTrace
// shows a caller only its own project's spans.
func TestRecentAndDescribeTrace(t *testing.T) {
	cfg := telemetry.DefaultTraceConfig()
	cfg.RecentTraces = 2
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
	cfg.RecentTraces = 8
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
	cfg.RecentTraces = 10
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
