//go:build unix

package task

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/tracing"
	"github.com/tianshu-ai/tianshu/internal/tracing/otlptest"
	"github.com/tianshu-ai/tianshu/internal/tracing/tracesdk"
)

// traceBenchFlows are the flows of BenchmarkTracingOverhead: sinks is a
// face flow without its detector (a foreach over 4 items, each stored in
// SQLite through the batching writer and published on embedded NATS);
// nodes is 6 passthrough nodes in a row, all CPU and no I/O, the worst
// case for the cost of a span per node.
var traceBenchFlows = map[string]string{
	"sinks": `{"name": "faces", "nodes": [{"id": "each", "kind": "foreach", "inputs": {"items": "$input.items"},
  "config": {"concurrency": 4, "body": {"nodes": [
    {"id": "save", "kind": "store", "config": {"type": "face"}, "inputs": {"n": "$item", "box": [120, 80, 64, 64], "score": 0.97}},
    {"id": "pub", "kind": "publish", "config": {"type": "tianshu.face.captured"}, "inputs": {"RecordId": "$save.recordId", "n": "$item"}}],
    "edges": [{"from": "save", "to": "pub"}]}}}]}`,
	"nodes": `{"name": "chain", "nodes": [{"id": "a", "kind": "passthrough", "inputs": {"items": "$input.items"}},
    {"id": "b", "kind": "passthrough", "inputs": {"v": "$a.items"}}, {"id": "c", "kind": "passthrough", "inputs": {"v": "$b.v"}},
    {"id": "d", "kind": "passthrough", "inputs": {"v": "$c.v"}}, {"id": "e", "kind": "passthrough", "inputs": {"v": "$d.v"}},
    {"id": "f", "kind": "passthrough", "inputs": {"v": "$e.v"}}],
    "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "d"}, {"from": "d", "to": "e"}, {"from": "e", "to": "f"}]}`,
}

// BenchmarkTracingOverhead measures a task's messages/s through the worker's
// own per-message path (runner.process: trace, flow, sinks, ack) with
// tracing off, which is the code as it was before tracing plus one nil
// check per message and node, against tracing on, exporting over OTLP
// gRPC to a real receiver (otlptest) with no ring, at sample ratio 1 and
// 0.01, and keeping only a ring of 256 recent traces in memory at ratio
// 0.01 (no export; ring256, as a default could be), for each of
// traceBenchFlows. x-off is each mode's rate over off's (goal:
// ≥ 0.90 at ratio 1, ≥ 0.98 at 0.01); cpu-x-off is the same for the
// process's CPU time per message (user and system, every goroutine: the
// exporter's and the in-process receiver's too), which a shared machine
// disturbs far less than the rate. The modes alternate in rounds so
// drift falls on all alike; each starts on a collected heap and ends
// once its spans are exported and received (ForceFlush), and then the
// receiver forgets them (a collector forwards spans; holding them all
// would make every GC cycle of the next mode longer).
func BenchmarkTracingOverhead(b *testing.B) {
	for _, name := range []string{"sinks", "nodes"} {
		b.Run(name, func(b *testing.B) { benchTracing(b, traceBenchFlows[name]) })
	}
}

func benchTracing(b *testing.B, doc string) {
	ctx := context.Background()
	db := storetest.Open(b, "sqlite")
	dsvc, err := data.New(db, nil, data.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w := dsvc.NewWriter(data.WriterOptions{FlushInterval: 10 * time.Millisecond})
	defer func() { _ = w.Close(ctx) }()
	bb, err := bus.Open(ctx, "nats://embedded", bus.Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = bb.Close() }()
	spec, err := flow.Parse([]byte(doc), flow.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	rcv := otlptest.Start(b)
	type mode struct {
		name  string
		r     *runner
		flush func(context.Context) error
		took  time.Duration
		cpu   time.Duration
	}
	var modes []*mode
	// TIANSHU_TRACE_MODES runs only the modes it names (comma-separated;
	// "off" is always run, as the baseline): a mode run in a process of
	// its own is not disturbed by the others' heap and exporters.
	only := os.Getenv("TIANSHU_TRACE_MODES")
	for _, m := range []struct {
		name  string
		ratio float64
		ring  bool
	}{{"off", -1, false}, {"ratio1", 1, false}, {"ratio0.01", 0.01, false}, {"ring256", 0.01, true}, {"ring256-all", 1, true}} {
		if only != "" && m.name != "off" && !slices.Contains(strings.Split(only, ","), m.name) {
			continue
		}
		var ot trace.Tracer
		flush := func(context.Context) error { return nil }
		if m.ratio >= 0 {
			cfg := telemetry.DefaultTraceConfig()
			cfg.Endpoint, cfg.SampleRatio, cfg.RecentTraces = rcv.GRPCURL, m.ratio, 0
			if m.ring {
				// The in-memory ring alone, as a default could be (256
				// traces of 1 % of messages and every failure), no export.
				cfg.Endpoint, cfg.RecentTraces = "", 256
			}
			tr, err := tracesdk.New(cfg, tracesdk.Options{Registerer: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = tr.Shutdown(ctx) }()
			ot, flush = tracing.Tracer(tr.Provider(), "tianshu/task"), tr.ForceFlush
		}
		st := &taskStats{nodes: map[string]*nodeStats{}}
		plan, err := flow.Compile(ctx, spec, flow.Options{Tracer: newTracer(st, ot)})
		if err != nil {
			b.Fatal(err)
		}
		r := &runner{task: &Task{ID: "task-bench", ProjectID: "default", Sources: []pipeline.SourceSpec{{Type: "device", Id: "dev-1"}}},
			plan: plan, records: dsvc.NewRecordSink(w), bus: bb, log: slog.New(slog.DiscardHandler), stats: st, ot: ot}
		modes = append(modes, &mode{name: m.name, r: r, flush: flush})
	}
	var seq atomic.Int64
	items := []any{0, 1, 2, 3}
	run := func(m *mode, n int) {
		r := m.r
		// Each mode starts on a collected heap, so the garbage of the one
		// before it is not collected on its time.
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		cpu0 := processCPU(b)
		start := time.Now()
		var wg sync.WaitGroup
		for p := range benchInflight {
			wg.Go(func() {
				for i := p; i < n; i += benchInflight {
					it := r.newItem(pipeline.Message{ID: fmt.Sprintf("m-%d", seq.Add(1)), Key: "dev-1", Time: time.Now(),
						Data: map[string]any{"items": items}}, 0)
					r.process(ctx, it)
				}
			})
		}
		wg.Wait()
		// Its spans exported (and received) on its own time.
		if err := m.flush(ctx); err != nil {
			b.Fatal(err)
		}
		m.took += time.Since(start)
		m.cpu += processCPU(b) - cpu0
		b.StopTimer()
		rcv.Forget()
		b.StartTimer()
	}
	const rounds = 10
	b.ResetTimer()
	for i := range rounds {
		n := b.N / rounds
		if i < b.N%rounds {
			n++
		}
		for _, m := range modes {
			run(m, n)
		}
	}
	b.StopTimer()
	off := float64(b.N) / modes[0].took.Seconds()
	offCPU := modes[0].cpu.Seconds() / float64(b.N)
	for _, m := range modes {
		if f := m.r.stats.failed.Load(); f > 0 {
			b.Fatalf("%s: %d messages failed: %s", m.name, f, m.r.stats.lastError)
		}
		rate := float64(b.N) / m.took.Seconds()
		cpu := m.cpu.Seconds() / float64(b.N)
		b.ReportMetric(rate, m.name+"-msg/s")
		b.ReportMetric(cpu*1e6, m.name+"-cpu-µs/msg")
		if m.name != "off" {
			b.ReportMetric(rate/off, m.name+"-x-off")
			b.ReportMetric(offCPU/cpu, m.name+"-cpu-x-off")
		}
	}
}

// processCPU is the CPU time this process has used (user and system, all
// threads): on a shared machine the wall-clock rate swings with what else
// runs, the CPU spent per message much less.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
