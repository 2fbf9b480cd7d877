package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pushv1 "github.com/tianshu-ai/tianshu/api/push/v1"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/push"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// A task's events reach an app through all three channels of the message
// gateway: a signed webhook, SSE on the main port, and a stock gRPC client
// on the same port and on gRPC's own listener.
func TestPushChannels(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Args: []string{"--grpc-addr", "127.0.0.1:0"}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	ctx := context.Background()

	var mu sync.Mutex
	var hooked []string
	var secret string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := push.VerifyWebhook(secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if len(r.Header.Get("traceparent")) != 55 {
			http.Error(w, "no traceparent", http.StatusBadRequest)
			return
		}
		hooked = append(hooked, r.Header.Get("webhook-id"))
	}))
	defer receiver.Close()

	wh := c.mustCall("CreateSubscription", map[string]any{"Name": "hook", "Channel": map[string]any{"Type": "webhook", "Webhook": map[string]any{"Url": receiver.URL}},
		"Filter": map[string]any{"Types": []string{"tianshu.test.*"}}})
	mu.Lock()
	secret = wh["Secret"].(string)
	mu.Unlock()
	sseID := c.mustCall("CreateSubscription", map[string]any{"Name": "browser", "Channel": map[string]any{"Type": "sse"}})["SubscriptionId"].(string)
	grpcID := c.mustCall("CreateSubscription", map[string]any{"Name": "backend", "Channel": map[string]any{"Type": "grpc"}})["SubscriptionId"].(string)

	flowID := c.mustCall("CreateFlow", map[string]any{"Document": echoFlow})["FlowId"].(string)
	c.mustCall("CreateTask", map[string]any{"Name": "d", "FlowId": flowID, "Start": true, "Sources": []any{map[string]any{"Type": "topic", "Id": "in.push"}}})
	for i := 0; i < 5; i++ {
		if _, err := e.P.Bus.Publish(ctx, "in.push", "cam", []byte(fmt.Sprintf(`{"n": %d}`, i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, "5 signed webhooks", func() bool { mu.Lock(); defer mu.Unlock(); return len(hooked) >= 5 })

	// SSE with a signed URL, as a browser's EventSource would use.
	exp := time.Now().Add(time.Hour).Unix()
	u := fmt.Sprintf("%s%s?subscription=%s&secret_id=%s&expires=%d&signature=%s", e.Endpoint, push.SSEPath, sseID, apptest.AdminSecretID, exp,
		push.SignStream(apptest.AdminSecretKey, sseID, exp))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("SSE: %s %s", resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sse := 0
	for sse < 5 && sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var ce map[string]any
			if json.Unmarshal([]byte(line), &ce) != nil || ce["specversion"] != "1.0" {
				t.Fatalf("SSE data %q", line)
			}
			sse++
		}
	}
	resp.Body.Close()
	if sse < 5 {
		t.Fatalf("SSE delivered %d events", sse)
	}

	// gRPC on the main port (h2c), then on its own listener, signed
	// metadata; the second stream resumes after what the first acknowledged.
	var last uint64
	for i, addr := range []string{e.Host, e.P.GRPCAddr()} {
		if i > 0 {
			for n := range 5 {
				if _, err := e.P.Bus.Publish(ctx, "in.push", "cam", fmt.Appendf(nil, `{"n": %d}`, 5*i+n), nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		last = streamGRPC(t, ctx, addr, grpcID, last, 5)
	}
	// Counters are flushed to the store every second.
	testenv.Eventually(t, 30*time.Second, "webhook stats", func() bool {
		st := c.mustCall("DescribeSubscriptionStats", map[string]any{"SubscriptionId": wh["SubscriptionId"]})
		return st["Delivered"].(float64) >= 10 && st["Lag"].(float64) == 0
	})
}

// streamGRPC receives n events of subscription id over a stock gRPC client
// connected to addr, acknowledging each, checks that they come after
// sequence after, and returns the last one's sequence.
func streamGRPC(t *testing.T, ctx context.Context, addr, id string, after uint64, n int) uint64 {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ts := time.Now().Unix()
	md := metadata.Pairs(push.MetaSecretID, apptest.AdminSecretID, push.MetaTimestamp, strconv.FormatInt(ts, 10),
		push.MetaSignature, push.SignStream(apptest.AdminSecretKey, id, ts))
	gctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), 30*time.Second)
	defer cancel()
	cl := pushv1.NewPushClient(conn)
	stream, err := cl.Subscribe(gctx, &pushv1.SubscribeRequest{SubscriptionId: id})
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	for i := range n {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("%s: gRPC event %d: %v", addr, i, err)
		}
		if ev.GetSeq() <= after {
			t.Fatalf("%s: event %d has sequence %d, not after %d", addr, i, ev.GetSeq(), after)
		}
		after = ev.GetSeq()
		if _, err := cl.Ack(gctx, &pushv1.AckRequest{SubscriptionId: id, Seq: after}); err != nil {
			t.Fatalf("%s: ack: %v", addr, err)
		}
	}
	return after
}
