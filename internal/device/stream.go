package device

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// session connects to a device once and produces until the connection ends;
// the stream calls it again, after a backoff, when it returns. Returning
// errFinished ends the stream for good (a replay that does not loop).
type session func(ctx context.Context, em *emitter) error

// errFinished tells the stream not to reconnect.
var errFinished = errors.New("finished")

// Queue bounds: events wait in a bounded queue (oldest dropped when full),
// statuses likewise; frames never wait (one-slot mailbox).
const (
	maxQueuedEvents   = 256
	maxQueuedStatuses = 16
	fpsWindow         = 32
	// stableAfter is how long a session must stay online for the next
	// failure to start the backoff from Initial again.
	stableAfter = 5 * time.Second
)

// stream is the Source every driver returns: a connect loop with backoff, a
// status, and a delivery goroutine with a one-frame mailbox: latest-frame-wins
// by default; with Delivery.Backpressure the producer waits for the slot
// instead, and frames go out from a goroutine of their own.
type stream struct {
	env     *Env
	cfg     Config
	sink    Sink
	run     session
	onClose func()

	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}
	// frameWake and taken are used with Delivery.Backpressure only: the
	// frame goroutine waits on frameWake, a producer waiting for the
	// mailbox on taken.
	frameWake chan struct{}
	taken     chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	st         Status
	seq        uint64
	frameTimes [fpsWindow]time.Time
	nTimes     int
	pending    *Frame
	inFrame    bool // the sink is in Frame (back-pressure)
	// waitingSince is when the producer began waiting for the mailbox
	// (back-pressure); zero while it is not waiting.
	waitingSince time.Time
	events       []Event
	statuses     []Status
	onlineAt     time.Time
	pids         map[int]struct{}
	// tap, when set, takes every frame instead of the mailbox (probes).
	tap func(Frame)
}

// startStream starts the stream's goroutines and returns it.
func startStream(env *Env, cfg Config, sink Sink, run session) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{
		env: env, cfg: cfg, sink: sink, run: run,
		cancel: cancel,
		done:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		seq:    cfg.Delivery.After,
	}
	if cfg.Delivery.Backpressure {
		s.frameWake, s.taken = make(chan struct{}, 1), make(chan struct{}, 1)
	}
	now := env.Clock.Now()
	s.st = Status{DeviceID: cfg.ID, Driver: cfg.Driver, State: StateConnecting, Since: now}
	s.statuses = append(s.statuses, s.st)
	env.m.sources.WithLabelValues(cfg.Driver, string(StateConnecting)).Inc()
	// A driver's counters show at 0 from its first source on, so that a
	// rate over them reads 0, not "no data", until something happens
	// (dashboards, alerts, and a scrape that lists every name).
	env.m.frames.WithLabelValues(cfg.Driver)
	env.m.drops.WithLabelValues(cfg.Driver)
	env.m.events.WithLabelValues(cfg.Driver)
	env.m.reconnects.WithLabelValues(cfg.Driver)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.loop(ctx) }()
	go func() { defer wg.Done(); s.deliver(ctx) }()
	if cfg.Delivery.Backpressure {
		wg.Add(1)
		go func() { defer wg.Done(); s.deliverFrames(ctx) }()
	}
	go func() { wg.Wait(); close(s.done) }()
	return s
}

func (s *stream) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.MeasuredFPS = s.fpsLocked(s.env.Clock.Now())
	return st
}

func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.done
		s.mu.Lock()
		old := s.st.State
		s.st.State, s.st.Since = StateClosed, s.env.Clock.Now()
		s.mu.Unlock()
		s.env.m.sources.WithLabelValues(s.cfg.Driver, string(old)).Dec()
		if s.onClose != nil {
			s.onClose()
		}
	})
	return nil
}

// loop runs sessions until the stream is closed or a session finishes.
func (s *stream) loop(ctx context.Context) {
	log := s.env.Logger.With("device", s.cfg.ID, "driver", s.cfg.Driver)
	delay := time.Duration(0)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.mu.Lock()
			s.st.Reconnects++
			s.mu.Unlock()
			s.env.m.reconnects.WithLabelValues(s.cfg.Driver).Inc()
		}
		em := &emitter{s: s, ctx: ctx}
		err := s.run(ctx, em)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errFinished) {
			if s.cfg.Delivery.Backpressure {
				s.drainFrames(ctx)
			}
			s.fail(statusErrf(ReasonStreamEnded, "replay finished"))
			log.Info("device source finished")
			return
		}
		if err == nil {
			err = statusErrf(ReasonStreamEnded, "stream ended")
		}
		err = s.cfg.scrubErr(err)
		reason := s.fail(err)
		log.Warn("device session ended", "reason", reason, "err", err)

		s.mu.Lock()
		stable := !s.onlineAt.IsZero() && s.env.Clock.Now().Sub(s.onlineAt) >= stableAfter
		s.onlineAt = time.Time{}
		s.mu.Unlock()
		switch {
		case stable || delay == 0:
			delay = s.env.Backoff.Initial
		default:
			delay = min(2*delay, s.env.Backoff.Max)
		}
		if reason == ReasonAuthFailed || reason == ReasonConfig || reason == ReasonPolicy {
			// Retrying refused credentials fast can lock the account on
			// some cameras; a fixed password (or policy) is picked up
			// within Max/2.
			delay = max(delay, s.env.Backoff.Max/2)
		}
		jittered := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-s.env.Clock.After(jittered):
		}
	}
}

// fail records err as the last error and moves to the state its reason
// implies; it returns the reason.
func (s *stream) fail(err error) string {
	reason := ReasonOf(err)
	s.env.m.errors.WithLabelValues(s.cfg.Driver, reason).Inc()
	s.mu.Lock()
	s.st.LastError = s.cfg.Scrub(err.Error())
	s.setStateLocked(stateFor(reason), reason)
	s.mu.Unlock()
	s.signal()
	return reason
}

// setStateLocked changes state and reason, queueing a status for the sink
// when either changed.
func (s *stream) setStateLocked(state State, reason string) {
	if s.st.State == state && s.st.Reason == reason {
		return
	}
	if s.st.State != state {
		s.env.m.sources.WithLabelValues(s.cfg.Driver, string(s.st.State)).Dec()
		s.env.m.sources.WithLabelValues(s.cfg.Driver, string(state)).Inc()
		s.st.Since = s.env.Clock.Now()
	}
	s.st.State, s.st.Reason = state, reason
	if state == StateOnline {
		s.onlineAt = s.st.Since
	}
	st := s.st
	st.MeasuredFPS = s.fpsLocked(st.Since)
	if len(s.statuses) >= maxQueuedStatuses {
		s.statuses = s.statuses[1:]
	}
	s.statuses = append(s.statuses, st)
}

func (s *stream) fpsLocked(now time.Time) float64 {
	n := min(s.nTimes, fpsWindow)
	if n < 2 {
		return 0
	}
	last := s.frameTimes[(s.nTimes-1)%fpsWindow]
	first := s.frameTimes[(s.nTimes-n)%fpsWindow]
	span := last.Sub(first)
	if span <= 0 {
		return 0
	}
	interval := span / time.Duration(n-1)
	if now.Sub(last) > 3*interval+time.Second {
		return 0 // stalled
	}
	return float64(n-1) / span.Seconds()
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// deliver hands statuses, events and the latest frame to the sink, in that
// order, from one goroutine. With back-pressure, frames are deliverFrames'
// job, so a sink that blocks in Frame does not hold statuses back.
func (s *stream) deliver(ctx context.Context) {
	frames := !s.cfg.Delivery.Backpressure
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			var (
				st    *Status
				ev    *Event
				frame *Frame
			)
			switch {
			case len(s.statuses) > 0:
				st = &s.statuses[0]
				s.statuses = s.statuses[1:]
			case len(s.events) > 0:
				ev = &s.events[0]
				s.events = s.events[1:]
				s.st.Events++
			case frames && s.pending != nil:
				frame, s.pending = s.pending, nil
				s.st.FramesDelivered++
			}
			s.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			switch {
			case st != nil:
				s.sink.Status(*st)
			case ev != nil:
				s.sink.Event(*ev)
			case frame != nil:
				s.sink.Frame(*frame)
			default:
				goto idle
			}
		}
	idle:
	}
}

// deliverFrames hands frames to the sink one by one (Delivery.Backpressure):
// freeing the mailbox lets the producer read the next frame while the sink
// works on this one; the producer waits while the mailbox is full.
func (s *stream) deliverFrames(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.frameWake:
		}
		for {
			s.mu.Lock()
			frame := s.pending
			s.pending = nil
			if frame != nil {
				s.st.FramesDelivered++
				s.inFrame = true
			}
			s.mu.Unlock()
			if frame == nil || ctx.Err() != nil {
				break
			}
			s.notifyTaken()
			s.sink.Frame(*frame)
			s.mu.Lock()
			s.inFrame = false
			s.mu.Unlock()
			s.notifyTaken()
		}
	}
}

// notifyTaken wakes whoever waits on the mailbox: a producer for room, or
// drainFrames for the sink to be done.
func (s *stream) notifyTaken() {
	select {
	case s.taken <- struct{}{}:
	default:
	}
}

// drainFrames waits (back-pressure) until the sink has returned from every
// frame handed over, so that a finished replay says so only after its last
// frame.
func (s *stream) drainFrames(ctx context.Context) {
	for {
		s.mu.Lock()
		idle := s.pending == nil && !s.inFrame
		s.mu.Unlock()
		if idle {
			return
		}
		select {
		case <-s.taken:
		case <-ctx.Done():
			return
		}
	}
}

// emitter is what a session uses to hand over what it produced.
type emitter struct {
	s *stream
	// ctx is the session's: a producer waiting for the mailbox
	// (back-pressure) gives up when it ends.
	ctx context.Context
}

// nextSeq is the Seq the next frame will get. Drivers that can seek (replay)
// start a session at the picture with that number, so a reconnect or a
// resumed consumer (Delivery.After) continues where the last one stopped.
func (e *emitter) nextSeq() uint64 {
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	return e.s.seq + 1
}

// skip gives up the next Seq without a frame (a replay file that does not
// decode), so that Seq keeps naming the same picture.
func (e *emitter) skip() {
	e.s.mu.Lock()
	e.s.seq++
	e.s.mu.Unlock()
}

func (e *emitter) now() time.Time { return e.s.env.Clock.Now() }

// online marks the device online without a frame (a broker connection, a
// healthy adapter).
func (e *emitter) online() {
	e.s.mu.Lock()
	e.s.setStateLocked(StateOnline, "")
	e.s.mu.Unlock()
	e.s.signal()
}

// status reports a state the session's device is in without ending the
// session (an adapter saying its camera went offline).
func (e *emitter) status(state State, reason, msg string) {
	switch state {
	case StateOffline, StateError, StateConnecting:
	default:
		state = StateError
	}
	e.s.mu.Lock()
	if msg != "" {
		e.s.st.LastError = e.s.cfg.Scrub(reason + ": " + msg)
	}
	e.s.setStateLocked(state, reason)
	e.s.mu.Unlock()
	e.s.signal()
}

// frame puts f in the mailbox, replacing (and counting as dropped) a frame
// the sink has not taken yet; with back-pressure it waits for the mailbox to
// be empty instead, and drops f only when the session ends meanwhile.
func (e *emitter) frame(f Frame) {
	s := e.s
	if f.Time.IsZero() {
		f.Time = s.env.Clock.Now()
	}
	f.DeviceID = s.cfg.ID
	if s.tap != nil {
		s.tap(f)
		return
	}
	s.mu.Lock()
	for s.cfg.Delivery.Backpressure && s.pending != nil {
		if s.waitingSince.IsZero() {
			s.waitingSince = s.env.Clock.Now()
		}
		s.mu.Unlock()
		select {
		case <-s.taken:
		case <-e.ctx.Done():
			s.mu.Lock()
			s.waitingSince = time.Time{}
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
	}
	s.waitingSince = time.Time{}
	s.seq++
	f.Seq = s.seq
	s.frameTimes[s.nTimes%fpsWindow] = f.Time
	s.nTimes++
	s.st.LastFrameTime = f.Time
	s.setStateLocked(StateOnline, "")
	dropped := s.pending != nil
	if dropped {
		s.st.Drops++
	}
	s.pending = &f
	s.mu.Unlock()
	s.env.m.frames.WithLabelValues(s.cfg.Driver).Inc()
	if dropped {
		s.env.m.drops.WithLabelValues(s.cfg.Driver).Inc()
	}
	if s.cfg.Delivery.Backpressure {
		select {
		case s.frameWake <- struct{}{}:
		default:
		}
	}
	s.signal() // the status may have changed (online)
}

// event queues ev, dropping the oldest queued event when the queue is full.
func (e *emitter) event(ev Event) {
	s := e.s
	if ev.Time.IsZero() {
		ev.Time = s.env.Clock.Now()
	}
	ev.DeviceID = s.cfg.ID
	s.mu.Lock()
	s.st.LastFrameTime = ev.Time
	s.setStateLocked(StateOnline, "")
	dropped := len(s.events) >= maxQueuedEvents
	if dropped {
		s.events = s.events[1:]
		s.st.Drops++
	}
	s.events = append(s.events, ev)
	s.mu.Unlock()
	s.env.m.events.WithLabelValues(s.cfg.Driver).Inc()
	if dropped {
		s.env.m.drops.WithLabelValues(s.cfg.Driver).Inc()
	}
	s.signal()
}

// process records (add) or forgets a child process's pid.
func (e *emitter) process(pid int, add bool) {
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	if e.s.pids == nil {
		e.s.pids = map[int]struct{}{}
	}
	if add {
		e.s.pids[pid] = struct{}{}
	} else {
		delete(e.s.pids, pid)
	}
}

// Processes returns the pids of the child processes the source runs now.
func (s *stream) Processes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.pids))
	for p := range s.pids {
		out = append(out, p)
	}
	return out
}

// probeEmitter returns an emitter that hands frames to tap and keeps no
// status, for probes that run a session briefly.
func probeEmitter(env *Env, cfg Config, tap func(Frame)) *emitter {
	return &emitter{s: &stream{env: env, cfg: cfg, tap: tap, wake: make(chan struct{}, 1)}, ctx: context.Background()}
}

// pacer spaces work at a fixed rate on the runtime's clock, without drift and
// without bursts after a stall.
type pacer struct {
	clock  Clock
	period time.Duration
	next   time.Time
}

func newPacer(c Clock, fps float64) *pacer {
	return &pacer{clock: c, period: time.Duration(float64(time.Second) / fps)}
}

// wait blocks until the next tick.
func (p *pacer) wait(ctx context.Context) error {
	now := p.clock.Now()
	if p.next.IsZero() || now.Sub(p.next) > p.period {
		p.next = now
	}
	d := p.next.Sub(now)
	p.next = p.next.Add(p.period)
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-p.clock.After(d):
		return nil
	}
}
