package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
)

// newWebhookClient returns the client webhooks are posted with: every
// connection is checked by p on the address it is about to reach.
// A request's time limit is its context's (see post), not the client's: a
// client Timeout costs a goroutine and a timer per request.
func newWebhookClient(p *netpolicy.Policy, perHost int) *http.Client {
	d := p.Guard(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second})
	tr := &http.Transport{
		// No proxy: the policy must judge the receiver's address, not a
		// proxy's.
		Proxy:             nil,
		DialContext:       d.DialContext,
		ForceAttemptHTTP2: true,
		MaxIdleConns:      1024,
		// Many subscriptions often point at one receiver: keep enough idle
		// connections for all their in-flight requests, or most requests
		// pay a new TCP (and TLS) handshake.
		MaxIdleConnsPerHost:   max(perHost, 256),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr,
		// A redirect is not an acknowledgement, and following it would
		// reach an address nobody checked at creation.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// post sends one signed webhook and returns nil on a 2xx answer within
// WebhookTimeout.
func (s *Service) post(ctx context.Context, url string, sig *signer, id string, body []byte, traceparent string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := s.now().Unix()
	// Set in their canonical form, sparing a canonicalisation per header
	// per webhook.
	req.Header = http.Header{
		"Content-Type":      {event.ContentType},
		"User-Agent":        {"tianshu-push/1"},
		"Webhook-Id":        {id},
		"Webhook-Timestamp": {strconv.FormatInt(ts, 10)},
		"Webhook-Signature": {sig.sign(id, ts, body)},
	}
	if traceparent != "" {
		// The receiver continues the trace the event began at its source.
		req.Header.Set(event.HeaderTraceParent, traceparent)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// eventID returns a message's CloudEvent id: the bus id header the tasks
// set, else the id in the JSON, else one made from the sequence.
func eventID(m bus.Message) string {
	if id := m.Header[event.HeaderID]; id != "" {
		return id
	}
	var ev struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(m.Data, &ev) == nil && ev.ID != "" {
		return ev.ID
	}
	return "seq-" + strconv.FormatUint(m.Seq, 10)
}
