package task

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// counterSource is a resumable source like a replay device read without
// drops: it emits n = checkpoint+1, +2, … and saves the last n up to which
// every message was acknowledged.
type counterSource struct {
	env   pipeline.SourceEnv
	first chan uint64 // the first n each Run emits

	mu   sync.Mutex
	next uint64 // first n not yet acknowledged
	done map[uint64]bool
}

func newCounterSource(env pipeline.SourceEnv) (*counterSource, error) {
	var after uint64
	if env.Position != "" {
		var err error
		if after, err = strconv.ParseUint(env.Position, 10, 64); err != nil {
			return nil, err
		}
	}
	return &counterSource{env: env, first: make(chan uint64, 16), next: after + 1, done: map[uint64]bool{}}, nil
}

func (c *counterSource) Live() bool { return false }

func (c *counterSource) Run(ctx context.Context, emit pipeline.Emit) error {
	c.mu.Lock()
	n := c.next
	c.mu.Unlock()
	c.first <- n
	pace := time.NewTicker(2 * time.Millisecond)
	defer pace.Stop()
	for ; ; n++ {
		m := pipeline.Message{ID: fmt.Sprintf("c-%d", n), Key: "c", Time: time.Now(), Data: map[string]any{"n": int64(n)}}
		m.Ack = func(err error) {
			if err == nil {
				c.ack(ctx, m.Data["n"].(int64))
			}
		}
		if err := emit(ctx, m); err != nil {
			return err
		}
		select {
		case <-pace.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *counterSource) ack(ctx context.Context, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done[uint64(n)] = true
	moved := false
	for c.done[c.next] {
		delete(c.done, c.next)
		c.next++
		moved = true
	}
	if moved {
		_ = c.env.SavePosition(ctx, strconv.FormatUint(c.next-1, 10))
	}
}

// countingRecords is a RecordStore that counts writes per event id.
type countingRecords struct {
	mu     sync.Mutex
	writes map[string]int // by event id
	ns     map[int64]bool
}

func (r *countingRecords) StoreRecord(_ context.Context, rec pipeline.Record) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes[rec.EventID]++
	n, _ := rec.Data["n"].(int64)
	r.ns[n] = true
	return "rec-" + rec.EventID, nil
}

// stats returns the highest n with all of 1..n stored, the number of
// distinct records and the writes beyond one per record.
func (r *countingRecords) stats() (contiguous int64, distinct, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.ns[contiguous+1] {
		contiguous++
	}
	for _, c := range r.writes {
		distinct++
		dups += c - 1
	}
	return contiguous, distinct, dups
}

func checkpointOf(t *testing.T, db *store.DB, taskID string) string {
	t.Helper()
	cps, err := loadCheckpoints(context.Background(), db, taskID)
	if err != nil {
		t.Fatal(err)
	}
	return cps[0]
}

// A task with a resumable source that stops on one worker continues on
// another from the checkpoint the first saved: nothing is skipped and only
// the messages in flight at the stop are processed twice.
func TestResumableSourceMovesWithItsCheckpoint(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	log := slog.New(slog.DiscardHandler)
	svc := NewService(db, func(context.Context, string, int64) (int64, string, error) { return 1, "default", nil }, log, time.Now)
	doc := `{"name": "count", "nodes": [{"id": "save", "kind": "store", "config": {"type": "count"}, "inputs": {"n": "$input.n"}}]}`
	plan := func(ctx context.Context, _ string, _ int64, tr flow.Tracer) (*flow.Plan, error) {
		spec, err := flow.Parse([]byte(doc), flow.Limits{})
		if err != nil {
			return nil, err
		}
		return flow.Compile(ctx, spec, flow.Options{Tracer: tr})
	}
	records := &countingRecords{writes: map[string]int{}, ns: map[int64]bool{}}
	var smu sync.Mutex
	var sources []*counterSource
	factory := func(_ context.Context, spec pipeline.SourceSpec, env pipeline.SourceEnv) (pipeline.Source, error) {
		if spec.DropPolicy != pipeline.DropNone {
			return nil, fmt.Errorf("DropPolicy %q", spec.DropPolicy)
		}
		src, err := newCounterSource(env)
		if err == nil {
			smu.Lock()
			sources = append(sources, src)
			smu.Unlock()
		}
		return src, err
	}
	lastSource := func() *counterSource {
		smu.Lock()
		defer smu.Unlock()
		if len(sources) == 0 {
			return nil
		}
		return sources[len(sources)-1]
	}
	const inflight = 2
	startWorker := func(name string) (*Worker, func()) {
		w := NewWorker(WorkerConfig{Name: name, Capacity: 4, InFlight: inflight, LeaseTTL: 2 * time.Second, Interval: 100 * time.Millisecond},
			WorkerDeps{DB: db, Service: svc, Plan: plan, Sources: map[string]pipeline.SourceFactory{"device": factory}, Records: records, Logger: log, Now: time.Now})
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(wctx) }()
		return w, func() { cancel(); <-done }
	}
	sched := NewScheduler(db, svc, SchedulerConfig{LeaseTTL: 2 * time.Second, Interval: 50 * time.Millisecond}, "test", log, nil, time.Now)
	sctx, stopSched := context.WithCancel(ctx)
	schedDone := make(chan struct{})
	go func() { defer close(schedDone); sched.Run(sctx) }()
	defer func() { stopSched(); <-schedDone }()

	a, stopA := startWorker("a")
	tk := &Task{Name: "count", FlowID: "flow-x", Sources: []pipeline.SourceSpec{{Type: "device", Id: "dev-x", DropPolicy: pipeline.DropNone}}}
	if err := svc.Create(ctx, tk, true); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "100 records on worker a", func() bool { c, _, _ := records.stats(); return c >= 100 })
	if got := <-lastSource().first; got != 1 {
		t.Fatalf("a fresh task started at %d, want 1", got)
	}
	// Worker a shuts down cleanly: it flushes the checkpoint and hands the
	// task back.
	stopA()
	saved := checkpointOf(t, db, tk.ID)
	p, err := strconv.ParseUint(saved, 10, 64)
	if err != nil || p < 100 {
		t.Fatalf("checkpoint after a's stop: %q (%v), want at least 100", saved, err)
	}
	if c, _, _ := records.stats(); uint64(c) < p {
		t.Fatalf("checkpoint %d is past the stored records (all up to %d)", p, c)
	}

	b, stopB := startWorker("b")
	defer stopB()
	testenv.Eventually(t, 30*time.Second, "the task on worker b", func() bool {
		got, err := svc.Get(ctx, tk.ID)
		return err == nil && got.NodeID == b.ID() && got.Status == StatusRunning
	})
	if a.ID() == b.ID() {
		t.Fatal("same node id")
	}
	if got := <-lastSource().first; got != p+1 {
		t.Fatalf("worker b's source started at %d, want %d (after the checkpoint)", got, p+1)
	}
	testenv.Eventually(t, 30*time.Second, "100 more records on worker b", func() bool { c, _, _ := records.stats(); return uint64(c) >= p+100 })
	// b saves as it goes, at its interval.
	testenv.Eventually(t, 5*time.Second, "b's checkpoint", func() bool {
		n, _ := strconv.ParseUint(checkpointOf(t, db, tk.ID), 10, 64)
		return n > p+50
	})

	if err := svc.Stop(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the task stopped", func() bool {
		got, err := svc.Get(ctx, tk.ID)
		return err == nil && got.Status == StatusStopped
	})
	final, _ := strconv.ParseUint(checkpointOf(t, db, tk.ID), 10, 64)
	c, distinct, dups := records.stats()
	if int64(final) > c || distinct < int(final) {
		t.Fatalf("final checkpoint %d, records contiguous to %d (%d distinct)", final, c, distinct)
	}
	// Only messages in flight (or queued) when a stopped can run twice.
	if dups > 2*inflight {
		t.Fatalf("%d duplicate writes; at most %d expected", dups, 2*inflight)
	}
	t.Logf("checkpoint at the move %d, final %d, %d records, %d duplicates", p, final, distinct, dups)

	if err := svc.Delete(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	if cp := checkpointOf(t, db, tk.ID); cp != "" {
		t.Fatalf("checkpoint %q left after DeleteTask", cp)
	}
}

// Only the worker the task is placed on, at its current epoch, may write
// the task's checkpoints; on every dialect.
func TestCheckpointWritesAreFenced(t *testing.T) {
	storetest.ForEach(t, testCheckpointWritesAreFenced)
}

func testCheckpointWritesAreFenced(t *testing.T, db *store.DB) {
	ctx := context.Background()
	svc := NewService(db, func(context.Context, string, int64) (int64, string, error) { return 1, "default", nil }, nil, time.Now)
	tk := &Task{Name: "t", FlowID: "f", Sources: []pipeline.SourceSpec{{Type: "device", Id: "d", DropPolicy: pipeline.DropNone}, {Type: "device", Id: "e", DropPolicy: pipeline.DropNone}}}
	if err := svc.Create(ctx, tk, true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "UPDATE tasks SET node_id = ?, epoch = ? WHERE id = ?", "node-1", 3, tk.ID); err != nil {
		t.Fatal(err)
	}
	write := func(node string, epoch int64, pos map[int]string) bool {
		t.Helper()
		ok, err := writeCheckpoints(ctx, db, tk.ID, node, epoch, pos, time.Now().UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if write("node-1", 2, map[int]string{0: "5"}) || write("node-2", 3, map[int]string{0: "5"}) {
		t.Fatal("a write from an old epoch or another node was taken")
	}
	if got, _ := loadCheckpoints(ctx, db, tk.ID); len(got) != 0 {
		t.Fatalf("fenced writes stored %v", got)
	}
	if !write("node-1", 3, map[int]string{0: "5", 1: "7"}) || !write("node-1", 3, map[int]string{0: "9"}) {
		t.Fatal("the owner's write was refused")
	}
	if got, _ := loadCheckpoints(ctx, db, tk.ID); got[0] != "9" || got[1] != "7" {
		t.Fatalf("checkpoints %v, want 0:9 1:7", got)
	}
	// The scheduler moves the task: the old owner can no longer write.
	if _, err := db.Exec(ctx, "UPDATE tasks SET node_id = ?, epoch = epoch + 1 WHERE id = ?", "node-2", tk.ID); err != nil {
		t.Fatal(err)
	}
	if write("node-1", 3, map[int]string{0: "2"}) {
		t.Fatal("a zombie's write was taken")
	}
	if got := checkpointOf(t, db, tk.ID); got != "9" {
		t.Fatalf("checkpoint %q after a zombie's write, want 9", got)
	}
}

func TestDropPolicyPerSourceType(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	svc := NewService(db, func(context.Context, string, int64) (int64, string, error) { return 1, "default", nil }, nil, time.Now)
	err := svc.Create(ctx, &Task{Name: "t", FlowID: "f", Sources: []pipeline.SourceSpec{{Type: "device", Id: "d", DropPolicy: pipeline.DropLatest}, {Type: "topic", Id: "x", DropPolicy: pipeline.DropLatest}}}, false)
	if err == nil || !strings.Contains(err.Error(), "Sources[1].DropPolicy") {
		t.Fatalf("latest on a topic: %v, want an error naming Sources[1].DropPolicy", err)
	}
	for _, srcs := range [][]pipeline.SourceSpec{
		{{Type: "device", Id: "d"}, {Type: "device", Id: "d", DropPolicy: pipeline.DropLatest}, {Type: "device", Id: "d", DropPolicy: pipeline.DropNone}},
		{{Type: "topic", Id: "x", DropPolicy: pipeline.DropNone}, {Type: "upload", Id: "u"}},
	} {
		if err := svc.Create(ctx, &Task{Name: "t", FlowID: "f", Sources: srcs}, false); err != nil {
			t.Fatalf("%+v: %v", srcs, err)
		}
	}
}
