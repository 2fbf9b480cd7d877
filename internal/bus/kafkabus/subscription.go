package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tianshu-ai/tianshu/internal/bus"
)

const (
	defaultAckWait    = 30 * time.Second
	defaultMaxDeliver = 10
	defaultRetryDelay = 100 * time.Millisecond
	maxRetryDelay     = 30 * time.Second
	// prefetch is how many records a subscription takes per worker unless
	// SubscribeOptions.Prefetch says otherwise.
	prefetch = 4
	// minSessionTimeout and maxSessionTimeout bound the session timeout
	// that AckWait becomes: brokers refuse sessions outside
	// group.min.session.timeout.ms and group.max.session.timeout.ms, by
	// default six seconds and 30 minutes on Kafka (five minutes on some
	// other servers, kfake among them).
	minSessionTimeout = 6 * time.Second
	maxSessionTimeout = 5 * time.Minute
	// commitTimeout bounds one offset commit.
	commitTimeout = 10 * time.Second
	// closeTimeout bounds how long Stop waits for the client to leave
	// its group.
	closeTimeout = 10 * time.Second
)

// errTooManyDeliveries is the error OnDead gets for a record that came
// back more often than MaxDeliver without being handled: its handler
// never returned (the process died in it) or its subscriptions kept
// stopping.
var errTooManyDeliveries = errors.New("kafkabus: delivered more than MaxDeliver times without being handled")

// Subscribe implements bus.Bus.
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
		return nil, errors.New("kafkabus: Subscribe needs a handler")
	}
	opts = withDefaults(opts)
	if err := b.ensureTopic(ctx, topic); err != nil {
		return nil, err
	}
	ktopic := kafkaTopic(b.cfg.prefix, topic)
	details, err := b.adm.ListTopics(ctx, ktopic)
	if err == nil {
		err = details.Error()
	}
	if err != nil {
		if b.isClosed() {
			return nil, bus.ErrClosed
		}
		return nil, fmt.Errorf("kafkabus: topic %q: %w", topic, err)
	}
	s := newSubscription(b, topic, durable, opts, h)
	s.topicID = details[ktopic].ID
	s.cl, err = kgo.NewClient(b.clientOpts(
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(ktopic),
		kgo.ConsumeResetOffset(startOffset(opts)),
		kgo.DisableAutoCommit(),
		// Rebalances wait while a batch is in hand, so a batch is never
		// handled by two members at once and commits stay ours.
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(sessionTimeout(opts.AckWait)),
		kgo.HeartbeatInterval(sessionTimeout(opts.AckWait)/5),
		kgo.FetchMaxPartitionBytes(int32(b.cfg.maxMsgBytes+headerAllowance)),
		kgo.FetchMaxBytes(int32(4*(b.cfg.maxMsgBytes+headerAllowance))),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafkabus: durable %q on topic %q: client: %w", durable, topic, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.cl.Close()
		return nil, bus.ErrClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.run()
	s.log.Debug("bus subscription started", "max_in_flight", opts.MaxInFlight, "group", s.group)
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
		o.MaxDeliver = -1
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = defaultRetryDelay
	}
	return o
}

func sessionTimeout(ackWait time.Duration) time.Duration {
	return min(max(ackWait, minSessionTimeout), maxSessionTimeout)
}

// startOffset is where a durable without a committed offset (a new one)
// starts: Kafka applies the reset offset only then, which is the bus's
// rule for StartSeq and StartTime.
func startOffset(o bus.SubscribeOptions) kgo.Offset {
	switch {
	case o.StartSeq > 0:
		return kgo.NewOffset().At(int64(o.StartSeq) - 1)
	case !o.StartTime.IsZero():
		return kgo.NewOffset().AfterMilli(o.StartTime.UnixMilli())
	}
	return kgo.NewOffset().AtStart()
}

// subscription is one running bus.Subscription: a member of the durable's
// consumer group with a client of its own.
type subscription struct {
	b       *Bus
	topic   string
	durable string
	group   string
	ktopic  string
	topicID [16]byte
	cl      *kgo.Client
	h       bus.Handler
	opts    bus.SubscribeOptions
	log     *slog.Logger

	delivered   prometheusCounter
	redelivered prometheusCounter
	acked       prometheusCounter
	failed      prometheusCounter
	dead        prometheusCounter
	latency     prometheusObserver

	ctx    context.Context // cancelled by Stop; handlers get it
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned

	// Only run's goroutine uses these. generation is the group
	// generation in which this member last read or wrote the committed
	// metadata; handedUpTo and handedAttempt are what it says: records up
	// to offset handedUpTo were handed out before, with attempts up to
	// handedAttempt. handedUpTo is -1 when nothing was outstanding.
	generation    int32
	handedUpTo    int64
	handedAttempt int

	abandoned atomic.Bool // the connections were dropped: commit nothing
	stopOnce  sync.Once
	stopErr   error
}

// prometheusCounter and prometheusObserver are the curried metric
// children a subscription updates.
type (
	prometheusCounter  interface{ Inc() }
	prometheusObserver interface{ Observe(float64) }
)

// delivery is one record in the batch in hand.
type delivery struct {
	m      bus.Message
	offset int64
	done   bool // acknowledged or dead; set by its worker
}

func newSubscription(b *Bus, topic, durable string, opts bus.SubscribeOptions, h bus.Handler) *subscription {
	ctx, cancel := context.WithCancel(context.Background())
	return &subscription{
		b: b, topic: topic, durable: durable, h: h, opts: opts,
		group:       groupID(b.cfg.prefix, topic, durable),
		ktopic:      kafkaTopic(b.cfg.prefix, topic),
		log:         b.log.With("topic", topic, "durable", durable),
		delivered:   b.met.delivered.WithLabelValues(topic, durable),
		redelivered: b.met.redelivered.WithLabelValues(topic, durable),
		acked:       b.met.acked.WithLabelValues(topic, durable),
		failed:      b.met.failed.WithLabelValues(topic, durable),
		dead:        b.met.dead.WithLabelValues(topic, durable),
		latency:     b.met.handler.WithLabelValues(topic, durable),
		ctx:         ctx,
		cancel:      cancel,
		done:        make(chan struct{}),
		generation:  -1,
		handedUpTo:  -1,
	}
}

// Stop implements bus.Subscription: it cancels the handlers, commits what
// was handled (the rest goes back to the group, see handleBatch) and
// leaves the group, so that another member takes over at once.
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
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := s.cl.LeaveGroupContext(ctx); err != nil && !errors.Is(err, kgo.ErrClientClosed) {
			// The group drops the member at its session timeout instead;
			// what it handled is committed either way.
			s.log.Warn("bus subscription did not leave its group", "err", err)
		}
		s.cl.Close()
		s.log.Debug("bus subscription stopped")
	})
	return s.stopErr
}

// detach stops the subscription for DeleteConsumer and DeleteTopic; the
// owner's later Stop finds it stopped.
func (s *subscription) detach() {
	if err := s.Stop(); err != nil {
		s.log.Warn("bus subscription did not stop cleanly", "err", err)
	}
}

// abandon ends the subscription after its connections were dropped,
// without committing or leaving the group.
func (s *subscription) abandon() {
	s.abandoned.Store(true)
	s.cancel()
}

// readHanded reads, once per group generation in which this member has
// the partition, how far the previous holder had handed records out, so
// that their Attempt counts up. It runs before the first batch of the
// generation, which rebalances wait for (BlockRebalanceOnPoll).
func (s *subscription) readHanded() {
	_, generation := s.cl.GroupMetadata()
	if generation == s.generation {
		return
	}
	s.generation = generation
	s.handedUpTo, s.handedAttempt = -1, 0
	ctx, cancel := context.WithTimeout(s.ctx, commitTimeout)
	defer cancel()
	resps, err := kadm.NewClient(s.cl).FetchOffsets(ctx, s.group)
	if err != nil {
		// The batch's records count as first deliveries.
		s.log.Warn("bus committed metadata unreadable", "err", err)
		return
	}
	if o, ok := resps.Lookup(s.ktopic, 0); ok && o.Err == nil {
		s.handedUpTo, s.handedAttempt = parseHanded(o.Metadata)
	}
}

// handedPrefix marks commit metadata written by this package.
const handedPrefix = "tianshu1 "

// formatHanded is the commit metadata saying that records up to offset
// upTo were handed out, with attempts up to attempt.
func formatHanded(upTo int64, attempt int) string {
	return handedPrefix + strconv.FormatInt(upTo, 10) + " " + strconv.Itoa(attempt)
}

func parseHanded(meta string) (upTo int64, attempt int) {
	rest, ok := strings.CutPrefix(meta, handedPrefix)
	if !ok {
		return -1, 0
	}
	a, b, ok := strings.Cut(rest, " ")
	if !ok {
		return -1, 0
	}
	upTo, err1 := strconv.ParseInt(a, 10, 64)
	attempt, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || attempt < 1 {
		return -1, 0
	}
	return upTo, attempt
}

// run polls batches of records and handles each in turn until the
// subscription stops.
func (s *subscription) run() {
	defer close(s.done)
	errDelay := time.Duration(0)
	for {
		fetches := s.cl.PollRecords(s.ctx, s.opts.Prefetch)
		if s.ctx.Err() != nil || fetches.IsClientClosed() {
			s.cl.AllowRebalance()
			if s.abandoned.Load() {
				s.cl.Close()
			}
			return
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				ferr = err
			}
		})
		if recs := fetches.Records(); len(recs) > 0 {
			s.handleBatch(recs)
		}
		s.cl.AllowRebalance()
		if ferr == nil {
			errDelay = 0
			continue
		}
		errDelay = min(max(2*errDelay, 100*time.Millisecond), 5*time.Second)
		s.log.Warn("bus fetch failed", "err", ferr, "retry_in", errDelay)
		select {
		case <-time.After(errDelay):
		case <-s.ctx.Done():
		}
	}
}

// handleBatch hands a batch of records to the handlers and commits the
// outcome. Before handling, it commits the unchanged offset with metadata
// saying how far records were handed out (an Untracked subscription
// commits past the batch instead). After, it commits past the last record
// when all were resolved; when Stop cut the batch short, it commits up to
// the first record not resolved, which, with the records after it, goes
// back to the group.
func (s *subscription) handleBatch(recs []*kgo.Record) {
	s.readHanded()
	upTo, prev := s.handedUpTo, s.handedAttempt
	first, last := recs[0].Offset, recs[len(recs)-1].Offset
	ds := make([]*delivery, len(recs))
	top := 1
	for i, r := range recs {
		attempt := 1
		if r.Offset <= upTo {
			attempt = prev + 1
		}
		top = max(top, attempt)
		ds[i] = s.delivery(r, attempt)
	}
	if s.opts.Untracked {
		s.commit(last+1, "")
	} else {
		s.commit(first, formatHanded(last, top))
		s.handedUpTo, s.handedAttempt = last, top
	}

	queues := make([][]*delivery, s.opts.MaxInFlight)
	for _, d := range ds {
		w := s.worker(d.m)
		queues[w] = append(queues[w], d)
	}
	var wg sync.WaitGroup
	for _, q := range queues {
		if len(q) > 0 {
			wg.Go(func() { s.work(q) })
		}
	}
	wg.Wait()

	if s.opts.Untracked || s.abandoned.Load() {
		return
	}
	next := last + 1
	for _, d := range ds {
		if !d.done {
			next = d.offset
			break
		}
	}
	if next > last {
		s.commit(next, "")
	} else {
		s.commit(next, formatHanded(last, top))
	}
}

func (s *subscription) delivery(r *kgo.Record, attempt int) *delivery {
	d := &delivery{offset: r.Offset, m: bus.Message{
		Topic:   s.topic,
		Key:     string(r.Key),
		Data:    r.Value,
		Seq:     uint64(r.Offset) + 1,
		Time:    r.Timestamp,
		Attempt: attempt,
	}}
	for _, h := range r.Headers {
		if d.m.Header == nil {
			d.m.Header = make(map[string]string, len(r.Headers))
		}
		d.m.Header[h.Key] = string(h.Value)
	}
	s.delivered.Inc()
	if attempt > 1 {
		s.redelivered.Inc()
	}
	return d
}

// commit commits offset for the group with metadata, as this member. A
// failed commit is logged, not returned: the records it covers are
// delivered again, which at least once allows.
func (s *subscription) commit(offset int64, metadata string) {
	if s.abandoned.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	member, generation := s.cl.GroupMetadata()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = s.group
	req.Generation = generation
	req.MemberID = member
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = s.ktopic
	t.TopicID = s.topicID
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition = 0
	p.Offset = offset
	p.LeaderEpoch = -1
	p.Metadata = &metadata
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, s.cl)
	if err == nil {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err == nil {
					err = kerr.ErrorForCode(p.ErrorCode)
				}
			}
		}
	}
	if err != nil {
		s.log.Warn("bus commit failed", "offset", offset, "err", err)
	}
}

// worker picks the worker for a message: by key, so that a key's
// messages queue behind each other, or by sequence when there is no key.
func (s *subscription) worker(m bus.Message) int {
	n := uint64(s.opts.MaxInFlight)
	if n == 1 {
		return 0
	}
	if m.Key == "" {
		return int(m.Seq % n)
	}
	h := fnv.New64a()
	h.Write([]byte(m.Key))
	return int(h.Sum64() % n)
}

func (s *subscription) work(q []*delivery) {
	for _, d := range q {
		if s.ctx.Err() != nil {
			return // handed back: not done
		}
		s.handle(d)
	}
}

// handle runs the handler until it succeeds, the message is dead, or the
// subscription stops. Retries happen here, so the message keeps its place
// ahead of later ones with its key.
func (s *subscription) handle(d *delivery) {
	if s.opts.MaxDeliver > 0 && d.m.Attempt > s.opts.MaxDeliver {
		s.die(d, errTooManyDeliveries)
		return
	}
	for {
		start := time.Now()
		err := s.call(d.m)
		s.latency.Observe(time.Since(start).Seconds())
		if err == nil {
			d.done = true
			s.acked.Inc()
			return
		}
		if s.ctx.Err() != nil {
			return // stopping: the attempt was cut short, hand it back
		}
		s.failed.Inc()
		if s.opts.MaxDeliver > 0 && d.m.Attempt >= s.opts.MaxDeliver {
			s.die(d, err)
			return
		}
		delay := retryDelay(s.opts.RetryDelay, d.m.Attempt)
		s.log.Warn("bus handler failed", "seq", d.m.Seq, "key", d.m.Key, "attempt", d.m.Attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		d.m.Attempt++
	}
}

func (s *subscription) die(d *delivery, err error) {
	d.done = true
	s.dead.Inc()
	s.log.Error("bus message dead", "seq", d.m.Seq, "key", d.m.Key, "attempts", d.m.Attempt, "err", err)
	if s.opts.OnDead != nil {
		s.opts.OnDead(d.m, err)
	}
}

// call runs the handler, turning a panic into an error: one bad message
// must not bring down every role in the process.
func (s *subscription) call(m bus.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("bus handler panicked", "seq", m.Seq, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("kafkabus: handler panicked: %v", r)
		}
	}()
	return s.h(s.ctx, m)
}

func retryDelay(first time.Duration, attempt int) time.Duration {
	limit := max(maxRetryDelay, first)
	d := first
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	// ±20% jitter, so that a batch that failed together does not retry in
	// lock step.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
