package algorithm

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Breaker states, as reported in InstanceStatus.Breaker and the
// tianshu_algorithm_breaker_state gauge (0, 1, 2).
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

const (
	stClosed int32 = iota
	stHalfOpen
	stOpen
)

// breaker is a per-instance circuit breaker: it opens after threshold
// consecutive failures, lets one probe through after the cool-down
// (half-open), and closes on the probe's success. Lock-free: the hot path
// is one atomic load.
type breaker struct {
	threshold int32
	cooldown  time.Duration
	state     atomic.Int32
	fails     atomic.Int32
	openUntil atomic.Int64 // unix nanoseconds
	gauge     prometheus.Gauge
}

func (b *breaker) set(s int32) {
	b.state.Store(s)
	if b.gauge != nil {
		b.gauge.Set(float64(s))
	}
}

// available reports, without side effects, whether allow could succeed.
func (b *breaker) available(now time.Time) bool {
	switch b.state.Load() {
	case stClosed:
		return true
	case stOpen:
		return now.UnixNano() >= b.openUntil.Load()
	}
	return false
}

// allow reports whether a call may go; when the cool-down has passed it
// turns the breaker half-open and lets exactly this caller probe.
func (b *breaker) allow(now time.Time) bool {
	switch b.state.Load() {
	case stClosed:
		return true
	case stOpen:
		if now.UnixNano() >= b.openUntil.Load() && b.state.CompareAndSwap(stOpen, stHalfOpen) {
			if b.gauge != nil {
				b.gauge.Set(float64(stHalfOpen))
			}
			return true
		}
	}
	return false
}

func (b *breaker) success() {
	b.fails.Store(0)
	if b.state.Load() != stClosed {
		b.set(stClosed)
	}
}

func (b *breaker) failure(now time.Time) {
	if b.state.Load() == stHalfOpen || b.fails.Add(1) >= b.threshold {
		b.openUntil.Store(now.Add(b.cooldown).UnixNano())
		b.set(stOpen)
	}
}

// release ends a probe that told nothing (the caller gave up): the next
// call may probe again at once.
func (b *breaker) release(now time.Time) {
	if b.state.Load() == stHalfOpen {
		b.openUntil.Store(now.UnixNano())
		b.set(stOpen)
	}
}

func (b *breaker) String() string {
	switch b.state.Load() {
	case stOpen:
		return BreakerOpen
	case stHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}
