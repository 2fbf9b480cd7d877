package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/function"
)

// Plan is a compiled flow version: the graph in arrays, paths parsed,
// scripts compiled, metrics looked up. It is immutable and runs any number
// of messages concurrently; per-message state comes from a pool, so a run
// of a linear flow allocates almost nothing.
type Plan struct {
	name    string
	prefix  string
	nodes   []node
	sources []int32
	order   []int32
	output  []outField
	// project is the node whose output map the output repeats key for key
	// ({"a": "$n.a", "b": "$n.b"}), or -1: such an output is that map
	// itself when it has exactly those keys (values between nodes are
	// never changed in place, so it can be shared).
	project        int32
	params         map[string]ParamSpec
	paramDefaults  map[string]any
	requiredInputs []string
	requiredParams []string
	hasItem        bool
	timed          bool
	metrics        *Metrics
	msgOK          prometheus.Counter
	msgFailed      prometheus.Counter
	tracer         Tracer
	log            *slog.Logger
	pool           sync.Pool
}

type node struct {
	id, path   string
	kind       *Kind
	kindName   string
	impl       Node
	args       []arg
	out        []edge
	in         []int32
	inDeg      int32
	need       int32
	wait       time.Duration
	timeout    time.Duration
	timeoutStr string
	retries    int
	backoff    time.Duration
	onError    uint8
	blocking   bool
	m          *nodeMetrics
	outputs    []string
	inPorts    []Port // typed input ports, for the type check of paths
	outPorts   []Port // typed output fields, for the same
}

type edge struct {
	to    int32
	onErr bool
}

type arg struct {
	name string
	v    value
}

type outField struct {
	name string
	v    value
}

// value is a compiled input or output value: a literal, a path, or a list
// or map (isMap, keys) of values of which at least one is dynamic.
type value struct {
	lit   any
	path  *cpath
	list  []value
	keys  []string
	isMap bool
}

func (v *value) dynamic() bool { return v.path != nil || v.list != nil || v.isMap }

const (
	rootNode = iota
	rootInput
	rootParams
	rootParam
	rootItem
	rootIndex
)

type cpath struct {
	root  uint8
	node  int32
	param string
	steps []Step
	src   string
}

// Name returns the flow's name.
func (p *Plan) Name() string { return p.name }

// NodeIDs returns the node ids in execution (topological) order.
func (p *Plan) NodeIDs() []string {
	out := make([]string, len(p.order))
	for i, j := range p.order {
		out[i] = p.nodes[j].id
	}
	return out
}

// CheckParams checks a task's parameter values against the declared
// parameters: required ones present, types right, no unknown names.
// Tasks call it once when they are created; Run trusts the values.
func (p *Plan) CheckParams(params map[string]any) error {
	var errs Errors
	for _, name := range p.requiredParams {
		if _, ok := params[name]; !ok {
			errs = append(errs, &Error{Field: "parameters." + name, Msg: "required parameter is missing"})
		}
	}
	for _, name := range sortedKeys(params) {
		ps, ok := p.params[name]
		if !ok {
			errs = append(errs, &Error{Field: "parameters." + name, Msg: "unknown parameter"})
			continue
		}
		if !checkType(ps.Type, params[name]) {
			errs = append(errs, &Error{Field: "parameters." + name, Msg: fmt.Sprintf("%v is not a %s", params[name], ps.Type)})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Input is one message for Run.
type Input struct {
	// Data is the message, addressed as $input (usually a map[string]any).
	Data any
	// Params are the task's parameter values ($params); missing ones take
	// their declared defaults. Pass the same map for every message.
	Params map[string]any
	// Time is the message time (a frame's capture time); stream nodes use
	// it, so replays behave like live runs. Zero means State's clock.
	Time time.Time
	// Key partitions stream state when a node has no key expression:
	// typically the device id (State itself is per task).
	Key string
	// State is the task's stream-node memory; nil gives each message a
	// fresh, throw-away one (fine for one-off runs like InvokeFlow).
	State *State
	// Sinks receives store and publish nodes' output.
	Sinks Sinks
	// Trace asks for every node's output, status and duration in
	// Result.Nodes; leave it off on the hot path.
	Trace bool
}

// Status is a node's outcome in one run.
type Status string

// Node outcomes.
const (
	StatusPending      Status = "pending"       // never reached (the message failed first)
	StatusOK           Status = "ok"            // ran and succeeded
	StatusSkipped      Status = "skipped"       // not on the taken branch
	StatusErrorSkipped Status = "error-skipped" // failed, onError skip: output null, successors ran
	StatusRouted       Status = "routed"        // failed, onError route: errorNext ran
	StatusFailed       Status = "failed"        // failed the message
	StatusCanceled     Status = "canceled"      // not run because the message failed or was cancelled
)

const (
	stPending int32 = iota
	stRunning
	stOK
	stSkipped
	stErrSkipped
	stRouted
	stFailed
	stCanceled
)

var statusNames = [...]Status{StatusPending, StatusPending, StatusOK, StatusSkipped, StatusErrorSkipped, StatusRouted, StatusFailed, StatusCanceled}

// NodeResult is one node's part of a traced run.
type NodeResult struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status Status `json:"status"`
	Output any    `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
	// Line and Column place a script's failure in its text (see
	// function.Position); 0 when the error has no place.
	Line     int           `json:"line,omitempty"`
	Column   int           `json:"column,omitempty"`
	Duration time.Duration `json:"duration"`
	Attempts int           `json:"attempts,omitempty"`
}

// Result is the outcome of one message: the flow's output and, when
// Input.Trace was set, every node's result in execution order.
type Result struct {
	Output map[string]any `json:"output"`
	Nodes  []NodeResult   `json:"nodes,omitempty"`
}

const (
	selAll  = -1
	selNone = -2
)

// Call is a node's view of the message it runs for; it is only valid
// during Run.
type Call struct {
	r   *run
	n   *node
	idx int32
	sel int32
}

type slot struct {
	state    atomic.Int32
	pending  atomic.Int32
	active   atomic.Int32
	out      any
	err      error
	dur      time.Duration
	attempts int32
	timedOut bool
	mu       sync.Mutex // guards timer and resolved, only for nodes with a wait
	timer    *time.Timer
	resolved bool
	call     Call
}

type run struct {
	p          *Plan
	ctx        context.Context
	cancel     context.CancelFunc
	input      Input
	scope      any
	item       any
	index      int
	isItem     bool // a foreach item's run: its index is part of Origin
	parent     *run
	slots      []slot
	queue      [16]int32 // runAll's queue of nodes to run inline
	wg         sync.WaitGroup
	errMu      sync.Mutex
	err        error
	failed     atomic.Bool
	paramsOnce sync.Once
	merged     map[string]any
	stateOnce  sync.Once
	state      *State
	// memo shares the message's conversions into and out of Starlark
	// between its script calls (see function.Memo); a root run's, reached
	// by nested runs through the context.
	memo function.Memo
}

func (p *Plan) get() *run {
	r, _ := p.pool.Get().(*run)
	if r == nil {
		r = &run{p: p, slots: make([]slot, len(p.nodes))}
		for i := range r.slots {
			r.slots[i].call = Call{r: r, n: &p.nodes[i], idx: int32(i)}
		}
	}
	for i := range r.slots {
		s := &r.slots[i]
		s.state.Store(stPending)
		s.pending.Store(p.nodes[i].inDeg)
		s.active.Store(0)
		s.out, s.err, s.dur, s.attempts, s.timedOut, s.timer, s.resolved = nil, nil, 0, 0, false, nil, false
	}
	return r
}

func (p *Plan) put(r *run) {
	for i := range r.slots {
		r.slots[i].out, r.slots[i].err = nil, nil
	}
	r.ctx, r.cancel, r.input, r.scope, r.item, r.parent, r.isItem = nil, nil, Input{}, nil, nil, nil, false
	r.err, r.merged, r.state = nil, nil, nil
	r.memo.Reset()
	r.failed.Store(false)
	r.paramsOnce = sync.Once{}
	r.stateOnce = sync.Once{}
	p.pool.Put(r)
}

// Run runs one message through the plan and returns the flow's output.
// The error is a *NodeError when a node failed the message (errors.As
// reaches the cause, e.g. a *function.LimitError), the context's error
// when ctx ended first, or wraps ErrBadInput. The Result is filled in
// either case, so a failed test run still shows how far it got.
func (p *Plan) Run(ctx context.Context, in Input) (Result, error) {
	if err := p.checkInput(&in); err != nil {
		return Result{}, err
	}
	r := p.get()
	r.ctx = function.WithMemo(ctx, &r.memo)
	r.input = in
	r.scope = in.Data
	r.runAll()
	var res Result
	res.Output = r.output()
	if in.Trace {
		res.Nodes = r.traces()
	}
	err := r.err
	if p.msgOK != nil {
		if err != nil {
			p.msgFailed.Inc()
		} else {
			p.msgOK.Inc()
		}
	}
	p.put(r)
	return res, err
}

func (p *Plan) checkInput(in *Input) error {
	if len(p.requiredInputs) > 0 {
		m, _ := in.Data.(map[string]any)
		for _, name := range p.requiredInputs {
			if _, ok := m[name]; !ok {
				return fmt.Errorf("%w: missing required input %q", ErrBadInput, name)
			}
		}
	}
	for _, name := range p.requiredParams {
		if _, ok := in.Params[name]; !ok {
			return fmt.Errorf("%w: missing required parameter %q", ErrBadInput, name)
		}
	}
	return nil
}

// runAll starts the sources and waits for every node to be resolved.
func (r *run) runAll() {
	q := r.queue[:0]
	var blocking []int32
	for _, i := range r.p.sources {
		r.slots[i].state.Store(stRunning)
		if r.p.nodes[i].blocking {
			blocking = append(blocking, i)
		} else {
			q = append(q, i)
		}
	}
	q = r.dispatch(blocking, q)
	r.drainFrom(q)
	r.wg.Wait()
	if r.cancel != nil {
		r.cancel()
	}
}

// drainFrom runs queued nodes inline, one after another, in this goroutine.
func (r *run) drainFrom(q []int32) {
	for len(q) > 0 {
		i := q[len(q)-1]
		q = q[:len(q)-1]
		r.exec(i)
		q = r.propagate(i, q)
	}
}

func (r *run) drive(i int32) {
	var buf [16]int32
	r.drainFrom(append(buf[:0], i))
}

// dispatch decides where newly ready blocking nodes run: one inline when
// nothing else waits in q, the others on their own goroutines. Cheap nodes
// were already queued inline by the caller.
func (r *run) dispatch(blocking, q []int32) []int32 {
	for k, j := range blocking {
		if k == len(blocking)-1 && len(q) == 0 {
			q = append(q, j)
		} else {
			r.spawn(j)
		}
	}
	return q
}

// ensureConcurrent gives the run a cancelable context before its first
// goroutine or timer, so a failing node can stop its siblings. Runs that
// stay on one goroutine never pay for it. It is only ever called while no
// other goroutine of the run exists, or after it has taken effect.
func (r *run) ensureConcurrent() {
	if r.cancel == nil {
		r.ctx, r.cancel = context.WithCancel(r.ctx)
	}
}

func (r *run) spawn(j int32) {
	r.ensureConcurrent()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.drive(j)
	}()
}

func edgeActive(st, sel int32, e edge) bool {
	switch st {
	case stOK:
		return !e.onErr && (sel == selAll || sel == e.to)
	case stErrSkipped:
		return !e.onErr
	case stRouted:
		return e.onErr
	}
	return false
}

// propagate resolves node i's outgoing edges, skips dead branches
// transitively, and queues or spawns the nodes that became ready.
func (r *run) propagate(i int32, q []int32) []int32 {
	var wbuf, bbuf [16]int32
	work := append(wbuf[:0], i)
	blocking := bbuf[:0]
	for len(work) > 0 {
		k := work[len(work)-1]
		work = work[:len(work)-1]
		s := &r.slots[k]
		st, sel := s.state.Load(), s.call.sel
		for _, e := range r.p.nodes[k].out {
			switch r.arrive(e.to, edgeActive(st, sel, e)) {
			case arriveRun:
				if r.p.nodes[e.to].blocking {
					blocking = append(blocking, e.to)
				} else {
					q = append(q, e.to)
				}
			case arriveSkip:
				r.slots[e.to].state.Store(stSkipped)
				work = append(work, e.to)
			}
		}
	}
	if len(blocking) > 0 {
		q = r.dispatch(blocking, q)
	}
	return q
}

const (
	arriveNone = iota
	arriveRun
	arriveSkip
)

// arrive records one resolved incoming edge of node j and reports whether
// j is now ready to run or to be skipped. Exactly one arrival (or the
// wait timer) wins the state transition, so every node runs at most once.
func (r *run) arrive(j int32, active bool) int {
	s := &r.slots[j]
	n := &r.p.nodes[j]
	var a int32
	if active {
		a = s.active.Add(1)
		if a == 1 && n.wait > 0 && n.need != 1 {
			r.startTimer(j)
		}
	}
	left := s.pending.Add(-1)
	if n.need > 0 && active && a == n.need {
		if s.state.CompareAndSwap(stPending, stRunning) {
			r.resolveTimer(j)
			return arriveRun
		}
		return arriveNone
	}
	if left == 0 && s.state.CompareAndSwap(stPending, stRunning) {
		r.resolveTimer(j)
		if s.active.Load() > 0 {
			return arriveRun
		}
		return arriveSkip
	}
	return arriveNone
}

func (r *run) startTimer(j int32) {
	s := &r.slots[j]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resolved || s.timer != nil {
		return
	}
	r.ensureConcurrent()
	r.wg.Add(1)
	s.timer = time.AfterFunc(r.p.nodes[j].wait, func() { r.onTimer(j) })
}

func (r *run) resolveTimer(j int32) {
	if r.p.nodes[j].wait <= 0 {
		return
	}
	s := &r.slots[j]
	s.mu.Lock()
	s.resolved = true
	if s.timer != nil && s.timer.Stop() {
		r.wg.Done()
	}
	s.mu.Unlock()
}

func (r *run) onTimer(j int32) {
	defer r.wg.Done()
	s := &r.slots[j]
	if !s.state.CompareAndSwap(stPending, stRunning) {
		return
	}
	s.mu.Lock()
	s.resolved = true
	s.mu.Unlock()
	s.timedOut = true
	r.drive(j)
}

func (r *run) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.failed.Store(true)
	if r.cancel != nil {
		r.cancel()
	}
}

func (r *run) exec(i int32) {
	n := &r.p.nodes[i]
	s := &r.slots[i]
	if r.failed.Load() {
		s.state.Store(stCanceled)
		return
	}
	if err := r.ctx.Err(); err != nil {
		s.err = err
		s.state.Store(stCanceled)
		r.fail(err)
		return
	}
	timed := r.p.timed || r.input.Trace
	var t0 time.Time
	if timed {
		t0 = time.Now()
	}
	out, err := r.invoke(n, s)
	if timed {
		s.dur = time.Since(t0)
	}
	if m := n.m; m != nil {
		m.executions.Inc()
		m.latency.Observe(s.dur.Seconds())
		if err != nil {
			m.errors.Inc()
		}
	}
	if err == nil {
		s.out = out
		s.state.Store(stOK)
		return
	}
	if ctxErr := r.ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		// The message was cancelled or failed elsewhere: not this node's fault.
		s.err = err
		s.state.Store(stCanceled)
		r.fail(err)
		return
	}
	err = &NodeError{Node: n.path, Kind: n.kindName, Err: err}
	s.err = err
	switch n.onError {
	case onErrorSkip:
		s.state.Store(stErrSkipped)
	case onErrorRoute:
		s.out = map[string]any{"error": err.Error(), "node": n.id}
		s.state.Store(stRouted)
	default:
		s.state.Store(stFailed)
		r.fail(err)
	}
}

func retryable(err error) bool {
	var le *function.LimitError
	var se *function.ScriptError
	var pe *PanicError
	return !IsPermanent(err) && !errors.As(err, &le) && !errors.As(err, &se) && !errors.As(err, &pe) && !errors.Is(err, ErrNoSinks)
}

func (r *run) invoke(n *node, s *slot) (any, error) {
	backoff := n.backoff
	for attempt := 0; ; attempt++ {
		s.attempts = int32(attempt + 1)
		out, err := r.call(n, s)
		if err == nil || attempt >= n.retries || !retryable(err) || r.ctx.Err() != nil {
			return out, err
		}
		r.p.log.Warn("flow node failed, retrying", "flow", r.p.name, "node", n.path, "attempt", attempt+1, "err", err)
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-r.ctx.Done():
				t.Stop()
				return out, err
			}
			backoff = min(2*backoff, 10*time.Second)
		}
	}
}

func (r *run) call(n *node, s *slot) (out any, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
			r.p.log.Error("flow node panicked", "flow", r.p.name, "node", n.path, "panic", fmt.Sprint(v))
		}
	}()
	ctx := r.ctx
	if n.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.timeout)
		defer cancel()
	}
	if r.p.tracer != nil {
		var end func(error)
		ctx, end = r.p.tracer.StartNode(ctx, r.p.name, n.path, n.kindName)
		defer func() { end(err) }()
	}
	s.call.sel = selAll
	out, err = n.impl.Run(ctx, &s.call)
	if err != nil && n.timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && r.ctx.Err() == nil {
		err = fmt.Errorf("%w: %w", &TimeoutError{Timeout: n.timeoutStr}, err)
	}
	return out, err
}

func (r *run) eval(v *value) any {
	switch {
	case v.path != nil:
		return r.resolve(v.path)
	case v.isMap:
		m := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			m[k] = r.eval(&v.list[i])
		}
		return m
	case v.list != nil:
		l := make([]any, len(v.list))
		for i := range v.list {
			l[i] = r.eval(&v.list[i])
		}
		return l
	}
	return v.lit
}

func (r *run) resolve(cp *cpath) any {
	var v any
	switch cp.root {
	case rootNode:
		s := &r.slots[cp.node]
		// Only finished nodes are read: a node fired early by a join may
		// have ancestors still running.
		if st := s.state.Load(); st != stOK && st != stRouted {
			return nil
		}
		v = s.out
	case rootInput:
		v = r.scope
	case rootParams:
		v = r.params()
	case rootParam:
		var ok bool
		if v, ok = r.input.Params[cp.param]; !ok {
			v = r.p.paramDefaults[cp.param]
		}
	case rootItem:
		v = r.item
	case rootIndex:
		return int64(r.index)
	}
	return walk(v, cp.steps)
}

// params returns the message's parameters with defaults filled in,
// merging at most once per message and only when someone asks.
func (r *run) params() map[string]any {
	r.paramsOnce.Do(func() {
		switch {
		case len(r.p.paramDefaults) == 0:
			r.merged = r.input.Params
		case len(r.input.Params) == 0:
			r.merged = r.p.paramDefaults
		default:
			m := make(map[string]any, len(r.p.paramDefaults)+len(r.input.Params))
			for k, v := range r.p.paramDefaults {
				m[k] = v
			}
			for k, v := range r.input.Params {
				m[k] = v
			}
			r.merged = m
		}
	})
	return r.merged
}

func (r *run) getState() *State {
	if r.parent != nil {
		return r.parent.getState()
	}
	if r.input.State != nil {
		return r.input.State
	}
	r.stateOnce.Do(func() { r.state = NewState(nil) })
	return r.state
}

func (r *run) output() map[string]any {
	if len(r.p.output) == 0 {
		// No output declared: every successful node's output, which is what
		// a test run or a body without an output mapping wants to see.
		m := make(map[string]any, len(r.slots))
		for i := range r.slots {
			if r.slots[i].state.Load() == stOK {
				m[r.p.nodes[i].id] = r.slots[i].out
			}
		}
		return m
	}
	if m, ok := r.projected(); ok {
		return m
	}
	m := make(map[string]any, len(r.p.output))
	for i := range r.p.output {
		m[r.p.output[i].name] = r.eval(&r.p.output[i].v)
	}
	return m
}

// projected returns the output as its project node's own map, when the
// plan has such a node and the map has exactly the output's keys.
func (r *run) projected() (map[string]any, bool) {
	if r.p.project < 0 {
		return nil, false
	}
	s := &r.slots[r.p.project]
	if st := s.state.Load(); st != stOK && st != stRouted {
		return nil, false
	}
	m, ok := s.out.(map[string]any)
	if !ok || len(m) != len(r.p.output) {
		return nil, false
	}
	for i := range r.p.output {
		if _, ok := m[r.p.output[i].name]; !ok {
			return nil, false
		}
	}
	return m, true
}

func (r *run) traces() []NodeResult {
	out := make([]NodeResult, 0, len(r.p.order))
	for _, i := range r.p.order {
		s := &r.slots[i]
		n := &r.p.nodes[i]
		nr := NodeResult{ID: n.id, Kind: n.kindName, Status: statusNames[s.state.Load()], Output: s.out, Duration: s.dur, Attempts: int(s.attempts)}
		if s.err != nil {
			nr.Error = s.err.Error()
			nr.Line, nr.Column = function.Position(s.err)
		}
		out = append(out, nr)
	}
	return out
}

// nested runs a body plan (foreach item, subflow) inside this message:
// same deadline, sinks, state and time; its own $input, $item and params.
func (r *run) nested(ctx context.Context, body *Plan, scope, item any, index int, isItem bool, params map[string]any) (any, error) {
	nr := body.get()
	nr.ctx = ctx
	nr.input = r.input
	nr.input.Trace = false
	nr.input.Params = params
	nr.scope, nr.item, nr.index, nr.isItem, nr.parent = scope, item, index, isItem, r
	nr.runAll()
	var out any
	if nr.err == nil {
		out = nr.output()
	}
	err := nr.err
	body.put(nr)
	return out, err
}

// route is where the message comes from: its key, and the "group" field
// of the message itself (not of a foreach item).
func (c *Call) route() Route {
	r := Route{Key: c.r.input.Key}
	if m, ok := c.r.input.Data.(map[string]any); ok {
		r.Group, _ = m["group"].(string)
	}
	return r
}

// NodeID returns the node's id ("outer/inner" inside bodies).
func (c *Call) NodeID() string { return c.n.path }

// Origin names this call's place in its message's run: the node's path
// followed by the index of every foreach item it runs for, outermost first
// ("each/save[2]"). A rerun of the same message gives the same origin to
// the same node and item, whatever order concurrent items and branches
// run in, so sinks derive stable ids from it; counting outputs as they
// arrive would not.
func (c *Call) Origin() string {
	var idx []int
	for r := c.r; r != nil; r = r.parent {
		if r.isItem {
			idx = append(idx, r.index)
		}
	}
	if len(idx) == 0 {
		return c.n.path
	}
	b := make([]byte, 0, len(c.n.path)+4*len(idx))
	b = append(b, c.n.path...)
	for i := len(idx) - 1; i >= 0; i-- {
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(idx[i]), 10)
		b = append(b, ']')
	}
	return string(b)
}

// Arg returns mapped input i (see Builder.Arg), resolved for this message.
func (c *Call) Arg(i int) any {
	if i < 0 {
		return nil
	}
	return c.r.eval(&c.n.args[i].v)
}

// Args returns all mapped inputs as a new map.
func (c *Call) Args() map[string]any {
	m := make(map[string]any, len(c.n.args))
	for i := range c.n.args {
		m[c.n.args[i].name] = c.r.eval(&c.n.args[i].v)
	}
	return m
}

// Input returns $input: the message, or inside a body the mapped inputs of
// the node that runs the body.
func (c *Call) Input() any { return c.r.scope }

// Params returns the parameters with defaults filled in.
func (c *Call) Params() map[string]any { return c.r.params() }

// Time returns the message time, or the State clock when it has none.
func (c *Call) Time() time.Time {
	if !c.r.input.Time.IsZero() {
		return c.r.input.Time
	}
	return c.r.getState().clock()
}

// Key returns the message's partition key (Input.Key).
func (c *Call) Key() string { return c.r.input.Key }

// Sinks returns the message's sinks, or nil.
func (c *Call) Sinks() Sinks { return c.r.input.Sinks }

// NodeState returns this node's part of the task State, creating it with
// init on first use. The value must do its own locking.
func (c *Call) NodeState(init func() any) any {
	return c.r.getState().forNode(c.n, init)
}

// SelectOnly makes only successor target (from Builder.Successor) run;
// the other successors are skipped, as are their exclusive descendants.
func (c *Call) SelectOnly(target int) { c.sel = int32(target) }

// SelectNone skips every successor: the message ends here on this branch
// (a filter that let nothing through).
func (c *Call) SelectNone() { c.sel = selNone }

// TimedOut reports that the node runs because its wait (Builder.WaitFor)
// expired, not because enough inputs arrived.
func (c *Call) TimedOut() bool { return c.r.slots[c.idx].timedOut }

// Arrived returns the outputs of the predecessors that have finished
// successfully, by id; a join merges these.
func (c *Call) Arrived() map[string]any {
	m := make(map[string]any, len(c.n.in))
	for _, j := range c.n.in {
		s := &c.r.slots[j]
		if st := s.state.Load(); st == stOK || st == stRouted {
			m[c.r.p.nodes[j].id] = s.out
		}
	}
	return m
}

// RunBody runs a nested plan compiled with Builder.Body for one item;
// $input in the body is input, $item is item and $index is index.
func (c *Call) RunBody(ctx context.Context, body *Plan, input, item any, index int) (any, error) {
	return c.r.nested(ctx, body, input, item, index, true, c.r.input.Params)
}

// RunSubflow runs a plan compiled with Builder.Subflow with its own
// $input and parameter values.
func (c *Call) RunSubflow(ctx context.Context, body *Plan, input any, params map[string]any) (any, error) {
	return c.r.nested(ctx, body, input, nil, 0, false, params)
}
