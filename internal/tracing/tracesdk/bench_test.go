package tracesdk

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// BenchmarkMessageSpans is one message's tracing as a task makes it, a
// root and six node spans under it, with nothing else: sampled out (the
// default's 99 %) and sampled (recorded into the ring, not exported).
// Run with -benchmem: a sampled-out message should cost next to nothing.
func BenchmarkMessageSpans(b *testing.B) {
	for _, c := range []struct {
		name  string
		ratio float64
	}{{"sampled-out", 0}, {"sampled", 1}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := telemetry.DefaultTraceConfig()
			cfg.SampleRatio, cfg.RecentTraces = c.ratio, 256
			tr := newTracing(b, cfg)
			defer func() { _ = tr.Shutdown(context.Background()) }()
			t := tr.Provider().Tracer("bench")
			a := attrs{tracing.KeyProject.String("default")}
			opts := []trace.SpanStartOption{trace.WithAttributes(tracing.KeyNode.String("n"))}
			b.ReportAllocs()
			for b.Loop() {
				var root tracing.Root
				now := time.Now()
				ctx, _ := root.Start(context.Background(), t, "", "task.message", now, trace.SpanKindConsumer, a)
				for range 6 {
					_, s := tracing.Child(ctx, t, "flow.node n", now, opts...)
					s.End(nil)
				}
				root.Finish(nil)
			}
		})
	}
}
