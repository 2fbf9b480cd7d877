package push

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// onBuses runs f on the embedded bus and on the NATS server at
// 127.0.0.1:4222 (TIANSHU_TEST_NATS), each with a project of its own.
func onBuses(t *testing.T, f func(t *testing.T, e *env, project string)) {
	for _, url := range []string{"nats://embedded", testenv.NATSURL()} {
		name := "embedded"
		if url != "nats://embedded" {
			name = "nats"
		}
		t.Run(name, func(t *testing.T) {
			if name == "nats" {
				testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
			}
			e := newEnvOn(t, url, nil)
			project := "fan" + ids.Random(8, "abcdefghijklmnopqrstuvwxyz0123456789")
			t.Cleanup(func() { _ = e.bus.DeleteTopic(context.Background(), event.Topic(project)) })
			f(t, e, project)
		})
	}
}

// webhook creates a webhook subscription of project to r's URL.
func (e *env) webhook(project string, r *receiver) *Subscription {
	e.t.Helper()
	sub := &Subscription{Channel: ChannelWebhook, URL: r.srv.URL, MaxAttempts: 1000}
	if err := e.svc.Create(context.Background(), Scope{ProjectID: project, AppID: "app-fan"}, sub); err != nil {
		e.t.Fatal(err)
	}
	r.setSecret(sub.Secret)
	return sub
}

// ackedSeq reads the floor saved in a subscription's row.
func (e *env) ackedSeq(id string) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.QueryRow(context.Background(), "SELECT acked_seq FROM subscriptions WHERE id = ?", id).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// A subscription whose receiver fails holds back no other subscription of
// its project: they share one reader of the topic, and the failing one,
// once it fell further behind than the ring holds, reads its own durable
// and gets everything, in order, once its receiver recovers.
func TestWebhookFailingSubscriptionHoldsBackNoOther(t *testing.T) {
	onBuses(t, func(t *testing.T, e *env, project string) {
		e.svc.ringEvents = 32
		good, bad := newReceiver(t), newReceiver(t)
		e.webhook(project, good)
		e.webhook(project, bad)
		if err := e.svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		first := publish(t, e.bus, project, "a", "t.x", 1, 1, nil)
		testenv.Eventually(t, 30*time.Second, "the first event at both", func() bool { return good.has(first[0]) && bad.has(first[0]) })
		testenv.Eventually(t, 30*time.Second, "both reading the shared ring", func() bool {
			return value(e.svc.met.webhook.ownReaders) == 0
		})
		reads := value(e.svc.met.webhook.ownReads)
		failing := func() bool { return true }
		bad.fail.Store(&failing)
		more := publish(t, e.bus, project, "b", "t.x", 400, 10, nil)
		all := append(first, more...)
		testenv.Eventually(t, 60*time.Second, "every event at the good receiver", func() bool { return good.distinct() == len(all) })
		if n := bad.distinct(); n != 1 {
			t.Fatalf("the failing receiver accepted %d events", n)
		}
		bad.fail.Store(nil)
		testenv.Eventually(t, 90*time.Second, "every event at the recovered receiver", func() bool { return bad.distinct() == len(all) })
		good.checkOrder(t, all)
		bad.checkOrder(t, all)
		if n := value(e.svc.met.webhook.ownReads); n <= reads {
			t.Errorf("own reads %v, before the outage %v: the failing subscription never fell back to its durable", n, reads)
		}
		good.mu.Lock()
		defer good.mu.Unlock()
		if good.total != len(all) {
			t.Errorf("the good receiver got %d deliveries of %d events", good.total, len(all))
		}
	})
}

// After a stop, each subscription resumes at its own floor: the one that
// was up to date gets no event again, the one held back by its receiver
// gets everything from where it stopped.
func TestWebhookRestartResumesEachAtItsFloor(t *testing.T) {
	onBuses(t, func(t *testing.T, e *env, project string) {
		e.svc.ringEvents = 32
		good, bad := newReceiver(t), newReceiver(t)
		gs := e.webhook(project, good)
		bs := e.webhook(project, bad)
		failing := func() bool { return true }
		bad.fail.Store(&failing)
		if err := e.svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		before := publish(t, e.bus, project, "a", "t.x", 200, 10, nil)
		testenv.Eventually(t, 60*time.Second, "every event at the good receiver", func() bool { return good.distinct() == len(before) })
		// The receiver counts an event before its answer reaches the
		// deliverer: a stop in between would rightly send it again.
		testenv.Eventually(t, 30*time.Second, "every answer back", func() bool {
			return value(e.svc.met.webhook.delivered) >= float64(len(before))
		})
		if err := e.svc.Stop(); err != nil {
			t.Fatal(err)
		}
		if g, b := e.ackedSeq(gs.ID), e.ackedSeq(bs.ID); g < int64(len(before)) || b >= g {
			t.Fatalf("saved floors: %d (up to date), %d (held back)", g, b)
		}
		bad.fail.Store(nil)
		e.svc = e.newService(func(c *Config) {})
		e.svc.ringEvents = 32
		if err := e.svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		after := publish(t, e.bus, project, "b", "t.x", 100, 10, nil)
		all := append(before, after...)
		testenv.Eventually(t, 60*time.Second, "every event at both", func() bool {
			return good.distinct() == len(all) && bad.distinct() == len(all)
		})
		good.checkOrder(t, all)
		bad.checkOrder(t, all)
		good.mu.Lock()
		defer good.mu.Unlock()
		if good.total != len(all) {
			t.Errorf("the up-to-date receiver got %d deliveries of %d events", good.total, len(all))
		}
	})
}

// The ring keeps the newest events within its bounds and says when it
// cannot serve a reader.
func TestHubRing(t *testing.T) {
	h := &hub{s: &Service{ringEvents: 4}, wake: map[*runner]chan struct{}{}}
	buf := make([]bus.Message, 10)
	if _, ok := h.read(0, buf); ok {
		t.Fatal("an empty hub served a read")
	}
	for seq := uint64(11); seq <= 20; seq += 2 { // 11 13 15 17 19
		_ = h.append(context.Background(), bus.Message{Seq: seq, Data: []byte("x")})
	}
	// 11 was dropped: the ring holds (11, 19].
	if _, ok := h.read(10, buf); ok {
		t.Fatal("read below the ring served")
	}
	n, ok := h.read(11, buf)
	if !ok || n != 4 || buf[0].Seq != 13 || buf[3].Seq != 19 {
		t.Fatalf("read(11) = %d, %v, %v", n, ok, buf[:n])
	}
	n, ok = h.read(14, buf)
	if !ok || n != 3 || buf[0].Seq != 15 {
		t.Fatalf("read(14) = %d, %v, %v", n, ok, buf[:n])
	}
	if n, ok = h.read(19, buf); !ok || n != 0 {
		t.Fatalf("read(19) = %d, %v", n, ok)
	}
	if got := fmt.Sprint(h.covers(11), h.covers(10)); got != "true false" {
		t.Fatalf("covers: %s", got)
	}
}

// value reads a gauge's or counter's value.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// The dispatcher retries a failing event in place, holding back only the
// later events of its key, and survives a panicking handler.
func TestDispatcherKeyOrderAndRetries(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]uint64{}
	tries := map[uint64]int{}
	h := func(_ context.Context, m bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		tries[m.Seq]++
		switch {
		case m.Seq == 1 && tries[1] == 1:
			panic("first try of 1")
		case m.Key == "slow" && tries[m.Seq] < 3:
			return fmt.Errorf("refused")
		}
		got[m.Key] = append(got[m.Key], m.Seq)
		return nil
	}
	d := newDispatcher(4, 16, time.Millisecond, slog.New(slog.DiscardHandler), h)
	ctx, cancel := context.WithCancel(context.Background())
	d.start(ctx)
	for seq := uint64(1); seq <= 40; seq++ {
		key := "fast" + strconv.Itoa(int(seq%3))
		if seq%4 == 0 {
			key = "slow"
		}
		if !d.put(ctx, bus.Message{Seq: seq, Key: key}) {
			t.Fatal("put refused")
		}
	}
	testenv.Eventually(t, 10*time.Second, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range got {
			n += len(s)
		}
		return n == 40
	})
	cancel()
	d.wait()
	for key, seqs := range got {
		if !slices.IsSorted(seqs) {
			t.Errorf("key %s handled out of order: %v", key, seqs)
		}
	}
	if tries[1] != 2 || tries[4] != 3 {
		t.Errorf("tries of 1 and 4: %d, %d", tries[1], tries[4])
	}
}
