package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/bus/bustest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
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

func openURL(t testing.TB, rawURL string, opts bus.Options) *Bus {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	b, err := Open(context.Background(), u, opts)
	if err != nil {
		t.Fatalf("Open %s: %v", rawURL, err)
	}
	return b
}

func closeBus(t testing.TB, b bus.Bus) {
	if err := b.Close(); err != nil && !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

func TestEmbedded(t *testing.T) {
	t.Parallel()
	srv := openURL(t, "nats://embedded", bus.Options{DataDir: t.TempDir()})
	t.Cleanup(func() { closeBus(t, srv) })
	bustest.Run(t, func(t *testing.T) bus.Bus {
		c, err := srv.newClient(context.Background())
		if err != nil {
			t.Fatalf("newClient: %v", err)
		}
		t.Cleanup(func() { closeBus(t, c) })
		return killable{c}
	})
}

func TestExternal(t *testing.T) {
	t.Parallel()
	raw := testenv.NATSURL()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("TIANSHU_TEST_NATS: %v", err)
	}
	addr := strings.Split(u.Host, ",")[0]
	if !strings.Contains(addr, ":") {
		addr += ":4222"
	}
	testenv.NeedTCP(t, "NATS", addr)
	bustest.Run(t, func(t *testing.T) bus.Bus {
		b, err := bus.Open(context.Background(), raw, bus.Options{Logger: testLogger()})
		if err != nil {
			t.Fatalf("Open %s: %v", u.Redacted(), err)
		}
		t.Cleanup(func() { closeBus(t, b) })
		return killable{b.(*Bus)}
	})
}

// TestRestart checks that an embedded bus keeps messages and durable
// positions across Close and a new Open on the same directory.
func TestRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	const topic = "restart.test"

	b := openURL(t, "nats://embedded", bus.Options{DataDir: dir})
	for i := range 3 {
		if _, err := b.Publish(ctx, topic, "k", []byte(strconv.Itoa(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, b, topic, "d", 3)
	if fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("before restart got %v", got)
	}
	for i := 3; i < 5; i++ {
		if _, err := b.Publish(ctx, topic, "k", []byte(strconv.Itoa(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b = openURL(t, "nats://embedded", bus.Options{DataDir: dir})
	defer closeBus(t, b)
	if got := collect(t, b, topic, "d", 2); fmt.Sprint(got) != "[4 5]" {
		t.Errorf("durable after restart got %v, want [4 5]", got)
	}
	if got := collect(t, b, topic, "fresh", 5); fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Errorf("new durable after restart got %v, want [1 2 3 4 5]", got)
	}
}

// collect subscribes until n messages arrived, stops, and returns their
// sequences.
func collect(t *testing.T, b bus.Bus, topic, durable string, n int) []uint64 {
	t.Helper()
	var (
		mu   sync.Mutex
		seqs []uint64
	)
	sub, err := b.Subscribe(t.Context(), topic, durable, bus.SubscribeOptions{}, func(_ context.Context, m bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seqs = append(seqs, m.Seq)
		return nil
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		k := len(seqs)
		mu.Unlock()
		if k >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d messages", k, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := sub.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return seqs
}

// TestListen checks that an embedded server asked to listen serves other
// processes over TCP, and that metrics from two buses share a registry.
func TestListen(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	srv := openURL(t, "nats://embedded?listen=127.0.0.1:0", bus.Options{DataDir: t.TempDir(), Registerer: reg})
	defer closeBus(t, srv)
	remote := openURL(t, srv.srv.ClientURL(), bus.Options{Registerer: reg})
	defer closeBus(t, remote)

	if _, err := remote.Publish(t.Context(), "listen.test", "", []byte("x"), nil); err != nil {
		t.Fatalf("Publish over TCP: %v", err)
	}
	if got := collect(t, srv, "listen.test", "d", 1); fmt.Sprint(got) != "[1]" {
		t.Fatalf("got %v", got)
	}
	want := map[string]float64{
		"tianshu_bus_published_total": 1,
		"tianshu_bus_delivered_total": 1,
		"tianshu_bus_acked_total":     1,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		w, ok := want[mf.GetName()]
		if !ok {
			continue
		}
		delete(want, mf.GetName())
		if got := mf.GetMetric()[0].GetCounter().GetValue(); len(mf.GetMetric()) != 1 || got != w {
			t.Errorf("%s = %v (%d series), want %v", mf.GetName(), got, len(mf.GetMetric()), w)
		}
	}
	for name := range want {
		t.Errorf("metric %s missing", name)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url, want, err string
	}{
		{url: "nats://embedded", want: "embedded listen= servers=[] max_age=168h0m0s max=1048576 replicas=1"},
		{url: "nats://embedded?listen=127.0.0.1:4223&max_age=1h&max_msg_bytes=100", want: "embedded listen=127.0.0.1:4223 servers=[] max_age=1h0m0s max=100 replicas=1"},
		{url: "nats://a:4222,b:4223", want: "external listen= servers=[nats://a:4222 nats://b:4223] max_age=168h0m0s max=1048576 replicas=1"},
		{url: "nats://a", want: "external listen= servers=[nats://a:4222] max_age=168h0m0s max=1048576 replicas=1"},
		{url: "nats://u:p%40ss@a:1,b:2?replicas=3&creds=/x.creds&max_age=0s", want: "external listen= servers=[nats://u:p%40ss@a:1 nats://u:p%40ss@b:2] max_age=0s max=1048576 replicas=3"},
		{url: "nats://embedded?bogus=1", err: "unknown parameter"},
		{url: "nats://embedded?max_age=soon", err: "max_age"},
		{url: "nats://embedded?replicas=3", err: "replicas"},
		{url: "nats://u:p@embedded", err: "no credentials"},
		{url: "nats://a:4222?listen=:1", err: "listen applies only"},
		{url: "nats://", err: "needs a host"},
		{url: "nats://a:1,,b:2", err: "empty host"},
		{url: "kafka://a", err: "scheme"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		cfg, err := parseURL(u)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one containing %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		kind := "external"
		if cfg.embedded {
			kind = "embedded"
		}
		got := fmt.Sprintf("%s listen=%s servers=%v max_age=%v max=%d replicas=%d", kind, cfg.listen, cfg.servers, cfg.maxAge, cfg.maxMsgBytes, cfg.replicas)
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.url, got, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := bus.Open(t.Context(), "nats://embedded", bus.Options{}); err == nil || !strings.Contains(err.Error(), "DataDir") {
		t.Errorf("embedded without DataDir: %v, want an error naming DataDir", err)
	}
	// A port nothing listens on: Open must fail rather than start a bus
	// that never works.
	_, err := bus.Open(t.Context(), "nats://user:secret@127.0.0.1:1", bus.Options{})
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestStreamName(t *testing.T) {
	if got := streamName("tasks.t-1_x.results"); got != "tianshu_tasks~t-1_x~results" {
		t.Errorf("streamName = %q", got)
	}
}

func TestLastSeq(t *testing.T) {
	ctx := context.Background()
	b, err := bus.Open(ctx, "nats://embedded", bus.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := b.(interface {
		LastSeq(context.Context, string) (uint64, error)
	})
	if n, err := h.LastSeq(ctx, "empty.topic"); err != nil || n != 0 {
		t.Fatalf("unknown topic: %d %v", n, err)
	}
	for i := 0; i < 3; i++ {
		if _, err := b.Publish(ctx, "head.topic", "k", []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := h.LastSeq(ctx, "head.topic"); err != nil || n != 3 {
		t.Fatalf("LastSeq = %d %v, want 3", n, err)
	}
}

// A subscription takes Prefetch messages ahead of its one handler, and no
// more, while the handler is held.
func TestPrefetch(t *testing.T) {
	ctx := context.Background()
	b := openURL(t, "nats://embedded", bus.Options{DataDir: t.TempDir()})
	defer closeBus(t, b)
	const topic, prefetch = "prefetch.topic", 20
	for i := range 50 {
		if _, err := b.Publish(ctx, topic, strconv.Itoa(i), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	sub, err := b.Subscribe(ctx, topic, "held", bus.SubscribeOptions{MaxInFlight: 1, Prefetch: prefetch}, func(ctx context.Context, _ bus.Message) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		cons, err := b.js.Consumer(ctx, streamName(topic), "held")
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending
	}
	testenv.Eventually(t, 10*time.Second, "prefetched messages", func() bool { return pending() == prefetch })
	close(release)
	testenv.Eventually(t, 10*time.Second, "every message handled", func() bool { return pending() == 0 })
	if err := sub.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Ephemeral messages reach whoever listens at the moment and are not
// stored (a late listener gets nothing); they have the bus's size limit.
func TestEphemeral(t *testing.T) {
	b := openURL(t, "nats://embedded", bus.Options{DataDir: t.TempDir()})
	if err := b.Send("live.frames.task-1.0", []byte("lost")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	stop, err := b.Listen("live.frames.task-1.0", func(data []byte) { got <- string(data) })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send("live.frames.task-1.0", []byte("seen")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "seen" {
		t.Fatalf("got %q, want the message sent while listening (not the one before)", m)
	}
	stop()
	if err := b.Send("live.frames.task-1.0", make([]byte, 2<<20)); !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("2 MiB: %v, want ErrMessageTooLarge", err)
	}
}
