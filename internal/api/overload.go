package api

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// Class is an action's concurrency class: the calls of one class share
// one bound on how many run at once (api.concurrency).
type Class string

// The classes, from the registry's metadata: Invoke actions run a flow or
// an algorithm; the others are reads or writes by their permission.
const (
	ClassRead   Class = "read"
	ClassWrite  Class = "write"
	ClassInvoke Class = "invoke"
)

// ClassOf returns a's concurrency class.
func ClassOf(a *Action) Class {
	switch {
	case a.Invoke:
		return ClassInvoke
	case a.Permission.Access == Read:
		return ClassRead
	default:
		return ClassWrite
	}
}

// busyRetryAfter is the Retry-After of a call refused because its class
// is busy: a queue drains in well under a second unless the server is far
// past its capacity, and clients spread their retries anyway.
const busyRetryAfter = time.Second

// classGate bounds the calls of one class running at once. A call past
// the limit waits for a slot, at most wait, behind at most queue others;
// otherwise it is refused. limit 0 is unlimited (only counted).
type classGate struct {
	class  Class
	slots  chan struct{} // one token per running call; nil: unlimited
	queue  int64
	wait   time.Duration
	queued atomic.Int64

	inflight, waiting prometheus.Gauge
	full, late        prometheus.Counter
}

// gateMetrics are the gates' metric vectors, registered once per gateway.
type gateMetrics struct {
	inflight, queued *prometheus.GaugeVec
	rejected         *prometheus.CounterVec
}

func newGateMetrics(r prometheus.Registerer) gateMetrics {
	m := gateMetrics{
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tianshu_api_inflight",
			Help: "Action API calls running now, by concurrency class (read, write, invoke).",
		}, []string{"class"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tianshu_api_queued",
			Help: "Action API calls waiting for a slot of their concurrency class now.",
		}, []string{"class"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_api_rejected_total",
			Help: "Action API calls refused with RequestLimitExceeded because their class was busy, by class and reason (queue_full, queue_wait).",
		}, []string{"class", "reason"}),
	}
	m.inflight = telemetry.MustRegister(r, m.inflight)
	m.queued = telemetry.MustRegister(r, m.queued)
	m.rejected = telemetry.MustRegister(r, m.rejected)
	return m
}

func newClassGate(class Class, limit, queue int, wait time.Duration, m gateMetrics) *classGate {
	g := &classGate{class: class, queue: int64(queue), wait: wait,
		inflight: m.inflight.WithLabelValues(string(class)), waiting: m.queued.WithLabelValues(string(class)),
		full: m.rejected.WithLabelValues(string(class), "queue_full"), late: m.rejected.WithLabelValues(string(class), "queue_wait")}
	if limit > 0 {
		g.slots = make(chan struct{}, limit)
	}
	return g
}

// acquire takes a slot for one call, waiting in the queue when none is
// free, and returns the release to call once the call is done. It refuses
// with RequestLimitExceeded (Retry-After set) when the queue is full or
// the wait ends, and when ctx ends first (the client hung up).
func (g *classGate) acquire(ctx context.Context) (release func(), err error) {
	if g.slots == nil {
		g.inflight.Inc()
		return g.inflight.Dec, nil
	}
	// The fast path only while nobody waits: a call arriving at a busy
	// class queues behind those already waiting (a channel's senders are
	// served in order), rather than overtake them.
	if g.queued.Load() == 0 {
		select {
		case g.slots <- struct{}{}:
			g.inflight.Inc()
			return g.release, nil
		default:
		}
	}
	if g.queued.Add(1) > g.queue {
		g.queued.Add(-1)
		g.full.Inc()
		return nil, g.busy("its queue is full")
	}
	g.waiting.Inc()
	defer func() {
		g.queued.Add(-1)
		g.waiting.Dec()
	}()
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		g.inflight.Inc()
		return g.release, nil
	case <-t.C:
		g.late.Inc()
		return nil, g.busy("no slot came free within " + g.wait.String())
	case <-ctx.Done():
		return nil, g.busy("the request ended while it waited")
	}
}

func (g *classGate) release() {
	g.inflight.Dec()
	<-g.slots
}

func (g *classGate) busy(why string) *Error {
	return &Error{Code: RequestLimitExceeded, RetryAfter: busyRetryAfter,
		Message: "server busy: " + string(g.class) + " actions are at this server's concurrency limit (" + why + "); nothing was done, retry after 1 s"}
}

// gates are a gateway's class gates.
type gates struct {
	read, write, invoke *classGate
}

func newGates(c Config, r prometheus.Registerer) gates {
	m := newGateMetrics(r)
	cc := c.Concurrency
	return gates{
		read:   newClassGate(ClassRead, cc.Read, cc.Queue, cc.QueueWait, m),
		write:  newClassGate(ClassWrite, cc.Write, cc.Queue, cc.QueueWait, m),
		invoke: newClassGate(ClassInvoke, cc.Invoke, cc.Queue, cc.QueueWait, m),
	}
}

// of returns a's class's gate.
func (gs gates) of(a *Action) *classGate {
	switch ClassOf(a) {
	case ClassInvoke:
		return gs.invoke
	case ClassRead:
		return gs.read
	default:
		return gs.write
	}
}
