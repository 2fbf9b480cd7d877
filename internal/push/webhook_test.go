package push

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func (e *env) createWebhook(c *api.Caller, url string, extra map[string]any) (id, secret string) {
	e.t.Helper()
	body := map[string]any{"Channel": map[string]any{"Type": "webhook", "Webhook": map[string]any{"Url": url}}}
	for k, v := range extra {
		body[k] = v
	}
	out := e.mustCall(c, "CreateSubscription", body)
	return out["SubscriptionId"].(string), out["Secret"].(string)
}

func TestWebhookDeliversEverythingSignedInOrder(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceiver(t)
	id, secret := e.createWebhook(callerA, r.srv.URL+"/hook", nil)
	if !strings.HasPrefix(secret, SecretPrefix) {
		t.Fatalf("secret %q", secret)
	}
	r.setSecret(secret)
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := publish(t, e.bus, "pa", "ev", "tianshu.face.captured", 600, 7, map[string]any{"n": 1})
	testenv.Eventually(t, 60*time.Second, "every event", func() bool { return r.distinct() == len(ids) })
	r.checkOrder(t, ids)
	testenv.Eventually(t, 10*time.Second, "stats", func() bool {
		st := e.mustCall(callerA, "DescribeSubscriptionStats", map[string]any{"SubscriptionId": id})
		return st["Delivered"].(float64) >= float64(len(ids)) && st["AckedSeq"].(float64) >= float64(len(ids))
	})
	// Describe never shows the secret.
	d := e.mustCall(callerA, "DescribeSubscriptions", map[string]any{})
	if d["TotalCount"].(float64) != 1 || strings.Contains(toJSON(d), secret) {
		t.Fatalf("DescribeSubscriptions: %v", d)
	}
}

// A receiver that answers 500 for 30 s (the outage) and then
// recovers gets every event, in order per key: the deliverer backs off,
// retrying each event in place, and never gives up before MaxAttempts.
func TestWebhookRecoversAfterFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s outage; skipped with -short")
	}
	t.Parallel()
	const outage = 30 * time.Second
	e := newEnv(t, nil)
	r := newReceiver(t)
	var failing atomic.Bool
	var firstRefused atomic.Int64 // unix ns
	failing.Store(true)
	f := func() bool {
		if !failing.Load() {
			return false
		}
		firstRefused.CompareAndSwap(0, time.Now().UnixNano())
		return true
	}
	r.fail.Store(&f)
	_, secret := e.createWebhook(callerA, r.srv.URL, map[string]any{"MaxAttempts": 1000})
	r.setSecret(secret)
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := publish(t, e.bus, "pa", "ev", "t.x", 200, 5, nil)
	refusedFor := func() time.Duration {
		if ns := firstRefused.Load(); ns != 0 {
			return time.Since(time.Unix(0, ns))
		}
		return 0
	}
	testenv.Eventually(t, outage+30*time.Second, "30 s of refused deliveries, retried", func() bool {
		return refusedFor() >= outage && retried(e) >= 5
	})
	down := refusedFor()
	failing.Store(false)
	// Backoff is capped at 30 s (jittered), so the next attempt comes
	// within about that.
	testenv.Eventually(t, 90*time.Second, "every event", func() bool { return r.distinct() == len(ids) })
	r.checkOrder(t, ids)
	t.Logf("outage %s, %d attempts refused, every event delivered %s after it ended", down.Round(time.Millisecond), retried(e), (refusedFor() - down).Round(time.Millisecond))
}

func TestWebhookDeadLettersThenReplay(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceiver(t)
	f := func() bool { return true }
	r.fail.Store(&f)
	id, secret := e.createWebhook(callerA, r.srv.URL, map[string]any{"MaxAttempts": 2})
	r.setSecret(secret)
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := publish(t, e.bus, "pa", "ev", "t.x", 30, 3, nil)
	testenv.Eventually(t, 30*time.Second, "dead letters", func() bool {
		st := e.mustCall(callerA, "DescribeSubscriptionStats", map[string]any{"SubscriptionId": id})
		return st["DeadLetterCount"].(float64) == float64(len(ids)) && st["DeadLettered"].(float64) == float64(len(ids))
	})
	st := e.mustCall(callerA, "DescribeSubscriptionStats", map[string]any{"SubscriptionId": id})
	if !strings.Contains(st["LastError"].(string), "500") {
		t.Errorf("LastError = %v", st["LastError"])
	}
	dl := e.mustCall(callerA, "DescribeSubscriptionDeadLetters", map[string]any{"SubscriptionId": id, "Limit": 100})
	if dl["TotalCount"].(float64) != float64(len(ids)) {
		t.Fatalf("dead letters: %v", dl)
	}
	ok := func() bool { return false }
	r.fail.Store(&ok)
	out := e.mustCall(callerA, "ReplaySubscription", map[string]any{"SubscriptionId": id, "DeadLetters": true})
	if out["DeadLetterCount"].(float64) != float64(len(ids)) {
		t.Fatalf("replay: %v", out)
	}
	testenv.Eventually(t, 30*time.Second, "replayed events", func() bool { return r.distinct() == len(ids) })
	r.checkOrder(t, ids)
	testenv.Eventually(t, 10*time.Second, "dead letters gone", func() bool {
		st := e.mustCall(callerA, "DescribeSubscriptionStats", map[string]any{"SubscriptionId": id})
		return st["DeadLetterCount"].(float64) == 0
	})
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceiver(t)
	id, secret := e.createWebhook(callerA, r.srv.URL, nil)
	r.setSecret(secret)
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := publish(t, e.bus, "pa", "a", "t.x", 20, 2, nil)
	testenv.Eventually(t, 20*time.Second, "first events", func() bool { return r.distinct() == len(first) })
	e.mustCall(callerA, "PauseSubscription", map[string]any{"SubscriptionId": id})
	testenv.Eventually(t, 10*time.Second, "delivery stopped", func() bool {
		e.svc.mu.Lock()
		defer e.svc.mu.Unlock()
		return e.svc.runners[id] == nil
	})
	second := publish(t, e.bus, "pa", "b", "t.x", 20, 2, nil)
	time.Sleep(300 * time.Millisecond) // a paused subscription must not deliver meanwhile
	if n := r.distinct(); n != len(first) {
		t.Fatalf("paused subscription delivered %d events", n-len(first))
	}
	e.mustCall(callerA, "ResumeSubscription", map[string]any{"SubscriptionId": id})
	testenv.Eventually(t, 20*time.Second, "events after resume", func() bool { return r.distinct() == len(first)+len(second) })
	r.checkOrder(t, append(first, second...))
}

func TestFilters(t *testing.T) {
	e := newEnv(t, nil)
	r1, r2, r3 := newReceiver(t), newReceiver(t), newReceiver(t)
	_, s1 := e.createWebhook(callerA, r1.srv.URL, map[string]any{"Filter": map[string]any{"Types": []string{"tianshu.face.*"}}})
	_, s2 := e.createWebhook(callerA, r2.srv.URL, map[string]any{"Filter": map[string]any{"DeviceIds": []string{"dev-1"}}})
	_, s3 := e.createWebhook(callerA, r3.srv.URL, map[string]any{"Filter": map[string]any{"Expression": `data["q"] > 0.5 and subject != "dev-0"`}})
	r1.setSecret(s1)
	r2.setSecret(s2)
	r3.setSecret(s3)
	if _, err := e.call(callerA, "CreateSubscription", map[string]any{"Channel": map[string]any{"Type": "sse"},
		"Filter": map[string]any{"Expression": "data[["}}); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("bad expression: %v", err)
	}
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	face := publish(t, e.bus, "pa", "f", "tianshu.face.captured", 10, 2, map[string]any{"q": 0.9})
	body := publish(t, e.bus, "pa", "g", "tianshu.body.captured", 10, 2, map[string]any{"q": 0.1})
	testenv.Eventually(t, 20*time.Second, "face events", func() bool { return r1.distinct() == len(face) })
	// dev-1 gets odd indexes of both; the expression takes face events of dev-1.
	var dev1, expr []string
	for i := range 10 {
		if i%2 == 1 {
			dev1 = append(dev1, face[i], body[i])
			expr = append(expr, face[i])
		}
	}
	testenv.Eventually(t, 20*time.Second, "dev-1 events", func() bool { return r2.distinct() == len(dev1) })
	testenv.Eventually(t, 20*time.Second, "expression events", func() bool { return r3.distinct() == len(expr) })
	// Markers, one per device: once a receiver has the markers of its
	// devices, everything before them has been filtered (order holds per
	// device, not across devices, so each device's marker is awaited).
	marker := publish(t, e.bus, "pa", "z", "tianshu.face.captured", 2, 2, map[string]any{"q": 0.9})
	testenv.Eventually(t, 20*time.Second, "markers", func() bool {
		return r1.has(marker[0]) && r1.has(marker[1]) && r2.has(marker[1]) && r3.has(marker[1])
	})
	r1.checkOrder(t, append(face, marker...))
	r2.checkOrder(t, append(dev1, marker[1]))
	r3.checkOrder(t, append(expr, marker[1]))
}

func TestScope(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceiver(t)
	id, secret := e.createWebhook(callerA, r.srv.URL, nil)
	r.setSecret(secret)
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	publish(t, e.bus, "pb", "other", "t.x", 20, 2, nil)
	mine := publish(t, e.bus, "pa", "mine", "t.x", 5, 1, nil)
	testenv.Eventually(t, 20*time.Second, "own events", func() bool { return r.distinct() == len(mine) })
	r.checkOrder(t, mine)
	// Another app of the project, and an app of another project, see nothing.
	for _, c := range []*api.Caller{callerB, callerC} {
		if _, err := e.call(c, "DescribeSubscriptionStats", map[string]any{"SubscriptionId": id}); apiCode(err) != "ResourceNotFound" {
			t.Errorf("%s: stats: %v", c.AppID, err)
		}
		if _, err := e.call(c, "DeleteSubscription", map[string]any{"SubscriptionId": id}); apiCode(err) != "ResourceNotFound" {
			t.Errorf("%s: delete: %v", c.AppID, err)
		}
		if d := e.mustCall(c, "DescribeSubscriptions", map[string]any{}); d["TotalCount"].(float64) != 0 {
			t.Errorf("%s sees %v", c.AppID, d)
		}
	}
	if _, err := e.call(callerC, "CreateSubscription", map[string]any{"ProjectId": "pa", "Channel": map[string]any{"Type": "sse"}}); apiCode(err) != "AuthFailure.UnauthorizedOperation" {
		t.Errorf("create in another project: %v", err)
	}
}

// TestWebhookOutboundPolicy: webhooks go through the platform's outbound
// policy. Refused IP literals fail at creation; a host name resolving to a
// refused address, and a redirect to one, deliver nothing; an allowed
// receiver gets its events.
func TestWebhookOutboundPolicy(t *testing.T) {
	ok := newReceiver(t)
	refused := newReceiver(t)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, refused.srv.URL, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	hostPort := func(u string) string { return strings.TrimPrefix(u, "http://") }
	pol, err := netpolicy.New(netpolicy.Config{Allow: []string{hostPort(ok.srv.URL), hostPort(redirector.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Outbound = pol })
	for _, u := range []string{"http://169.254.169.254/latest/meta-data", "http://[fe80::1]/", "http://[fd00:ec2::254]/", "ftp://example.com/", "http://127.0.0.1:9/", "http://[::1]:9/", refused.srv.URL} {
		if _, err := e.call(callerA, "CreateSubscription", map[string]any{"Channel": map[string]any{"Type": "webhook", "Webhook": map[string]any{"Url": u}}}); apiCode(err) != "InvalidParameterValue" {
			t.Errorf("%s: %v", u, err)
		}
	}
	port := refused.srv.URL[strings.LastIndex(refused.srv.URL, ":")+1:]
	byName, secret := e.createWebhook(callerA, "http://localhost:"+port+"/", nil)
	refused.setSecret(secret)
	redirected, _ := e.createWebhook(callerA, redirector.URL, nil)
	allowed, secret := e.createWebhook(callerA, ok.srv.URL, nil)
	ok.setSecret(secret)
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	publish(t, e.bus, "pa", "ev", "t.x", 1, 1, nil)
	testenv.Eventually(t, 20*time.Second, "delivery to the allowed receiver", func() bool { return ok.distinct() == 1 })
	testenv.Eventually(t, 20*time.Second, "refusal", func() bool {
		st := e.mustCall(callerA, "DescribeSubscriptionStats", map[string]any{"SubscriptionId": byName})
		return strings.Contains(st["LastError"].(string), "refused by the outbound policy")
	})
	testenv.Eventually(t, 20*time.Second, "redirect not taken for delivery", func() bool {
		st := e.mustCall(callerA, "DescribeSubscriptionStats", map[string]any{"SubscriptionId": redirected})
		return strings.Contains(st["LastError"].(string), "307")
	})
	if refused.distinct() != 0 {
		t.Fatal("delivered to a refused address")
	}
	_ = allowed
}

func TestReplayFromSeq(t *testing.T) {
	e := newEnv(t, nil)
	r := newReceiver(t)
	id, secret := e.createWebhook(callerA, r.srv.URL, nil)
	r.setSecret(secret)
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := publish(t, e.bus, "pa", "ev", "t.x", 10, 2, nil)
	testenv.Eventually(t, 20*time.Second, "events", func() bool { return r.distinct() == len(ids) })
	e.mustCall(callerA, "ReplaySubscription", map[string]any{"SubscriptionId": id, "StartSeq": 6})
	testenv.Eventually(t, 20*time.Second, "replayed events", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.total == len(ids)+5
	})
	r.mu.Lock()
	for i, id := range ids {
		if want := 1 + btoi(i >= 5); r.seen[id] != want {
			t.Errorf("%s delivered %d times, want %d", id, r.seen[id], want)
		}
	}
	r.mu.Unlock()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
