package flow

import (
	"sync"
	"time"
)

// State is the memory of a task's stream nodes (tracks, best shots, dedup
// windows...). The caller owns one State per task and passes it with every
// message of that task, so the engine keeps no globals and a task that
// restarts starts fresh. It is safe for concurrent messages; each stream
// node locks only its own part.
type State struct {
	mu    sync.Mutex
	nodes map[*node]any
	clock func() time.Time
}

// NewState returns an empty state. clock tells stream nodes the time for
// messages that carry none (Input.Time zero); nil means time.Now.
func NewState(clock func() time.Time) *State {
	if clock == nil {
		clock = time.Now
	}
	return &State{nodes: map[*node]any{}, clock: clock}
}

// Reset forgets everything, as if the task had restarted.
func (s *State) Reset() {
	s.mu.Lock()
	s.nodes = map[*node]any{}
	s.mu.Unlock()
}

func (s *State) forNode(n *node, init func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.nodes[n]
	if !ok {
		v = init()
		s.nodes[n] = v
	}
	return v
}

// keyed is a bounded map for per-key stream state: at most max keys, least
// recently used evicted first, and keys idle for longer than ttl dropped by
// expire. The caller holds the lock that guards it.
type keyed[V any] struct {
	max  int
	ttl  time.Duration
	m    map[string]*entry[V]
	head *entry[V] // most recently used
	tail *entry[V]
}

type entry[V any] struct {
	key        string
	v          V
	seen       time.Time
	prev, next *entry[V]
}

func newKeyed[V any](max int, ttl time.Duration) *keyed[V] {
	if max <= 0 {
		max = 10000
	}
	return &keyed[V]{max: max, ttl: ttl, m: map[string]*entry[V]{}}
}

func (k *keyed[V]) unlink(e *entry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		k.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		k.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (k *keyed[V]) pushFront(e *entry[V]) {
	e.next = k.head
	if k.head != nil {
		k.head.prev = e
	}
	k.head = e
	if k.tail == nil {
		k.tail = e
	}
}

// get returns the value for key, creating it with create, and marks it
// used at now. evicted, when not nil, sees each value pushed out by the
// size bound.
func (k *keyed[V]) get(key string, now time.Time, create func() V, evicted func(string, V)) V {
	if e, ok := k.m[key]; ok {
		k.unlink(e)
		k.pushFront(e)
		if now.After(e.seen) {
			e.seen = now
		}
		return e.v
	}
	for len(k.m) >= k.max && k.tail != nil {
		old := k.tail
		k.unlink(old)
		delete(k.m, old.key)
		if evicted != nil {
			evicted(old.key, old.v)
		}
	}
	e := &entry[V]{key: key, v: create(), seen: now}
	k.m[key] = e
	k.pushFront(e)
	return e.v
}

// expire drops keys not used since now-ttl, oldest first.
func (k *keyed[V]) expire(now time.Time, fn func(string, V)) {
	if k.ttl <= 0 {
		return
	}
	for k.tail != nil && now.Sub(k.tail.seen) > k.ttl {
		old := k.tail
		k.unlink(old)
		delete(k.m, old.key)
		if fn != nil {
			fn(old.key, old.v)
		}
	}
}

func (k *keyed[V]) len() int { return len(k.m) }
