package kafkabus

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func TestAssignSlots(t *testing.T) {
	t.Parallel()
	all := func() []int {
		s := make([]int, numSlots)
		for i := range s {
			s[i] = i
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		claims []claim
		check  func(t *testing.T, got [][]int)
	}{
		{"one member gets all", []claim{{}}, func(t *testing.T, got [][]int) {
			if !slices.Equal(got[0], all()) {
				t.Errorf("got %v, want all slots", got[0])
			}
		}},
		{"busy slots stay, the rest is shared", []claim{{generation: 3, busy: []int{0, 1, 2}}, {}}, func(t *testing.T, got [][]int) {
			if len(got[0]) != numSlots/2 || len(got[1]) != numSlots/2 {
				t.Errorf("got %v, want half each", got)
			}
			for _, x := range []int{0, 1, 2} {
				if !slices.Contains(got[0], x) {
					t.Errorf("busy slot %d went to %v, want member 0", x, got)
				}
			}
		}},
		{"the latest generation wins a busy slot", []claim{{generation: 2, busy: []int{5}}, {generation: 4, busy: []int{5}}}, func(t *testing.T, got [][]int) {
			if !slices.Contains(got[1], 5) || slices.Contains(got[0], 5) {
				t.Errorf("got %v, want slot 5 with member 1 only", got)
			}
		}},
		{"members keep what they had up to their share", []claim{{had: all()}, {}, {}}, func(t *testing.T, got [][]int) {
			if want := all()[:6]; !slices.Equal(got[0], want) {
				t.Errorf("member 0 got %v, want %v", got[0], want)
			}
			if len(got[1]) != 5 || len(got[2]) != 5 {
				t.Errorf("got %v, want 6, 5 and 5 slots", got)
			}
		}},
		{"more members than slots", make([]claim, numSlots+2), func(t *testing.T, got [][]int) {
			for i, s := range got {
				if want := min(1, max(0, numSlots-i)); len(s) != want {
					t.Errorf("member %d got %v, want %d slots", i, s, want)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := assignSlots(tc.claims)
			var seen []int
			for _, s := range got {
				seen = append(seen, s...)
			}
			slices.Sort(seen)
			if !slices.Equal(seen, all()) {
				t.Fatalf("slots assigned %v, want each once", seen)
			}
			tc.check(t, got)
		})
	}
}

func TestSlotEncoding(t *testing.T) {
	t.Parallel()
	c := claim{generation: 7, had: []int{1, 2, 15}, busy: []int{2}}
	got, err := parseClaim(c.encode())
	if err != nil || fmt.Sprint(got) != fmt.Sprint(c) {
		t.Errorf("claim round trip gave %v, %v; want %v", got, err, c)
	}
	if got, err := parseClaim(claim{}.encode()); err != nil || got.had != nil || got.busy != nil {
		t.Errorf("empty claim round trip gave %v, %v", got, err)
	}
	for _, bad := range []string{"", "tianshu-slots1 1 - ", "other 1 - -", "tianshu-slots1 x - -", "tianshu-slots1 1 16 -", "tianshu-slots1 1 -1 -"} {
		if _, err := parseClaim([]byte(bad)); err == nil {
			t.Errorf("parseClaim(%q) succeeded", bad)
		}
	}
	if got, err := parseAssignment(encodeAssignment([]int{0, 9})); err != nil || !slices.Equal(got, []int{0, 9}) {
		t.Errorf("assignment round trip gave %v, %v", got, err)
	}
	if x := slotOf([]byte("k"), 3); x != slotOf([]byte("k"), 99) {
		t.Errorf("a key's records fell into slots %d and %d", x, slotOf([]byte("k"), 99))
	}
	if slotOf(nil, 3) == slotOf(nil, 4) {
		t.Error("consecutive keyless records share a slot")
	}
}

// TestSharedDurableThree runs three subscriptions on one durable, each in
// a client of its own as in three processes, stops one midway, and checks
// that every message is handled by exactly one of them, that each had a
// share, and that the stopped one handles nothing more.
func TestSharedDurableThree(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	url := "kafka://" + strings.Join(c.ListenAddrs(), ",")
	open := func() bus.Bus {
		b, err := bus.Open(t.Context(), url, bus.Options{Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeBus(t, b) })
		return b
	}
	const topic, before, after = "share.three", 120, 60
	pub := open()
	publish := func(n int) {
		for i := range n {
			// Half with keys, half without: both kinds are shared.
			key := ""
			if i%2 == 0 {
				key = "k" + strconv.Itoa(i%7)
			}
			if _, err := pub.Publish(t.Context(), topic, key, []byte(strconv.Itoa(i)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(before)

	var (
		mu      sync.Mutex
		started [3]int
		handled [3]int
		owners  = map[uint64][]int{}
		stopped bool // subscription 1 was stopped
		late    []uint64
	)
	handler := func(who int) bus.Handler {
		return func(ctx context.Context, m bus.Message) error {
			mu.Lock()
			started[who]++
			mu.Unlock()
			// Hold the first messages until every subscription has
			// started one, so that none finishes the lot alone.
			for ctx.Err() == nil {
				mu.Lock()
				all := started[0] > 0 && started[1] > 0 && started[2] > 0
				mu.Unlock()
				if all {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			if ctx.Err() != nil {
				return ctx.Err() // handed back, not handled
			}
			mu.Lock()
			defer mu.Unlock()
			owners[m.Seq] = append(owners[m.Seq], who)
			handled[who]++
			if who == 1 && stopped {
				late = append(late, m.Seq)
			}
			return nil
		}
	}
	var subs [3]bus.Subscription
	for i := range subs {
		sub, err := open().Subscribe(t.Context(), topic, "workers", bus.SubscribeOptions{}, handler(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Stop() })
		subs[i] = sub
	}
	// A third of the messages handled, and some by each subscription: a
	// first message that a rebalance hands back (its context ended while
	// it waited for the others) leaves a subscription without a share
	// until its next one, which may come after a third.
	testenv.Eventually(t, 30*time.Second, "a third of the messages handled, some by each subscription", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(owners) >= before/3 && handled[0] > 0 && handled[1] > 0 && handled[2] > 0
	})
	if err := subs[1].Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	mu.Lock()
	stopped = true
	mu.Unlock()
	publish(after)
	testenv.Eventually(t, 30*time.Second, "every message handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(owners) >= before+after
	})

	mu.Lock()
	defer mu.Unlock()
	for seq, o := range owners {
		if len(o) != 1 {
			t.Errorf("seq %d handled by subscriptions %v, want exactly one", seq, o)
		}
	}
	if handled[0] == 0 || handled[1] == 0 || handled[2] == 0 {
		t.Errorf("subscriptions handled %v messages, want each some", handled)
	}
	if len(late) > 0 {
		t.Errorf("the stopped subscription handled %v after Stop", late)
	}
	t.Logf("handled per subscription: %v", handled)
}

// TestDeleteRemovesSideGroups checks that DeleteConsumer and DeleteTopic
// leave none of a durable's groups behind in Kafka.
func TestDeleteRemovesSideGroups(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	bb, err := bus.Open(t.Context(), "kafka://"+strings.Join(c.ListenAddrs(), ","), bus.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBus(t, bb) })
	b := bb.(*Bus)
	const topic = "side.groups"
	groups := func() []string {
		listed, err := b.adm.ListGroups(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var gs []string
		for _, g := range listed.Groups() {
			if strings.HasPrefix(g, groupPrefix(b.cfg.prefix, topic)) {
				gs = append(gs, g)
			}
		}
		slices.Sort(gs)
		return gs
	}
	for _, durable := range []string{"a", "b"} {
		for i := range 20 {
			if _, err := b.Publish(t.Context(), topic, "", []byte(strconv.Itoa(i)), nil); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		n := 0
		sub, err := b.Subscribe(t.Context(), topic, durable, bus.SubscribeOptions{}, func(context.Context, bus.Message) error {
			mu.Lock()
			n++
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "messages handled", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return n > 0
		})
		if err := sub.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if got := groups(); len(got) < 2*numSlots {
		t.Fatalf("groups after two durables: %v, want at least their %d side groups", got, 2*numSlots)
	}
	if err := b.DeleteConsumer(t.Context(), topic, "a"); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups() {
		if strings.HasPrefix(g, groupID(b.cfg.prefix, topic, "a")) {
			t.Errorf("group %s left after DeleteConsumer", g)
		}
	}
	if err := b.DeleteTopic(t.Context(), topic); err != nil {
		t.Fatal(err)
	}
	if got := groups(); len(got) > 0 {
		t.Errorf("groups left after DeleteTopic: %v", got)
	}
}
