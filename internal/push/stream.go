package push

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/bus"
)

// Stream errors. A client that gets ErrBusyElsewhere or ErrChanged should
// reconnect (after a pause for the first).
var (
	// ErrBusyElsewhere means another replica streams the subscription.
	ErrBusyElsewhere = errors.New("push: subscription is streamed by another server")
	// ErrChanged means the subscription was modified, paused, replayed or
	// deleted while streaming.
	ErrChanged = errors.New("push: subscription changed")
	// ErrReplaced means a newer connection took the subscription over.
	ErrReplaced = errors.New("push: replaced by a newer connection")
	// ErrAuth means the stream's credentials were refused.
	ErrAuth = errors.New("push: authentication failed")
)

// Credentials sign a stream connection: the app's SecretId, a timestamp
// (±StreamWindow) or an expiry (at most MaxExpiry ahead), both unix
// seconds, and the signature SignStream computes.
type Credentials struct {
	SecretID  string
	Timestamp string
	Expires   string
	Signature string
}

// verify checks creds for subscription id and returns the key's
// credential.
func (s *Service) verify(ctx context.Context, id string, creds Credentials) (api.Credential, error) {
	if s.cfg.Keys == nil {
		return api.Credential{}, fmt.Errorf("%w: this server has no key resolver", ErrAuth)
	}
	if id == "" || creds.SecretID == "" || creds.Signature == "" {
		return api.Credential{}, fmt.Errorf("%w: subscription id, secret id and signature are required", ErrAuth)
	}
	now := s.now()
	var value int64
	var err error
	switch {
	case creds.Timestamp != "":
		value, err = strconv.ParseInt(creds.Timestamp, 10, 64)
		if err == nil {
			if d := now.Sub(time.Unix(value, 0)); d > StreamWindow || d < -StreamWindow {
				return api.Credential{}, fmt.Errorf("%w: timestamp outside ±%s", ErrAuth, StreamWindow)
			}
		}
	case creds.Expires != "":
		value, err = strconv.ParseInt(creds.Expires, 10, 64)
		if err == nil {
			if exp := time.Unix(value, 0); !now.Before(exp) || exp.Sub(now) > MaxExpiry {
				return api.Credential{}, fmt.Errorf("%w: expired, or expiry more than %s ahead", ErrAuth, MaxExpiry)
			}
		}
	default:
		return api.Credential{}, fmt.Errorf("%w: timestamp or expires is required", ErrAuth)
	}
	if err != nil {
		return api.Credential{}, fmt.Errorf("%w: bad timestamp", ErrAuth)
	}
	cred, err := s.cfg.Keys.ResolveKey(ctx, creds.SecretID)
	if err != nil {
		if errors.Is(err, api.ErrKeyNotFound) {
			return api.Credential{}, fmt.Errorf("%w: unknown secret id", ErrAuth)
		}
		return api.Credential{}, err
	}
	if !hmac.Equal([]byte(SignStream(cred.SecretKey, id, value)), []byte(creds.Signature)) {
		return api.Credential{}, fmt.Errorf("%w: signature mismatch", ErrAuth)
	}
	return cred, nil
}

// owns reports whether a key's credential may stream sub: the
// subscription belongs to the key's app, or (created by a console user) to
// the key's project.
func owns(cred api.Credential, sub *Subscription) bool {
	return sub.ProjectID == cred.ProjectID && (sub.AppID == "" || sub.AppID == cred.AppID)
}

// authenticate checks creds for subscription id and returns the
// subscription, which must be of channel and owned by the key.
func (s *Service) authenticate(ctx context.Context, id, channel string, creds Credentials) (*Subscription, error) {
	cred, err := s.verify(ctx, id, creds)
	if err != nil {
		return nil, err
	}
	sub, err := s.get(ctx, id)
	if err != nil || !owns(cred, sub) {
		return nil, fmt.Errorf("%w: no subscription %s for this key", ErrAuth, id)
	}
	if sub.Channel != channel {
		return nil, fmt.Errorf("%w: subscription %s is of channel %s", ErrAuth, id, sub.Channel)
	}
	return sub, nil
}

// pending is an event handed to a stream, waiting for its acknowledgement.
type pending struct {
	m     bus.Message
	id    string
	acked chan struct{}
}

// session streams one subscription to one connected client.
type session struct {
	s       *Service
	sub     *Subscription
	channel string
	match   *matcher
	// send, when set (gRPC), hands an event on to the connection's
	// goroutine without waiting for it to be written: the session's one
	// bus handler calls it in sequence order, within the window.
	// Otherwise (SSE) events go through out to the connection's goroutine,
	// which closes their acked once written.
	send func(*pending) error
	out  chan *pending
	c    counters
	// window holds a token per event sent and not yet acknowledged
	// (gRPC): the stream's in-flight limit.
	window chan struct{}
	// The channel's metric series, looked up once.
	mDelivered prometheus.Counter
	mInFlight  prometheus.Gauge
	mLatency   prometheus.Observer

	ctx    context.Context
	cancel context.CancelCauseFunc
	bs     bus.Subscription

	mu   sync.Mutex
	sent []*pending // in send order, not yet acknowledged

	endOnce sync.Once
	done    chan struct{}
}

// openSession takes the subscription's lease for this replica (replacing a
// connection to the same subscription here) and starts its bus
// subscription. fromSeq > 0 restarts the durable there, unless a replay is
// pending, which wins. With send, up to inFlight events are handed on
// ahead of the client's acknowledgements; without, each waits on out until
// it is written.
func (s *Service) openSession(ctx context.Context, sub *Subscription, channel string, fromSeq uint64, inFlight int, send func(*pending) error) (*session, error) {
	if sub.Status != StatusActive {
		return nil, fmt.Errorf("%w: subscription %s is paused", ErrChanged, sub.ID)
	}
	m, err := compileFilter(sub.Filter)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil, ErrStopped
	}
	old := s.sessions[sub.ID]
	s.mu.Unlock()
	if old != nil {
		old.end(ErrReplaced)
		<-old.done
	}
	// Re-read: the old session released the lease.
	if sub, err = s.get(ctx, sub.ID); err != nil {
		return nil, err
	}
	if fromSeq > 0 && !sub.StartPending {
		sub.StartPending, sub.StartSeq = true, fromSeq
	}
	if prev := sub.LeaseHolder; prev != "" && prev != s.cfg.NodeID && !sub.LeaseUntil.Before(s.now()) {
		return nil, ErrBusyElsewhere
	}
	ok, err := s.claim(ctx, sub.ID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrBusyElsewhere
	}
	sctx, cancel := context.WithCancelCause(context.Background())
	ss := &session{s: s, sub: sub, channel: channel, match: m, send: send,
		out: make(chan *pending), window: make(chan struct{}, max(inFlight, 1)), ctx: sctx, cancel: cancel, done: make(chan struct{}),
		mDelivered: s.met.delivered.WithLabelValues(channel), mInFlight: s.met.inFlight.WithLabelValues(channel),
		mLatency: s.met.latency.WithLabelValues(channel)}
	s.mu.Lock()
	s.sessions[sub.ID] = ss
	s.mu.Unlock()
	fail := func(err error) (*session, error) {
		ss.end(err)
		return nil, err
	}
	ss.c.streamed = send != nil
	// One handler: events reach the client in sequence order; a stream
	// takes them ahead of its handler up to its window.
	opts := bus.SubscribeOptions{MaxInFlight: 1, MaxDeliver: -1}
	if send != nil {
		opts.Prefetch = max(inFlight, 1)
	}
	ss.bs, err = s.subscribe(ctx, sub, opts, &ss.c, ss.handle)
	if err != nil {
		return fail(err)
	}
	go ss.renew()
	s.log.InfoContext(ctx, "subscription stream opened", "subscription", sub.ID, "channel", channel)
	return ss, nil
}

// handle hands one event to the client. An SSE session waits until it is
// written. A gRPC session hands it on and returns, within the stream's
// in-flight window: one ordered stream keeps the events of a key in order
// however many are in flight, and the client's acknowledgements, not the
// bus's, move the subscription's position (every session restarts the bus
// durable there), so the bus may forget the event.
func (ss *session) handle(ctx context.Context, m bus.Message) error {
	ok, ferr := ss.match.match(ctx, m.Data)
	if ferr != nil {
		ss.c.note(ferr, ss.s.now())
	}
	if !ok {
		ss.c.ack(m.Seq)
		return nil
	}
	p := &pending{m: m, id: eventID(m)}
	if ss.send != nil {
		return ss.stream(ctx, p)
	}
	p.acked = make(chan struct{})
	select {
	case ss.out <- p:
	case <-ss.ctx.Done():
		<-ctx.Done() // end stops the bus subscription right after
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-p.acked:
		ss.delivered(p)
		return nil
	case <-ss.ctx.Done():
		<-ctx.Done()
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stream hands p on once the in-flight window has room, and records it as
// sent until the client acknowledges it (see ack).
func (ss *session) stream(ctx context.Context, p *pending) error {
	select {
	case ss.window <- struct{}{}:
	case <-ss.ctx.Done():
		<-ctx.Done()
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
	ss.mu.Lock()
	ss.sent = append(ss.sent, p)
	ss.mu.Unlock()
	ss.mInFlight.Inc()
	if err := ss.send(p); err != nil {
		ss.cancel(err) // the connection's goroutine returns; end follows
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// delivered counts an event the client has.
func (ss *session) delivered(p *pending) {
	ss.c.delivered.Add(1)
	ss.c.ack(p.m.Seq)
	ss.mDelivered.Inc()
	ss.mLatency.Observe(ss.s.now().Sub(p.m.Time).Seconds())
}

// ack acknowledges the event with seq and every event sent before it, and
// returns how many that was.
func (ss *session) ack(seq uint64) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for i, p := range ss.sent {
		if p.m.Seq != seq {
			continue
		}
		for _, q := range ss.sent[:i+1] {
			ss.delivered(q)
			<-ss.window
		}
		n := i + 1
		ss.sent = ss.sent[n:]
		ss.mInFlight.Sub(float64(n))
		return n
	}
	return 0
}

// renew keeps the lease while the session runs, and ends the session when
// the subscription changes or the lease is lost.
func (ss *session) renew() {
	s := ss.s
	t := time.NewTicker(s.cfg.Reconcile)
	defer t.Stop()
	save := time.NewTicker(s.cfg.SavePosition)
	defer save.Stop()
	lastRenew := s.now()
	for {
		select {
		case <-t.C:
		case <-save.C:
			ctx, cancel := context.WithTimeout(ss.ctx, 5*time.Second)
			s.savePosition(ctx, ss.sub, &ss.c, false)
			cancel()
			continue
		case <-ss.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(ss.ctx, 5*time.Second)
		if s.now().Sub(lastRenew) < s.cfg.LeaseTTL/3 {
			s.flush(ctx, ss.sub, &ss.c)
			cancel()
			continue
		}
		lastRenew = s.now()
		res, err := s.db.Exec(ctx, `UPDATE subscriptions SET lease_until_ms = ? WHERE id = ? AND lease_holder = ? AND generation = ? AND status = ?`,
			s.now().Add(s.cfg.LeaseTTL).UnixMilli(), ss.sub.ID, s.cfg.NodeID, ss.sub.Generation, StatusActive)
		if err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				cancel()
				go ss.end(ErrChanged)
				return
			}
			s.flush(ctx, ss.sub, &ss.c)
		}
		cancel()
	}
}

// end closes the session: events not acknowledged go back to the bus, to
// be sent first on the next connection.
func (ss *session) end(cause error) {
	ss.endOnce.Do(func() {
		s := ss.s
		ss.cancel(cause)
		if ss.bs != nil {
			if err := ss.bs.Stop(); err != nil {
				s.log.Warn("subscription stream stop failed", "subscription", ss.sub.ID, "err", err)
			}
		}
		ss.mu.Lock()
		ss.mInFlight.Sub(float64(len(ss.sent)))
		ss.sent = nil
		ss.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.flush(ctx, ss.sub, &ss.c)
		cancel()
		s.mu.Lock()
		if s.sessions[ss.sub.ID] == ss {
			delete(s.sessions, ss.sub.ID)
		}
		s.mu.Unlock()
		s.release(ss.sub.ID)
		s.log.Info("subscription stream closed", "subscription", ss.sub.ID, "channel", ss.channel, "cause", cause.Error())
		close(ss.done)
	})
}

// session returns the stream connected here for subscription id.
func (s *Service) session(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}
