// Package bustest is the conformance suite for bus.Bus backends: every
// backend runs Run, so that code written against the interface behaves the
// same on the embedded bus and on an external cluster.
package bustest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
)

// waitLimit bounds every wait for a condition. It is generous because the
// suite runs on loaded CI machines; conditions are polled, so a fast
// backend is not slowed down by it.
const waitLimit = 30 * time.Second

// Killer is an optional interface for the buses open returns. Kill drops
// the client's connection at once, without acknowledging, handing back or
// draining anything, as a crashed process would. The redelivery test is
// skipped for a bus that does not have it.
type Killer interface {
	Kill()
}

// Run runs the conformance suite against the backend that open connects
// to. Each call of open returns a new client (its own connection, as
// another process would have) of one shared backend: clients opened in the
// same test must see the same topics. open registers the client's Close
// with t.Cleanup; Close returning bus.ErrClosed there is fine, some tests
// close (or kill) their client themselves.
//
// Subtests run in parallel and each uses topics of its own that it deletes
// when done, so a server shared with other test runs is fine.
func Run(t *testing.T, open func(t *testing.T) bus.Bus) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) bus.Bus)
	}{
		{"RoundTrip", testRoundTrip},
		{"Dedup", testDedup},
		{"DurableResume", testDurableResume},
		{"StartSeq", testStartSeq},
		{"StopHandsBack", testStopHandsBack},
		{"RedeliveryAfterCrash", testRedeliveryAfterCrash},
		{"OrderPerKey", testOrderPerKey},
		{"RetryThenSuccess", testRetryThenSuccess},
		{"MaxDeliverDead", testMaxDeliverDead},
		{"SharedDurable", testSharedDurable},
		{"DeleteConsumer", testDeleteConsumer},
		{"InvalidNames", testInvalidNames},
		{"Closed", testClosed},
		{"LargeMessage", testLargeMessage},
		{"Untracked", testUntracked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

func testRoundTrip(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	hdr := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", bus.HeaderID: "evt-1"}
	seq := publish(t, b, topic, "dev-1", "hello", hdr)
	seq2 := publish(t, b, topic, "", "", nil)
	if seq2 <= seq {
		t.Errorf("second Publish returned seq %d, first %d: want increasing", seq2, seq)
	}
	var rec recorder
	subscribe(t, b, topic, "rt", bus.SubscribeOptions{}, rec.handle)
	msgs := rec.waitN(t, 2)

	m := msgs[0]
	if m.Topic != topic || m.Key != "dev-1" || string(m.Data) != "hello" || m.Seq != seq || m.Attempt != 1 {
		t.Errorf("got %s, want topic %s key dev-1 data hello seq %d attempt 1", show(m), topic, seq)
	}
	if len(m.Header) != len(hdr) {
		t.Errorf("got header %v, want %v", m.Header, hdr)
	}
	for k, v := range hdr {
		if m.Header[k] != v {
			t.Errorf("header %q = %q, want %q", k, m.Header[k], v)
		}
	}
	if m.Time.IsZero() || time.Since(m.Time).Abs() > time.Hour {
		t.Errorf("message time %v, want about now", m.Time)
	}
	if m := msgs[1]; m.Key != "" || len(m.Data) != 0 || len(m.Header) != 0 || m.Seq != seq2 {
		t.Errorf("empty message came back as %s header %v, want seq %d and nothing else", show(m), m.Header, seq2)
	}
}

func testDedup(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	s1 := publish(t, b, topic, "k", "a", map[string]string{bus.HeaderID: "x"})
	s2 := publish(t, b, topic, "k", "a", map[string]string{bus.HeaderID: "x"})
	s3 := publish(t, b, topic, "k", "b", map[string]string{bus.HeaderID: "y"})
	if s1 != s2 || s3 != s1+1 {
		t.Fatalf("seqs for ids x, x, y = %d, %d, %d; want n, n, n+1", s1, s2, s3)
	}
	var rec recorder
	subscribe(t, b, topic, "d", bus.SubscribeOptions{}, rec.handle)
	if got := rec.waitN(t, 2); got[0].Seq != s1 || got[1].Seq != s3 {
		t.Fatalf("delivered %v, want seqs %d, %d", seqs(got), s1, s3)
	}
}

func testDurableResume(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	for i := range 5 {
		publish(t, b, topic, "", strconv.Itoa(i), nil)
	}
	var rec recorder
	sub := subscribe(t, b, topic, "resume", bus.SubscribeOptions{MaxInFlight: 2}, rec.handle)
	rec.waitN(t, 5)
	if err := sub.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := sub.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	var want []uint64
	for i := range 5 {
		want = append(want, publish(t, b, topic, "", strconv.Itoa(5+i), nil))
	}
	var rec2 recorder
	subscribe(t, b, topic, "resume", bus.SubscribeOptions{}, rec2.handle)
	got := rec2.waitN(t, 5)
	if fmt.Sprint(seqs(got)) != fmt.Sprint(want) {
		t.Fatalf("resumed durable got seqs %v, want only the new %v", seqs(got), want)
	}
}

func testStartSeq(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	var all []uint64
	for i := range 5 {
		all = append(all, publish(t, b, topic, "", strconv.Itoa(i), nil))
	}
	var rec recorder
	subscribe(t, b, topic, "late", bus.SubscribeOptions{StartSeq: all[2]}, rec.handle)
	if got := rec.waitN(t, 3); fmt.Sprint(seqs(got)) != fmt.Sprint(all[2:]) {
		t.Fatalf("StartSeq %d got %v, want %v", all[2], seqs(got), all[2:])
	}
}

// testStopHandsBack checks that Stop returns the messages it holds to the
// backend at once, rather than leaving them to AckWait (set far beyond
// the wait here).
func testStopHandsBack(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	seq := publish(t, b, topic, "k", "x", nil)
	opts := bus.SubscribeOptions{AckWait: 10 * time.Minute}
	started := make(chan struct{}, 1)
	sub := subscribe(t, b, topic, "handback", opts, func(ctx context.Context, m bus.Message) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
	wait(t, started, "first delivery")
	if err := sub.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	var rec recorder
	subscribe(t, b, topic, "handback", opts, rec.handle)
	// Attempt is not checked: servers before 2.10 may count the hand-back
	// as no delivery at all.
	if m := rec.waitN(t, 1)[0]; m.Seq != seq {
		t.Fatalf("after Stop got %s, want seq %d", show(m), seq)
	}
}

func testRedeliveryAfterCrash(t *testing.T, open func(t *testing.T) bus.Bus) {
	b1 := open(t)
	killer, ok := b1.(Killer)
	if !ok {
		t.Skip("bus does not implement bustest.Killer")
	}
	b2 := open(t)
	topic := newTopic(t, b2)
	seq := publish(t, b2, topic, "k", "x", nil)
	// Short AckWait: the crashed client's message must come back after
	// it, and the test waits for that.
	opts := bus.SubscribeOptions{AckWait: 2 * time.Second}
	got := make(chan bus.Message, 10)
	if _, err := b1.Subscribe(t.Context(), topic, "crash", opts, func(ctx context.Context, m bus.Message) error {
		got <- m
		<-ctx.Done()
		return ctx.Err()
	}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	first := wait(t, got, "first delivery")
	killer.Kill()
	var rec recorder
	subscribe(t, b2, topic, "crash", opts, rec.handle)
	if m := rec.waitN(t, 1)[0]; m.Seq != first.Seq || m.Seq != seq || m.Attempt < 2 {
		t.Fatalf("after the crash got %s, want seq %d attempt >= 2", show(m), seq)
	}
}

// testUntracked: an untracked durable delivers in order per key and
// retries a failing handler in place, but what it handed out is not
// delivered again after a Stop: the subscriber keeps its own position.
func testUntracked(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	for i := range 4 {
		publish(t, b, topic, "k", fmt.Sprint(i), nil)
	}
	opts := bus.SubscribeOptions{Untracked: true, MaxInFlight: 2, RetryDelay: 10 * time.Millisecond}
	var (
		mu   sync.Mutex
		seen []string
	)
	stuck := make(chan struct{}, 1)
	sub := subscribe(t, b, topic, "untracked", opts, func(ctx context.Context, m bus.Message) error {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s/%d", m.Data, m.Attempt))
		mu.Unlock()
		switch {
		case string(m.Data) == "1" && m.Attempt < 2:
			return errors.New("transient failure")
		case string(m.Data) == "3":
			stuck <- struct{}{}
			<-ctx.Done() // never finishes
			return ctx.Err()
		}
		return nil
	})
	wait(t, stuck, "the last message")
	if err := sub.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	mu.Lock()
	got := fmt.Sprint(seen)
	mu.Unlock()
	if want := "[0/1 1/1 1/2 2/1 3/1]"; got != want {
		t.Fatalf("handler calls %s, want %s", got, want)
	}
	var rec recorder
	subscribe(t, b, topic, "untracked", opts, rec.handle)
	next := publish(t, b, topic, "k", "4", nil)
	if m := rec.waitN(t, 1)[0]; m.Seq != next {
		t.Fatalf("after Stop got %s, want only the new seq %d", show(m), next)
	}
}

func testOrderPerKey(t *testing.T, open func(t *testing.T) bus.Bus) {
	const keys, perKey, inFlight = 8, 25, 4
	b := open(t)
	topic := newTopic(t, b)
	for i := range perKey {
		for k := range keys {
			publish(t, b, topic, "key-"+strconv.Itoa(k), strconv.Itoa(i), nil)
		}
	}
	var (
		mu         sync.Mutex
		active     = map[string]bool{}
		seen       = map[string][]int{}
		running    int
		maxRunning int
		total      int
		overlaps   []string
	)
	subscribe(t, b, topic, "order", bus.SubscribeOptions{MaxInFlight: inFlight}, func(ctx context.Context, m bus.Message) error {
		mu.Lock()
		if active[m.Key] {
			overlaps = append(overlaps, show(m))
		}
		active[m.Key] = true
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()
		// A little random work, so that a backend that does not keep
		// keys in order gets the chance to show it.
		time.Sleep(mrand.N(time.Millisecond))
		i, _ := strconv.Atoi(string(m.Data))
		mu.Lock()
		active[m.Key] = false
		running--
		seen[m.Key] = append(seen[m.Key], i)
		total++
		mu.Unlock()
		return nil
	})
	eventually(t, "all messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return total >= keys*perKey
	})
	mu.Lock()
	defer mu.Unlock()
	if len(overlaps) > 0 {
		t.Errorf("handlers ran concurrently for one key: %v", overlaps)
	}
	if maxRunning > inFlight {
		t.Errorf("%d handlers ran at once, MaxInFlight is %d", maxRunning, inFlight)
	}
	t.Logf("at most %d handlers ran at once", maxRunning)
	for k := range keys {
		key := "key-" + strconv.Itoa(k)
		got := seen[key]
		ok := len(got) == perKey
		for i := 0; ok && i < perKey; i++ {
			ok = got[i] == i
		}
		if !ok {
			t.Errorf("key %s handled in order %v, want 0..%d once each", key, got, perKey-1)
		}
	}
}

func testRetryThenSuccess(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	publish(t, b, topic, "a", "a0", nil)
	publish(t, b, topic, "a", "a1", nil)
	publish(t, b, topic, "b", "b0", nil)
	var (
		mu    sync.Mutex
		calls []string // key a only: data/attempt
		done  int
	)
	opts := bus.SubscribeOptions{MaxInFlight: 2, RetryDelay: 10 * time.Millisecond}
	subscribe(t, b, topic, "retry", opts, func(ctx context.Context, m bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if m.Key == "a" {
			calls = append(calls, fmt.Sprintf("%s/%d", m.Data, m.Attempt))
		}
		if string(m.Data) == "a0" && m.Attempt < 3 {
			return errors.New("transient failure")
		}
		done++
		return nil
	})
	eventually(t, "three messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done >= 3
	})
	mu.Lock()
	defer mu.Unlock()
	if want := "[a0/1 a0/2 a0/3 a1/1]"; fmt.Sprint(calls) != want {
		t.Fatalf("handler calls for key a: %v, want %s (a1 waits for a0's retries)", calls, want)
	}
}

func testMaxDeliverDead(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	poison := publish(t, b, topic, "p", "poison", nil)
	publish(t, b, topic, "p", "good", nil)
	var (
		mu       sync.Mutex
		attempts []int
		good     bool
		dead     []string
	)
	opts := bus.SubscribeOptions{
		MaxDeliver: 3,
		RetryDelay: 10 * time.Millisecond,
		OnDead: func(m bus.Message, err error) {
			mu.Lock()
			defer mu.Unlock()
			dead = append(dead, fmt.Sprintf("%d/%s/%d/%v", m.Seq, m.Data, m.Attempt, err))
		},
	}
	subscribe(t, b, topic, "dead", opts, func(ctx context.Context, m bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if string(m.Data) == "poison" {
			attempts = append(attempts, m.Attempt)
			return errors.New("cannot parse")
		}
		good = true
		return nil
	})
	eventually(t, "the message after the dead one handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return good
	})
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Errorf("poison attempts %v, want [1 2 3]", attempts)
	}
	if want := fmt.Sprintf("[%d/poison/3/cannot parse]", poison); fmt.Sprint(dead) != want {
		t.Errorf("OnDead calls %v, want %s", dead, want)
	}
}

func testSharedDurable(t *testing.T, open func(t *testing.T) bus.Bus) {
	const n = 40
	b1, b2 := open(t), open(t)
	topic := newTopic(t, b1)
	for i := range n {
		publish(t, b1, topic, "", strconv.Itoa(i), nil)
	}
	var (
		mu     sync.Mutex
		owners = map[uint64][]int{}
		counts [2]int
	)
	handler := func(who int) bus.Handler {
		return func(ctx context.Context, m bus.Message) error {
			mu.Lock()
			owners[m.Seq] = append(owners[m.Seq], who)
			counts[who]++
			mu.Unlock()
			// Hold on until both subscribers have had a message: each
			// can hold only a few, so the other must get some.
			deadline := time.Now().Add(waitLimit)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				mu.Lock()
				both := counts[0] > 0 && counts[1] > 0
				mu.Unlock()
				if both {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			return ctx.Err()
		}
	}
	subscribe(t, b1, topic, "shared", bus.SubscribeOptions{}, handler(0))
	subscribe(t, b2, topic, "shared", bus.SubscribeOptions{}, handler(1))
	eventually(t, "every message handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(owners) >= n
	})
	mu.Lock()
	defer mu.Unlock()
	for seq, o := range owners {
		if len(o) != 1 {
			t.Errorf("seq %d handled by subscribers %v, want exactly one", seq, o)
		}
	}
	if counts[0] == 0 || counts[1] == 0 {
		t.Errorf("subscribers handled %d and %d messages, want both some", counts[0], counts[1])
	}
}

func testDeleteConsumer(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	ctx := t.Context()
	for i := range 3 {
		publish(t, b, topic, "", strconv.Itoa(i), nil)
	}
	var rec recorder
	sub := subscribe(t, b, topic, "gone", bus.SubscribeOptions{}, rec.handle)
	first := rec.waitN(t, 3)
	if err := sub.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := b.DeleteConsumer(ctx, topic, "gone"); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	if err := b.DeleteConsumer(ctx, topic, "gone"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("second DeleteConsumer: %v, want ErrNotFound", err)
	}
	var rec2 recorder
	subscribe(t, b, topic, "gone", bus.SubscribeOptions{}, rec2.handle)
	if got := rec2.waitN(t, 3); fmt.Sprint(seqs(got)) != fmt.Sprint(seqs(first)) {
		t.Fatalf("recreated durable got %v, want all again %v", seqs(got), seqs(first))
	}
	// Deleting a durable under a running subscription ends its deliveries
	// without breaking Stop.
	live := subscribe(t, b, topic, "live", bus.SubscribeOptions{}, func(context.Context, bus.Message) error { return nil })
	if err := b.DeleteConsumer(ctx, topic, "live"); err != nil {
		t.Fatalf("DeleteConsumer under a running subscription: %v", err)
	}
	publish(t, b, topic, "", "after", nil)
	if err := live.Stop(); err != nil {
		t.Fatalf("Stop after DeleteConsumer: %v", err)
	}

	missing := uniqueTopic(t)
	if err := b.DeleteConsumer(ctx, missing, "gone"); !errors.Is(err, bus.ErrNotFound) {
		t.Errorf("DeleteConsumer on a missing topic: %v, want ErrNotFound", err)
	}
	if err := b.DeleteTopic(ctx, missing); !errors.Is(err, bus.ErrNotFound) {
		t.Errorf("DeleteTopic on a missing topic: %v, want ErrNotFound", err)
	}
}

func testInvalidNames(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	ctx := t.Context()
	nop := func(context.Context, bus.Message) error { return nil }
	for _, topic := range []string{"", "Upper", "a b", ".a", "a.", "a..b", "-a", "_a", "a*", "a>", "a/b", "ü", strings.Repeat("a", bus.MaxTopicLen+1)} {
		if _, err := b.Publish(ctx, topic, "", nil, nil); !errors.Is(err, bus.ErrInvalidTopic) {
			t.Errorf("Publish to topic %q: %v, want ErrInvalidTopic", topic, err)
		}
		if _, err := b.Subscribe(ctx, topic, "d", bus.SubscribeOptions{}, nop); !errors.Is(err, bus.ErrInvalidTopic) {
			t.Errorf("Subscribe to topic %q: %v, want ErrInvalidTopic", topic, err)
		}
		if err := b.DeleteConsumer(ctx, topic, "d"); !errors.Is(err, bus.ErrInvalidTopic) {
			t.Errorf("DeleteConsumer on topic %q: %v, want ErrInvalidTopic", topic, err)
		}
	}
	topic := newTopic(t, b)
	for _, d := range []string{"", "a.b", "a b", "-a", "a*", "a>", "é", strings.Repeat("d", bus.MaxDurableLen+1)} {
		if _, err := b.Subscribe(ctx, topic, d, bus.SubscribeOptions{}, nop); !errors.Is(err, bus.ErrInvalidDurable) {
			t.Errorf("Subscribe with durable %q: %v, want ErrInvalidDurable", d, err)
		}
	}
	for _, k := range []string{"a\nb", "nul\x00", string([]byte{0xff}), strings.Repeat("k", bus.MaxKeyLen+1)} {
		if _, err := b.Publish(ctx, topic, k, nil, nil); !errors.Is(err, bus.ErrInvalidKey) {
			t.Errorf("Publish with key %q: %v, want ErrInvalidKey", k, err)
		}
	}
	for _, h := range []map[string]string{{"": "v"}, {"Nats-Msg-Id": "x"}, {"tianshu-key": "x"}, {"a b": "v"}, {"ok": "line\nbreak"}} {
		if _, err := b.Publish(ctx, topic, "", nil, h); !errors.Is(err, bus.ErrInvalidHeader) {
			t.Errorf("Publish with header %q: %v, want ErrInvalidHeader", h, err)
		}
	}
	if _, err := b.Subscribe(ctx, topic, "d", bus.SubscribeOptions{}, nil); err == nil {
		t.Error("Subscribe with a nil handler succeeded")
	}
	// The longest valid names work.
	long := topic + "." + strings.Repeat("x", bus.MaxTopicLen-len(topic)-1)
	t.Cleanup(func() { deleteTopic(t, b, long) })
	publish(t, b, long, strings.Repeat("k", bus.MaxKeyLen), "x", nil)
	var rec recorder
	subscribe(t, b, long, strings.Repeat("D", bus.MaxDurableLen), bus.SubscribeOptions{}, rec.handle)
	rec.waitN(t, 1)
}

func testClosed(t *testing.T, open func(t *testing.T) bus.Bus) {
	b, other := open(t), open(t)
	topic := newTopic(t, other)
	ctx := t.Context()
	publish(t, b, topic, "", "before", nil)
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping of an open bus: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Ping(ctx); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Publish(ctx, topic, "", []byte("after"), nil); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe(ctx, topic, "d", bus.SubscribeOptions{}, func(context.Context, bus.Message) error { return nil }); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if err := b.Close(); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}

func testLargeMessage(t *testing.T, open func(t *testing.T) bus.Bus) {
	b := open(t)
	topic := newTopic(t, b)
	// Comfortably under the default limit and under a stock NATS server's
	// 1 MB max_payload, headers included.
	big := make([]byte, 900<<10)
	_, _ = rand.Read(big)
	seq := publish(t, b, topic, "k", string(big), map[string]string{"h": "v"})
	var rec recorder
	subscribe(t, b, topic, "big", bus.SubscribeOptions{}, rec.handle)
	if m := rec.waitN(t, 1)[0]; m.Seq != seq || !bytes.Equal(m.Data, big) {
		t.Fatalf("got seq %d with %d bytes, want seq %d with the %d bytes published", m.Seq, len(m.Data), seq, len(big))
	}
	tooBig := make([]byte, bus.DefaultMaxMessageBytes+1)
	if _, err := b.Publish(t.Context(), topic, "k", tooBig, nil); !errors.Is(err, bus.ErrMessageTooLarge) {
		t.Fatalf("Publish of %d bytes: %v, want ErrMessageTooLarge", len(tooBig), err)
	}
}

// uniqueTopic returns a topic no other test (or test run sharing the
// server) uses.
func uniqueTopic(t *testing.T) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := strings.ToLower(t.Name()[strings.LastIndexByte(t.Name(), '/')+1:])
	return "bustest." + hex.EncodeToString(r[:]) + "." + name
}

// newTopic returns a unique topic that is deleted (through b) when the
// test ends.
func newTopic(t *testing.T, b bus.Bus) string {
	topic := uniqueTopic(t)
	t.Cleanup(func() { deleteTopic(t, b, topic) })
	return topic
}

func deleteTopic(t *testing.T, b bus.Bus, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := b.DeleteTopic(ctx, topic); err != nil && !errors.Is(err, bus.ErrNotFound) && !errors.Is(err, bus.ErrClosed) {
		t.Errorf("DeleteTopic %s: %v", topic, err)
	}
}

func publish(t *testing.T, b bus.Bus, topic, key, data string, hdr map[string]string) uint64 {
	t.Helper()
	seq, err := b.Publish(t.Context(), topic, key, []byte(data), hdr)
	if err != nil {
		t.Fatalf("Publish to %s: %v", topic, err)
	}
	return seq
}

// subscribe subscribes and stops the subscription when the test ends.
func subscribe(t *testing.T, b bus.Bus, topic, durable string, opts bus.SubscribeOptions, h bus.Handler) bus.Subscription {
	t.Helper()
	sub, err := b.Subscribe(t.Context(), topic, durable, opts, h)
	if err != nil {
		t.Fatalf("Subscribe to %s as %s: %v", topic, durable, err)
	}
	t.Cleanup(func() {
		if err := sub.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return sub
}

// recorder is a handler that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []bus.Message
}

func (r *recorder) handle(_ context.Context, m bus.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

// waitN waits until the recorder has n messages and returns them.
func (r *recorder) waitN(t *testing.T, n int) []bus.Message {
	t.Helper()
	eventually(t, fmt.Sprintf("%d messages", n), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.msgs) >= n
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bus.Message(nil), r.msgs...)
}

// eventually polls cond until it holds, failing the test after waitLimit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wait receives from c, failing the test after waitLimit.
func wait[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		panic("unreachable")
	}
}

func seqs(msgs []bus.Message) []uint64 {
	s := make([]uint64, len(msgs))
	for i, m := range msgs {
		s[i] = m.Seq
	}
	return s
}

func show(m bus.Message) string {
	data := string(m.Data)
	if len(data) > 20 {
		data = data[:20] + "..."
	}
	return fmt.Sprintf("{topic %s key %q seq %d attempt %d data %q}", m.Topic, m.Key, m.Seq, m.Attempt, data)
}
