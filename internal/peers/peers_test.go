package peers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/peers"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func openBus(t *testing.T) bus.Ephemeral {
	t.Helper()
	b, err := bus.Open(context.Background(), "nats://embedded", bus.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.(bus.Ephemeral)
}

// echo answers n items naming the peer and the question.
func echo(name string, n, size int) peers.Answerer {
	return func(_ context.Context, q json.RawMessage) []json.RawMessage {
		var out []json.RawMessage
		for i := range n {
			b, _ := json.Marshal(fmt.Sprintf("%s:%s:%d:%s", name, q, i, strings.Repeat("x", size)))
			out = append(out, b)
		}
		return out
	}
}

func serve(t *testing.T, eph bus.Ephemeral, name string, a peers.Answerer, timeout time.Duration) *peers.Peers {
	t.Helper()
	p, err := peers.Serve(eph, "test", a, peers.Options{Name: name, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// Processes (here three Peers on one embedded NATS, each as a process
// would be) learn of each other from their announcements; an asker gets
// every other peer's answer, split over messages when large, and not its
// own; a peer that stops answering is waited for once, named, then
// forgotten; a process alone answers at once with nothing.
func TestAskGathersEveryPeer(t *testing.T) {
	eph := openBus(t)
	alone := serve(t, openBus(t), "alone", echo("alone", 1, 0), time.Second)
	if got, missing, err := alone.Ask(context.Background(), "q"); err != nil || len(got) != 0 || len(missing) != 0 {
		t.Fatalf("alone: %v %v %v", got, missing, err)
	}

	asker := serve(t, eph, "control", echo("control", 1, 0), 2*time.Second)
	w1 := serve(t, eph, "w1", echo("w1", 3, 0), 2*time.Second)
	// 40 items of 64 KiB: over MaxMessage, so the answer comes in parts.
	serve(t, eph, "w2", echo("w2", 40, 64<<10), 2*time.Second)
	testenv.Eventually(t, 10*time.Second, "the asker knows both workers", func() bool { return asker.Known() == 2 })
	got, missing, err := asker.Ask(context.Background(), map[string]string{"t": "abc"})
	if err != nil || len(missing) != 0 {
		t.Fatalf("Ask: missing %v, %v", missing, err)
	}
	count := map[string]int{}
	for _, a := range got {
		count[a.Peer] += len(a.Items)
		for _, it := range a.Items {
			if !strings.Contains(string(it), `{\"t\":\"abc\"}`) {
				t.Fatalf("%s answered %.80s: not the question asked", a.Peer, it)
			}
		}
	}
	if count["w1"] != 3 || count["w2"] != 40 || count["control"] != 0 {
		t.Errorf("items by peer %v, want w1 3, w2 40, none from the asker itself", count)
	}

	w1.Stop()
	got, missing, err = asker.Ask(context.Background(), "q")
	if err != nil || len(got) != 1 || len(missing) != 1 || missing[0] != "w1" {
		t.Fatalf("after w1 stopped: %d answers, missing %v, %v", len(got), missing, err)
	}
	if asker.Known() != 1 {
		t.Errorf("the asker still waits for %d peers, want 1 (w1 forgotten)", asker.Known())
	}
}
