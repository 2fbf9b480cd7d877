package push

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestMain doubles as the push gateway process of the reliability test:
// with TIANSHU_PUSHD set, the test binary runs webhook delivery until it is
// killed.
func TestMain(m *testing.M) {
	if os.Getenv("TIANSHU_PUSHD") == "1" {
		os.Exit(pushd())
	}
	os.Exit(m.Run())
}

func pushd() int {
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "pushd:", err)
		return 1
	}
	db, err := store.Open(ctx, os.Getenv("TIANSHU_PUSHD_DB"), store.Options{})
	if err != nil {
		return fail(err)
	}
	b, err := bus.Open(ctx, os.Getenv("TIANSHU_PUSHD_BUS"), bus.Options{})
	if err != nil {
		return fail(err)
	}
	key, _ := base64.StdEncoding.DecodeString(os.Getenv("TIANSHU_PUSHD_KEY"))
	box, err := secrets.New(key)
	if err != nil {
		return fail(err)
	}
	cfg := Config{DB: db, Bus: b, Box: box, Logger: testLogger(), NodeID: os.Getenv("TIANSHU_PUSHD_NODE"),
		Reconcile: 100 * time.Millisecond, LeaseTTL: 2 * time.Second, AckWait: 5 * time.Second, RetryDelay: 50 * time.Millisecond}
	s, err := New(cfg)
	if err != nil {
		return fail(err)
	}
	if err := s.Start(ctx); err != nil {
		return fail(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	_ = s.Stop()
	_ = b.Close()
	return 0
}

// TestReliabilityKill9 publishes events (TIANSHU_PUSH_RELIABILITY_EVENTS,
// default 100,000, about 20 s here) while a push gateway process delivers
// them to two webhook subscriptions, and kills the gateway with SIGKILL
// twice during delivery. The second receiver refuses one request in five,
// so that its subscription runs behind the first, at a floor of its own.
// Each receiver, which verifies every signature, must see every event at
// least once and, per key, the first deliveries in publish order.
// Duplicates are events delivered after the dead gateway's last saved
// floor (saved every 100ms here) or in flight.
func TestReliabilityKill9(t *testing.T) {
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	if testing.Short() {
		t.Skip("real processes; skipped with -short")
	}
	t.Parallel()
	n := 100000
	if v := os.Getenv("TIANSHU_PUSH_RELIABILITY_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	dbURL := storetest.URL(t, "sqlite")
	db, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	busURL := testenv.NATSURL()
	b, err := bus.Open(ctx, busURL, bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	project := "rel" + ids.Random(8, "abcdefghijklmnopqrstuvwxyz0123456789")
	defer func() { _ = b.DeleteTopic(context.Background(), event.Topic(project)) }()
	key := make([]byte, secrets.KeySize)
	for i := range key {
		key[i] = byte(i * 7)
	}
	box, _ := secrets.New(key)
	svc, err := New(Config{DB: db, Bus: b, Box: box, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	// Two subscriptions of the project, each at its own floor: the second
	// receiver refuses one request in five, so that it runs behind the
	// first and retries while the gateway is killed.
	r, flaky := newReceiver(t), newReceiver(t)
	var calls atomic.Int64
	refuse := func() bool { return calls.Add(1)%5 == 0 }
	flaky.fail.Store(&refuse)
	for _, rr := range []*receiver{r, flaky} {
		sub := &Subscription{Channel: ChannelWebhook, URL: rr.srv.URL, MaxAttempts: 1000}
		if err := svc.Create(ctx, Scope{ProjectID: project, AppID: "app-rel"}, sub); err != nil {
			t.Fatal(err)
		}
		rr.setSecret(sub.Secret)
	}

	var procs []*exec.Cmd
	start := func(i int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TIANSHU_PUSHD=1", "TIANSHU_PUSHD_DB="+dbURL, "TIANSHU_PUSHD_BUS="+busURL,
			"TIANSHU_PUSHD_KEY="+base64.StdEncoding.EncodeToString(key), "TIANSHU_PUSHD_NODE=pushd-"+strconv.Itoa(i))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		return cmd
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_, _ = p.Process.Wait()
		}
	}()

	// Publish on 10 goroutines, each owning 10 of the 100 keys (10 divides
	// 100), so that per-key publish order is well defined.
	const keys, publishers = 100, 10
	evIDs := make([]string, n)
	var pubErr error
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := p; i < n; i += publishers {
				ev := testEvent{SpecVersion: "1.0", ID: fmt.Sprintf("rel-%07d", i), Source: "/tianshu/tasks/task-rel", Type: "tianshu.test",
					Subject: fmt.Sprintf("dev-%03d", i%keys), Time: time.Now().UTC().Format(time.RFC3339Nano), TaskID: "task-rel", ProjectID: project}
				body := []byte(toJSON(ev))
				if _, err := b.Publish(ctx, event.Topic(project), ev.Subject, body, map[string]string{event.HeaderID: ev.ID}); err != nil {
					pubErr = err
					return
				}
				evIDs[i] = ev.ID
			}
		})
	}
	p := start(0)
	for k, frac := range []int{4, 2} {
		testenv.Eventually(t, 120*time.Second, "deliveries before kill", func() bool { return r.distinct() >= n/frac })
		if err := p.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, _ = p.Process.Wait()
		t.Logf("kill -9 #%d after %d distinct events", k+1, r.distinct())
		p = start(k + 1)
	}
	wg.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	for name, rr := range map[string]*receiver{"steady": r, "flaky": flaky} {
		testenv.Eventually(t, 180*time.Second, "every event at the "+name+" receiver", func() bool { return rr.distinct() == n })
		rr.checkOrder(t, evIDs)
		rr.mu.Lock()
		dups := rr.total - len(rr.seen)
		rr.mu.Unlock()
		t.Logf("%s receiver: %d events, %d deliveries, %d duplicates", name, n, n+dups, dups)
		if dups > n/10 {
			t.Errorf("%s receiver: %d duplicates for %d events", name, dups, n)
		}
	}
}
