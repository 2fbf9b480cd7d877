package function

import "sync"

// Gate caps the script calls that run at once per key (a project), so that
// one project's scripts cannot take every core of the server. Programs
// join a gate through Limits.Gate and Limits.GateKey; a Gate is safe for
// concurrent use and shared by every program of a platform.
type Gate struct {
	perKey int
	mu     sync.Mutex
	keys   map[string]chan struct{}
}

// DefaultGatePerKey is the number of calls per project a zero-sized gate
// allows at once.
const DefaultGatePerKey = 8

// NewGate returns a gate that lets perKey calls of one key run at once
// (DefaultGatePerKey when perKey is not positive).
func NewGate(perKey int) *Gate {
	if perKey <= 0 {
		perKey = DefaultGatePerKey
	}
	return &Gate{perKey: perKey, keys: map[string]chan struct{}{}}
}

// PerKey returns the number of calls of one key allowed at once.
func (g *Gate) PerKey() int { return g.perKey }

// slots returns key's semaphore; programs look it up once, at compile time,
// so a call costs one channel operation, not a map lookup.
func (g *Gate) slots(key string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.keys[key]
	if !ok {
		s = make(chan struct{}, g.perKey)
		g.keys[key] = s
	}
	return s
}
