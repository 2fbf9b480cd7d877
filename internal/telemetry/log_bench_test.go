package telemetry

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkLogLine measures the gateway's access line ("action served",
// 7 fields, in a request's context) written as JSON to io.Discard: alone
// (the baseline, as before this change), then through the platform's
// wrapping (request_id from the context, the ring of recent lines beside
// the writer). x-base is each side's time per line over the baseline's.
func BenchmarkLogLine(b *testing.B) {
	ring := NewLogRing(1000, 1<<20)
	sides := []struct {
		name string
		log  *slog.Logger
	}{
		{"base", slog.New(slog.NewJSONHandler(io.Discard, nil)).With("component", "api")},
		{"wrapped", slog.New(WithContextFields(Tee(slog.NewJSONHandler(io.Discard, nil), ring.Handler(slog.LevelInfo)))).With("component", "api")},
	}
	ctx := WithRequestID(context.Background(), "6e1c0c1a-0000-4000-8000-000000000000")
	took := make([]time.Duration, len(sides))
	const rounds = 10
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		for i, s := range sides {
			start := time.Now()
			for range n {
				s.log.InfoContext(ctx, "action served", "action", "DescribeDevices", "code", "OK", "request_id", "6e1c0c1a-0000-4000-8000-000000000000",
					"app", "app-12345678", "user", "", "duration_ms", 1.25)
			}
			took[i] += time.Since(start)
		}
	}
	b.StopTimer()
	for i, s := range sides {
		b.ReportMetric(float64(took[i].Nanoseconds())/float64(b.N), s.name+"-ns/line")
		if i > 0 {
			b.ReportMetric(float64(took[i])/float64(took[0]), s.name+"-x-base")
		}
	}
}
