package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// runner runs one task on this worker: its sources feed a bounded set of
// flow executions whose results go to the sinks.
type runner struct {
	task    *Task
	plan    *flow.Plan
	state   *flow.State
	sources []pipeline.Source
	records pipeline.RecordStore
	bus     bus.Bus
	log     *slog.Logger
	stats   *taskStats
	// checkpoints are the sources' positions the worker has yet to write.
	checkpoints *checkpoints

	// tap hands frames to the live view while somebody watches.
	tap *tap
	// ot starts the spans of each message; nil while tracing is off.
	ot trace.Tracer

	inflight int
	queue    chan *item // back-pressured sources
	latest   chan *item // live sources: one slot, newest wins
	cancel   context.CancelFunc
	done     chan struct{}
	// stopSources ends the sources only; sourcesDone closes once they
	// have (drainStop).
	stopSources context.CancelFunc
	sourcesDone chan struct{}
	// result is why the runner ended: nil (stopped), ErrSourceDone
	// (completed) or a failure.
	result error
}

// item is a message with the index of the source that emitted it and,
// while tracing, when it was emitted (its trace's start).
type item struct {
	pipeline.Message
	source  int
	emitted time.Time
	// run and root are the message's trace while tracing is on: its root
	// span, made only when the trace is sampled or something in it fails
	// (its attributes and source read are made then).
	run  *runner
	root tracing.Root
}

// SpanAttributes implements tracing.Describer: the message span's
// attributes.
func (it *item) SpanAttributes() []attribute.KeyValue {
	return []attribute.KeyValue{tracing.KeyProject.String(it.run.task.ProjectID), tracing.KeyTask.String(it.run.task.ID),
		tracing.KeyDevice.String(it.Key), tracing.KeyMessage.String(it.ID)}
}

// SpanStarted implements tracing.Describer: the message's first span is
// its source's, from when the source emitted it to when a worker took it
// (now, for a sampled message; when its first node started, for one made
// after the fact).
func (it *item) SpanStarted(ctx context.Context) {
	r := it.run
	var src pipeline.SourceSpec
	if it.source < len(r.task.Sources) {
		src = r.task.Sources[it.source]
	}
	_, read := r.ot.Start(ctx, "source.read "+src.Type, trace.WithTimestamp(it.emitted),
		trace.WithAttributes(tracing.KeyProject.String(r.task.ProjectID), tracing.KeyTask.String(r.task.ID),
			tracing.KeySource.String(src.Type+":"+src.Id)))
	read.End(trace.WithTimestamp(it.root.FirstChild()))
}

// taskStats are a task's counters and per-node latencies on this worker.
type taskStats struct {
	received, completed, dropped, failed, records, events atomic.Int64
	// frames counts what a gated detector did per frame, by decision
	// (frameDecisions), where the flow outputs one as "decision".
	frames    [len(frameDecisions)]atomic.Int64
	mu        sync.Mutex
	nodes     map[string]*nodeStats
	lastError string
	// nodeErrors are the last maxNodeErrors failures of a node, oldest
	// first.
	nodeErrors          []NodeError
	windowStart         time.Time
	windowIn, windowOut int64
	fpsIn, fpsOut       float64
}

type nodeStats struct {
	count, errors int64
	ring          [512]time.Duration
	n             int
}

// tracer records each node's duration for DescribeTaskStats and, while
// tracing, a span per node inside the message's trace.
type tracer struct {
	s  *taskStats
	ot trace.Tracer
	// spans holds each node's span name and attributes, made once: a
	// message starts a span per node, and building them anew each time
	// was a good part of tracing's cost per message.
	spans *nodeSpans
}

func newTracer(s *taskStats, ot trace.Tracer) tracer {
	return tracer{s: s, ot: ot, spans: &nodeSpans{m: map[nodeSpanKey]nodeSpan{}}}
}

type nodeSpans struct {
	mu sync.RWMutex
	m  map[nodeSpanKey]nodeSpan
}

type nodeSpanKey struct{ flow, node, kind string }

type nodeSpan struct {
	name string
	opts []trace.SpanStartOption
}

func (n *nodeSpans) get(flowName, node, kind string) nodeSpan {
	k := nodeSpanKey{flowName, node, kind}
	n.mu.RLock()
	ns, ok := n.m[k]
	n.mu.RUnlock()
	if ok {
		return ns
	}
	ns = nodeSpan{name: "flow.node " + node, opts: []trace.SpanStartOption{trace.WithAttributes(tracing.KeyFlow.String(flowName),
		tracing.KeyNode.String(node), tracing.KeyNodeKind.String(kind))}}
	n.mu.Lock()
	n.m[k] = ns
	n.mu.Unlock()
	return ns
}

func (t tracer) StartNode(ctx context.Context, flowName, node, kind string) (context.Context, func(error)) {
	start := time.Now()
	var span tracing.Sub
	if t.ot != nil {
		// Sampled out, the span is named only if it fails: the lookup
		// of its name and attributes was most of a sampled-out
		// message's cost.
		span = tracing.Pending(ctx, start)
		if span.ParentRecording() {
			ns := t.spans.get(flowName, node, kind)
			ctx, span = span.Start(ctx, t.ot, ns.name, ns.opts...)
		}
	}
	return ctx, func(err error) {
		if err != nil && t.ot != nil && !span.Recording() {
			ns := t.spans.get(flowName, node, kind)
			span = span.Named(ns.name, ns.opts...)
		}
		span.End(err)
		d := time.Since(start)
		if err != nil && !errors.Is(err, context.Canceled) {
			// The node's trace, so the console can draw the message's
			// path up to the failure (kept as long as the ring of recent
			// traces holds it; failed traces are kept first).
			var traceID string
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				traceID = sc.TraceID().String()
			}
			t.s.noteNodeError(node, err, traceID, start.Add(d))
		}
		t.s.mu.Lock()
		ns := t.s.nodes[node]
		if ns == nil {
			ns = &nodeStats{}
			t.s.nodes[node] = ns
		}
		ns.count++
		if err != nil {
			ns.errors++
		}
		ns.ring[ns.n%len(ns.ring)] = d
		ns.n++
		t.s.mu.Unlock()
	}
}

// Bounds of the node errors a task's stats keep.
const (
	maxNodeErrors       = 10
	maxNodeErrorMessage = 512
)

// NodeError is one failure of a flow node on a message, as a task's stats
// keep it: the console lists them on the task's page and draws the trace
// of each (DescribeTrace by TraceId).
type NodeError struct {
	NodeId  string `json:"NodeId"`
	Time    string `json:"Time"`
	Message string `json:"Message"`
	// TraceId is the message's trace, "" while tracing is off.
	TraceId string `json:"TraceId,omitempty"`
}

// noteNodeError keeps node's failure err, dropping the oldest past
// maxNodeErrors.
func (s *taskStats) noteNodeError(node string, err error, traceID string, at time.Time) {
	msg := err.Error()
	if len(msg) > maxNodeErrorMessage {
		msg = strings.ToValidUTF8(msg[:maxNodeErrorMessage], "") + "…"
	}
	e := NodeError{NodeId: node, Time: at.UTC().Format(time.RFC3339Nano), Message: msg, TraceId: traceID}
	s.mu.Lock()
	if len(s.nodeErrors) == maxNodeErrors {
		copy(s.nodeErrors, s.nodeErrors[1:])
		s.nodeErrors = s.nodeErrors[:maxNodeErrors-1]
	}
	s.nodeErrors = append(s.nodeErrors, e)
	s.mu.Unlock()
}

// frameDecisions are the per-frame decisions a flow may report in its
// output "decision" (the face-detect algorithm's with gate): whole-frame
// detection, detection where the picture changed unexplained by a followed
// object, objects followed (searched near their last boxes), or nothing to
// do.
var frameDecisions = [...]string{"detected", "motion", "tracked", "skipped"}

// FrameDecisions counts a task's frames by what its detector did with them.
type FrameDecisions struct {
	Detected int64 `json:"Detected"`
	Motion   int64 `json:"Motion"`
	Tracked  int64 `json:"Tracked"`
	Skipped  int64 `json:"Skipped"`
}

// countDecision counts the "decision" of a flow's output, or of a node's
// output where the flow declares none (then Output holds every node's).
func (s *taskStats) countDecision(out map[string]any) {
	d, ok := out["decision"].(string)
	for _, v := range out {
		if ok {
			break
		}
		if m, isMap := v.(map[string]any); isMap {
			d, ok = m["decision"].(string)
		}
	}
	if !ok {
		return
	}
	for i, name := range frameDecisions {
		if d == name {
			s.frames[i].Add(1)
			return
		}
	}
}

// Stats is a task's statistics as stored and as DescribeTaskStats returns.
type Stats struct {
	NodeId    string  `json:"NodeId"`
	FpsIn     float64 `json:"FpsIn"`
	FpsOut    float64 `json:"FpsOut"`
	Received  int64   `json:"Received"`
	Completed int64   `json:"Completed"`
	Dropped   int64   `json:"Dropped"`
	Failed    int64   `json:"Failed"`
	Records   int64   `json:"Records"`
	Events    int64   `json:"Events"`
	LastError string  `json:"LastError,omitempty"`
	// Frames is set for flows that report a per-frame decision (the
	// face-structuring template with gating on).
	Frames      *FrameDecisions `json:"Frames,omitempty"`
	NodeLatency []NodeStats     `json:"NodeLatency"`
	// NodeErrors are the last failures of the flow's nodes on this
	// worker (at most 10), newest first, each with its message's trace.
	NodeErrors   []NodeError `json:"NodeErrors,omitempty"`
	UpdatedTime  string      `json:"UpdatedTime"`
	RunningSince string      `json:"RunningSince,omitempty"`
}

// NodeStats is one flow node's latency on a task.
type NodeStats struct {
	NodeId string  `json:"NodeId"`
	Count  int64   `json:"Count"`
	Errors int64   `json:"Errors"`
	P50Ms  float64 `json:"P50Ms"`
	P99Ms  float64 `json:"P99Ms"`
}

func (s *taskStats) snapshot(now time.Time) Stats {
	in, out := s.received.Load(), s.completed.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if el := now.Sub(s.windowStart).Seconds(); el >= 1 {
		s.fpsIn, s.fpsOut = float64(in-s.windowIn)/el, float64(out-s.windowOut)/el
		s.windowStart, s.windowIn, s.windowOut = now, in, out
	}
	st := Stats{FpsIn: round2(s.fpsIn), FpsOut: round2(s.fpsOut), Received: in, Completed: out, Dropped: s.dropped.Load(),
		Failed: s.failed.Load(), Records: s.records.Load(), Events: s.events.Load(), LastError: s.lastError,
		UpdatedTime: now.UTC().Format(time.RFC3339Nano), NodeLatency: []NodeStats{}}
	if f := (FrameDecisions{s.frames[0].Load(), s.frames[1].Load(), s.frames[2].Load(), s.frames[3].Load()}); f != (FrameDecisions{}) {
		st.Frames = &f
	}
	for id, ns := range s.nodes {
		n := min(ns.n, len(ns.ring))
		d := append([]time.Duration(nil), ns.ring[:n]...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		st.NodeLatency = append(st.NodeLatency, NodeStats{NodeId: id, Count: ns.count, Errors: ns.errors,
			P50Ms: ms(quantile(d, 0.5)), P99Ms: ms(quantile(d, 0.99))})
	}
	sort.Slice(st.NodeLatency, func(i, j int) bool { return st.NodeLatency[i].NodeId < st.NodeLatency[j].NodeId })
	for i := len(s.nodeErrors) - 1; i >= 0; i-- {
		st.NodeErrors = append(st.NodeErrors, s.nodeErrors[i])
	}
	return st
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

func ms(d time.Duration) float64 { return round2(float64(d.Microseconds()) / 1000) }

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func (r *runner) start(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	r.cancel = cancel
	r.done = make(chan struct{})
	srcCtx, stopSources := context.WithCancel(ctx)
	r.stopSources, r.sourcesDone = stopSources, make(chan struct{})
	r.queue = make(chan *item, r.inflight)
	r.latest = make(chan *item, 1)
	var workers sync.WaitGroup
	for i := 0; i < r.inflight; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			r.work(ctx)
		}()
	}
	var srcs sync.WaitGroup
	var finished atomic.Int64
	fatal := make(chan error, 1)
	for i, src := range r.sources {
		srcs.Add(1)
		go func() {
			defer srcs.Done()
			err := r.runSource(srcCtx, i, src)
			if errors.Is(err, pipeline.ErrSourceDone) {
				if finished.Add(1) == int64(len(r.sources)) {
					select {
					case fatal <- pipeline.ErrSourceDone:
					default:
					}
				}
			}
		}()
	}
	go func() {
		srcs.Wait()
		close(r.sourcesDone)
	}()
	go func() {
		defer close(r.done)
		select {
		case <-ctx.Done():
		case err := <-fatal:
			// Batch sources are done: let the workers drain what was
			// queued, then end.
			r.drain()
			r.result = err
			cancel()
		}
		srcs.Wait()
		workers.Wait()
		stopSources()
		r.ackRemaining(context.Canceled)
	}()
}

// drain waits until queued messages are processed.
func (r *runner) drain() { r.drainUntil(nil) }

// drainUntil is drain that gives up when quit closes.
func (r *runner) drainUntil(quit <-chan struct{}) {
	for len(r.queue) > 0 || len(r.latest) > 0 || r.stats.received.Load() > r.stats.completed.Load()+r.stats.failed.Load()+r.stats.dropped.Load() {
		select {
		case <-quit:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ackRemaining hands back messages still queued when the runner stops, so
// the bus redelivers them to whoever runs the task next.
func (r *runner) ackRemaining(err error) {
	for {
		select {
		case m := <-r.queue:
			if m.Ack != nil {
				m.Ack(err)
			}
		case m := <-r.latest:
			if m.Ack != nil {
				m.Ack(err)
			}
		default:
			return
		}
	}
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// drainStop stops the runner without cutting a message short: the sources
// end first, the messages they emitted are processed (for at most grace),
// then the rest stops. Every message is then acknowledged, so the sources'
// positions cover all of them and whoever continues the task (the same
// worker on a new flow version) neither skips nor repeats one.
func (r *runner) drainStop(grace time.Duration) {
	r.stopSources()
	deadline := time.After(grace)
	select {
	case <-r.sourcesDone:
		drained := make(chan struct{})
		quit := make(chan struct{})
		go func() {
			defer close(drained)
			r.drainUntil(quit)
		}()
		select {
		case <-drained:
		case <-deadline:
			close(quit)
		}
	case <-deadline:
	}
	r.stop()
}

// runSource runs one source, restarting it with exponential backoff when
// it fails, until ctx ends or it reports ErrSourceDone.
func (r *runner) runSource(ctx context.Context, index int, src pipeline.Source) error {
	backoff := 200 * time.Millisecond
	emit := func(ctx context.Context, m pipeline.Message) error { return r.emitQueued(ctx, r.newItem(m, index)) }
	if src.Live() {
		emit = func(ctx context.Context, m pipeline.Message) error { return r.emitLatest(r.newItem(m, index)) }
	}
	for {
		start := time.Now()
		err := src.Run(ctx, emit)
		if ctx.Err() != nil || errors.Is(err, pipeline.ErrSourceDone) {
			return err
		}
		if err == nil {
			err = errors.New("source ended")
		}
		r.noteError(fmt.Sprintf("source failed: %v", err))
		r.log.WarnContext(ctx, "task source failed", "task", r.task.ID, "err", err, "retry_in", backoff)
		if time.Since(start) > time.Minute {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (r *runner) newItem(m pipeline.Message, source int) *item {
	it := &item{Message: m, source: source}
	if r.ot != nil {
		it.emitted, it.run = time.Now(), r
	}
	return it
}

func (r *runner) emitQueued(ctx context.Context, m *item) error {
	r.stats.received.Add(1)
	select {
	case r.queue <- m:
		return nil
	case <-ctx.Done():
		r.stats.dropped.Add(1)
		return ctx.Err()
	}
}

// emitLatest never blocks: if a frame is still waiting, the new one
// replaces it and the old one counts as dropped.
func (r *runner) emitLatest(m *item) error {
	r.stats.received.Add(1)
	for {
		select {
		case r.latest <- m:
			return nil
		default:
		}
		select {
		case old := <-r.latest:
			r.stats.dropped.Add(1)
			if old.Ack != nil {
				old.Ack(nil)
			}
		default:
		}
	}
}

func (r *runner) work(ctx context.Context) {
	for {
		var it *item
		select {
		case <-ctx.Done():
			return
		case it = <-r.queue:
		case it = <-r.latest:
		}
		r.process(ctx, it)
	}
}

// process runs one message through the flow and its sinks and hands its
// acknowledgement back.
func (r *runner) process(ctx context.Context, it *item) {
	m := &it.Message
	sinks := &messageSinks{r: r, msg: m}
	// Only while somebody watches is the run traced (the live view
	// draws what its nodes found) and its frame handed over.
	watched := r.tap.watched()
	mctx := ctx
	if r.ot != nil {
		mctx = r.startMessage(ctx, it)
	}
	res, err := r.plan.Run(mctx, flow.Input{Data: m.Data, Params: r.task.Parameters, Time: m.Time, Key: m.Key, State: r.state, Sinks: sinks, Trace: watched})
	if watched {
		if f := previewOf(r.task.ID, it.source, m, res, time.Now()); f != nil {
			r.tap.publish(f)
		}
	}
	if r.ot != nil {
		it.root.Finish(err)
	}
	if err != nil {
		r.stats.failed.Add(1)
		if ctx.Err() == nil {
			r.noteError(err.Error())
		}
	} else {
		r.stats.completed.Add(1)
		r.stats.countDecision(res.Output)
	}
	if m.Ack != nil {
		switch {
		case ctx.Err() != nil:
			m.Ack(ctx.Err())
		case sinks.failed.Load() && err != nil:
			// The sink's reason (a storage quota, a store outage) is
			// what the source reports as the task's LastError.
			m.Ack(fmt.Errorf("a sink failed; redeliver: %w", err))
		case sinks.failed.Load():
			m.Ack(errors.New("a sink failed; redeliver"))
		default:
			m.Ack(nil) // a message the flow itself failed on is not retried forever
		}
	}
}

// startMessage opens the message's trace (joining the one it arrived
// with, from another task's event): a sampled message's spans at once, a
// sampled-out one's only if something in it fails (tracing.Root).
func (r *runner) startMessage(ctx context.Context, it *item) context.Context {
	ctx, _ = it.root.Start(ctx, r.ot, it.TraceParent, "task.message", it.emitted, trace.SpanKindConsumer, it)
	return ctx
}

func (r *runner) noteError(msg string) {
	r.stats.mu.Lock()
	r.stats.lastError = msg
	r.stats.mu.Unlock()
}
