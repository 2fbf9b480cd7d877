package natsbus

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tianshu-ai/tianshu/internal/bus"
)

// BenchmarkPublishConsume publishes b.N messages of 256 bytes to an
// embedded bus and consumes them with one subscription (MaxInFlight 4),
// and does the same with plain nats.go JetStream calls (Publish, then
// Consume with Ack) on the same server as the baseline. It reports both
// per-message times (publish alone, and publish plus consume) and the
// ratio of the totals (bus/raw).
func BenchmarkPublishConsume(b *testing.B) {
	nb := openURL(b, "nats://embedded", bus.Options{DataDir: b.TempDir()})
	defer closeBus(b, nb)
	ctx := context.Background()
	payload := make([]byte, 256)
	n := b.N

	rawStart := time.Now()
	if _, err := nb.js.CreateStream(ctx, jetstream.StreamConfig{Name: "bench_raw", Subjects: []string{"bench.raw"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	for range n {
		if _, err := nb.js.Publish(ctx, "bench.raw", payload); err != nil {
			b.Fatal(err)
		}
	}
	rawPub := time.Since(rawStart)
	cons, err := nb.js.CreateConsumer(ctx, "bench_raw", jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	<-done
	cc.Stop()
	raw := time.Since(rawStart)

	busStart := time.Now()
	for range n {
		if _, err := nb.Publish(ctx, "bench.bus", "", payload, nil); err != nil {
			b.Fatal(err)
		}
	}
	busPub := time.Since(busStart)
	got.Store(0)
	done = make(chan struct{})
	sub, err := nb.Subscribe(ctx, "bench.bus", "bus", bus.SubscribeOptions{MaxInFlight: 4}, func(context.Context, bus.Message) error {
		if got.Add(1) == int64(n) {
			close(done)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	<-done
	if err := sub.Stop(); err != nil {
		b.Fatal(err)
	}
	busT := time.Since(busStart)

	b.ReportMetric(float64(rawPub.Nanoseconds())/float64(n), "raw-pub-ns/msg")
	b.ReportMetric(float64(busPub.Nanoseconds())/float64(n), "bus-pub-ns/msg")
	b.ReportMetric(float64(raw.Nanoseconds())/float64(n), "raw-ns/msg")
	b.ReportMetric(float64(busT.Nanoseconds())/float64(n), "bus-ns/msg")
	b.ReportMetric(float64(busT)/float64(raw), "bus/raw")
}
