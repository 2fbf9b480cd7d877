package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
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
	// maxHeartbeat bounds the heartbeat interval: a member learns of a
	// rebalance (another subscription joining) at its next heartbeat, so
	// this is how long a new subscription may wait for its share.
	maxHeartbeat = time.Second
	// commitTimeout bounds one offset commit or fetch.
	commitTimeout = 10 * time.Second
	// closeTimeout bounds how long Stop waits for the client to leave
	// its group.
	closeTimeout = 10 * time.Second
	// loadTimeout bounds how long a member retries reading the positions
	// of the slots it was assigned before it gives up on the assignment
	// and rejoins.
	loadTimeout = 30 * time.Second
	// idleCommitGap is how far a slot's position may run ahead of what is
	// committed for it while no record of the slot comes by: such a slot
	// is committed lazily (at rebalances, at Stop, and every so many
	// offsets), since a stale position there only costs a re-read.
	idleCommitGap = 1000
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
	// The fetching client: it reads the partition from where the slots
	// this member holds need, and commits their positions.
	s.fcl, err = kgo.NewClient(b.clientOpts(
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(int32(b.cfg.maxMsgBytes+headerAllowance)),
		kgo.FetchMaxBytes(int32(4*(b.cfg.maxMsgBytes+headerAllowance))),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafkabus: durable %q on topic %q: client: %w", durable, topic, err)
	}
	// The group member: it only takes part in the durable's group, which
	// divides the slots (see slotBalancer); it fetches nothing.
	session := sessionTimeout(opts.AckWait)
	s.cl, err = kgo.NewClient(b.clientOpts(
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(ktopic),
		kgo.DisableAutoCommit(),
		kgo.Balancers(slotBalancer{s}),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(min(session/5, maxHeartbeat)),
	)...)
	if err != nil {
		s.fcl.Close()
		return nil, fmt.Errorf("kafkabus: durable %q on topic %q: client: %w", durable, topic, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.cl.Close()
		s.fcl.Close()
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

// subscription is one running bus.Subscription: a member of the durable's
// consumer group, which gives it slots, and a reader of the topic that
// handles the records of those slots.
type subscription struct {
	b       *Bus
	topic   string
	durable string
	group   string
	ktopic  string
	topicID [16]byte
	cl      *kgo.Client // the group member; fetches nothing
	fcl     *kgo.Client // fetches the partition and commits slot positions
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
	wake   chan struct{} // the slots changed: run repositions

	// commitMu orders commits: what is committed for a slot is computed
	// and sent under it, so that a later position never lands before an
	// earlier one, and a revoke returns only after every commit of the
	// slots it gives up has landed.
	commitMu sync.Mutex

	mu         sync.Mutex
	slots      [numSlots]slotState
	assigned   []int  // from the latest SyncGroup
	had        []int  // the slots of the last assignment
	cur        *batch // the batch in hand
	reposition bool   // run must fetch from the slots' positions anew
	stopPoll   context.CancelFunc

	// Only run's goroutine uses these. cursor is the offset the fetched
	// stream continues from: every record from it on comes in order.
	cursor   int64
	fetching bool

	abandoned atomic.Bool // the connections were dropped: commit nothing
	stopOnce  sync.Once
	stopErr   error
}

// slotState is what a member knows of one slot.
type slotState struct {
	// held: this member advances and commits the slot's position. open:
	// it may also start the slot's records. A slot is held but not open
	// from a revoke that found its handlers running until the next
	// assignment confirms it.
	held, open bool
	// epoch grows whenever the slot is taken or given up, so that a batch
	// taken under one holding does not count under another.
	epoch uint64
	// pos is the slot's position: its records before it are resolved.
	pos int64
	// handedUpTo and handedAttempt say that the slot's records up to
	// offset handedUpTo were handed out with attempts up to
	// handedAttempt, by this member or one before it; -1 when none.
	handedUpTo    int64
	handedAttempt int
	// busy counts the slot's running handlers.
	busy int
	// committed and committedMeta are what was last committed (-1: never).
	committed     int64
	committedMeta string
}

// meta is the commit metadata that carries the slot's hand-out state.
func (st *slotState) meta() string {
	if st.handedUpTo < st.pos {
		return ""
	}
	return formatHanded(st.handedUpTo, st.handedAttempt)
}

// prometheusCounter and prometheusObserver are the curried metric
// children a subscription updates.
type (
	prometheusCounter  interface{ Inc() }
	prometheusObserver interface{ Observe(float64) }
)

// delivery is one record in the batch in hand. started and done are
// guarded by subscription.mu.
type delivery struct {
	m       bus.Message
	offset  int64
	slot    int
	started bool // handed to a handler
	done    bool // acknowledged or dead
}

// batch is the records of one poll that belong to slots this member had
// open when it took them.
type batch struct {
	last    int64 // offset of the batch's last record, of any slot
	ds      []*delivery
	covered [numSlots]bool   // the batch covers the slot from its position on
	epoch   [numSlots]uint64 // the slot's epoch then
	stalled [numSlots]bool   // a record of the slot was dropped: drop the rest
	has     [numSlots]bool   // the slot has records in the batch
	// prevUpTo and prevAttempt are the slot's hand-out state before the
	// batch: records a member before this one handed out.
	prevUpTo    [numSlots]int64
	prevAttempt [numSlots]int
}

// position returns where slot x's position is once the batch is over as
// far as it went: at the slot's first record not resolved, else past the
// batch.
func (b *batch) position(x int) int64 {
	for _, d := range b.ds {
		if d.slot == x && !d.done {
			return d.offset
		}
	}
	return b.last + 1
}

// settle sets the slot's position and hand-out state once the batch is
// over as far as it went: the position moves to the slot's first record
// not resolved, or past the batch; what goes back unresolved counts as
// handed out if a handler had it or a member before this one handed it
// out, so that its next delivery counts as a redelivery.
func (b *batch) settle(x int, st *slotState) {
	st.pos = max(st.pos, b.position(x))
	upTo, attempt := int64(-1), 0
	for _, d := range b.ds {
		if d.slot == x && d.started && !d.done {
			upTo, attempt = d.offset, max(attempt, d.m.Attempt)
		}
	}
	if b.prevUpTo[x] >= st.pos {
		upTo, attempt = max(upTo, b.prevUpTo[x]), max(attempt, b.prevAttempt[x])
	}
	st.handedUpTo, st.handedAttempt = upTo, attempt
}

func newSubscription(b *Bus, topic, durable string, opts bus.SubscribeOptions, h bus.Handler) *subscription {
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscription{
		b: b, topic: topic, durable: durable, h: h, opts: opts,
		group:       groupID(b.cfg.prefix, topic, durable),
		ktopic:      kafkaTopic(b.cfg.prefix, topic),
		log:         b.log.With("topic", topic, "durable", durable),
		delivered:   b.met.Delivered.WithLabelValues(topic, durable),
		redelivered: b.met.Redelivered.WithLabelValues(topic, durable),
		acked:       b.met.Acked.WithLabelValues(topic, durable),
		failed:      b.met.Failed.WithLabelValues(topic, durable),
		dead:        b.met.Dead.WithLabelValues(topic, durable),
		latency:     b.met.Handler.WithLabelValues(topic, durable),
		ctx:         ctx,
		cancel:      cancel,
		done:        make(chan struct{}),
		wake:        make(chan struct{}, 1),
	}
	for x := range s.slots {
		s.slots[x].handedUpTo = -1
		s.slots[x].committed = -1
	}
	return s
}

// Stop implements bus.Subscription: it cancels the handlers, commits what
// was handled (the rest goes back, see handleBatch) and leaves the group,
// which gives the slots to the other members at once.
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
		// Leaving revokes the slots (onRevoked), which commits them.
		if err := s.cl.LeaveGroupContext(ctx); err != nil && !errors.Is(err, kgo.ErrClientClosed) {
			// The group drops the member at its session timeout instead.
			s.log.Warn("bus subscription did not leave its group", "err", err)
		}
		s.release(true)
		s.cl.Close()
		s.fcl.Close()
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

// claim is what this member tells the group leader when it joins.
func (s *subscription) claim() claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := claim{had: s.had}
	for x := range s.slots {
		if s.slots[x].held {
			c.busy = append(c.busy, x)
		}
	}
	return c
}

// setAssigned keeps the slots of a SyncGroup for onAssigned.
func (s *subscription) setAssigned(slots []int) {
	s.mu.Lock()
	s.assigned = slots
	s.mu.Unlock()
}

// onRevoked gives up the slots at the end of a group generation (a
// rebalance, or leaving). Slots with handlers running stay held, and the
// member claims them when it joins again; the others are committed and
// let go, and their records still waiting in the batch are dropped, so
// that the next holder takes them from the committed position. It runs
// before the member joins again, so the next holder reads what it
// committed.
func (s *subscription) onRevoked(context.Context, *kgo.Client, map[string][]int32) {
	s.release(false)
}

// onLost gives up every slot without committing: the member was dropped
// from the group (its session expired), and other members may hold its
// slots already. Handlers still running finish, but what they did is not
// committed; their records are delivered again.
func (s *subscription) onLost(context.Context, *kgo.Client, map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for x := range s.slots {
		st := &s.slots[x]
		if st.held {
			st.held, st.open = false, false
			st.epoch++
		}
	}
	s.had = nil
}

// release commits and lets go of the held slots: those without running
// handlers, or all when all is set (Stop, after the handlers returned).
func (s *subscription) release(all bool) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	var cs []slotCommit
	for x := range s.slots {
		st := &s.slots[x]
		st.open = false
		if !st.held || st.busy > 0 && !all {
			continue
		}
		if b := s.cur; b != nil && b.covered[x] && b.epoch[x] == st.epoch {
			b.settle(x, st)
		}
		if c, ok := s.commitOf(x); ok {
			cs = append(cs, c)
		}
		st.held = false
		st.epoch++
	}
	s.mu.Unlock()
	s.send(cs)
}

// onAssigned takes the slots of a new assignment: it keeps those it held
// through the rebalance (their handlers ran on), reads the positions of
// the others from their side groups, and has run fetch from where they
// need.
func (s *subscription) onAssigned(context.Context, *kgo.Client, map[string][]int32) {
	s.mu.Lock()
	var want [numSlots]bool
	for _, x := range s.assigned {
		want[x] = true
	}
	var load []int
	for x := range s.slots {
		st := &s.slots[x]
		switch {
		case want[x] && st.held:
			st.open = true
		case want[x]:
			load = append(load, x)
		case st.held:
			// Claimed busy, but another member got it (it claimed it
			// from a later generation): what runs here is not
			// committed.
			st.held, st.open = false, false
			st.epoch++
		}
	}
	s.had = s.assigned
	s.mu.Unlock()

	if len(load) > 0 {
		ctx, cancel := context.WithTimeout(s.ctx, loadTimeout)
		pos, err := s.loadPositions(ctx)
		cancel()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("bus slot positions unreadable; rejoining the group", "err", err)
				s.cl.ForceRebalance()
			}
			return
		}
		s.commitMu.Lock()
		s.mu.Lock()
		var cs []slotCommit
		for _, x := range load {
			st := &s.slots[x]
			p := pos[x]
			st.held, st.open = true, true
			st.epoch++
			st.pos, st.committed, st.committedMeta = p.offset, p.committed, p.meta
			st.handedUpTo, st.handedAttempt = parseHanded(p.meta)
			if p.committed < 0 {
				// A new durable: commit where it starts, so that it
				// exists and later subscriptions resume there.
				if c, ok := s.commitOf(x); ok {
					cs = append(cs, c)
				}
			}
		}
		s.mu.Unlock()
		s.send(cs)
		s.commitMu.Unlock()
	}
	s.mu.Lock()
	s.reposition = true
	if s.stopPoll != nil {
		s.stopPoll()
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// slotPosition is a slot's position as read from its side group.
type slotPosition struct {
	offset    int64
	meta      string
	committed int64 // offset, or -1 when nothing was committed
}

// loadPositions reads every slot's committed position. Slots without one
// start where the durable does: at the lowest position of the other slots
// when there are some, else (a new durable) at StartSeq, StartTime or the
// oldest message.
func (s *subscription) loadPositions(ctx context.Context) ([numSlots]slotPosition, error) {
	var out [numSlots]slotPosition
	groups := slotGroups(s.group)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		var errs []error
		resps := kadm.NewClient(s.fcl).FetchManyOffsets(ctx, groups...)
		start := int64(-1)
		for x, g := range groups {
			out[x] = slotPosition{committed: -1}
			r, ok := resps[g]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("group %s: no answer", g))
				continue
			case r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound):
				errs = append(errs, fmt.Errorf("group %s: %w", g, r.Err))
				continue
			}
			o, ok := r.Fetched.Lookup(s.ktopic, 0)
			if !ok || o.Err != nil || o.At < 0 {
				continue
			}
			out[x] = slotPosition{offset: o.At, meta: o.Metadata, committed: o.At}
			if start < 0 || o.At < start {
				start = o.At
			}
		}
		if len(errs) == 0 {
			if start < 0 {
				var err error
				if start, err = s.startPosition(ctx); err != nil {
					errs = append(errs, err)
				}
			}
			if len(errs) == 0 {
				for x := range out {
					if out[x].committed < 0 {
						out[x].offset = start
					}
				}
				return out, nil
			}
		}
		err := errors.Join(errs...)
		s.log.Warn("bus slot positions unreadable", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(wait):
		}
	}
}

// startPosition is where a new durable starts.
func (s *subscription) startPosition(ctx context.Context) (int64, error) {
	switch {
	case s.opts.StartSeq > 0:
		return int64(s.opts.StartSeq) - 1, nil
	case s.opts.StartTime.IsZero():
		return 0, nil // the oldest message: fetching resets to it
	}
	adm := kadm.NewClient(s.fcl)
	listed, err := adm.ListOffsetsAfterMilli(ctx, s.opts.StartTime.UnixMilli(), s.ktopic)
	if err != nil {
		return 0, fmt.Errorf("offset after %v: %w", s.opts.StartTime, err)
	}
	o, ok := listed.Lookup(s.ktopic, 0)
	switch {
	case !ok:
		return 0, fmt.Errorf("offset after %v: partition missing", s.opts.StartTime)
	case o.Err != nil:
		return 0, fmt.Errorf("offset after %v: %w", s.opts.StartTime, o.Err)
	case o.Offset >= 0:
		return o.Offset, nil
	}
	// No message at or after the time yet: start at the end.
	ends, err := adm.ListEndOffsets(ctx, s.ktopic)
	if err != nil {
		return 0, fmt.Errorf("end offset: %w", err)
	}
	e, ok := ends.Lookup(s.ktopic, 0)
	if !ok || e.Err != nil {
		return 0, fmt.Errorf("end offset: %v", e.Err)
	}
	return e.Offset, nil
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

// run fetches records and handles each batch in turn until the
// subscription stops. It fetches from the lowest position of the slots
// this member has open, anew after every assignment, and waits while it
// has none.
func (s *subscription) run() {
	defer close(s.done)
	errDelay := time.Duration(0)
	for {
		if s.ctx.Err() != nil {
			s.endRun()
			return
		}
		s.mu.Lock()
		reposition := s.reposition
		s.reposition = false
		from, any := int64(-1), false
		for x := range s.slots {
			if st := &s.slots[x]; st.open && (!any || st.pos < from) {
				from, any = st.pos, true
			}
		}
		pollCtx, stopPoll := context.WithCancel(s.ctx)
		s.stopPoll = stopPoll
		s.mu.Unlock()
		if reposition {
			if s.fetching {
				s.fcl.RemoveConsumePartitions(map[string][]int32{s.ktopic: {0}})
			}
			s.fetching = any
			if any {
				s.fcl.AddConsumePartitions(map[string]map[int32]kgo.Offset{s.ktopic: {0: kgo.NewOffset().At(from).WithEpoch(-1)}})
				s.cursor = from
			}
		}
		if !s.fetching {
			select {
			case <-s.wake:
			case <-s.ctx.Done():
			}
			stopPoll()
			continue
		}
		fetches := s.fcl.PollRecords(pollCtx, s.opts.Prefetch)
		stopPoll()
		if s.ctx.Err() != nil || fetches.IsClientClosed() {
			s.endRun()
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

func (s *subscription) endRun() {
	if s.abandoned.Load() {
		s.cl.Close()
		s.fcl.Close()
	}
}

// handleBatch hands the records of a poll that belong to open slots, from
// each slot's position on, to the handlers, and commits the outcome per
// slot. Before handling, it commits each slot's unchanged position with
// metadata saying how far its records were handed out (an Untracked
// subscription commits past the batch instead). After, it commits each
// slot past its last record when all were resolved; when Stop or a
// revoke cut the batch short, it commits up to the slot's first record
// not resolved, which, with the records after it, goes to the slot's next
// holder.
func (s *subscription) handleBatch(recs []*kgo.Record) {
	b := &batch{last: recs[len(recs)-1].Offset}
	s.commitMu.Lock()
	s.mu.Lock()
	for x := range s.slots {
		// A slot whose position is before the cursor (taken since the
		// fetch began) is not covered: its records from its position
		// on are not all in the stream; run fetches anew for it.
		if st := &s.slots[x]; st.open && st.pos >= s.cursor {
			b.covered[x], b.epoch[x] = true, st.epoch
			if st.handedUpTo < st.pos {
				st.handedUpTo, st.handedAttempt = -1, 0
			}
			b.prevUpTo[x], b.prevAttempt[x] = st.handedUpTo, st.handedAttempt
		}
	}
	s.cursor = b.last + 1
	for _, r := range recs {
		x := slotOf(r.Key, r.Offset)
		st := &s.slots[x]
		if !b.covered[x] || r.Offset < st.pos {
			continue
		}
		attempt := 1
		if r.Offset <= st.handedUpTo {
			attempt = st.handedAttempt + 1
		}
		b.ds = append(b.ds, s.delivery(r, x, attempt))
		b.has[x] = true
	}
	var cs []slotCommit
	for x := range s.slots {
		if !b.has[x] {
			continue
		}
		st := &s.slots[x]
		if s.opts.Untracked {
			st.pos = b.last + 1
		} else {
			for _, d := range b.ds {
				if d.slot == x {
					st.handedUpTo = max(st.handedUpTo, d.offset)
					st.handedAttempt = max(st.handedAttempt, d.m.Attempt)
				}
			}
		}
		if c, ok := s.commitOf(x); ok {
			cs = append(cs, c)
		}
	}
	s.cur = b
	s.mu.Unlock()
	s.send(cs)
	s.commitMu.Unlock()

	queues := make([][]*delivery, s.opts.MaxInFlight)
	for _, d := range b.ds {
		w := s.worker(d.m)
		queues[w] = append(queues[w], d)
	}
	var wg sync.WaitGroup
	for _, q := range queues {
		if len(q) > 0 {
			wg.Go(func() { s.work(b, q) })
		}
	}
	wg.Wait()

	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	cs = cs[:0]
	for x := range s.slots {
		st := &s.slots[x]
		if !b.covered[x] || !st.held || st.epoch != b.epoch[x] {
			continue
		}
		b.settle(x, st)
		if !b.has[x] && st.pos-st.committed < idleCommitGap {
			continue
		}
		if c, ok := s.commitOf(x); ok {
			cs = append(cs, c)
		}
	}
	s.cur = nil
	s.mu.Unlock()
	s.send(cs)
}

// slotCommit is one commit of a slot's position.
type slotCommit struct {
	slot   int
	offset int64
	meta   string
}

// commitOf returns the commit that brings slot x's side group up to date,
// and false when it is; it counts it as committed. Callers hold s.mu and
// s.commitMu, and send what it returns before releasing s.commitMu.
func (s *subscription) commitOf(x int) (slotCommit, bool) {
	st := &s.slots[x]
	meta := st.meta()
	if s.abandoned.Load() || st.pos == st.committed && meta == st.committedMeta {
		return slotCommit{}, false
	}
	st.committed, st.committedMeta = st.pos, meta
	return slotCommit{slot: x, offset: st.pos, meta: meta}, true
}

// send commits slot positions, each in its side group (one request per
// group, sent together). A failed commit is logged, not returned: the
// records it covers are delivered again, which at least once allows.
func (s *subscription) send(cs []slotCommit) {
	if len(cs) == 0 || s.abandoned.Load() {
		return
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			if err := s.commit(slotGroup(s.group, c.slot), c.offset, c.meta); err != nil {
				s.log.Warn("bus commit failed", "slot", c.slot, "offset", c.offset, "err", err)
				s.mu.Lock()
				s.slots[c.slot].committed = -1 // commit again next time
				s.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// commit commits offset with metadata for a side group. Side groups have
// no members, so the commit is a standalone one (no generation).
func (s *subscription) commit(group string, offset int64, metadata string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = -1
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
	resp, err := req.RequestWith(ctx, s.fcl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
		}
	}
	return nil
}
func (s *subscription) delivery(r *kgo.Record, slot, attempt int) *delivery {
	d := &delivery{offset: r.Offset, slot: slot, m: bus.Message{
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

// work handles a worker's queue in order. A record whose slot this member
// gave up (or is giving up: a rebalance is under way) since the batch was
// taken is dropped, with every later record of its slot in the batch, so
// that they go to the slot's next holder in order.
func (s *subscription) work(b *batch, q []*delivery) {
	for _, d := range q {
		if s.ctx.Err() != nil {
			return // handed back: not done
		}
		s.mu.Lock()
		st := &s.slots[d.slot]
		if b.stalled[d.slot] || !st.open || st.epoch != b.epoch[d.slot] {
			b.stalled[d.slot] = true
			s.mu.Unlock()
			continue
		}
		st.busy++
		d.started = true
		s.mu.Unlock()
		done := s.handle(d)
		s.mu.Lock()
		st.busy--
		d.done = done
		s.mu.Unlock()
	}
}

// handle runs the handler until it succeeds, the message is dead, or the
// subscription stops, and says whether the message is resolved. Retries
// happen here, so the message keeps its place ahead of later ones with
// its key.
func (s *subscription) handle(d *delivery) bool {
	if s.opts.MaxDeliver > 0 && d.m.Attempt > s.opts.MaxDeliver {
		s.die(d, errTooManyDeliveries)
		return true
	}
	for {
		start := time.Now()
		err := s.call(d.m)
		s.latency.Observe(time.Since(start).Seconds())
		if err == nil {
			s.acked.Inc()
			return true
		}
		if s.ctx.Err() != nil {
			return false // stopping: the attempt was cut short, hand it back
		}
		s.failed.Inc()
		if s.opts.MaxDeliver > 0 && d.m.Attempt >= s.opts.MaxDeliver {
			s.die(d, err)
			return true
		}
		delay := bus.RetryDelay(s.opts.RetryDelay, d.m.Attempt)
		s.log.Warn("bus handler failed", "seq", d.m.Seq, "key", d.m.Key, "attempt", d.m.Attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return false
		}
		d.m.Attempt++
	}
}

func (s *subscription) die(d *delivery, err error) {
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
