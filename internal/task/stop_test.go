package task

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// startCountTask starts a worker "a" (capacity 4, 4 in flight, 5 s leases,
// ticking every interval) with the plan, the device sources of factory and
// records, and a scheduler (5 s leases, 50 ms ticks) until the test ends,
// then creates and starts the task "count" on device dev-x (DropNone); it
// returns the worker and the task.
func startCountTask(t *testing.T, ctx context.Context, db *store.DB, svc *Service, log *slog.Logger, interval time.Duration,
	plan func(context.Context, string, int64, flow.Tracer) (*flow.Plan, error), factory pipeline.SourceFactory, records pipeline.RecordStore) (*Worker, *Task) {
	t.Helper()
	w := NewWorker(WorkerConfig{Name: "a", Capacity: 4, InFlight: 4, LeaseTTL: 5 * time.Second, Interval: interval},
		WorkerDeps{DB: db, Service: svc, Plan: plan, Sources: map[string]pipeline.SourceFactory{"device": factory}, Records: records, Logger: log, Now: time.Now})
	runWithScheduler(t, db, svc, w, log)
	tk := &Task{Name: "count", FlowID: "flow-x", FlowVersion: 1, Sources: []pipeline.SourceSpec{{Type: "device", Id: "dev-x", DropPolicy: pipeline.DropNone}}}
	if err := svc.Create(ctx, tk, true); err != nil {
		t.Fatal(err)
	}
	return w, tk
}

// runWithScheduler runs w and a scheduler (5 s leases, 50 ms ticks) until
// the test ends; the scheduler stops first.
func runWithScheduler(t *testing.T, db *store.DB, svc *Service, w *Worker, log *slog.Logger) {
	wctx, stopW := context.WithCancel(context.Background())
	wDone := make(chan struct{})
	go func() { defer close(wDone); _ = w.Run(wctx) }()
	t.Cleanup(func() { stopW(); <-wDone })
	sched := NewScheduler(db, svc, SchedulerConfig{LeaseTTL: 5 * time.Second, Interval: 50 * time.Millisecond}, "test", log, nil, time.Now)
	sctx, stopSched := context.WithCancel(context.Background())
	schedDone := make(chan struct{})
	go func() { defer close(schedDone); sched.Run(sctx) }()
	t.Cleanup(func() { stopSched(); <-schedDone })
}

// holdingRecords stores records, holding the one of message n = hold
// until release closes (or its context ends, which fails it).
type holdingRecords struct {
	hold    int64
	held    chan struct{}
	release chan struct{}
	mu      sync.Mutex
	stored  map[int64]bool
	failed  map[int64]error
}

func (r *holdingRecords) StoreRecord(ctx context.Context, rec pipeline.Record) (string, error) {
	n, _ := rec.Data["n"].(int64)
	if n == r.hold {
		close(r.held)
		select {
		case <-r.release:
		case <-ctx.Done():
			r.mu.Lock()
			r.failed[n] = ctx.Err()
			r.mu.Unlock()
			return "", ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stored[n] = true
	return fmt.Sprintf("rec-%d", n), nil
}

// A task stopped while a message is half way through its flow finishes
// that message first (for at most switchGrace), instead of cutting it
// short: a flow that stores a record and then publishes an event for it
// never stops between the two.
func TestStopFinishesMessagesInFlight(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	log := slog.New(slog.DiscardHandler)
	doc := `{"name": "count", "nodes": [{"id": "save", "kind": "store", "config": {"type": "n"}, "inputs": {"n": "$input.n"}}]}`
	lookup := func(_ context.Context, flowID string, v int64) (int64, string, error) { return 1, "default", nil }
	svc := NewService(db, lookup, log, time.Now)
	plan := func(ctx context.Context, _ string, _ int64, tr flow.Tracer) (*flow.Plan, error) {
		spec, err := flow.Parse([]byte(doc), flow.Limits{})
		if err != nil {
			return nil, err
		}
		return flow.Compile(ctx, spec, flow.Options{Tracer: tr})
	}
	records := &holdingRecords{hold: 20, held: make(chan struct{}), release: make(chan struct{}), stored: map[int64]bool{}, failed: map[int64]error{}}
	factory := func(_ context.Context, spec pipeline.SourceSpec, env pipeline.SourceEnv) (pipeline.Source, error) {
		return newCounterSource(env)
	}
	_, tk := startCountTask(t, ctx, db, svc, log, 50*time.Millisecond, plan, factory, records)
	select {
	case <-records.held:
	case <-time.After(30 * time.Second):
		t.Fatal("message 20 never reached the store")
	}
	if err := svc.Stop(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	// The worker sees the stop (it polls every 50 ms) while message 20 is
	// still held; then the store lets it go.
	time.Sleep(500 * time.Millisecond)
	close(records.release)
	testenv.Eventually(t, 30*time.Second, "task stopped", func() bool {
		got, err := svc.Get(ctx, tk.ID)
		return err == nil && got.Status == StatusStopped
	})
	records.mu.Lock()
	defer records.mu.Unlock()
	if err := records.failed[20]; err != nil || !records.stored[20] {
		t.Fatalf("message 20, in flight when the task was stopped: stored %v, failed with %v", records.stored[20], err)
	}
}
