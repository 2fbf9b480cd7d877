package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tianshu-ai/tianshu/internal/bus"
)

const (
	defaultAckWait    = 30 * time.Second
	defaultMaxDeliver = 10
	defaultRetryDelay = 100 * time.Millisecond
	// prefetch is how many messages a subscription holds per worker
	// (running or waiting their turn) unless SubscribeOptions.Prefetch
	// says otherwise.
	prefetch = 4
	// fetchWait is how long one pull request may stay open. Stop abandons
	// the open one rather than wait for it, so it is also the longest
	// that messages handed back on Stop wait (see giveBack).
	fetchWait = 3 * time.Second
	// flushTimeout bounds Stop's wait for its acknowledgements to reach
	// the server.
	flushTimeout = 10 * time.Second
	// untrackedInactive is how long an untracked durable lasts without a
	// subscription pulling from it.
	untrackedInactive = time.Hour
)

// Subscribe implements bus.Bus.
//
// A subscription pulls only as many messages as it has room for
// (MaxInFlight × 4), hands each to whichever of MaxInFlight workers is
// free once the key's earlier messages are done, so that a key's messages
// are handled one after another in stream order while a slow one holds up
// no other key, and retries a failing handler in place, so the messages
// behind it on the same key wait instead of overtaking it. Every
// message it holds, running or waiting, is kept "in progress" on the
// server every AckWait/3, so AckWait only matters once the holder is gone.
func (b *Bus) Subscribe(ctx context.Context, topic, durable string, opts bus.SubscribeOptions, h bus.Handler) (bus.Subscription, error) {
	if b.isClosed() {
		return nil, bus.ErrClosed
	}
	if err := bus.ValidateTopic(topic); err != nil {
		return nil, err
	}
	if err := bus.ValidateDurable(durable); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("natsbus: Subscribe needs a handler")
	}
	opts = withDefaults(opts)
	if err := b.ensureStream(ctx, topic); err != nil {
		return nil, err
	}
	cons, err := b.ensureConsumer(ctx, topic, durable, opts)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Deleted behind our back since we cached it.
		b.forgetStream(topic)
		if err = b.ensureStream(ctx, topic); err == nil {
			cons, err = b.ensureConsumer(ctx, topic, durable, opts)
		}
	}
	if err != nil {
		if b.isClosed() {
			return nil, bus.ErrClosed
		}
		return nil, fmt.Errorf("natsbus: durable %q on topic %q: %w", durable, topic, err)
	}
	s := newSubscription(b, topic, durable, cons, opts, h)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, bus.ErrClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	s.start()
	s.log.Debug("bus subscription started", "max_in_flight", opts.MaxInFlight, "ack_wait", s.ackWait)
	return s, nil
}

func withDefaults(o bus.SubscribeOptions) bus.SubscribeOptions {
	if o.AckWait <= 0 {
		o.AckWait = defaultAckWait
	}
	if o.MaxInFlight < 1 {
		o.MaxInFlight = 1
	}
	if o.Prefetch < o.MaxInFlight {
		o.Prefetch = prefetch * o.MaxInFlight
	}
	switch {
	case o.MaxDeliver == 0:
		o.MaxDeliver = defaultMaxDeliver
	case o.MaxDeliver < 0:
		o.MaxDeliver = -1 // JetStream's "unlimited"
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = defaultRetryDelay
	}
	return o
}

// ensureConsumer returns the durable, creating it with the start position
// from opts when it does not exist. An existing durable gets opts' AckWait
// and MaxDeliver, so that a new release's settings take effect; its
// position and start policy are kept.
func (b *Bus) ensureConsumer(ctx context.Context, topic, durable string, opts bus.SubscribeOptions) (jetstream.Consumer, error) {
	stream := streamName(topic)
	cons, err := b.js.Consumer(ctx, stream, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cfg := jetstream.ConsumerConfig{
			Durable:       durable,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       opts.AckWait,
			MaxDeliver:    opts.MaxDeliver,
			MaxAckPending: max(1000, 4*opts.Prefetch),
			DeliverPolicy: jetstream.DeliverAllPolicy,
		}
		if opts.Untracked {
			cfg.AckPolicy, cfg.AckWait, cfg.MaxDeliver, cfg.MaxAckPending = jetstream.AckNonePolicy, 0, 0, 0
			// Its subscriber keeps its own position, so the server need
			// not: a file-backed durable rewrites its state file (create,
			// write, rename) up to ten times a second while it delivers.
			cfg.MemoryStorage = true
			// Nor need it outlive its subscriber for long: one left
			// behind by a crash (push re-creates its durables on every
			// start under new or the same names) is forgotten.
			cfg.InactiveThreshold = untrackedInactive
		}
		switch {
		case opts.StartSeq > 0:
			cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cfg.OptStartSeq = opts.StartSeq
		case !opts.StartTime.IsZero():
			cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
			t := opts.StartTime
			cfg.OptStartTime = &t
		}
		cons, err = b.js.CreateConsumer(ctx, stream, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			// Another subscriber created it first with other settings.
			cons, err = b.js.Consumer(ctx, stream, durable)
		}
	}
	if err != nil {
		return nil, err
	}
	cur := cons.CachedInfo().Config
	if cur.AckPolicy == jetstream.AckNonePolicy {
		return cons, nil
	}
	if cur.AckWait != opts.AckWait || cur.MaxDeliver != opts.MaxDeliver {
		cur.AckWait, cur.MaxDeliver = opts.AckWait, opts.MaxDeliver
		return b.js.UpdateConsumer(ctx, stream, cur)
	}
	return cons, nil
}

// subscription is one running bus.Subscription.
type subscription struct {
	b           *Bus
	topic       string
	durable     string
	cons        jetstream.Consumer
	h           bus.Handler
	opts        bus.SubscribeOptions
	ackWait     time.Duration // the durable's, which may differ from opts'
	untracked   bool          // the durable acknowledges nothing (Untracked)
	log         *slog.Logger
	delivered   prometheusCounter
	redelivered prometheusCounter
	acked       prometheusCounter
	failed      prometheusCounter
	dead        prometheusCounter
	latency     prometheusObserver

	ctx    context.Context // cancelled by Stop; handlers get it
	cancel context.CancelFunc
	// slots holds one token per message taken from the server and not yet
	// resolved (acked, nak'ed, terminated); its capacity is the prefetch.
	slots chan struct{}
	// ready holds the messages any worker may take: with one worker every
	// message in arrival order; with more, at most one per key (its
	// oldest), the later ones waiting in waiting until it is resolved.
	ready   chan *delivery
	workers int
	done    chan struct{} // closed when fetching and all workers ended

	keyMu sync.Mutex
	// waiting holds, for every key with a message ready or running, the
	// key's later messages in stream order (an empty slice when none).
	waiting map[string][]*delivery

	mu   sync.Mutex
	held map[*delivery]struct{} // kept in progress by heartbeat
	// pullOpenUntil is when the server forgets the pull request in
	// flight at the latest; zero when none is.
	pullOpenUntil time.Time

	abandoned atomic.Bool // the connection was dropped: resolve nothing
	stopOnce  sync.Once
	stopErr   error
}

// prometheusCounter and prometheusObserver are the curried metric
// children a subscription updates.
type (
	prometheusCounter  interface{ Inc() }
	prometheusObserver interface{ Observe(float64) }
)

type delivery struct {
	msg jetstream.Msg
	m   bus.Message
}

func newSubscription(b *Bus, topic, durable string, cons jetstream.Consumer, opts bus.SubscribeOptions, h bus.Handler) *subscription {
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscription{
		b: b, topic: topic, durable: durable, cons: cons, h: h, opts: opts,
		ackWait:     cons.CachedInfo().Config.AckWait,
		untracked:   cons.CachedInfo().Config.AckPolicy == jetstream.AckNonePolicy,
		log:         b.log.With("topic", topic, "durable", durable),
		delivered:   b.met.Delivered.WithLabelValues(topic, durable),
		redelivered: b.met.Redelivered.WithLabelValues(topic, durable),
		acked:       b.met.Acked.WithLabelValues(topic, durable),
		failed:      b.met.Failed.WithLabelValues(topic, durable),
		dead:        b.met.Dead.WithLabelValues(topic, durable),
		latency:     b.met.Handler.WithLabelValues(topic, durable),
		ctx:         ctx,
		cancel:      cancel,
		slots:       make(chan struct{}, opts.Prefetch),
		workers:     opts.MaxInFlight,
		waiting:     map[string][]*delivery{},
		done:        make(chan struct{}),
		held:        map[*delivery]struct{}{},
	}
	if s.ackWait <= 0 {
		s.ackWait = defaultAckWait
	}
	// Never blocks: it can take every slot.
	s.ready = make(chan *delivery, cap(s.slots))
	return s
}

func (s *subscription) start() {
	var workers sync.WaitGroup
	for range s.workers {
		workers.Go(s.work)
	}
	go s.heartbeat()
	go func() {
		s.fetchLoop()
		workers.Wait()
		// Nothing dispatches or releases any more: hand back what is left.
		for len(s.ready) > 0 {
			s.giveBack(<-s.ready)
		}
		for _, q := range s.waiting {
			for _, d := range q {
				s.giveBack(d)
			}
		}
		close(s.done)
	}()
}

// Stop implements bus.Subscription.
func (s *subscription) Stop() error {
	s.stopOnce.Do(func() {
		s.cancel()
		<-s.done
		s.b.mu.Lock()
		delete(s.b.subs, s)
		s.b.mu.Unlock()
		if s.abandoned.Load() {
			return
		}
		// Acks are fire-and-forget; make sure the server has them before
		// the caller resubscribes or closes, or it would redeliver them.
		if err := s.b.nc.FlushTimeout(flushTimeout); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.stopErr = fmt.Errorf("natsbus: stop durable %q on topic %q: flush: %w", s.durable, s.topic, err)
		}
		s.log.Debug("bus subscription stopped")
	})
	return s.stopErr
}

// abandon ends the subscription's goroutines after the connection was
// dropped, without waiting for handlers.
func (s *subscription) abandon() {
	s.abandoned.Store(true)
	s.cancel()
}

// fetchLoop pulls messages while there are free slots, and hands them to
// the workers. Pulling no more than there is room for means that nothing
// waits unseen in a client buffer while its AckWait runs out.
func (s *subscription) fetchLoop() {
	errDelay := time.Duration(0)
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		n := 1
	more:
		for n < cap(s.slots) {
			select {
			case s.slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		got, err := s.fetch(n)
		for range n - got {
			<-s.slots
		}
		if s.ctx.Err() != nil {
			return
		}
		if err == nil {
			errDelay = 0
			continue
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			return
		}
		if s.consumerGone(err) {
			s.log.Warn("bus durable deleted, subscription idle", "err", err)
			return
		}
		errDelay = min(max(2*errDelay, 100*time.Millisecond), 5*time.Second)
		s.log.Warn("bus fetch failed", "err", err, "retry_in", errDelay)
		select {
		case <-time.After(errDelay):
		case <-s.ctx.Done():
			return
		}
	}
}

// fetch runs one pull request for up to n messages and dispatches what
// arrives. A request that ends with no or fewer messages is not an error.
func (s *subscription) fetch(n int) (int, error) {
	// The request's context expires after fetchWait; nats.go asks the
	// server to expire it a little sooner (90%), so once the deadline
	// has passed the server no longer holds it.
	ctx, cancel := context.WithTimeout(s.ctx, fetchWait)
	defer cancel()
	s.mu.Lock()
	if s.ctx.Err() != nil {
		// Stopping: a request now would outlive the hand-back (giveBack).
		s.mu.Unlock()
		return 0, nil
	}
	s.pullOpenUntil = time.Now().Add(fetchWait)
	s.mu.Unlock()
	batch, err := s.cons.Fetch(n, jetstream.FetchContext(ctx))
	if err != nil {
		return 0, err
	}
	got := 0
	for msg := range batch.Messages() {
		got++
		s.dispatch(msg)
	}
	err = batch.Error()
	s.mu.Lock()
	if s.ctx.Err() == nil {
		// Ended by the server (batch complete, expired) or by the
		// deadline, not abandoned by Stop.
		s.pullOpenUntil = time.Time{}
	}
	s.mu.Unlock()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, nats.ErrTimeout) {
		err = nil
	}
	return got, err
}

func (s *subscription) consumerGone(err error) bool {
	if !errors.Is(err, jetstream.ErrConsumerDeleted) && !errors.Is(err, jetstream.ErrConsumerNotFound) &&
		!errors.Is(err, nats.ErrNoResponders) {
		return false
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	_, err = s.cons.Info(ctx)
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

func (s *subscription) dispatch(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery; cannot happen on a pull consumer.
		s.log.Error("bus message without metadata", "err", err)
		<-s.slots
		return
	}
	d := &delivery{msg: msg, m: bus.Message{
		Topic:   s.topic,
		Data:    msg.Data(),
		Seq:     md.Sequence.Stream,
		Time:    md.Timestamp,
		Attempt: int(md.NumDelivered),
	}}
	for k, v := range msg.Headers() {
		if len(v) == 0 {
			continue
		}
		if k == headerKey {
			d.m.Key = v[0]
			continue
		}
		if hasPrefixFold(k, "nats-") || hasPrefixFold(k, "tianshu-") {
			continue
		}
		if d.m.Header == nil {
			d.m.Header = map[string]string{}
		}
		d.m.Header[k] = v[0]
	}
	s.delivered.Inc()
	if md.NumDelivered > 1 {
		s.redelivered.Inc()
	}
	if !s.untracked { // nothing to keep in progress otherwise
		s.mu.Lock()
		s.held[d] = struct{}{}
		s.mu.Unlock()
	}
	if s.workers == 1 || d.m.Key == "" {
		// One worker takes messages in stream order, which keeps every
		// key's; keyless messages have no order to keep.
		s.ready <- d
		return
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if q, busy := s.waiting[d.m.Key]; busy {
		s.waiting[d.m.Key] = append(q, d)
		return
	}
	s.waiting[d.m.Key] = nil
	s.ready <- d
}

// release makes the next message of d's key ready, now that d is resolved
// (with more than one worker).
func (s *subscription) release(d *delivery) {
	if s.workers == 1 || d.m.Key == "" {
		return
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	q := s.waiting[d.m.Key]
	if len(q) == 0 {
		delete(s.waiting, d.m.Key)
		return
	}
	s.waiting[d.m.Key] = q[1:]
	s.ready <- q[0]
}

// hasPrefixFold reports whether s begins with prefix, ignoring case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// work handles ready messages until the subscription stops; each worker
// takes whichever is ready, so a slow message holds up only the later ones
// of its own key, not those of other keys.
func (s *subscription) work() {
	for {
		select {
		case d := <-s.ready:
			if s.ctx.Err() != nil {
				s.giveBack(d)
				continue
			}
			s.handle(d)
			if s.ctx.Err() == nil {
				s.release(d)
			}
		case <-s.ctx.Done():
			return
		}
	}
}

// handle runs the handler until it succeeds, the message is dead, or the
// subscription stops. Retries happen here rather than by nak-and-redeliver
// so that the message keeps its place ahead of later ones with its key.
func (s *subscription) handle(d *delivery) {
	for {
		start := time.Now()
		err := s.call(d.m)
		s.latency.Observe(time.Since(start).Seconds())
		if err == nil {
			s.resolve(d, d.msg.Ack)
			s.acked.Inc()
			return
		}
		if s.ctx.Err() != nil {
			// Stopping: the attempt was cut short, hand the message back.
			s.giveBack(d)
			return
		}
		s.failed.Inc()
		if s.opts.MaxDeliver > 0 && d.m.Attempt >= s.opts.MaxDeliver {
			// Plain Term: servers before 2.10 ignore TermWithReason.
			s.resolve(d, d.msg.Term)
			s.dead.Inc()
			s.log.Error("bus message dead", "seq", d.m.Seq, "key", d.m.Key, "attempts", d.m.Attempt, "err", err)
			if s.opts.OnDead != nil {
				s.opts.OnDead(d.m, err)
			}
			return
		}
		delay := bus.RetryDelay(s.opts.RetryDelay, d.m.Attempt)
		s.log.Warn("bus handler failed", "seq", d.m.Seq, "key", d.m.Key, "attempt", d.m.Attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			s.giveBack(d)
			return
		}
		d.m.Attempt++
	}
}

// call runs the handler, turning a panic into an error: one bad message
// must not bring down every role in the process.
func (s *subscription) call(m bus.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("bus handler panicked", "seq", m.Seq, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("natsbus: handler panicked: %v", r)
		}
	}()
	return s.h(s.ctx, m)
}

// giveBack hands a message back to the server on Stop, for another
// subscriber to take. Stop abandons the pull request in flight instead of
// waiting for it to expire, and until the server notices (or the request
// expires) it may route a nak'ed message straight back into that request,
// where nobody reads it and it would sit until AckWait. So the nak asks
// for redelivery only once the request is surely gone: at once when no
// request was open, after at most fetchWait otherwise.
func (s *subscription) giveBack(d *delivery) {
	s.mu.Lock()
	delay := time.Until(s.pullOpenUntil)
	s.mu.Unlock()
	if delay <= 0 {
		s.resolve(d, d.msg.Nak)
		return
	}
	s.resolve(d, func() error { return d.msg.NakWithDelay(delay) })
}

// resolve stops keeping d in progress, answers the server with ack (an
// Ack, Nak or Term) and frees d's slot.
func (s *subscription) resolve(d *delivery, ack func() error) {
	if s.untracked {
		<-s.slots
		return
	}
	s.mu.Lock()
	delete(s.held, d)
	s.mu.Unlock()
	if !s.abandoned.Load() {
		if err := ack(); err != nil {
			// The server redelivers after AckWait; at least once holds.
			s.log.Warn("bus acknowledgement failed", "seq", d.m.Seq, "err", err)
		}
	}
	<-s.slots
}

// heartbeat tells the server, every AckWait/3, that the messages this
// subscription holds are still being worked on.
func (s *subscription) heartbeat() {
	if s.untracked {
		return
	}
	t := time.NewTicker(max(s.ackWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.done:
			return
		}
		if s.abandoned.Load() {
			return
		}
		s.mu.Lock()
		for d := range s.held {
			_ = d.msg.InProgress() // a lost one only risks an early redelivery
		}
		s.mu.Unlock()
	}
}
