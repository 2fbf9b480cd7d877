// Package peers asks every other process of a platform a question over
// the bus's ephemeral subjects and gathers their answers: what one
// process keeps in memory only (its recent traces, its last log lines)
// read from any process that serves the action API.
//
// Each process that can answer serves a topic: it listens for questions
// and answers them from its memory, and it announces itself, so that an
// asker knows whom to wait for. An asker sends the question once and
// collects answers until every peer it knows of has answered in full, or
// until its timeout; a peer that did not answer is forgotten until it
// announces itself again. With no peer known, Ask answers at once with
// nothing: a process alone (every role in one) pays nothing.
//
// Answers are lists of items (JSON values) split over messages of at most
// MaxMessage bytes; an item larger than that is left out and counted.
package peers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// Timings and bounds.
const (
	// DefaultTimeout is how long Ask waits for the peers it knows of.
	DefaultTimeout = 2 * time.Second
	// announceEvery is how often a peer says it is there; a peer not
	// heard of for forgetAfter is forgotten.
	announceEvery = 15 * time.Second
	forgetAfter   = 3 * announceEvery
	// MaxMessage bounds one answer message (NATS's default payload limit
	// is 1 MiB).
	MaxMessage = 512 << 10
	// maxQuestion bounds a question.
	maxQuestion = 16 << 10
)

// Answerer answers a question from this process's memory with a list of
// items, each a JSON value.
type Answerer func(ctx context.Context, question json.RawMessage) []json.RawMessage

// Answer is what one peer answered.
type Answer struct {
	// Peer names the process: its name (a worker's --worker.name, or its
	// host) as it announced itself.
	Peer  string
	Items []json.RawMessage
}

// Peers serves one topic for this process and asks the other processes
// that serve it.
type Peers struct {
	eph     bus.Ephemeral
	topic   string // scoped: "<scope>.<topic>"
	label   string // the topic alone, for metrics and logs
	id      string // this process, unique per start
	name    string
	timeout time.Duration
	answer  Answerer
	log     *slog.Logger

	mu    sync.Mutex
	known map[string]peer // by id
	asks  map[string]chan reply

	stop func()
	done chan struct{}

	asked    *prometheus.CounterVec
	answered prometheus.Counter
}

type peer struct {
	name string
	seen time.Time
}

// Wire messages.
type (
	hello struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		// New asks every peer that hears it to announce itself at once.
		New bool `json:"new,omitempty"`
	}
	question struct {
		Ask  string          `json:"ask"`
		From string          `json:"from"`
		Q    json.RawMessage `json:"q"`
	}
	reply struct {
		Ask   string            `json:"ask"`
		Peer  string            `json:"peer"`
		Name  string            `json:"name"`
		Part  int               `json:"part"`
		Parts int               `json:"parts"`
		Items []json.RawMessage `json:"items"`
	}
)

// Options are the collaborators of Serve.
type Options struct {
	// Scope keeps one platform's processes apart from another's on the
	// same NATS (the platform's id); empty: no scope.
	Scope string
	// Name names this process to askers (default "tianshu").
	Name string
	// Timeout is how long Ask waits (default DefaultTimeout).
	Timeout    time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Serve starts answering topic's questions with answer (nil: this
// process only asks) and announcing this process, until Stop.
func Serve(eph bus.Ephemeral, topic string, answer Answerer, o Options) (*Peers, error) {
	if o.Name == "" {
		o.Name = "tianshu"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	scoped := topic
	if o.Scope != "" {
		scoped = o.Scope + "." + topic
	}
	asks := telemetry.MustRegister(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_peers_asks_total",
		Help: "Questions this process asked the platform's other processes (DescribeTrace, DescribeLogs), by topic and outcome: complete (every known process answered), incomplete (some did not in time), alone (no other process known)."},
		[]string{"topic", "outcome"}))
	answers := telemetry.MustRegister(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_peers_answers_total",
		Help: "Questions of other processes this process answered from its memory, by topic."}, []string{"topic"}))
	p := &Peers{eph: eph, topic: scoped, label: topic, id: hex.EncodeToString(b[:]), name: o.Name, timeout: o.Timeout, answer: answer, log: o.Logger,
		known: map[string]peer{}, asks: map[string]chan reply{}, done: make(chan struct{}),
		asked: asks, answered: answers.WithLabelValues(topic)}
	var stops []func()
	stopAll := func() {
		for _, s := range stops {
			s()
		}
	}
	for subject, h := range map[string]func([]byte){
		p.subject("hello"):         p.onHello,
		p.subject("reply." + p.id): p.onReply,
		p.subject("ask"):           p.onQuestion,
	} {
		s, err := eph.Listen(subject, h)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("peers %s: %w", topic, err)
		}
		stops = append(stops, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = func() { cancel(); stopAll() }
	go p.announce(ctx)
	return p, nil
}

func (p *Peers) subject(kind string) string { return "peers." + p.topic + "." + kind }

// Stop stops answering and announcing.
func (p *Peers) Stop() {
	p.stop()
	<-p.done
}

// announce says this process is there when it starts (asking the others
// to say so too) and every announceEvery after.
func (p *Peers) announce(ctx context.Context) {
	defer close(p.done)
	if p.answer == nil {
		return
	}
	p.sendHello(true)
	tick := time.NewTicker(announceEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.sendHello(false)
		}
	}
}

func (p *Peers) sendHello(isNew bool) {
	b, _ := json.Marshal(hello{ID: p.id, Name: p.name, New: isNew})
	if err := p.eph.Send(p.subject("hello"), b); err != nil && !errors.Is(err, bus.ErrClosed) {
		p.log.Warn("peers hello not sent", "topic", p.label, "err", err)
	}
}

func (p *Peers) onHello(data []byte) {
	var h hello
	if json.Unmarshal(data, &h) != nil || h.ID == "" || h.ID == p.id {
		return
	}
	p.mu.Lock()
	p.known[h.ID] = peer{name: h.Name, seen: time.Now()}
	p.mu.Unlock()
	if h.New && p.answer != nil {
		p.sendHello(false)
	}
}

// Known answers how many other processes this one would wait for.
func (p *Peers) Known() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetLocked(time.Now())
	return len(p.known)
}

func (p *Peers) forgetLocked(now time.Time) {
	for id, k := range p.known {
		if now.Sub(k.seen) > forgetAfter {
			delete(p.known, id)
		}
	}
}

func (p *Peers) onQuestion(data []byte) {
	var q question
	if p.answer == nil || len(data) > maxQuestion || json.Unmarshal(data, &q) != nil || q.Ask == "" || q.From == p.id || !token(q.From) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	items := p.answer(ctx, q.Q)
	p.answered.Inc()
	parts := split(items)
	for i, part := range parts {
		b, err := json.Marshal(reply{Ask: q.Ask, Peer: p.id, Name: p.name, Part: i, Parts: len(parts), Items: part})
		if err == nil {
			err = p.eph.Send(p.subject("reply."+q.From), b)
		}
		if err != nil {
			p.log.Warn("peers answer not sent", "topic", p.label, "err", err)
			return
		}
	}
}

// split packs items into parts of at most MaxMessage bytes (less room for
// the envelope); an item that fits in none is left out. There is always
// at least one part, so an empty answer still says so.
func split(items []json.RawMessage) [][]json.RawMessage {
	const room = MaxMessage - 1024
	var parts [][]json.RawMessage
	var cur []json.RawMessage
	size := 0
	for _, it := range items {
		if len(it) > room {
			continue
		}
		if size+len(it)+1 > room && len(cur) > 0 {
			parts = append(parts, cur)
			cur, size = nil, 0
		}
		cur = append(cur, it)
		size += len(it) + 1
	}
	return append(parts, cur)
}

func (p *Peers) onReply(data []byte) {
	var r reply
	if json.Unmarshal(data, &r) != nil {
		return
	}
	p.mu.Lock()
	ch := p.asks[r.Ask]
	if r.Peer != "" {
		// A peer that answers is there, whether or not its hello was heard.
		p.known[r.Peer] = peer{name: r.Name, seen: time.Now()}
	}
	p.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r:
		default: // the asker has given up
		}
	}
}

// Ask sends q to every other process serving the topic and returns what
// they answered, when each peer known when asking has answered in full or
// when the timeout (or ctx) ends. Peers that did not answer in time are
// forgotten until they announce themselves again; missing names them.
func (p *Peers) Ask(ctx context.Context, q any) (answers []Answer, missing []string, err error) {
	raw, err := json.Marshal(q)
	if err != nil {
		return nil, nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	askID := hex.EncodeToString(b[:])
	p.mu.Lock()
	p.forgetLocked(time.Now())
	waiting := make(map[string]string, len(p.known)) // id → name
	for id, k := range p.known {
		waiting[id] = k.name
	}
	if len(waiting) == 0 {
		p.mu.Unlock()
		p.asked.WithLabelValues(p.label, "alone").Inc()
		return nil, nil, nil
	}
	ch := make(chan reply, 64)
	p.asks[askID] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.asks, askID)
		p.mu.Unlock()
	}()
	msg, err := json.Marshal(question{Ask: askID, From: p.id, Q: raw})
	if err != nil {
		return nil, nil, err
	}
	if len(msg) > maxQuestion {
		return nil, nil, fmt.Errorf("peers %s: question of %d bytes, limit %d", p.topic, len(msg), maxQuestion)
	}
	if err := p.eph.Send(p.subject("ask"), msg); err != nil {
		return nil, nil, err
	}
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	got := map[string]*Answer{}
	parts := map[string]int{}
	for len(waiting) > 0 {
		select {
		case r := <-ch:
			a := got[r.Peer]
			if a == nil {
				a = &Answer{Peer: r.Name}
				got[r.Peer] = a
			}
			a.Items = append(a.Items, r.Items...)
			if parts[r.Peer]++; parts[r.Peer] >= r.Parts {
				delete(waiting, r.Peer)
			}
		case <-timer.C:
			p.asked.WithLabelValues(p.label, "incomplete").Inc()
			return p.gave(got, waiting), names(waiting), nil
		case <-ctx.Done():
			p.asked.WithLabelValues(p.label, "incomplete").Inc()
			return p.gave(got, nil), names(waiting), nil
		}
	}
	p.asked.WithLabelValues(p.label, "complete").Inc()
	return p.gave(got, nil), nil, nil
}

// gave lists the answers and forgets the peers that did not answer in time.
func (p *Peers) gave(got map[string]*Answer, late map[string]string) []Answer {
	if len(late) > 0 {
		p.mu.Lock()
		for id := range late {
			delete(p.known, id)
		}
		p.mu.Unlock()
	}
	out := make([]Answer, 0, len(got))
	for _, a := range got {
		out = append(out, *a)
	}
	return out
}

func names(m map[string]string) []string {
	var out []string
	for _, n := range m {
		out = append(out, n)
	}
	return out
}

// token reports whether s may be a subject token: what Serve makes ids of.
func token(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
