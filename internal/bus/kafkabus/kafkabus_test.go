package kafkabus

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/bus/bustest"
)

// killable gives the suite a way to crash a client, without adding that
// to the package's API.
type killable struct{ *Bus }

func (k killable) Kill() { k.kill() }

// testLogger discards logs unless TIANSHU_TEST_LOG=debug|info|warn|error
// asks for them on stderr (not t.Log: subscriptions log from goroutines
// that may outlive a subtest).
func testLogger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("TIANSHU_TEST_LOG"))); err != nil || os.Getenv("TIANSHU_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func closeBus(t testing.TB, b bus.Bus) {
	if err := b.Close(); err != nil && !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

// runSuite runs the conformance suite with clients of the cluster that
// rawURL names, each opened through bus.Open as another process would.
func runSuite(t *testing.T, rawURL string) {
	bustest.Run(t, func(t *testing.T) bus.Bus {
		b, err := bus.Open(context.Background(), rawURL, bus.Options{Logger: testLogger()})
		if err != nil {
			t.Fatalf("Open %s: %v", rawURL, err)
		}
		t.Cleanup(func() { closeBus(t, b) })
		return killable{b.(*Bus)}
	})
}

// TestKFake runs the suite against kfake, franz-go's in-process Kafka
// cluster: a real Kafka protocol server (produce, fetch, consumer groups,
// offset commits with metadata, admin requests) in the test process, since
// no Kafka broker is packaged for the machines the tests run on. The
// client talks to it over TCP exactly as to a broker. TestExternal runs
// the same suite against a real cluster.
func TestKFake(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	runSuite(t, "kafka://"+strings.Join(c.ListenAddrs(), ","))
}

// TestExternal runs the suite against the Kafka cluster in
// TIANSHU_TEST_KAFKA (host:9092[,host2:9092], or a whole kafka:// URL).
func TestExternal(t *testing.T) {
	t.Parallel()
	raw := os.Getenv("TIANSHU_TEST_KAFKA")
	if raw == "" {
		t.Skip("TIANSHU_TEST_KAFKA not set: set it to a Kafka cluster (host:9092 or a kafka:// URL) to run the suite against it")
	}
	if !strings.HasPrefix(raw, Scheme+"://") {
		raw = Scheme + "://" + raw
	}
	runSuite(t, raw)
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url     string
		brokers string
		err     string
	}{
		{url: "kafka://b1:9092,b2:9093", brokers: "b1:9092,b2:9093"},
		{url: "kafka://b1,b2", brokers: "b1:9092,b2:9092"},
		{url: "kafka://[::1]", brokers: "[::1]:9092"},
		{url: "kafka://b1?prefix=ts.prod.&max_age=1h&max_msg_bytes=1000&replicas=3", brokers: "b1:9092"},
		{url: "kafka://u:p@b1?sasl=scram-sha-512&tls=true", brokers: "b1:9092"},
		{url: "kafka://", err: "needs a broker"},
		{url: "kafka://b1,,b2", err: "empty host"},
		{url: "kafka://b1?prefix=Ts_", err: "prefix"},
		{url: "kafka://b1?replicas=0", err: "replicas"},
		{url: "kafka://b1?nope=1", err: "unknown parameter"},
		{url: "kafka://u:p@b1", err: "need sasl"},
		{url: "kafka://b1?sasl=gssapi", err: "sasl"},
		{url: "nats://b1", err: "scheme"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := parseURL(u)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseURL(%s): %v, want error containing %q", tc.url, err, tc.err)
			}
		case err != nil:
			t.Errorf("parseURL(%s): %v", tc.url, err)
		case strings.Join(cfg.brokers, ",") != tc.brokers:
			t.Errorf("parseURL(%s): brokers %v, want %s", tc.url, cfg.brokers, tc.brokers)
		}
	}
}

func TestTopicNames(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, topic := range []string{"a.b", "a_b", "a-b", "a._b", "a_.b", "tasks.t1.results", "x__y"} {
		name := kafkaTopic(defaultPrefix, topic)
		if strings.Contains(name, "_") {
			t.Errorf("Kafka name %q of %q has '_'", name, topic)
		}
		if other, dup := seen[strings.ReplaceAll(name, ".", "_")]; dup {
			t.Errorf("%q and %q map to Kafka names that collide: %q", topic, other, name)
		}
		seen[strings.ReplaceAll(name, ".", "_")] = topic
		if back, ok := busTopic(defaultPrefix, name); !ok || back != topic {
			t.Errorf("busTopic(%q) = %q, %v; want %q", name, back, ok, topic)
		}
	}
	if _, ok := busTopic(defaultPrefix, "other.topic"); ok {
		t.Error("busTopic took a topic without the prefix")
	}
}

func TestHanded(t *testing.T) {
	t.Parallel()
	if upTo, a := parseHanded(formatHanded(41, 3)); upTo != 41 || a != 3 {
		t.Errorf("round trip gave %d, %d; want 41, 3", upTo, a)
	}
	for _, bad := range []string{"", "x", "tianshu1 ", "tianshu1 4", "tianshu1 a 1", "tianshu1 4 0"} {
		if upTo, _ := parseHanded(bad); upTo != -1 {
			t.Errorf("parseHanded(%q) = %d, want -1", bad, upTo)
		}
	}
}

// TestDeliveriesCountAcrossSubscriptions checks the commit metadata that
// carries Attempt from one subscription to the next: a record handed back
// by Stop comes back with its Attempt counted up, and one that comes back
// more than MaxDeliver times is dead without another handler call.
func TestDeliveriesCountAcrossSubscriptions(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	b, err := bus.Open(t.Context(), "kafka://"+strings.Join(c.ListenAddrs(), ","), bus.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBus(t, b) })
	const topic = "attempts.test"
	seq, err := b.Publish(t.Context(), topic, "k", []byte("stuck"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dead := make(chan bus.Message, 1)
	opts := bus.SubscribeOptions{MaxDeliver: 2, OnDead: func(m bus.Message, err error) {
		if errors.Is(err, errTooManyDeliveries) {
			dead <- m
		}
	}}
	for want := 1; want <= 2; want++ {
		got := make(chan bus.Message, 1)
		sub, err := b.Subscribe(t.Context(), topic, "d", opts, func(ctx context.Context, m bus.Message) error {
			got <- m
			<-ctx.Done() // never finishes: Stop hands it back
			return ctx.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		if m := receive(t, got); m.Seq != seq || m.Attempt != want {
			t.Fatalf("delivery %d: seq %d attempt %d, want seq %d attempt %d", want, m.Seq, m.Attempt, seq, want)
		}
		if err := sub.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := b.Subscribe(t.Context(), topic, "d", opts, func(ctx context.Context, m bus.Message) error {
		t.Errorf("handler called for %d after MaxDeliver deliveries", m.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop() })
	if m := receive(t, dead); m.Seq != seq || m.Attempt != 3 {
		t.Fatalf("dead: seq %d attempt %d, want seq %d attempt 3", m.Seq, m.Attempt, seq)
	}
}

// receive receives from c, failing the test after a generous limit that
// only a broken backend reaches.
func receive[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("timed out after 30s waiting for a delivery")
		panic("unreachable")
	}
}
