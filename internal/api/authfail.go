package api

import (
	"sync"
	"time"
)

// Authentication failures come from callers who may not hold any key, so
// each source address may add only a few of them to the audit log: the
// first authFailuresPerWindow in each authFailureWindow are recorded, the
// rest are counted, and the count goes into the next event recorded for
// that address ("Suppressed" in its Detail). Failures of authenticated
// callers (permission denials) are all recorded: they name a principal
// who answers for them, and the app's rate limit bounds them.
const (
	authFailureWindow     = time.Minute
	authFailuresPerWindow = 10
	// authFailureSources bounds the addresses tracked; beyond it, every
	// new address shares one allowance, so a flood from many addresses
	// still adds at most authFailuresPerWindow events a window.
	authFailureSources = 10000
)

// failureGate decides which authentication failures are recorded, per
// source address. It is in memory: each gateway replica keeps its own.
type failureGate struct {
	mu  sync.Mutex
	src map[string]*failureCount
}

type failureCount struct {
	start      time.Time // start of the current window
	recorded   int       // events recorded in the window
	suppressed int       // failures not recorded since the last recorded one
}

// admit reports whether a failure from addr at now is recorded, and how
// many from addr were not since the last one that was.
func (g *failureGate) admit(addr string, now time.Time) (bool, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.src == nil {
		g.src = map[string]*failureCount{}
	}
	c := g.src[addr]
	if c == nil {
		if len(g.src) >= authFailureSources {
			g.prune(now)
		}
		if len(g.src) >= authFailureSources {
			addr = "*"
			c = g.src[addr]
		}
		if c == nil {
			c = &failureCount{start: now}
			g.src[addr] = c
		}
	}
	if now.Sub(c.start) >= authFailureWindow {
		c.start, c.recorded = now, 0
	}
	if c.recorded >= authFailuresPerWindow {
		c.suppressed++
		return false, 0
	}
	c.recorded++
	n := c.suppressed
	c.suppressed = 0
	return true, n
}

// prune forgets addresses whose window has ended with nothing left to
// report.
func (g *failureGate) prune(now time.Time) {
	for a, c := range g.src {
		if now.Sub(c.start) >= authFailureWindow && c.suppressed == 0 {
			delete(g.src, a)
		}
	}
}
