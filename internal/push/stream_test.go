package push

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pushv1 "github.com/tianshu-ai/tianshu/api/push/v1"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// grpcClient starts the service's gRPC server and returns a stock client.
func (e *env) grpcClient() pushv1.PushClient {
	e.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	gs := e.svc.GRPCServer()
	go func() { _ = gs.Serve(lis) }()
	e.t.Cleanup(gs.Stop)
	e.grpcAddr = lis.Addr().String()
	conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	return pushv1.NewPushClient(conn)
}

// signed adds stream credentials for subscription id to ctx.
func signed(ctx context.Context, secretID, secretKey, id string) context.Context {
	ts := time.Now().Unix()
	return metadata.AppendToOutgoingContext(ctx, MetaSecretID, secretID, MetaTimestamp, strconv.FormatInt(ts, 10),
		MetaSignature, SignStream(secretKey, id, ts))
}

func subjectOf(t *testing.T, b []byte) (id, subject string) {
	var ev testEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.ID, ev.Subject
}

func TestGRPCStreamAckResume(t *testing.T) {
	e := newEnv(t, nil)
	client := e.grpcClient()
	out := e.mustCall(callerA, "CreateSubscription", map[string]any{"Channel": map[string]any{"Type": "grpc"}})
	id := out["SubscriptionId"].(string)
	ids := publish(t, e.bus, "pa", "ev", "t.x", 30, 3, nil)

	// Wrong key, or another project's key: refused.
	for _, c := range [][2]string{{"AKIDa", "wrong"}, {"AKIDc", "key-c"}} {
		st, err := client.Subscribe(signed(context.Background(), c[0], c[1], id), &pushv1.SubscribeRequest{SubscriptionId: id})
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("%s: %v", c[0], err)
		}
	}

	bySubj := map[string][]string{}
	count := map[string]int{}
	acked := map[string]bool{}
	recv := func(ctx context.Context, n int, ack bool) (last *pushv1.Event) {
		t.Helper()
		st, err := client.Subscribe(signed(ctx, "AKIDa", "key-a", id), &pushv1.SubscribeRequest{SubscriptionId: id})
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			ev, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			eid, subj := subjectOf(t, ev.Json)
			if eid != ev.Id {
				t.Fatalf("id %s, json id %s", ev.Id, eid)
			}
			if acked[eid] {
				t.Fatalf("acknowledged event %s delivered again", eid)
			}
			bySubj[subj] = append(bySubj[subj], eid)
			count[eid]++
			if ack {
				r, err := client.Ack(signed(context.Background(), "AKIDa", "key-a", id), &pushv1.AckRequest{SubscriptionId: id, Seq: ev.Seq})
				if err != nil || r.Acked != 1 {
					t.Fatalf("ack: %v %v", r, err)
				}
				acked[eid] = true
			}
			last = ev
		}
		return last
	}
	ctx, cancel := context.WithCancel(context.Background())
	recv(ctx, 10, true)
	recv(ctx, 3, false) // in flight, one per key, never acknowledged
	cancel()
	// Reconnect (the old stream may take a moment to notice): the three
	// unacknowledged events come again, first for their keys.
	var ctx2 context.Context
	var cancel2 context.CancelFunc
	testenv.Eventually(t, 10*time.Second, "stream closed", func() bool { return e.svc.session(id) == nil })
	ctx2, cancel2 = context.WithCancel(context.Background())
	defer cancel2()
	recv(ctx2, 20, true)
	for _, want := range ids {
		if count[want] == 0 {
			t.Errorf("%s never delivered", want)
		}
	}
	dups := 0
	for _, n := range count {
		dups += n - 1
	}
	if dups != 3 {
		t.Errorf("%d duplicates, want the 3 unacknowledged", dups)
	}
	for subj, got := range bySubj {
		seen, last := map[string]bool{}, ""
		for _, g := range got {
			if !seen[g] && g < last {
				t.Errorf("%s: %s after %s: %v", subj, g, last, got)
			}
			seen[g], last = true, max(last, g)
		}
	}
	// Cumulative ack: with several events in flight, acking the last one
	// acknowledges them all.
	cancel2()
	testenv.Eventually(t, 10*time.Second, "stream closed", func() bool { return e.svc.session(id) == nil })
	more := publish(t, e.bus, "pa", "mo", "t.x", 6, 3, nil)
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	st, err := client.Subscribe(signed(ctx3, "AKIDa", "key-a", id), &pushv1.SubscribeRequest{SubscriptionId: id})
	if err != nil {
		t.Fatal(err)
	}
	var last *pushv1.Event
	for range 3 {
		if last, err = st.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := client.Ack(signed(context.Background(), "AKIDa", "key-a", id), &pushv1.AckRequest{SubscriptionId: id, Seq: last.Seq})
	if err != nil || r.Acked != 3 {
		t.Fatalf("cumulative ack: %v %v", r, err)
	}
	for range 3 {
		ev, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if eid, _ := subjectOf(t, ev.Json); !strings.HasPrefix(eid, "mo-") {
			t.Fatalf("got %s", eid)
		}
	}
	_ = more
}

// sseEvent is one parsed SSE event.
type sseEvent struct {
	id   string
	data string
}

func readSSE(t *testing.T, resp *http.Response, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur sseEvent
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.id != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			cur.data += line[6:]
		}
	}
	if len(out) < n {
		t.Fatalf("SSE stream ended after %d events: %v", len(out), sc.Err())
	}
	return out
}

func TestSSEResumesWithLastEventID(t *testing.T) {
	e := newEnv(t, nil)
	srv := httptest.NewServer(e.svc.SSEHandler())
	defer srv.Close()
	out := e.mustCall(callerA, "CreateSubscription", map[string]any{"Channel": map[string]any{"Type": "sse"}})
	id := out["SubscriptionId"].(string)
	ids := publish(t, e.bus, "pa", "ev", "t.x", 12, 3, nil)
	open := func(lastID string, key string) *http.Response {
		exp := time.Now().Add(time.Hour).Unix()
		q := url.Values{"subscription": {id}, "secret_id": {"AKIDa"}, "expires": {strconv.FormatInt(exp, 10)},
			"signature": {SignStream(key, id, exp)}}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+SSEPath+"?"+q.Encode(), nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := open("", "wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad signature: %s", resp.Status)
	}
	resp := open("", "key-a")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	first := readSSE(t, resp, 6)
	_ = resp.Body.Close()
	testenv.Eventually(t, 10*time.Second, "stream closed", func() bool { return e.svc.session(id) == nil })
	// The client processed only 4 of the 6 it was sent.
	resp = open(first[3].id, "key-a")
	defer resp.Body.Close()
	rest := readSSE(t, resp, 8)
	got := append(first[:4], rest...)
	for i, ev := range got {
		eid, _ := subjectOf(t, []byte(ev.data))
		if eid != ids[i] || ev.id != strconv.Itoa(i+1) {
			t.Fatalf("event %d: id %s seq %s, want %s seq %d", i, eid, ev.id, ids[i], i+1)
		}
	}
}

// TestGRPCStreamWindow: a stream sends up to StreamInFlight events ahead of
// the client's acknowledgements, even all of one key (one camera), in
// order; no more until it acknowledges; and what it acknowledged does not
// come again on the next connection.
func TestGRPCStreamWindow(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StreamInFlight = 5 })
	client := e.grpcClient()
	id := e.mustCall(callerA, "CreateSubscription", map[string]any{"Channel": map[string]any{"Type": "grpc"}})["SubscriptionId"].(string)
	ids := publish(t, e.bus, "pa", "one", "t.x", 12, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := client.Subscribe(signed(ctx, "AKIDa", "key-a", id), &pushv1.SubscribeRequest{SubscriptionId: id})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *pushv1.Event, 100)
	go func() {
		for {
			ev, err := st.Recv()
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	recv := func(n int) []*pushv1.Event {
		t.Helper()
		var out []*pushv1.Event
		for range n {
			select {
			case ev := <-events:
				out = append(out, ev)
			case <-time.After(10 * time.Second):
				t.Fatalf("received %d events, want %d", len(out), n)
			}
		}
		return out
	}
	got := recv(5)
	select {
	case ev := <-events:
		t.Fatalf("a sixth event (seq %d) beyond the window of 5", ev.Seq)
	case <-time.After(300 * time.Millisecond):
	}
	ack := func(seq uint64, want uint32) {
		t.Helper()
		r, err := client.Ack(signed(context.Background(), "AKIDa", "key-a", id), &pushv1.AckRequest{SubscriptionId: id, Seq: seq})
		if err != nil || r.Acked != want {
			t.Fatalf("ack %d: %v %v, want %d acknowledged", seq, r, err, want)
		}
	}
	ack(got[2].Seq, 3) // three slots free up
	got = append(got, recv(3)...)
	for i, ev := range got {
		if eid, _ := subjectOf(t, ev.Json); eid != ids[i] {
			t.Fatalf("event %d is %s, want %s (in order)", i, eid, ids[i])
		}
	}
	ack(got[6].Seq, 4)
	cancel()
	testenv.Eventually(t, 10*time.Second, "stream closed", func() bool { return e.svc.session(id) == nil })

	// The next connection starts after the acknowledged 7: the 8th was
	// sent but not acknowledged, so it comes again.
	st2, err := client.Subscribe(signed(context.Background(), "AKIDa", "key-a", id), &pushv1.SubscribeRequest{SubscriptionId: id})
	if err != nil {
		t.Fatal(err)
	}
	for i := 7; i < 12; i++ {
		ev, err := st2.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if eid, _ := subjectOf(t, ev.Json); eid != ids[i] {
			t.Fatalf("after reconnecting: %s, want %s", eid, ids[i])
		}
	}
}

// TestGRPCReplayByTimeKeepsUnacknowledged: after a replay from a time, the
// stream's position is fixed by its first event; an event filtered out
// while an earlier one is still unacknowledged does not move the position
// past it, so the earlier one comes again on the next connection.
func TestGRPCReplayByTimeKeepsUnacknowledged(t *testing.T) {
	e := newEnv(t, nil)
	client := e.grpcClient()
	id := e.mustCall(callerA, "CreateSubscription", map[string]any{"Channel": map[string]any{"Type": "grpc"},
		"Filter": map[string]any{"Types": []string{"t.keep"}}})["SubscriptionId"].(string)
	before := time.Now().Add(-time.Second)
	a := publish(t, e.bus, "pa", "a", "t.keep", 1, 1, nil)[0]
	publish(t, e.bus, "pa", "b", "t.drop", 1, 1, nil)
	c := publish(t, e.bus, "pa", "c", "t.keep", 1, 1, nil)[0]
	e.mustCall(callerA, "ReplaySubscription", map[string]any{"SubscriptionId": id, "StartTime": before.UTC().Format(time.RFC3339Nano)})

	recv := func(ctx context.Context, want ...string) {
		t.Helper()
		st, err := client.Subscribe(signed(ctx, "AKIDa", "key-a", id), &pushv1.SubscribeRequest{SubscriptionId: id})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			ev, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if eid, _ := subjectOf(t, ev.Json); eid != w {
				t.Fatalf("got %s, want %s", eid, w)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	recv(ctx, a, c) // neither acknowledged; b is filtered out meanwhile
	cancel()
	testenv.Eventually(t, 10*time.Second, "stream closed", func() bool { return e.svc.session(id) == nil })
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	recv(ctx2, a, c)
}

// A client that stops reading holds up only its own stream: a new
// connection to the subscription replaces it at once and gets every
// unacknowledged event, in order.
func TestGRPCStalledClientIsReplaced(t *testing.T) {
	e := newEnv(t, nil)
	e.grpcClient() // starts the server
	id := e.mustCall(callerA, "CreateSubscription", map[string]any{"Channel": map[string]any{"Type": "grpc"}})["SubscriptionId"].(string)
	// 2 KB events, far more than the stalled client's 64 KB flow-control
	// window (a fixed window: no growth by bandwidth estimation) and the
	// server's per-stream write quota hold.
	ids := publish(t, e.bus, "pa", "big", "t.x", 200, 4, map[string]any{"Pad": strings.Repeat("x", 2048)})
	stalled, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := pushv1.NewPushClient(stalled).Subscribe(signed(ctx, "AKIDa", "key-a", id), &pushv1.SubscribeRequest{SubscriptionId: id}); err != nil {
		t.Fatal(err)
	}
	// Never read: the server's sends back up behind the window.
	testenv.Eventually(t, 10*time.Second, "events sent to the stalled client", func() bool {
		ss := e.svc.session(id)
		if ss == nil {
			return false
		}
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return len(ss.sent) >= 20
	})

	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	st, err := e.grpcClient().Subscribe(signed(rctx, "AKIDa", "key-a", id), &pushv1.SubscribeRequest{SubscriptionId: id})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range ids {
		ev, err := st.Recv()
		if err != nil {
			t.Fatalf("replacement stream, event %d: %v", i, err)
		}
		if eid, _ := subjectOf(t, ev.Json); eid != want {
			t.Fatalf("replacement stream, event %d is %s, want %s", i, eid, want)
		}
	}
}
