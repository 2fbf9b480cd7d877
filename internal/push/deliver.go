package push

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// counters are a deliverer's counts since they were last flushed to the
// store, and its acknowledgement floor.
type counters struct {
	delivered, failed, retried, dead atomic.Int64

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
	// The floor: every event with a sequence up to floor has been handled
	// (delivered, filtered out or dead-lettered). known is false until it
	// is: after a start by time, until the first event. ordered says that
	// events are handled one at a time in sequence order (one worker), so
	// each one handled is the new floor; otherwise events done above the
	// floor wait in above until the gap below them closes.
	floor   uint64
	known   bool
	ordered bool
	above   map[uint64]struct{}
	// moved says the floor or the events above it changed since the
	// position was last saved.
	moved bool
	// streamed says acknowledgements come from a gRPC client, for events
	// handed over earlier, while later ones may already be done (filtered
	// out): the floor must never jump to an acknowledgement, so events are
	// never treated as ordered, and after a start by time the floor is
	// fixed by the first event the bus hands over (see done).
	streamed bool
}

func (c *counters) ack(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moved = true
	switch {
	case c.ordered || !c.known:
		c.floor, c.known = max(c.floor, seq), true
	case seq == c.floor+1:
		c.floor++
		for {
			if _, ok := c.above[c.floor+1]; !ok {
				break
			}
			delete(c.above, c.floor+1)
			c.floor++
		}
	case seq > c.floor:
		if c.above == nil {
			c.above = map[uint64]struct{}{}
		}
		c.above[seq] = struct{}{}
	}
}

// done reports whether the event with seq was handled already: at or
// below the floor, or acknowledged above it. For a stream it first fixes an
// unknown floor just below seq: after a start by time (one worker, sequence
// order) the first event handed over is the lowest.
func (c *counters) done(seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.known {
		if !c.streamed {
			return false
		}
		c.floor, c.known = seq-1, true
	}
	_, ok := c.above[seq]
	return ok || seq <= c.floor
}

// maxAbove bounds the acknowledged events above the floor that are saved;
// beyond it the rest are sent again after a restart (at least once). A
// deliverer holds at most its in-flight limit of them in practice.
const maxAbove = 4096

// encodeAbove writes the events acknowledged above floor as comma-separated
// offsets from it, in order.
func encodeAbove(floor uint64, above map[uint64]struct{}) string {
	if len(above) == 0 {
		return ""
	}
	seqs := make([]uint64, 0, len(above))
	for q := range above {
		seqs = append(seqs, q)
	}
	slices.Sort(seqs)
	if len(seqs) > maxAbove {
		seqs = seqs[:maxAbove]
	}
	b := make([]byte, 0, 4*len(seqs))
	for i, q := range seqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, q-floor, 10)
	}
	return string(b)
}

// decodeAbove reads what encodeAbove wrote; what does not parse is
// dropped (those events are sent again).
func decodeAbove(floor uint64, v string) map[uint64]struct{} {
	if v == "" {
		return nil
	}
	out := map[uint64]struct{}{}
	for f := range strings.SplitSeq(v, ",") {
		d, err := strconv.ParseUint(f, 10, 64)
		if err != nil || d == 0 || len(out) == maxAbove {
			continue
		}
		out[floor+d] = struct{}{}
	}
	return out
}

func (c *counters) note(err error, now time.Time) {
	c.mu.Lock()
	c.lastErr, c.lastErrAt = truncate(err.Error(), 1024), now
	c.mu.Unlock()
}

// flush adds the counts to the subscription's row and resets them, and
// saves the position (savePosition).
func (s *Service) flush(ctx context.Context, sub *Subscription, c *counters) {
	d, f, r, dead := c.delivered.Swap(0), c.failed.Swap(0), c.retried.Swap(0), c.dead.Swap(0)
	c.mu.Lock()
	lastErr, at := c.lastErr, c.lastErrAt
	c.lastErr = ""
	c.mu.Unlock()
	if d != 0 || f != 0 || r != 0 || dead != 0 || lastErr != "" {
		q := "UPDATE subscriptions SET delivered = delivered + ?, failed = failed + ?, retried = retried + ?, dead_lettered = dead_lettered + ?"
		args := []any{d, f, r, dead}
		if lastErr != "" {
			q += ", last_error = ?, last_error_ms = ?"
			args = append(args, lastErr, at.UnixMilli())
		}
		if _, err := s.db.Exec(ctx, q+" WHERE id = ?", append(args, sub.ID)...); err != nil {
			s.log.WarnContext(ctx, "subscription counters not saved", "subscription", sub.ID, "err", err)
		}
	}
	s.savePosition(ctx, sub, c, true)
}

// savePosition saves the floor and the events acknowledged above it, where
// the next deliverer restarts, if they moved since the last save (always
// with force). A replay asked for since (start_pending set by a newer
// generation) is left alone. Deliverers save every SavePosition, so a crash
// sends again only what was delivered in that last moment and what was in
// flight.
func (s *Service) savePosition(ctx context.Context, sub *Subscription, c *counters, force bool) {
	p, ok := c.position(force)
	if !ok {
		return
	}
	if _, err := s.db.Exec(ctx, savePositionSQL, p.args(sub)...); err != nil {
		c.retrySave()
		s.log.WarnContext(ctx, "subscription position not saved", "subscription", sub.ID, "err", err)
	}
}

const savePositionSQL = "UPDATE subscriptions SET acked_seq = ?, acked_above = ?, start_pending = 0 WHERE id = ? AND (start_pending = 0 OR generation = ?)"

// position is a deliverer's position to save.
type position struct {
	floor uint64
	above string
}

func (p position) args(sub *Subscription) []any {
	return []any{int64(p.floor), p.above, sub.ID, sub.Generation}
}

// position returns the position to save, if it moved since the last save
// (always with force), and marks it saved.
func (c *counters) position(force bool) (position, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.known || (!c.moved && !force) {
		return position{}, false
	}
	p := position{floor: c.floor}
	if !c.ordered {
		p.above = encodeAbove(p.floor, c.above)
	}
	c.moved = false
	return p, true
}

// retrySave marks the position unsaved after a failed save: the next save
// tries again.
func (c *counters) retrySave() {
	c.mu.Lock()
	c.moved = true
	c.mu.Unlock()
}

// savePositions saves the moved positions of the runners in one
// transaction: one commit for all of them instead of one each, every
// SavePosition.
func (s *Service) savePositions(ctx context.Context, runners []*runner) {
	var moved []*runner
	var ps []position
	for _, r := range runners {
		if p, ok := r.c.position(false); ok {
			moved, ps = append(moved, r), append(ps, p)
		}
	}
	if len(moved) == 0 {
		return
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		for i, r := range moved {
			if _, err := tx.Exec(ctx, savePositionSQL, ps[i].args(r.sub)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, r := range moved {
			r.c.retrySave()
		}
		s.log.WarnContext(ctx, "subscription positions not saved", "subscriptions", len(moved), "err", err)
	}
}

// subscribe starts the bus subscription of sub, untracked by the bus.
// Every start re-creates the durable: at the start position a Create or
// Replay asked for, else just after the saved floor. So events come in sequence order whatever the
// previous subscriber held when it stopped or died (the bus hands such
// events back in no particular order). Events above the floor that were
// acknowledged already are skipped, as long as the saved list of them
// matches the floor; others that were sent come again (at least once). It
// sets c's floor to match.
func (s *Service) subscribe(ctx context.Context, sub *Subscription, opts bus.SubscribeOptions, c *counters, h bus.Handler) (bus.Subscription, error) {
	// The floor, not the bus, is where delivery resumes: the bus need not
	// track acknowledgements.
	opts.AckWait, opts.Untracked = s.cfg.AckWait, true
	opts.StartSeq, opts.StartTime = s.resume(ctx, sub, c, opts.MaxInFlight)
	if byTime(sub) {
		// By time: the first sequence is unknown until the first event,
		// so handle events one at a time until the next start.
		opts.MaxInFlight = 1
	}
	if err := s.bus.DeleteConsumer(ctx, sub.Topic(), sub.ID); err != nil && !errors.Is(err, bus.ErrNotFound) {
		return nil, err
	}
	return s.bus.Subscribe(ctx, sub.Topic(), sub.ID, opts, func(ctx context.Context, m bus.Message) error {
		if c.done(m.Seq) {
			return nil // acknowledged before a restart, or a late redelivery
		}
		return h(ctx, m)
	})
}

// resume sets c to the position delivery of sub resumes from, and returns
// where on the bus: a start sequence, or (for a Create or Replay by time)
// a start time, when c's floor is unknown until the first event and events
// must be handled one at a time in sequence order. Events above the floor
// acknowledged before are skipped (c.done) as long as the saved list of
// them matches the floor.
func (s *Service) resume(ctx context.Context, sub *Subscription, c *counters, maxInFlight int) (uint64, time.Time) {
	var above map[uint64]struct{}
	if !sub.StartPending {
		var saved int64
		var list string
		err := s.db.QueryRow(ctx, "SELECT acked_seq, COALESCE(acked_above, '') FROM subscriptions WHERE id = ?", sub.ID).Scan(&saved, &list)
		if err == nil && uint64(saved) == sub.Stats.AckedSeq {
			above = decodeAbove(sub.Stats.AckedSeq, list)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.above = above
	var startSeq uint64
	var startTime time.Time
	switch {
	case byTime(sub):
		startTime = sub.StartTime
		c.floor, c.known, c.ordered = 0, false, true
	case sub.StartPending:
		startSeq = sub.StartSeq
		c.floor, c.known, c.ordered = sub.StartSeq-1, true, maxInFlight <= 1
	default:
		startSeq = sub.Stats.AckedSeq + 1
		c.floor, c.known, c.ordered = sub.Stats.AckedSeq, true, maxInFlight <= 1
	}
	if c.streamed {
		c.ordered = false
	}
	return startSeq, startTime
}

// byTime reports a start pending at a time (or at the oldest event, with
// a zero time) rather than at a sequence.
func byTime(sub *Subscription) bool { return sub.StartPending && sub.StartSeq == 0 }

// claim takes or renews the lease of subscription id for this replica.
func (s *Service) claim(ctx context.Context, id string) (bool, error) {
	now := s.now()
	res, err := s.db.Exec(ctx, `UPDATE subscriptions SET lease_holder = ?, lease_until_ms = ?
		WHERE id = ? AND (lease_holder = '' OR lease_holder = ? OR lease_until_ms < ?)`,
		s.cfg.NodeID, now.Add(s.cfg.LeaseTTL).UnixMilli(), id, s.cfg.NodeID, now.UnixMilli())
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// release gives up this replica's lease of id, so that another replica
// need not wait for it to expire.
func (s *Service) release(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.db.Exec(ctx, "UPDATE subscriptions SET lease_holder = '', lease_until_ms = 0 WHERE id = ? AND lease_holder = ?", id, s.cfg.NodeID); err != nil {
		s.log.Warn("subscription lease not released", "subscription", id, "err", err)
	}
}

// runner delivers one webhook subscription on this replica.
type runner struct {
	s      *Service
	sub    *Subscription
	sig    *signer
	match  *matcher
	c      counters
	cancel context.CancelFunc
	done   chan struct{}
	// replaying is set while dead letters are being redelivered.
	replaying atomic.Bool
}

func (s *Service) startRunner(sub *Subscription) (*runner, error) {
	key, err := secretKey(sub.Secret)
	if err != nil {
		return nil, err
	}
	m, err := compileFilter(sub.Filter)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{s: s, sub: sub, sig: newSigner(key), match: m, cancel: cancel, done: make(chan struct{})}
	go r.run(ctx)
	return r, nil
}

func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	s := r.s
	if !byTime(r.sub) {
		// From a known floor: through the topic's hub (fanout.go), with
		// a dispatcher of its own.
		last, _ := s.resume(ctx, r.sub, &r.c, s.cfg.MaxInFlight)
		last--
		d := newDispatcher(s.cfg.MaxInFlight, 4*s.cfg.MaxInFlight, s.cfg.RetryDelay, s.log.With("subscription", r.sub.ID), r.handle)
		d.start(ctx)
		s.log.InfoContext(ctx, "subscription delivery started", "subscription", r.sub.ID, "url", r.sub.URL)
		r.feed(ctx, last, d)
		d.wait()
		return
	}
	// By time: one event at a time from the subscription's own durable
	// until the floor is known (needsRestart).
	opts := bus.SubscribeOptions{MaxInFlight: s.cfg.MaxInFlight, MaxDeliver: -1, RetryDelay: s.cfg.RetryDelay}
	for {
		bs, err := s.subscribe(ctx, r.sub, opts, &r.c, r.handle)
		if err == nil {
			s.log.InfoContext(ctx, "subscription delivery started", "subscription", r.sub.ID, "url", r.sub.URL)
			<-ctx.Done()
			if err := bs.Stop(); err != nil {
				s.log.WarnContext(ctx, "subscription delivery stop failed", "subscription", r.sub.ID, "err", err)
			}
			return
		}
		s.log.WarnContext(ctx, "subscription delivery not started", "subscription", r.sub.ID, "err", err)
		r.c.note(err, s.now())
		select {
		case <-time.After(s.cfg.Reconcile):
		case <-ctx.Done():
			return
		}
	}
}

// needsRestart reports a runner started by time (one worker) whose floor
// is now known.
func (r *runner) needsRestart() bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.c.ordered && r.c.known && r.s.cfg.MaxInFlight > 1
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// handle delivers one event. An error makes the bus retry it in place
// (after a growing, jittered delay), so later events of its key wait.
func (r *runner) handle(ctx context.Context, m bus.Message) error {
	s := r.s
	ok, ferr := r.match.match(ctx, m.Data)
	if ferr != nil {
		r.c.note(ferr, s.now())
	}
	if !ok {
		r.c.ack(m.Seq)
		return nil
	}
	met := &s.met.webhook
	met.inFlight.Inc()
	err := r.post(ctx, m)
	met.inFlight.Dec()
	if err == nil {
		r.c.delivered.Add(1)
		r.c.ack(m.Seq)
		met.delivered.Inc()
		met.latency.Observe(s.now().Sub(m.Time).Seconds())
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // stopping: not the receiver's failure
	}
	r.c.failed.Add(1)
	r.c.note(err, s.now())
	met.failed.Inc()
	if m.Attempt >= r.sub.MaxAttempts || s.now().Sub(m.Time) >= r.sub.MaxAge {
		if derr := s.deadLetter(ctx, r.sub.ID, m, err); derr != nil {
			s.log.ErrorContext(ctx, "dead letter not stored", "subscription", r.sub.ID, "seq", m.Seq, "err", derr)
			return err
		}
		r.c.dead.Add(1)
		r.c.ack(m.Seq)
		met.dead.Inc()
		s.log.WarnContext(ctx, "webhook event dead-lettered", "subscription", r.sub.ID, "seq", m.Seq, "attempts", m.Attempt, "err", err)
		return nil
	}
	r.c.retried.Add(1)
	met.retried.Inc()
	s.log.DebugContext(ctx, "webhook failed, will retry", "subscription", r.sub.ID, "seq", m.Seq, "attempt", m.Attempt, "err", err)
	return err
}

// post sends m to the webhook; while tracing, inside a delivery span
// whose traceparent the webhook carries, so the receiver continues the
// trace under this delivery.
func (r *runner) post(ctx context.Context, m bus.Message) error {
	s, tp := r.s, m.Header[event.HeaderTraceParent]
	if s.tracer == nil {
		return s.post(ctx, r.sub.URL, r.sig, eventID(m), m.Data, tp)
	}
	id := eventID(m)
	ctx, span := s.tracer.Start(tracing.Remote(ctx, tp), "push.webhook", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tracing.KeyProject.String(r.sub.ProjectID), tracing.KeySub.String(r.sub.ID),
			tracing.KeyEvent.String(id), attribute.Int("tianshu.attempt", m.Attempt)))
	err := s.post(ctx, r.sub.URL, r.sig, id, m.Data, tracing.TraceParent(ctx))
	tracing.End(span, err)
	return err
}

func (s *Service) deadLetter(ctx context.Context, subID string, m bus.Message, cause error) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM subscription_dead_letters WHERE subscription_id = ? AND seq = ?", subID, int64(m.Seq)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO subscription_dead_letters (subscription_id, seq, event_id, subject, data, attempts, last_error, dead_at_ms, replay)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)`, subID, int64(m.Seq), truncate(eventID(m), 512), truncate(m.Key, 512), string(m.Data),
			m.Attempt, truncate(cause.Error(), 1024), s.now().UnixMilli())
		return err
	})
}

// replayDeadLetters delivers the dead letters marked for replay, oldest
// first; each is deleted once delivered, or stays dead (unmarked) when it
// fails again.
func (r *runner) replayDeadLetters(ctx context.Context) {
	s := r.s
	defer r.replaying.Store(false)
	for ctx.Err() == nil {
		dls, err := s.deadLetters(ctx, r.sub.ID, true, 0, 100)
		if err != nil || len(dls) == 0 {
			return
		}
		for _, d := range dls {
			err := s.post(ctx, r.sub.URL, r.sig, d.EventID, d.Data, "")
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				if _, err := s.db.Exec(ctx, "DELETE FROM subscription_dead_letters WHERE subscription_id = ? AND seq = ?", r.sub.ID, int64(d.Seq)); err != nil {
					return // delivered again on the next replay: at least once
				}
				r.c.delivered.Add(1)
				s.met.webhook.delivered.Inc()
				continue
			}
			r.c.failed.Add(1)
			r.c.note(err, s.now())
			s.met.webhook.failed.Inc()
			if _, err := s.db.Exec(ctx, `UPDATE subscription_dead_letters SET replay = 0, attempts = attempts + 1, last_error = ?
				WHERE subscription_id = ? AND seq = ?`, truncate(err.Error(), 1024), r.sub.ID, int64(d.Seq)); err != nil {
				return
			}
		}
	}
}

// loop runs tick every Reconcile until ctx ends, then stops every runner.
func (s *Service) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Reconcile)
	defer t.Stop()
	save := time.NewTicker(s.cfg.SavePosition)
	defer save.Stop()
	lastRenew := s.now()
	for {
		s.tick(ctx, &lastRenew)
		if !s.awaitTick(ctx, t.C, save.C) {
			break
		}
	}
	s.stopRunners(true)
}

// stopRunners stops every webhook runner of this replica.
func (s *Service) stopRunners(release bool) {
	s.mu.Lock()
	runners := s.runners
	s.runners = map[string]*runner{}
	s.mu.Unlock()
	for id, r := range runners {
		s.stopRunner(id, r, release)
	}
}

// awaitTick waits for the next reconcile tick, saving the running
// deliverers' positions at every save tick meanwhile. It reports false
// when ctx ended.
func (s *Service) awaitTick(ctx context.Context, tick, save <-chan time.Time) bool {
	for {
		select {
		case <-tick:
			return true
		case <-save:
			s.mu.Lock()
			runners := slices.Collect(maps.Values(s.runners))
			s.mu.Unlock()
			s.savePositions(ctx, runners)
		case <-ctx.Done():
			return false
		}
	}
}

func (s *Service) stopRunner(id string, r *runner, release bool) {
	r.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s.flush(ctx, r.sub, &r.c)
	cancel()
	if release {
		s.release(id)
	}
	s.log.Info("subscription delivery stopped", "subscription", id)
}

// tick renews this replica's webhook leases, reconciles its runners with
// the subscriptions table, flushes counters and starts dead-letter replays.
func (s *Service) tick(ctx context.Context, lastRenew *time.Time) {
	now := s.now()
	_, err := s.db.Exec(ctx, "UPDATE subscriptions SET lease_until_ms = ? WHERE lease_holder = ? AND channel = ?",
		now.Add(s.cfg.LeaseTTL).UnixMilli(), s.cfg.NodeID, ChannelWebhook)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		s.log.WarnContext(ctx, "subscription leases not renewed", "err", err)
		if now.Sub(*lastRenew) > s.cfg.LeaseTTL/2 {
			// Others may take our leases soon: stop before they can.
			s.stopRunners(false)
		}
		return
	}
	*lastRenew = now
	rows, err := s.db.Query(ctx, "SELECT "+subColumns+" FROM subscriptions WHERE channel = ?", ChannelWebhook)
	if err != nil {
		s.log.WarnContext(ctx, "subscriptions not loaded", "err", err)
		return
	}
	subs := map[string]*Subscription{}
	for rows.Next() {
		sub, err := s.scanSub(rows)
		if err != nil {
			s.log.WarnContext(ctx, "subscription not loaded", "err", err)
			continue
		}
		subs[sub.ID] = sub
	}
	_ = rows.Close()
	replays := map[string]bool{}
	if rr, err := s.db.Query(ctx, "SELECT DISTINCT subscription_id FROM subscription_dead_letters WHERE replay = 1"); err == nil {
		for rr.Next() {
			var id string
			if rr.Scan(&id) == nil {
				replays[id] = true
			}
		}
		_ = rr.Close()
	}

	s.mu.Lock()
	running := make(map[string]*runner, len(s.runners))
	for id, r := range s.runners {
		running[id] = r
	}
	s.mu.Unlock()
	for id, r := range running {
		sub := subs[id]
		switch {
		case sub == nil || sub.Status != StatusActive || sub.LeaseHolder != s.cfg.NodeID:
			s.stopRunner(id, r, sub != nil && sub.LeaseHolder == s.cfg.NodeID)
			delete(running, id)
		case sub.Generation != r.sub.Generation:
			s.stopRunner(id, r, false)
			delete(running, id)
			if nr, err := s.startRunner(sub); err == nil {
				running[id] = nr
			} else {
				s.log.WarnContext(ctx, "subscription delivery not started", "subscription", id, "err", err)
				s.release(id)
			}
		case r.needsRestart():
			// Started by time and now at a known position: restart with
			// every worker.
			s.stopRunner(id, r, false)
			sub.StartPending, sub.Stats.AckedSeq = false, r.c.floor
			delete(running, id)
			if nr, err := s.startRunner(sub); err == nil {
				running[id] = nr
			} else {
				s.release(id)
			}
		default:
			s.flush(ctx, r.sub, &r.c)
		}
	}
	for id, sub := range subs {
		if sub.Status != StatusActive || running[id] != nil {
			continue
		}
		if sub.LeaseHolder != "" && sub.LeaseHolder != s.cfg.NodeID && !sub.LeaseUntil.Before(now) {
			continue
		}
		ok, err := s.claim(ctx, id)
		if err != nil || !ok {
			continue
		}
		r, err := s.startRunner(sub)
		if err != nil {
			s.log.WarnContext(ctx, "subscription delivery not started", "subscription", id, "err", err)
			s.release(id)
			continue
		}
		running[id] = r
	}
	for id, r := range running {
		if replays[id] && r.replaying.CompareAndSwap(false, true) {
			go func() {
				rctx, cancel := context.WithCancel(context.Background())
				go func() {
					select {
					case <-r.done:
					case <-rctx.Done():
					}
					cancel()
				}()
				r.replayDeadLetters(rctx)
				cancel()
			}()
		}
	}
	s.mu.Lock()
	s.runners = running
	s.mu.Unlock()
}
