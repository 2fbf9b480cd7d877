package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/task/workerconfig"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// PlanFunc compiles a task's flow version with a tracer of its own, so the
// task's per-node latencies are its own.
type PlanFunc func(ctx context.Context, flowID string, version int64, tr flow.Tracer) (*flow.Plan, error)

// WorkerConfig configures a worker node. It is defined in the leaf package
// workerconfig, with its flags, defaults and validation, so that the root
// configuration can nest it without importing the task engine.
type WorkerConfig = workerconfig.Config

// DefaultWorkerConfig returns the defaults (workerconfig.Default).
func DefaultWorkerConfig() WorkerConfig { return workerconfig.Default() }

// WorkerDeps are what a worker runs tasks with.
type WorkerDeps struct {
	DB      *store.DB
	Service *Service
	Plan    PlanFunc
	Sources map[string]pipeline.SourceFactory
	Records pipeline.RecordStore // nil: store nodes fail
	Bus     bus.Bus              // nil: topic sources and publish nodes fail
	// Previews receives frames of tasks somebody watches (the live view);
	// nil: nobody can watch this worker's tasks.
	Previews *Previews
	Logger   *slog.Logger
	Metrics  prometheus.Registerer
	Now      func() time.Time
	// Tracer records a trace per message (source, each node, records,
	// publishing); nil: tracing is off and no span is started.
	Tracer trace.TracerProvider
}

// Worker is one node that runs tasks placed on it. Tasks are added and
// removed while it runs; nothing restarts.
type Worker struct {
	cfg WorkerConfig
	d   WorkerDeps
	id  string

	mu      sync.Mutex
	runners map[string]*runner // by task id
	epochs  map[string]int64

	running prometheus.Gauge
}

// NewWorker returns a worker with a fresh node id. An empty cfg.Name is
// the host name.
func NewWorker(cfg WorkerConfig, d WorkerDeps) *Worker {
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	w := &Worker{cfg: cfg, d: d, id: ids.New("node"), runners: map[string]*runner{}, epochs: map[string]int64{},
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tianshu_worker_tasks_running", Help: "Tasks running on this worker."})}
	w.running = telemetry.MustRegister(d.Metrics, w.running)
	telemetry.MustRegister(d.Metrics, newTaskCollector(w))
	return w
}

// ID returns the worker's node id.
func (w *Worker) ID() string { return w.id }

// Run registers the node and runs its tasks until ctx ends; then it stops
// them and hands them back for placement elsewhere.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.register(ctx); err != nil {
		return err
	}
	w.d.Logger.InfoContext(ctx, "worker registered", "node", w.id, "name", w.cfg.Name, "capacity", w.cfg.Capacity, "labels", w.cfg.Labels)
	relayCtx, stopRelay := context.WithCancel(ctx)
	defer stopRelay()
	go w.relayPreviews(relayCtx)
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	lastBeat := w.d.Now()
	for {
		if err := w.heartbeat(ctx); err != nil {
			if ctx.Err() == nil {
				w.d.Logger.WarnContext(ctx, "worker heartbeat failed", "node", w.id, "err", err)
			}
			// Without a heartbeat for a whole lease the scheduler has moved
			// our tasks: stop them here to bound duplicates.
			if w.d.Now().Sub(lastBeat) > w.cfg.LeaseTTL {
				w.stopAll("lost lease", false)
			}
		} else {
			lastBeat = w.d.Now()
			if err := w.reconcile(ctx); err != nil && ctx.Err() == nil {
				w.d.Logger.WarnContext(ctx, "worker reconcile failed", "node", w.id, "err", err)
			}
			w.saveStats(ctx)
			w.saveCheckpoints(ctx)
		}
		select {
		case <-ctx.Done():
			w.shutdown()
			return nil
		case <-t.C:
		}
	}
}

func (w *Worker) register(ctx context.Context) error {
	labels, _ := json.Marshal(w.cfg.Labels)
	gpus, _ := json.Marshal(w.cfg.GPUs)
	if string(gpus) == "null" {
		gpus = []byte("[]")
	}
	now := w.d.Now().UnixMilli()
	_, err := w.d.DB.Exec(ctx, `INSERT INTO nodes (id, name, labels, capacity, gpus, lease_expires_ms, started_at, heartbeat_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, w.id, w.cfg.Name, string(labels), w.cfg.Capacity, string(gpus), now+w.cfg.LeaseTTL.Milliseconds(), now, now)
	if err != nil {
		return fmt.Errorf("worker: register node: %w", err)
	}
	return nil
}

func (w *Worker) heartbeat(ctx context.Context) error {
	now := w.d.Now().UnixMilli()
	res, err := w.d.DB.Exec(ctx, "UPDATE nodes SET lease_expires_ms = ?, heartbeat_ms = ? WHERE id = ?", now+w.cfg.LeaseTTL.Milliseconds(), now, w.id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// The scheduler expired us (a long pause): our tasks are gone;
		// come back as a fresh node.
		w.stopAll("node expired", false)
		return w.register(ctx)
	}
	return nil
}

// reconcile makes the runners match the tasks assigned to this node.
func (w *Worker) reconcile(ctx context.Context) error {
	tasks, _, err := w.d.Service.List(ctx, store.Projects{All: true}, nil, nil, nil, []string{w.id}, 0, 10000)
	if err != nil {
		return err
	}
	assigned := map[string]*Task{}
	for _, t := range tasks {
		assigned[t.ID] = t
	}
	w.mu.Lock()
	var stale []string
	var asked []*runner
	for id, r := range w.runners {
		t, ok := assigned[id]
		if !ok || t.Desired != DesiredRunning || t.Epoch != w.epochs[id] {
			stale = append(stale, id)
			if ok && t.Desired != DesiredRunning && t.Epoch == w.epochs[id] {
				asked = append(asked, r)
			}
		}
	}
	w.mu.Unlock()
	// A task somebody stopped finishes the messages in flight first (all
	// such tasks at once, each for at most switchGrace): a frame whose
	// record is stored also publishes its event. A task that moved away
	// is cut at once; its messages are redelivered to its new node.
	var drains sync.WaitGroup
	for _, r := range asked {
		drains.Go(func() { r.drainStop(switchGrace) })
	}
	drains.Wait()
	for _, id := range stale {
		w.stopRunner(id, true)
	}
	for _, t := range tasks {
		switch {
		case t.Desired != DesiredRunning:
			// Asked to stop: the runner is gone; report it and let go.
			w.finish(ctx, t, StatusStopped, "")
		case t.Status == StatusScheduled || t.Status == StatusRunning:
			w.mu.Lock()
			r, ok := w.runners[t.ID]
			w.mu.Unlock()
			switch {
			case !ok:
				w.startRunner(ctx, t)
			case movedVersion(r.task, t):
				w.switchVersion(ctx, r, t)
			default:
				select {
				case <-r.done: // the runner ended by itself
					res := r.result
					w.stopRunner(t.ID, true)
					if errors.Is(res, pipeline.ErrSourceDone) {
						w.finish(ctx, t, StatusCompleted, "every source delivered everything")
					}
				default:
				}
			}
		}
	}
	return nil
}

// movedVersion reports whether a running task was moved to another flow
// version or given other parameters (ModifyTaskFlowVersion).
func movedVersion(running, now *Task) bool {
	if running.FlowVersion != now.FlowVersion {
		return true
	}
	a, _ := json.Marshal(running.Parameters)
	b, _ := json.Marshal(now.Parameters)
	return string(a) != string(b)
}

// switchGrace bounds how long a version switch waits for the messages in
// flight before it cuts them short (they are then redelivered).
// (a heartbeat waits meanwhile, so it stays well under the lease).
const switchGrace = 3 * time.Second

// switchVersion moves a running task to the flow version (and parameters)
// its row now names without losing its place: the runner stops after the
// messages in flight, its sources' last positions are written under the
// same placement, and the new runner's sources start from them.
func (w *Worker) switchVersion(ctx context.Context, r *runner, t *Task) {
	was := r.task
	r.drainStop(switchGrace)
	w.stopRunner(t.ID, true)
	w.startRunner(ctx, t)
	w.mu.Lock()
	_, running := w.runners[t.ID]
	w.mu.Unlock()
	if running {
		w.d.Service.Event(ctx, t.ID, "version_switched", w.id, fmt.Sprintf("now running flow %s version %d (was %d); sources continue from their saved positions",
			t.FlowID, t.FlowVersion, was.FlowVersion))
		w.d.Logger.InfoContext(ctx, "task switched flow version", "task", t.ID, "node", w.id, "from", was.FlowVersion, "to", t.FlowVersion)
	}
}

func (w *Worker) startRunner(ctx context.Context, t *Task) {
	st := &taskStats{nodes: map[string]*nodeStats{}, windowStart: w.d.Now()}
	ot := tracing.Tracer(w.d.Tracer, "tianshu/task")
	plan, err := w.d.Plan(ctx, t.FlowID, t.FlowVersion, newTracer(st, ot))
	if err == nil {
		err = plan.CheckParams(t.Parameters)
	}
	if err != nil {
		w.finish(ctx, t, StatusFailed, fmt.Sprintf("flow %s version %d: %v", t.FlowID, t.FlowVersion, err))
		return
	}
	// Only sources read without drops save positions: skip the query for
	// the rest.
	var saved map[int]string
	if slices.ContainsFunc(t.Sources, func(s pipeline.SourceSpec) bool { return s.DropPolicy == pipeline.DropNone }) {
		if saved, err = loadCheckpoints(ctx, w.d.DB, t.ID); err != nil {
			w.d.Logger.WarnContext(ctx, "task not started: checkpoints unreadable; retrying", "task", t.ID, "err", err)
			return // the next reconcile tries again
		}
	}
	cps := newCheckpoints()
	var sources []pipeline.Source
	for i, spec := range t.Sources {
		f, ok := w.d.Sources[spec.Type]
		if !ok {
			w.finish(ctx, t, StatusFailed, fmt.Sprintf("Sources[%d]: no %q source on this worker", i, spec.Type))
			return
		}
		env := pipeline.SourceEnv{TaskID: t.ID, ProjectID: t.ProjectID, NodeID: w.id, Bus: w.d.Bus,
			Index: i, Position: saved[i], SavePosition: cps.saver(i)}
		src, err := f(ctx, spec, env)
		if err != nil {
			w.finish(ctx, t, StatusFailed, fmt.Sprintf("Sources[%d] (%s %s): %v", i, spec.Type, spec.Id, err))
			return
		}
		sources = append(sources, src)
	}
	r := &runner{task: t, plan: plan, state: flow.NewState(w.d.Now), sources: sources, records: w.d.Records, bus: w.d.Bus,
		log: w.d.Logger, stats: st, inflight: max(1, w.cfg.InFlight), checkpoints: cps, ot: ot}
	if w.d.Previews != nil {
		r.tap = w.d.Previews.acquire(t.ID)
		r.tap.running.Add(1)
	}
	// The runner outlives this reconcile pass: it stops with the worker.
	r.start(context.WithoutCancel(ctx))
	w.mu.Lock()
	w.runners[t.ID] = r
	w.epochs[t.ID] = t.Epoch
	w.running.Set(float64(len(w.runners)))
	w.mu.Unlock()
	res, err := w.d.DB.Exec(ctx, "UPDATE tasks SET status = ?, reason = '', updated_at = ? WHERE id = ? AND node_id = ? AND epoch = ?",
		StatusRunning, w.d.Now().UnixMilli(), t.ID, w.id, t.Epoch)
	if err == nil {
		if n, _ := res.RowsAffected(); n == 1 && t.Status != StatusRunning {
			w.d.Service.Event(ctx, t.ID, "running", w.id, "started on "+w.cfg.Name)
		}
	}
	w.d.Logger.InfoContext(ctx, "task started", "task", t.ID, "node", w.id, "epoch", t.Epoch, "checkpoints", len(saved))
}

// stopRunner stops a task's runner; with flush it then writes the sources'
// last positions (a clean stop), which the fence refuses when the task has
// moved meanwhile.
func (w *Worker) stopRunner(id string, flush bool) {
	w.mu.Lock()
	r, ok := w.runners[id]
	delete(w.runners, id)
	delete(w.epochs, id)
	w.running.Set(float64(len(w.runners)))
	w.mu.Unlock()
	if ok {
		r.stop()
		if r.tap != nil {
			r.tap.running.Add(-1)
			w.d.Previews.release(id, r.tap)
		}
		if flush {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			w.flushCheckpoints(ctx, r)
			cancel()
		}
		w.d.Logger.Info("task stopped", "task", id, "node", w.id)
	}
}

// stopAll stops every runner; flush as in stopRunner (not when the node lost
// its lease: its tasks are someone else's by now).
func (w *Worker) stopAll(reason string, flush bool) {
	w.mu.Lock()
	var all []string
	for id := range w.runners {
		all = append(all, id)
	}
	w.mu.Unlock()
	for _, id := range all {
		w.stopRunner(id, flush)
	}
	if len(all) > 0 {
		// Handing tasks back on a normal stop is routine; losing them is not.
		level := slog.LevelWarn
		if flush {
			level = slog.LevelInfo
		}
		w.d.Logger.Log(context.Background(), level, "worker stopped all tasks", "node", w.id, "reason", reason, "tasks", len(all))
	}
}

// finish sets a final state for a task on this node and lets it go.
func (w *Worker) finish(ctx context.Context, t *Task, status, reason string) {
	res, err := w.d.DB.Exec(ctx, `UPDATE tasks SET status = ?, desired_state = ?, reason = ?, node_id = '', updated_at = ?
		WHERE id = ? AND node_id = ?`, status, DesiredStopped, reason, w.d.Now().UnixMilli(), t.ID, w.id)
	if err != nil {
		w.d.Logger.WarnContext(ctx, "task state not saved", "task", t.ID, "status", status, "err", err)
		return
	}
	if n, _ := res.RowsAffected(); n == 1 {
		w.d.Service.Event(ctx, t.ID, strings.ToLower(status), w.id, reason)
		w.d.Logger.InfoContext(ctx, "task finished", "task", t.ID, "status", status, "reason", reason)
	}
}

// shutdown stops every runner and hands the tasks back as Pending so the
// scheduler places them elsewhere at once instead of waiting for the lease.
func (w *Worker) shutdown() {
	w.stopAll("worker stopping", true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := w.d.Now().UnixMilli()
	// The node goes first: were it still there when its tasks turn Pending,
	// the scheduler could place one back on it, and the task would wait
	// on a node that no longer exists.
	_, _ = w.d.DB.Exec(ctx, "DELETE FROM nodes WHERE id = ?", w.id)
	_, _ = w.d.DB.Exec(ctx, "UPDATE tasks SET status = ?, node_id = '', updated_at = ? WHERE node_id = ? AND desired_state = ?", StatusPending, now, w.id, DesiredRunning)
	_, _ = w.d.DB.Exec(ctx, "UPDATE tasks SET status = ?, node_id = '', updated_at = ? WHERE node_id = ?", StatusStopped, now, w.id)
	w.d.Logger.Info("worker stopped", "node", w.id)
}

// runnersNow returns the runners of this worker's tasks.
func (w *Worker) runnersNow() []*runner {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Collect(maps.Values(w.runners))
}

// saveStats writes each running task's stats to its row, where any replica
// answers DescribeTaskStats from.
func (w *Worker) saveStats(ctx context.Context) {
	rs := w.runnersNow()
	now := w.d.Now()
	for _, r := range rs {
		st := r.stats.snapshot(now)
		st.NodeId = w.id
		b, _ := json.Marshal(st)
		if _, err := w.d.DB.Exec(ctx, "UPDATE tasks SET stats = ? WHERE id = ? AND node_id = ?", string(b), r.task.ID, w.id); err != nil && ctx.Err() == nil {
			w.d.Logger.WarnContext(ctx, "task stats not saved", "task", r.task.ID, "err", err)
		}
	}
}

// saveCheckpoints writes the positions running tasks' sources saved since the
// last pass: one fenced write per task and interval at most.
func (w *Worker) saveCheckpoints(ctx context.Context) {
	rs := w.runnersNow()
	for _, r := range rs {
		w.flushCheckpoints(ctx, r)
	}
}

func (w *Worker) flushCheckpoints(ctx context.Context, r *runner) {
	pos := r.checkpoints.take()
	if len(pos) == 0 {
		return
	}
	owner, err := writeCheckpoints(ctx, w.d.DB, r.task.ID, w.id, r.task.Epoch, pos, w.d.Now().UnixMilli())
	switch {
	case err != nil:
		r.checkpoints.putBack(pos)
		if ctx.Err() == nil {
			w.d.Logger.WarnContext(ctx, "task checkpoint not saved", "task", r.task.ID, "err", err)
		}
	case !owner:
		w.d.Logger.InfoContext(ctx, "task checkpoint not saved: the task is no longer placed here", "task", r.task.ID, "node", w.id, "epoch", r.task.Epoch)
	}
}
