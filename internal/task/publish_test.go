package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/blob"
	_ "github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	"github.com/tianshu-ai/tianshu/internal/bus"
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// turns is the test's algorithm service. Algorithm "wait" holds each
// foreach item until every item of the run has arrived and it is the
// item's turn; "done" passes the turn on. Runs alternate between items in
// order and in reverse order, so a redelivered message meets its sinks in
// another order than the first delivery did, which concurrent items do by
// chance in production. No real algorithm can hold items in a chosen
// order, hence this in-process one.
type turns struct {
	items int

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	run     int           // runs started (groups of items arrived)
	arrived int           // items of the current run that have called wait
	turn    int           // position in the current run's order that may go
}

func newTurns(items int) *turns {
	return &turns{items: items, changed: make(chan struct{}), run: -1, arrived: items}
}

func (t *turns) order(run int) []int {
	o := make([]int, t.items)
	for i := range o {
		o[i] = i
		if run%2 == 1 {
			o[i] = t.items - 1 - i
		}
	}
	return o
}

func (t *turns) notify() {
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *turns) Invoke(ctx context.Context, ref flow.AlgorithmRef, in map[string]any) (map[string]any, error) {
	n := int(in["n"].(float64))
	t.mu.Lock()
	defer t.mu.Unlock()
	if ref.ID == "done" {
		t.turn++
		t.notify()
		return map[string]any{}, nil
	}
	if t.arrived == t.items {
		t.run, t.arrived, t.turn = t.run+1, 0, 0
	}
	t.arrived++
	t.notify()
	run := t.run
	for {
		if t.run != run {
			return nil, fmt.Errorf("item %d of run %d outlived its run", n, run)
		}
		if t.arrived == t.items && t.order(run)[t.turn] == n {
			return map[string]any{}, nil
		}
		ch := t.changed
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		t.mu.Lock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

func (t *turns) Contract(context.Context, flow.AlgorithmRef) (*flow.Contract, error) {
	return &flow.Contract{}, nil
}

// failingRecords is the real record sink with one failure injected: call
// number failAt fails, before the record reaches the store (the batch's
// transaction could not begin) or, with after, once it is stored (the
// commit's answer was lost).
type failingRecords struct {
	pipeline.RecordStore
	failAt int64
	after  bool
	calls  atomic.Int64
}

var errInjected = errors.New("injected failure")

func (f *failingRecords) StoreRecord(ctx context.Context, r pipeline.Record) (string, error) {
	if f.calls.Add(1) != f.failAt {
		return f.RecordStore.StoreRecord(ctx, r)
	}
	if !f.after {
		return "", fmt.Errorf("store: begin: %w", errInjected)
	}
	id, err := f.RecordStore.StoreRecord(ctx, r)
	if err != nil {
		return id, err
	}
	return id, fmt.Errorf("store: commit: %w", errInjected)
}

// failingBus is the real bus with publish number failAt failing, before
// the message reaches the bus or, with after, once the bus has it.
type failingBus struct {
	bus.Bus
	failAt int64
	after  bool
	calls  atomic.Int64
}

func (f *failingBus) Publish(ctx context.Context, topic, key string, b []byte, h map[string]string) (uint64, error) {
	if f.calls.Add(1) != f.failAt {
		return f.Bus.Publish(ctx, topic, key, b, h)
	}
	if !f.after {
		return 0, fmt.Errorf("publish: %w", errInjected)
	}
	seq, err := f.Bus.Publish(ctx, topic, key, b, h)
	if err != nil {
		return seq, err
	}
	return seq, fmt.Errorf("publish: ack lost: %w", errInjected)
}

const publishFlowDoc = `{"name": "faces", "nodes": [{"id": "each", "kind": "foreach", "inputs": {"items": "$input.items"},
  "config": {"concurrency": 8, "body": {
    "nodes": [
      {"id": "gate", "kind": "algorithm", "config": {"algorithm": "wait"}, "inputs": {"n": "$item"}},
      {"id": "save", "kind": "store", "config": {"type": "face"}, "inputs": {"n": "$item"}},
      {"id": "pub", "kind": "publish", "config": {"type": "tianshu.face.captured"}, "inputs": {"RecordId": "$save.recordId", "n": "$item"}},
      {"id": "done", "kind": "algorithm", "config": {"algorithm": "done"}, "inputs": {"n": "$item"}}],
    "edges": [{"from": "gate", "to": "save"}, {"from": "save", "to": "pub"}, {"from": "pub", "to": "done"}]}}}]}`

// Every record a task stores has its event on the bus exactly once, and
// every item has its record, whichever step of a message's batch of
// records fails (a store that fails before or after writing, a publish
// that fails before or after the bus has the event): the message is
// redelivered, its items meet the sinks in another order, and the rerun
// writes and publishes under the same ids. On every store dialect.
func TestPublishAfterStore(t *testing.T) {
	storetest.ForEach(t, testPublishAfterStore)
}

func testPublishAfterStore(t *testing.T, db *store.DB) {
	ctx := context.Background()
	dir := t.TempDir()
	blobs, err := blob.Open(ctx, "file://"+dir+"/objects", blob.Options{DataDir: dir, PublicURL: "http://127.0.0.1:1",
		SigningKey: []byte("test-signing-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = blobs.Close() })
	dsvc, err := data.New(db, blobs, data.Options{TokenKey: []byte("token-key")})
	if err != nil {
		t.Fatal(err)
	}
	w := dsvc.NewWriter(data.WriterOptions{FlushInterval: 5 * time.Millisecond})
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	b, err := bus.Open(ctx, "nats://embedded", bus.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })

	const items = 3
	type inject struct {
		where  string // "store" or "publish"
		failAt int64
		after  bool
	}
	var cases []inject
	for _, where := range []string{"store", "publish"} {
		for k := int64(1); k <= items; k++ {
			for _, after := range []bool{false, true} {
				cases = append(cases, inject{where, k, after})
			}
		}
	}
	for i, c := range cases {
		name := fmt.Sprintf("%s-%d-before", c.where, c.failAt)
		if c.after {
			name = fmt.Sprintf("%s-%d-after", c.where, c.failAt)
		}
		t.Run(name, func(t *testing.T) {
			records := pipeline.RecordStore(dsvc.NewRecordSink(w))
			var out bus.Bus = b
			if c.where == "store" {
				records = &failingRecords{RecordStore: records, failAt: c.failAt, after: c.after}
			} else {
				out = &failingBus{Bus: b, failAt: c.failAt, after: c.after}
			}
			tk := &Task{ID: fmt.Sprintf("task-pub%d", i), ProjectID: fmt.Sprintf("proj-pub%d", i)}
			runPublishCase(t, db, b, records, out, tk, items)
		})
	}
}

// runPublishCase runs one message with the given number of items through
// tk on a runner fed from a bus topic, and checks records and events.
func runPublishCase(t *testing.T, db *store.DB, b bus.Bus, records pipeline.RecordStore, out bus.Bus, tk *Task, items int) {
	ctx := context.Background()
	spec, err := flow.Parse([]byte(publishFlowDoc), flow.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := flow.Compile(ctx, spec, flow.Options{Algorithms: newTurns(items)})
	if err != nil {
		t.Fatal(err)
	}
	in := "in-" + tk.ID
	list := make([]any, items)
	for i := range list {
		list[i] = i
	}
	msg, _ := json.Marshal(map[string]any{"items": list})
	if _, err := b.Publish(ctx, in, "dev-1", msg, nil); err != nil {
		t.Fatal(err)
	}
	r := &runner{task: tk, plan: plan, state: flow.NewState(time.Now), records: records, bus: out,
		sources: []pipeline.Source{&TopicSource{Bus: b, Topic: in, Durable: tk.ID}},
		log:     slog.New(slog.DiscardHandler), stats: &taskStats{nodes: map[string]*nodeStats{}}, inflight: 1}
	r.start(ctx)
	testenv.Eventually(t, 30*time.Second, "the message done", func() bool { return r.stats.completed.Load() == 1 })
	r.stop()
	if f := r.stats.failed.Load(); f == 0 {
		t.Fatalf("the injected failure failed no run")
	}

	// The records: one per item.
	rows, err := db.Query(ctx, "SELECT id, data FROM records WHERE task_id = ?", tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{} // record id -> item
	perItem := make([]int, items)
	for rows.Next() {
		var id, doc string
		if err := rows.Scan(&id, &doc); err != nil {
			t.Fatal(err)
		}
		var d struct{ N int }
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatal(err)
		}
		stored[id] = d.N
		perItem[d.N]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	_ = rows.Close()

	// The events, read back from the bus: one per stored record.
	evs := readTopic(t, b, event.Topic(tk.ProjectID))
	seen := map[string]int{} // record id -> events naming it
	ids := map[string]bool{}
	var problems []string
	for _, e := range evs {
		if ids[e.ID] {
			problems = append(problems, "event id "+e.ID+" twice on the bus")
		}
		ids[e.ID] = true
		rid, _ := e.Data["RecordId"].(string)
		n, _ := e.Data["n"].(float64)
		if got, ok := stored[rid]; !ok || got != int(n) {
			problems = append(problems, fmt.Sprintf("event %s of item %v names record %s, which holds item %d (stored: %t)", e.ID, n, rid, got, ok))
		}
		seen[rid]++
	}
	for id, n := range stored {
		if seen[id] != 1 {
			problems = append(problems, fmt.Sprintf("record %s of item %d is on the bus %d times", id, n, seen[id]))
		}
	}
	for n, c := range perItem {
		if c != 1 {
			problems = append(problems, fmt.Sprintf("item %d has %d records", n, c))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Fatalf("%d runs failed, then:\n%s", r.stats.failed.Load(), fmt.Sprint(problems))
	}
}

// readTopic returns every event on topic, in order.
func readTopic(t *testing.T, b bus.Bus, topic string) []event.Event {
	t.Helper()
	ctx := context.Background()
	last, err := b.(interface {
		LastSeq(context.Context, string) (uint64, error)
	}).LastSeq(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var evs []event.Event
	sub, err := b.Subscribe(ctx, topic, "reader", bus.SubscribeOptions{}, func(_ context.Context, m bus.Message) error {
		e, err := event.Decode(m.Data)
		if err != nil {
			return err
		}
		mu.Lock()
		evs = append(evs, e)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Stop() }()
	testenv.Eventually(t, 10*time.Second, "the events topic read", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return uint64(len(evs)) >= last
	})
	mu.Lock()
	defer mu.Unlock()
	return append([]event.Event(nil), evs...)
}
