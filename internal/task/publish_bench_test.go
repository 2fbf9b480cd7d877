package task

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// benchItems is how many items (faces) each benchmark message has, and
// benchInflight how many messages run at once (the worker's InFlight).
const benchItems, benchInflight = 8, 4

// withoutOrigin hands outputs to the sinks without their origin, so ids
// come from the per-message counter: the ids every output had before
// origins existed, which a rerun could give to another item.
type withoutOrigin struct{ s *messageSinks }

func (w withoutOrigin) Store(ctx context.Context, rec flow.Record) (string, error) {
	rec.Origin = ""
	return w.s.Store(ctx, rec)
}

func (w withoutOrigin) Publish(ctx context.Context, ev flow.Event) error {
	ev.Origin = ""
	return w.s.Publish(ctx, ev)
}

// BenchmarkPublishAfterStore measures records/s through a task's sinks: a
// flow whose foreach stores each of 8 items and publishes its event, into
// the real store (batching writer) and the embedded bus, 4 messages at
// once. rec/s is with the ids that make publish-after-store one promise
// (derived from each output's place in the flow); counter-rec/s, the
// baseline, with today's ids (counted as outputs arrive), measured in the
// same run; x-counter is their ratio (goal ≥ 0.9). One op is a message
// through each.
func BenchmarkPublishAfterStore(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, dialect) // skips when the server is not reachable
			dsvc, err := data.New(db, nil, data.Options{})
			if err != nil {
				b.Fatal(err)
			}
			w := dsvc.NewWriter(data.WriterOptions{FlushInterval: 10 * time.Millisecond}) // as the worker uses it
			defer func() { _ = w.Close(ctx) }()
			bb, err := bus.Open(ctx, "nats://embedded", bus.Options{DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = bb.Close() }()
			spec, err := flow.Parse([]byte(`{"name": "faces", "nodes": [{"id": "each", "kind": "foreach", "inputs": {"items": "$input.items"},
  "config": {"concurrency": 8, "body": {"nodes": [
    {"id": "save", "kind": "store", "config": {"type": "face"}, "inputs": {"n": "$item", "box": [120, 80, 64, 64], "score": 0.97}},
    {"id": "pub", "kind": "publish", "config": {"type": "tianshu.face.captured"}, "inputs": {"RecordId": "$save.recordId", "n": "$item"}}],
    "edges": [{"from": "save", "to": "pub"}]}}}]}`), flow.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			plan, err := flow.Compile(ctx, spec, flow.Options{})
			if err != nil {
				b.Fatal(err)
			}
			r := &runner{task: &Task{ID: "task-bench", ProjectID: "default"}, plan: plan, records: dsvc.NewRecordSink(w), bus: bb,
				log: slog.New(slog.DiscardHandler), stats: &taskStats{nodes: map[string]*nodeStats{}}}
			// The two kinds of ids alternate in rounds so that the machine's
			// drift over the run falls on both alike.
			var seq atomic.Int64 // message ids never repeat
			counter := func(s *messageSinks) flow.Sinks { return withoutOrigin{s} }
			origin := func(s *messageSinks) flow.Sinks { return s }
			const rounds = 10
			var tc, to time.Duration
			b.ResetTimer()
			for i := range rounds {
				n := b.N / rounds
				if i < b.N%rounds {
					n++
				}
				tc += pumpMessages(b, r, &seq, n, counter)
				to += pumpMessages(b, r, &seq, n, origin)
			}
			b.StopTimer()
			rc, ro := float64(b.N*benchItems)/tc.Seconds(), float64(b.N*benchItems)/to.Seconds()
			b.ReportMetric(ro, "rec/s")
			b.ReportMetric(rc, "counter-rec/s")
			b.ReportMetric(ro/rc, "x-counter")
		})
	}
}

// pumpMessages runs n messages through r's plan and the sinks that sinks
// makes, benchInflight at once, and returns how long they took.
func pumpMessages(b *testing.B, r *runner, seq *atomic.Int64, n int, sinks func(*messageSinks) flow.Sinks) time.Duration {
	items := make([]any, benchItems)
	for i := range items {
		items[i] = i
	}
	start := time.Now()
	var wg sync.WaitGroup
	for p := range benchInflight {
		wg.Go(func() {
			for i := p; i < n; i += benchInflight {
				m := &pipeline.Message{ID: fmt.Sprintf("m-%d", seq.Add(1)), Key: "dev-1", Time: time.Now()}
				s := &messageSinks{r: r, msg: m}
				if _, err := r.plan.Run(context.Background(), flow.Input{Data: map[string]any{"items": items}, Key: m.Key, Time: m.Time, Sinks: sinks(s)}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
