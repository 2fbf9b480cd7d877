package task

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// versionRecords remembers, for each n, the record types stored for it.
type versionRecords struct {
	mu    sync.Mutex
	types map[int64][]string
}

func (r *versionRecords) StoreRecord(_ context.Context, rec pipeline.Record) (string, error) {
	n, _ := rec.Data["n"].(int64)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.types[n] = append(r.types[n], rec.Type)
	return fmt.Sprintf("rec-%d-%d", n, len(r.types[n])), nil
}

// contiguous returns the highest n with every 1..n stored.
func (r *versionRecords) contiguous() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var c int64
	for len(r.types[c+1]) > 0 {
		c++
	}
	return c
}

func (r *versionRecords) of(n int64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.types[n]...)
}

// A running task moved to another flow version keeps running on the same
// worker: the messages in flight finish on the old version, the new one
// starts right after the saved position, and no message is skipped or
// processed twice.
func TestRunningTaskMovesToAnotherVersion(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	log := slog.New(slog.DiscardHandler)
	// Versions 1 and 2 of flow-x exist; each stores its messages under
	// its own record type, and version 2 declares a required parameter.
	docs := map[int64]string{
		1: `{"name": "count", "nodes": [{"id": "save", "kind": "store", "config": {"type": "v1"}, "inputs": {"n": "$input.n"}}]}`,
		2: `{"name": "count", "parameters": {"site": {"type": "string", "required": true}},
			"nodes": [{"id": "save", "kind": "store", "config": {"type": "v2"}, "inputs": {"n": "$input.n"}}]}`,
	}
	lookup := func(_ context.Context, flowID string, v int64) (int64, string, error) {
		if v == 0 {
			v = 2
		}
		if _, ok := docs[v]; !ok || flowID != "flow-x" {
			return 0, "", api.NotFound("Version", fmt.Sprintf("%s@%d", flowID, v))
		}
		return v, "default", nil
	}
	svc := NewService(db, lookup, log, time.Now)
	plan := func(ctx context.Context, _ string, v int64, tr flow.Tracer) (*flow.Plan, error) {
		spec, err := flow.Parse([]byte(docs[v]), flow.Limits{})
		if err != nil {
			return nil, err
		}
		return flow.Compile(ctx, spec, flow.Options{Tracer: tr})
	}
	svc.SetParamCheck(func(ctx context.Context, flowID string, v int64, params map[string]any) error {
		p, err := plan(ctx, flowID, v, nil)
		if err != nil {
			return err
		}
		return p.CheckParams(params)
	})
	records := &versionRecords{types: map[int64][]string{}}
	var smu sync.Mutex
	var sources []*counterSource
	factory := func(_ context.Context, spec pipeline.SourceSpec, env pipeline.SourceEnv) (pipeline.Source, error) {
		src, err := newCounterSource(env)
		if err == nil {
			smu.Lock()
			sources = append(sources, src)
			smu.Unlock()
		}
		return src, err
	}
	source := func(i int) *counterSource {
		smu.Lock()
		defer smu.Unlock()
		if i >= len(sources) {
			return nil
		}
		return sources[i]
	}
	w, tk := startCountTask(t, ctx, db, svc, log, 100*time.Millisecond, plan, factory, records)
	testenv.Eventually(t, 30*time.Second, "100 records on version 1", func() bool { return records.contiguous() >= 100 })
	running, err := svc.Get(ctx, tk.ID)
	if err != nil || running.Status != StatusRunning {
		t.Fatalf("task before the move: %+v, %v", running, err)
	}

	// The move is checked first (the codes and messages with the real
	// studio: TestModifyTaskFlowVersion): the version must exist, and the
	// parameters must satisfy the new version's.
	if _, _, err := svc.MoveToVersion(ctx, tk.ID, 9, nil); err == nil {
		t.Error("moved to version 9, which does not exist")
	}
	if _, _, err := svc.MoveToVersion(ctx, tk.ID, 2, nil); err == nil || !strings.Contains(err.Error(), "site") {
		t.Errorf("move to version 2 without its required parameter: %v", err)
	}
	if got, _ := svc.Get(ctx, tk.ID); got.FlowVersion != 1 {
		t.Fatalf("a refused move changed the task: version %d", got.FlowVersion)
	}

	from, to, err := svc.MoveToVersion(ctx, tk.ID, 0, map[string]any{"site": "gate"})
	if err != nil || from != 1 || to != 2 {
		t.Fatalf("move to the latest version: %d → %d, %v", from, to, err)
	}
	testenv.Eventually(t, 30*time.Second, "the worker's second runner", func() bool { return source(1) != nil })
	first := <-source(1).first
	if first < 100 {
		t.Fatalf("on version 2 the source started at %d, want after the %d+ messages version 1 stored", first, 100)
	}
	testenv.Eventually(t, 30*time.Second, "100 records on version 2", func() bool { return records.contiguous() >= int64(first)+100 })

	// Every message before the switch was stored once by version 1, every
	// one after it once by version 2: none skipped, none repeated.
	last := records.contiguous()
	for n := int64(1); n <= last; n++ {
		want := "v1"
		if n >= int64(first) {
			want = "v2"
		}
		if got := records.of(n); len(got) != 1 || got[0] != want {
			t.Fatalf("message %d stored as %v, want once as %s (version 2 started at %d)", n, got, want, first)
		}
	}
	got, err := svc.Get(ctx, tk.ID)
	if err != nil || got.FlowVersion != 2 || got.Status != StatusRunning || got.NodeID != w.ID() || got.Parameters["site"] != "gate" {
		t.Fatalf("task after the move: %+v, %v", got, err)
	}
	evs, err := svc.Events(ctx, tk.ID, 20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, e := range evs {
		seen[e.Type] = e.Message
	}
	if !strings.Contains(seen["version_changed"], "version 1 → 2") || !strings.Contains(seen["version_switched"], "version 2") {
		t.Fatalf("events %v: want version_changed and version_switched", seen)
	}
	t.Logf("version 2 started at message %d; %d messages stored, each once", first, last)

	// A stopped task just changes its version.
	if err := svc.Stop(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the task stopped", func() bool {
		got, err := svc.Get(ctx, tk.ID)
		return err == nil && got.Status == StatusStopped
	})
	if _, to, err := svc.MoveToVersion(ctx, tk.ID, 1, map[string]any{}); err != nil || to != 1 {
		t.Fatalf("move a stopped task back to version 1: %d, %v", to, err)
	}
	if got, _ := svc.Get(ctx, tk.ID); got.FlowVersion != 1 || got.Status != StatusStopped {
		t.Fatalf("stopped task after the move: %+v", got)
	}
}
