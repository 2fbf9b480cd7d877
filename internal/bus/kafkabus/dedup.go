package kafkabus

import (
	"container/list"
	"sync"
	"time"
)

// dedupWindow remembers the sequence of recently published messages by
// topic and bus.HeaderID, so that a Publish repeating an id returns the
// first one's sequence instead of storing the message again. Kafka has no
// broker-side deduplication by a caller-chosen id (its idempotent producer
// only drops the client's own internal retries), so this window lives in
// the publishing process: it holds at most max ids, each for at most ttl.
//
// Concurrent publishes of one id wait for the first: the later ones get
// its sequence, or, when it failed, the next one tries again.
type dedupWindow struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	pending map[dedupKey]*dedupEntry   // publishes in flight
	ids     map[dedupKey]*list.Element // finished ones, of *dedupEntry
	order   *list.List                 // finished ones, oldest first
}

type dedupKey struct{ topic, id string }

type dedupEntry struct {
	key  dedupKey
	at   time.Time     // when the publish finished
	done chan struct{} // closed when the first publish finished
	seq  uint64
	err  error
}

func newDedupWindow(ttl time.Duration, max int, now func() time.Time) *dedupWindow {
	return &dedupWindow{ttl: ttl, max: max, now: now, pending: map[dedupKey]*dedupEntry{}, ids: map[dedupKey]*list.Element{}, order: list.New()}
}

// publish returns the sequence of the message with id on topic: the
// remembered one when the id was published within the window, otherwise
// what pub returns.
func (w *dedupWindow) publish(topic, id string, pub func() (uint64, error)) (uint64, error) {
	k := dedupKey{topic, id}
	for {
		w.mu.Lock()
		w.expire()
		if el, ok := w.ids[k]; ok {
			w.mu.Unlock()
			return el.Value.(*dedupEntry).seq, nil
		}
		e, ok := w.pending[k]
		if !ok {
			break // w.mu held: claim the id below
		}
		w.mu.Unlock()
		<-e.done
		if e.err == nil {
			return e.seq, nil
		}
		// The first publish failed and left no entry; try our own.
	}
	e := &dedupEntry{key: k, done: make(chan struct{})}
	w.pending[k] = e
	w.mu.Unlock()

	seq, err := pub()

	w.mu.Lock()
	e.seq, e.err, e.at = seq, err, w.now()
	delete(w.pending, k)
	if err == nil {
		w.ids[k] = w.order.PushBack(e)
		for w.order.Len() > w.max {
			w.remove(w.order.Front())
		}
	}
	w.mu.Unlock()
	close(e.done)
	return seq, err
}

// expire drops entries older than ttl; w.mu must be held.
func (w *dedupWindow) expire() {
	cutoff := w.now().Add(-w.ttl)
	for el := w.order.Front(); el != nil && el.Value.(*dedupEntry).at.Before(cutoff); el = w.order.Front() {
		w.remove(el)
	}
}

func (w *dedupWindow) remove(el *list.Element) {
	e := w.order.Remove(el).(*dedupEntry)
	if w.ids[e.key] == el {
		delete(w.ids, e.key)
	}
}

// forgetTopic drops what the window knows about topic, which was deleted:
// a new topic of the same name starts its sequences again.
func (w *dedupWindow) forgetTopic(topic string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for el := w.order.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*dedupEntry).key.topic == topic {
			w.remove(el)
		}
		el = next
	}
}
