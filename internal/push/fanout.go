package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/ids"
)

// Webhook fan-out. Every webhook subscription keeps its own floor (its
// position, saved in its row), but the events of a project are read from
// the bus once per replica: a hub per events topic holds one untracked
// bus consumer that appends every event, in sequence order, to a bounded
// ring in memory, and every runner of the topic reads the ring at its own
// pace into its own dispatcher (its workers, per-key order and retries).
// A runner that is behind the ring (after a start from an older floor, or
// because its receiver is slower than the events arrive and the ring
// dropped what it had not read yet) reads the bus through its own durable
// from just after the last event it took, as every runner did before, and
// goes back to the ring once it has caught up with it. So a slow or failing
// receiver holds back nobody but its own subscription, and the ring's
// memory is bounded however far a subscription falls behind.
//
// The ring holds no position: after a crash or restart each runner starts
// from its own saved floor, and the hub starts anew just after the newest
// event of its topic.

const (
	// hubRingEvents and hubRingBytes bound a hub's ring: the oldest event
	// is dropped when a new one would pass either.
	hubRingEvents = 4096
	hubRingBytes  = 16 << 20
	// hubPrefetch is how many events the hub's bus consumer takes ahead.
	hubPrefetch = 512
	// ownPrefetch is how many events a runner reading its own durable takes
	// ahead of its dispatcher.
	ownPrefetch = 256
	// ringBatch is how many events a runner copies from the ring at once.
	ringBatch = 64
)

// hub is the shared reader of one events topic on this replica.
type hub struct {
	s     *Service
	topic string

	mu sync.Mutex
	// ring holds the events with a sequence in (floor, top], oldest first,
	// once known: the consumer hands every event on in sequence order, so
	// the ring misses none above floor.
	ring  []bus.Message
	bytes int
	floor uint64
	known bool
	// wake has one channel per reading runner, signalled (without
	// blocking) when an event is appended.
	wake map[*runner]chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// hubFor returns the hub of topic, starting it if needed, and registers r
// as one of its readers.
func (s *Service) hubFor(topic string, r *runner) (*hub, chan struct{}) {
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	h := s.hubs[topic]
	if h == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h = &hub{s: s, topic: topic, wake: map[*runner]chan struct{}{}, cancel: cancel, done: make(chan struct{})}
		s.hubs[topic] = h
		go h.run(ctx)
	}
	w := make(chan struct{}, 1)
	h.mu.Lock()
	h.wake[r] = w
	h.mu.Unlock()
	return h, w
}

// leave unregisters r; the last reader to leave stops the hub.
func (s *Service) leave(h *hub, r *runner) {
	s.hubMu.Lock()
	h.mu.Lock()
	delete(h.wake, r)
	last := len(h.wake) == 0
	h.mu.Unlock()
	if last && s.hubs[h.topic] == h {
		delete(s.hubs, h.topic)
	}
	s.hubMu.Unlock()
	if last {
		h.cancel()
		<-h.done
	}
}

// run keeps the hub's bus consumer running until ctx ends, then deletes
// its durable.
func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	s := h.s
	// A durable of its own per start: the ring starts empty, at the
	// events stored from now on. An untracked durable left behind by a
	// crash costs the bus little and is forgotten (natsbus: after an hour).
	durable := ids.New("push-hub")
	opts := bus.SubscribeOptions{MaxInFlight: 1, Prefetch: hubPrefetch, MaxDeliver: -1, Untracked: true,
		AckWait: s.cfg.AckWait, StartTime: s.now()}
	if th, ok := s.bus.(TopicHead); ok {
		// Just after the newest event: the ring serves the runners that
		// are up to date from the start. Without the head, the ring's
		// floor is known once the first event stored from now on comes.
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last, err := th.LastSeq(lctx, h.topic)
		cancel()
		if err == nil {
			opts.StartSeq = last + 1
		}
	}
	for {
		bs, err := s.bus.Subscribe(ctx, h.topic, durable, opts, h.append)
		if err == nil {
			if opts.StartSeq > 0 {
				// Every event after the head comes, in order.
				h.mu.Lock()
				if !h.known {
					h.floor, h.known = opts.StartSeq-1, true
					h.wakeAll()
				}
				h.mu.Unlock()
			}
			s.log.DebugContext(ctx, "webhook hub started", "topic", h.topic, "durable", durable)
			<-ctx.Done()
			if err := bs.Stop(); err != nil {
				s.log.WarnContext(ctx, "webhook hub stop failed", "topic", h.topic, "err", err)
			}
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.bus.DeleteConsumer(dctx, h.topic, durable); err != nil && !errors.Is(err, bus.ErrNotFound) {
				s.log.WarnContext(ctx, "webhook hub durable not deleted", "topic", h.topic, "durable", durable, "err", err)
			}
			cancel()
			return
		}
		s.log.WarnContext(ctx, "webhook hub not started", "topic", h.topic, "err", err)
		select {
		case <-time.After(s.cfg.Reconcile):
		case <-ctx.Done():
			return
		}
	}
}

// append is the hub consumer's handler: it adds m to the ring and wakes
// the readers.
func (h *hub) append(_ context.Context, m bus.Message) error {
	h.mu.Lock()
	if !h.known {
		h.floor, h.known = m.Seq-1, true
	}
	if m.Seq <= h.floor || (len(h.ring) > 0 && m.Seq <= h.ring[len(h.ring)-1].Seq) {
		h.mu.Unlock()
		return nil // cannot happen with one worker in sequence order
	}
	m.Attempt = 1
	h.ring = append(h.ring, m)
	h.bytes += len(m.Data)
	drop := 0
	for len(h.ring)-drop > 1 && (len(h.ring)-drop > h.s.ringEvents || h.bytes > hubRingBytes) {
		h.bytes -= len(h.ring[drop].Data)
		h.floor = h.ring[drop].Seq
		drop++
	}
	if drop > 0 {
		// Shift in bulk now and then rather than per event.
		clear(h.ring[:drop])
		h.ring = h.ring[drop:]
	}
	h.wakeAll()
	h.mu.Unlock()
	return nil
}

// wakeAll signals every reader, without blocking; h.mu is held.
func (h *hub) wakeAll() {
	for _, w := range h.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// read copies into buf the events after last, up to len(buf). ok is false
// when the ring cannot serve last: not started yet, or last is below what
// it holds.
func (h *hub) read(last uint64, buf []bus.Message) (n int, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.known || last < h.floor {
		return 0, false
	}
	i := sort.Search(len(h.ring), func(i int) bool { return h.ring[i].Seq > last })
	return copy(buf, h.ring[i:]), true
}

// covers reports whether the ring can serve the events after last.
func (h *hub) covers(last uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.known && last >= h.floor
}

// feed hands the runner's events, from the one after last on, to d in
// sequence order until ctx ends: from the hub's ring while it holds them,
// else from the runner's own durable.
func (r *runner) feed(ctx context.Context, last uint64, d *dispatcher) {
	s := r.s
	h, wake := s.hubFor(r.sub.Topic(), r)
	defer s.leave(h, r)
	buf := make([]bus.Message, ringBatch)
	for ctx.Err() == nil {
		n, ok := h.read(last, buf)
		if !ok {
			last = r.readOwn(ctx, h, wake, last, d)
			continue
		}
		for _, m := range buf[:n] {
			if !r.c.done(m.Seq) && !d.put(ctx, m) {
				return
			}
			last = m.Seq
		}
		clear(buf[:n])
		if n == 0 {
			select {
			case <-wake:
			case <-ctx.Done():
			}
		}
	}
}

// readOwn reads the runner's own durable from the event after last until
// the hub's ring covers what it has taken, or ctx ends, and returns the
// last event it handed to d.
func (r *runner) readOwn(ctx context.Context, h *hub, wake <-chan struct{}, last uint64, d *dispatcher) uint64 {
	s := r.s
	met := &s.met.webhook
	met.ownReads.Inc()
	met.ownReaders.Inc()
	defer met.ownReaders.Dec()
	caught := make(chan struct{})
	var once sync.Once
	// The handler (one at a time) moves at; it is read while it runs only
	// to see whether the ring covers it yet.
	var at atomic.Uint64
	at.Store(last)
	handler := func(hctx context.Context, m bus.Message) error {
		if m.Seq <= at.Load() {
			return nil
		}
		if !r.c.done(m.Seq) && !d.put(hctx, m) {
			return hctx.Err()
		}
		at.Store(m.Seq)
		if h.covers(m.Seq) {
			once.Do(func() { close(caught) })
		}
		return nil
	}
	for ctx.Err() == nil {
		last = at.Load()
		if h.covers(last) {
			return last
		}
		opts := bus.SubscribeOptions{MaxInFlight: 1, Prefetch: ownPrefetch, MaxDeliver: -1, Untracked: true,
			AckWait: s.cfg.AckWait, StartSeq: last + 1}
		err := s.bus.DeleteConsumer(ctx, r.sub.Topic(), r.sub.ID)
		var bs bus.Subscription
		if err == nil || errors.Is(err, bus.ErrNotFound) {
			bs, err = s.bus.Subscribe(ctx, r.sub.Topic(), r.sub.ID, opts, handler)
		}
		if err != nil {
			s.log.WarnContext(ctx, "subscription delivery not started", "subscription", r.sub.ID, "err", err)
			r.c.note(err, s.now())
			select {
			case <-time.After(s.cfg.Reconcile):
			case <-ctx.Done():
			}
			continue
		}
		s.log.DebugContext(ctx, "webhook subscription reads its own durable", "subscription", r.sub.ID, "from", last+1)
	wait:
		for {
			select {
			case <-caught:
				break wait
			case <-wake:
				// An idle topic: the hub may have started since.
				if h.covers(at.Load()) {
					break wait
				}
			case <-ctx.Done():
				break wait
			}
		}
		// Stop waits for the handler: at is final after it.
		if err := bs.Stop(); err != nil {
			s.log.WarnContext(ctx, "subscription delivery stop failed", "subscription", r.sub.ID, "err", err)
		}
		last = at.Load()
		if ctx.Err() == nil {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = s.bus.DeleteConsumer(dctx, r.sub.Topic(), r.sub.ID)
			cancel()
			s.log.DebugContext(ctx, "webhook subscription reads the hub", "subscription", r.sub.ID, "from", last+1)
		}
		return last
	}
	return at.Load()
}

// dispatcher runs one runner's events: up to workers at once, the events
// of a key one after another in sequence order, each retried in place with
// a growing delay until the handler takes it, so that later events of its
// key wait behind it while other keys go on.
type dispatcher struct {
	h       func(ctx context.Context, m bus.Message) error
	retry   time.Duration
	workers int
	log     *slog.Logger

	// slots holds a token per event put and not yet done.
	slots chan struct{}
	// ready holds the events a worker may take: at most one per key (its
	// oldest), the later ones waiting in waiting; all of them, in order,
	// with one worker.
	ready chan bus.Message
	mu    sync.Mutex
	// waiting holds, for every key with an event ready or running, its
	// later events in order.
	waiting map[string][]bus.Message
	wg      sync.WaitGroup
}

func newDispatcher(workers, prefetch int, retry time.Duration, log *slog.Logger, h func(ctx context.Context, m bus.Message) error) *dispatcher {
	workers = max(1, workers)
	prefetch = max(prefetch, workers)
	return &dispatcher{h: h, retry: retry, workers: workers, log: log, slots: make(chan struct{}, prefetch),
		ready: make(chan bus.Message, prefetch), waiting: map[string][]bus.Message{}}
}

// start runs the workers until ctx ends; wait waits for them.
func (d *dispatcher) start(ctx context.Context) {
	for range d.workers {
		d.wg.Go(func() { d.work(ctx) })
	}
}

func (d *dispatcher) wait() { d.wg.Wait() }

// put queues m, waiting for room; false when ctx ended first.
func (d *dispatcher) put(ctx context.Context, m bus.Message) bool {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	m.Attempt = 1
	if d.workers == 1 || m.Key == "" {
		d.ready <- m
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if q, busy := d.waiting[m.Key]; busy {
		d.waiting[m.Key] = append(q, m)
		return true
	}
	d.waiting[m.Key] = nil
	d.ready <- m
	return true
}

// release makes the next event of m's key ready and frees m's slot.
func (d *dispatcher) release(m bus.Message) {
	if d.workers > 1 && m.Key != "" {
		d.mu.Lock()
		q := d.waiting[m.Key]
		if len(q) == 0 {
			delete(d.waiting, m.Key)
		} else {
			d.waiting[m.Key] = q[1:]
			d.ready <- q[0]
		}
		d.mu.Unlock()
	}
	<-d.slots
}

func (d *dispatcher) work(ctx context.Context) {
	for {
		select {
		case m := <-d.ready:
			if !d.handle(ctx, m) {
				return
			}
			d.release(m)
		case <-ctx.Done():
			return
		}
	}
}

// handle calls the handler until it succeeds; false when ctx ended first
// (the event is left unacknowledged: it comes again after the next start,
// from the floor).
func (d *dispatcher) handle(ctx context.Context, m bus.Message) bool {
	for {
		if d.call(ctx, m) == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		t := time.NewTimer(bus.RetryDelay(d.retry, m.Attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		m.Attempt++
	}
}

// call runs the handler, turning a panic into an error (retried like
// one): one bad event must not bring down the process.
func (d *dispatcher) call(ctx context.Context, m bus.Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			d.log.ErrorContext(ctx, "webhook handler panicked", "seq", m.Seq, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("push: handler panicked: %v", p)
		}
	}()
	return d.h(ctx, m)
}
