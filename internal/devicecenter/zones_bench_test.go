package devicecenter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/flow"
)

// BenchmarkZoneNode runs a zone node over messages of 20 objects from one
// device: keeping those inside a polygon given inline (the baseline), and
// inside the same polygon drawn on the device (SQLite) and named, which
// adds the cached lookup and the scaling per message. It reports both
// per-message times and the ratio named/inline.
func BenchmarkZoneNode(b *testing.B) {
	dir := b.TempDir()
	_, s := newTestService(b, dir)
	ctx := context.Background()
	d := &Device{Name: "bench", Config: device.Config{Driver: "replay", Address: dir}, Zones: []Zone{{Name: "door", Kind: "polygon", Points: [][2]float64{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}}}}
	if err := s.Create(ctx, d); err != nil {
		b.Fatal(err)
	}
	objs := make([]any, 20)
	for i := range objs {
		objs[i] = map[string]any{"box": []any{float64(i * 32), 100.0, 10.0, 10.0}}
	}
	msg := map[string]any{"device": d.ID, "width": 640.0, "height": 480.0, "o": objs}
	plan := func(cfg string) *flow.Plan {
		spec, err := flow.Parse([]byte(`{"nodes": [{"id": "z", "kind": "zone", "inputs": {"objects": "$input.o"}, "config": `+cfg+`}]}`), flow.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		p, err := flow.Compile(ctx, spec, flow.Options{Zones: s.ZonesFor("default")})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	run := func(p *flow.Plan) time.Duration {
		start := time.Now()
		for range b.N {
			if _, err := p.Run(ctx, flow.Input{Data: msg, Key: d.ID}); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	inline := plan(`{"polygon": [[0,0],[320,0],[320,480],[0,480]]}`)
	named := plan(`{"zone": "door"}`)
	run(named) // warm the zone cache
	b.ResetTimer()
	base := run(inline)
	got := run(named)
	b.StopTimer()
	per := func(t time.Duration) float64 { return float64(t.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(per(base), "inline-ns/msg")
	b.ReportMetric(per(got), "named-ns/msg")
	b.ReportMetric(float64(got)/float64(base), "named/inline")
	if b.N > 1 {
		fmt.Printf("zone node, %d messages of 20 objects: inline %.0f ns/msg, named %.0f ns/msg, ratio %.2f\n", b.N, per(base), per(got), float64(got)/float64(base))
	}
}
