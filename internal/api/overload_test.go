package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// overloadEnv is a gateway whose invoke class runs one call at once,
// behind a queue of one that waits wait.
func overloadEnv(t *testing.T, wait time.Duration) *gatewayEnv {
	return newGatewayWith(t, func(c *api.Config, _ *api.GatewayOptions) {
		c.Concurrency = api.DefaultConfig().Concurrency
		c.Concurrency.Invoke, c.Concurrency.Queue, c.Concurrency.QueueWait = 1, 1, wait
	})
}

// postAsync sends action in the background; the reply arrives on the
// returned channel.
func (e *gatewayEnv) postAsync(t *testing.T, action string) <-chan reply {
	out := make(chan reply, 1)
	go func() { out <- e.post(t, e.admin, action, `{}`, nil) }()
	return out
}

// gauge reads a metric of the gateway's registry with the given class
// label (and reason, when not empty).
func (e *gatewayEnv) gauge(t *testing.T, name, class, reason string) float64 {
	t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["class"] != class || labels["reason"] != reason {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// waitFor polls cond until it holds (the test's own deadline bounds it).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wantBusy checks a refusal for a busy class: RequestLimitExceeded with a
// Retry-After header.
func wantBusy(t *testing.T, res *http.Response, r reply) {
	t.Helper()
	wantCode(t, r, api.RequestLimitExceeded)
	if !strings.Contains(r.message(), "server busy") {
		t.Errorf("message %q does not say the server is busy", r.message())
	}
	if got := res.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
}

// sendCapturing sends action signed by the admin app and returns the
// HTTP response (for its headers) with the decoded answer.
func (e *gatewayEnv) sendCapturing(t *testing.T, action string) (*http.Response, reply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", api.Version)
	e.admin.Sign(req, []byte(`{}`), e.clk.now())
	res, r := e.doRaw(t, req)
	return res, r
}

// A class at its limit queues calls up to its queue and refuses the rest
// with RequestLimitExceeded and Retry-After; other classes run on; queued
// calls run once a slot frees.
func TestGatewayOverloadQueueFull(t *testing.T) {
	e := overloadEnv(t, time.Hour)
	first := e.postAsync(t, "BlockThing")
	<-e.entered
	second := e.postAsync(t, "BlockThing")
	waitFor(t, "the second call queued", func() bool { return e.gauge(t, "tianshu_api_queued", "invoke", "") == 1 })
	if got := e.gauge(t, "tianshu_api_inflight", "invoke", ""); got != 1 {
		t.Errorf("inflight{invoke} = %v, want 1", got)
	}

	res, r := e.sendCapturing(t, "BlockThing")
	wantBusy(t, res, r)
	if got := e.gauge(t, "tianshu_api_rejected_total", "invoke", "queue_full"); got != 1 {
		t.Errorf("rejected_total{invoke,queue_full} = %v, want 1", got)
	}
	// Reads are another class: not held up.
	if r := e.post(t, e.admin, "NopThing", `{}`, nil); r.code() != "" {
		t.Fatalf("a read while invocations are busy: %s", r.raw)
	}

	close(e.release)
	for _, ch := range []<-chan reply{first, second} {
		if r := <-ch; r.code() != "" {
			t.Fatalf("a call that ran or queued: %s", r.raw)
		}
	}
	waitFor(t, "the slots freed", func() bool { return e.gauge(t, "tianshu_api_inflight", "invoke", "") == 0 })
	if got := e.gauge(t, "tianshu_api_queued", "invoke", ""); got != 0 {
		t.Errorf("queued{invoke} = %v after the queue drained", got)
	}
}

// A queued call that gets no slot within queue_wait is refused the same.
func TestGatewayOverloadQueueWait(t *testing.T) {
	e := overloadEnv(t, 20*time.Millisecond)
	first := e.postAsync(t, "BlockThing")
	<-e.entered
	res, r := e.sendCapturing(t, "BlockThing")
	wantBusy(t, res, r)
	if got := e.gauge(t, "tianshu_api_rejected_total", "invoke", "queue_wait"); got != 1 {
		t.Errorf("rejected_total{invoke,queue_wait} = %v, want 1", got)
	}
	close(e.release)
	if r := <-first; r.code() != "" {
		t.Fatalf("the running call: %s", r.raw)
	}
}
