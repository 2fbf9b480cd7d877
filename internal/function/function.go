// Package function is Tianshu's script sandbox: it compiles small user
// scripts written in Starlark (Python syntax) once and runs them many times,
// concurrently, each call bounded in steps, wall time, input, output and
// intermediate value size.
//
// Scripts cannot reach files, the network, processes or the host by
// construction: the only names they see are Starlark's universe (with a few
// builtins replaced by size-checked versions) and the modules json, math,
// time and re. load() is refused at compile time.
//
// Starlark has no memory accounting of its own, so the sandbox rewrites the
// operators, slices and methods that can build a large value in one step
// into checked calls, and replaces the builtins that can (int, list, dict,
// sorted, json.decode, ...) with checked versions. Each refuses a single
// value larger than Limits.MaxValueBytes or an integer wider than
// Limits.MaxIntBits, and charges what it builds to the call's memory
// budget, Limits.MaxMemoryBytes; each step is charged a little for the
// growth no guard sees. A timer and the caller's context cancel a call
// between any two steps; every step is bounded in size, so it is short.
//
// The package imports nothing else of Tianshu's, so any part of the
// platform (flows, device and algorithm HTTP mappings) can use it.
package function

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Limits bound one script call. A zero field takes its default (see
// DefaultLimits); limits are per call, never shared between calls.
type Limits struct {
	// MaxSteps bounds Starlark computation steps per call (and for a
	// program's top-level code at compile time).
	MaxSteps uint64
	// MaxDuration bounds the wall time of one call. It is checked every few
	// thousand steps, so a call overruns it by at most a few hundred µs.
	MaxDuration time.Duration
	// MaxInputBytes bounds the approximate size of the converted input and
	// params of one call.
	MaxInputBytes int
	// MaxOutputBytes bounds the approximate size of the converted result.
	MaxOutputBytes int
	// MaxValueBytes bounds any single string, list or number that a script
	// builds with an amplifying operation (+, *, %, join, replace, format,
	// extend, str, repr, json.encode, range).
	MaxValueBytes int
	// MaxSourceBytes bounds the script source.
	MaxSourceBytes int
	// MaxDepth bounds the nesting depth of converted input and output values;
	// it also stops self-referencing structures from looping the converter.
	MaxDepth int
	// MaxMemoryBytes bounds the bytes one call allocates: every string,
	// bytes, list, tuple, dict, set and big integer a guarded operation or
	// builtin makes is charged before it is made, and every step is charged
	// 16 bytes for the small growth no guard sees (one appended element).
	// Garbage counts too: it is a budget of allocation, not of live memory.
	MaxMemoryBytes int
	// MaxIntBits bounds the size of an integer made by *, <<, +, -, int()
	// or json.decode, so that no arithmetic step runs for long.
	MaxIntBits int
	// Gate, when set, caps how many calls of programs compiled with the same
	// GateKey (a project) run at once; a call over the cap waits up to
	// MaxDuration for a slot, then fails with the concurrency limit.
	Gate    *Gate
	GateKey string
}

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{
		MaxSteps:       1_000_000,
		MaxDuration:    time.Second,
		MaxInputBytes:  8 << 20,
		MaxOutputBytes: 1 << 20,
		MaxValueBytes:  4 << 20,
		MaxSourceBytes: 64 << 10,
		MaxDepth:       64,
		MaxMemoryBytes: 64 << 20,
		MaxIntBits:     1 << 16,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxSteps == 0 {
		l.MaxSteps = d.MaxSteps
	}
	if l.MaxDuration <= 0 {
		l.MaxDuration = d.MaxDuration
	}
	if l.MaxInputBytes <= 0 {
		l.MaxInputBytes = d.MaxInputBytes
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = d.MaxValueBytes
	}
	if l.MaxSourceBytes <= 0 {
		l.MaxSourceBytes = d.MaxSourceBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxMemoryBytes <= 0 {
		l.MaxMemoryBytes = d.MaxMemoryBytes
	}
	if l.MaxIntBits <= 0 {
		l.MaxIntBits = d.MaxIntBits
	}
	return l
}

// Limit names carried by LimitError.Limit.
const (
	LimitSteps       = "steps"
	LimitTime        = "time"
	LimitInputSize   = "input-size"
	LimitOutputSize  = "output-size"
	LimitValueSize   = "value-size"
	LimitSourceSize  = "source-size"
	LimitDepth       = "depth"
	LimitRecursion   = "recursion"
	LimitMemory      = "memory"
	LimitIntSize     = "int-size"
	LimitConcurrency = "concurrency"
	limitCheckPeriod = 1 << 12
)

// LimitError reports that a script exceeded one of its Limits. Callers
// match it with errors.As to tell a runaway script from a buggy one; it is
// never worth retrying.
type LimitError struct {
	Program string // name given to Compile
	Limit   string // one of the Limit* names
	Max     string // the limit's value, human readable
}

// Error names the program, the limit and its value.
func (e *LimitError) Error() string {
	return fmt.Sprintf("function %q: %s limit exceeded (max %s)", e.Program, e.Limit, e.Max)
}

// ScriptError is a failure inside the script itself (a Starlark runtime error,
// a wrong result type, a value that cannot be converted). Like LimitError it
// is deterministic, so retrying does not help.
type ScriptError struct {
	Program string
	Err     error
}

// Error names the program and the cause, with the Starlark backtrace when
// there is one.
func (e *ScriptError) Error() string {
	var ee *starlark.EvalError
	if errors.As(e.Err, &ee) {
		return fmt.Sprintf("function %q: %s", e.Program, ee.Backtrace())
	}
	return fmt.Sprintf("function %q: %v", e.Program, e.Err)
}

// Unwrap returns the cause.
func (e *ScriptError) Unwrap() error { return e.Err }

// Program is a compiled script whose main function is called once per
// input. It is immutable and safe for concurrent calls: each call runs on its
// own Starlark thread (pooled), and the script's globals are frozen.
type Program struct {
	name    string
	main    *starlark.Function
	nparams int
	// paramsUnused: main's second parameter is never read.
	paramsUnused bool
	limits       Limits
	env          *env
	threads      sync.Pool
	slots        chan struct{} // the gate's slots of this program's key; nil: no gate
	// fast evaluates main on Go values when the script is simple enough
	// (direct.go); nil otherwise.
	fast *direct
}

// Name returns the name given to Compile.
func (p *Program) Name() string { return p.name }

// Limits returns the program's effective limits.
func (p *Program) Limits() Limits { return p.limits }

func fileOptions() *syntax.FileOptions {
	// while and top-level control make ordinary Python-style code work; the
	// step limit bounds them. Recursion stays off (Starlark's default).
	return &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}
}

// Compile parses, checks and initialises src, which must define
// main(input) or main(input, params). Top-level code runs once here, under
// the same limits as a call. Syntax errors, undefined names (open, sys,
// ...) and load statements are reported as errors.
func Compile(name, src string, limits Limits) (*Program, error) {
	return CompileContext(context.Background(), name, src, limits)
}

// CompileContext is Compile whose top-level code stops when ctx ends.
func CompileContext(ctx context.Context, name, src string, limits Limits) (*Program, error) {
	limits = limits.withDefaults()
	prog, e, err := parse(name, src, limits)
	if err != nil {
		return nil, err
	}
	p := &Program{name: name, limits: limits, env: e}
	if limits.Gate != nil {
		p.slots = limits.Gate.slots(limits.GateKey)
	}
	p.threads.New = func() any { return p.newWorker() }
	release, err := p.enter(ctx)
	if err != nil {
		return nil, err
	}
	w := p.newWorker()
	w.begin(ctx, limits)
	globals, err := prog.Init(&w.th, e.predeclared)
	err = w.end(err)
	release()
	if err != nil {
		return nil, err
	}
	globals.Freeze()
	fn, ok := globals["main"].(*starlark.Function)
	if !ok {
		return nil, fmt.Errorf("function %q: the script must define main(input, params)", name)
	}
	if fn.NumParams() < 1 || fn.NumParams() > 2 || fn.HasVarargs() || fn.HasKwargs() || fn.NumKwonlyParams() > 0 {
		return nil, fmt.Errorf("function %q: main must take (input) or (input, params)", name)
	}
	p.main = fn
	p.nparams = fn.NumParams()
	if p.nparams == 2 {
		// A params that the script never names (its one identifier is the
		// parameter itself) cannot be observed: it is passed as None
		// instead of converted.
		name, _ := fn.Param(1)
		p.paramsUnused = e.names[name] == 1
	}
	e.names = nil
	p.fast = compileDirect(src, limits)
	return p, nil
}

// parse parses, guards and resolves src without running any of it.
func parse(name, src string, limits Limits) (*starlark.Program, *env, error) {
	if len(src) > limits.MaxSourceBytes {
		return nil, nil, &LimitError{Program: name, Limit: LimitSourceSize, Max: strconv.Itoa(limits.MaxSourceBytes) + " bytes"}
	}
	f, err := fileOptions().Parse(name, src, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("function %q: %w", name, err)
	}
	for _, st := range f.Stmts {
		if l, ok := st.(*syntax.LoadStmt); ok {
			return nil, nil, at(fmt.Errorf("function %q: %s: load() is not allowed; json, math, time and re are predeclared", name, l.Load), l.Load)
		}
	}
	if id := reservedIdent(f); id != nil {
		return nil, nil, at(fmt.Errorf("function %q: %s: names starting with __ are reserved", name, id.NamePos), id.NamePos)
	}
	names := map[string]int{}
	syntax.Walk(f, func(n syntax.Node) bool {
		if id, ok := n.(*syntax.Ident); ok {
			names[id.Name]++
		}
		return true
	})
	guardFile(f)
	e := newEnv(limits)
	e.names = names
	prog, err := starlark.FileProgram(f, e.predeclared.Has)
	if err != nil {
		return nil, nil, fmt.Errorf("function %q: %w", name, err)
	}
	return prog, e, nil
}

// reservedIdent returns the first identifier of f that starts with "__":
// the guards' builtins have such names, and a script must not rebind them.
// __args is CompileExpr's wrapper's parameter, not a builtin.
func reservedIdent(f *syntax.File) *syntax.Ident {
	var found *syntax.Ident
	syntax.Walk(f, func(n syntax.Node) bool {
		if id, ok := n.(*syntax.Ident); ok && found == nil && strings.HasPrefix(id.Name, "__") && id.Name != "__args" {
			found = id
		}
		return found == nil
	})
	return found
}

// Check compiles src as Compile does but runs none of it: syntax, names,
// load statements and main's signature are checked, and top-level code is
// not run, so its errors and limits show only at Compile. It is for
// callers that may not spend the server's resources on a script (a
// read-only validation). The Program it returns has the name and limits
// but cannot be called: Call answers a ScriptError.
func Check(name, src string, limits Limits) (*Program, error) {
	limits = limits.withDefaults()
	if _, _, err := parse(name, src, limits); err != nil {
		return nil, err
	}
	f, err := fileOptions().Parse(name, src, 0)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", name, err)
	}
	checked := &Program{name: name, limits: limits}
	for _, st := range f.Stmts {
		switch s := st.(type) {
		case *syntax.DefStmt:
			if s.Name.Name != "main" {
				continue
			}
			n := len(s.Params)
			for _, p := range s.Params {
				if _, ok := p.(*syntax.UnaryExpr); ok { // *args, **kwargs, or *
					n = -1
				}
			}
			if n < 1 || n > 2 {
				return nil, fmt.Errorf("function %q: main must take (input) or (input, params)", name)
			}
			return checked, nil
		case *syntax.AssignStmt:
			if id, ok := s.LHS.(*syntax.Ident); ok && id.Name == "main" {
				return checked, nil // bound at run time; Compile checks its signature
			}
		}
	}
	return nil, fmt.Errorf("function %q: the script must define main(input, params)", name)
}

// enter takes one of the gate's slots for this program's key, waiting up
// to MaxDuration; release gives it back.
func (p *Program) enter(ctx context.Context) (release func(), err error) {
	if p.slots == nil {
		return noRelease, nil
	}
	select {
	case p.slots <- struct{}{}:
		return p.release, nil
	default:
	}
	t := time.NewTimer(p.limits.MaxDuration)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return p.release, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("function %q: %w", p.name, context.Cause(ctx))
	case <-t.C:
		return nil, &LimitError{Program: p.name, Limit: LimitConcurrency, Max: strconv.Itoa(cap(p.slots)) + " calls at once per project"}
	}
}

func (p *Program) release() { <-p.slots }

func noRelease() {}

// Call runs main(input, params) and returns its result converted to Go
// values (nil, bool, int64, float64, string, []byte, []any, map[string]any,
// time.Time, time.Duration, or a Go value that passed through opaque).
// input and params reach the script frozen: it cannot change them in place.
// Under a context from WithMemo, conversions are shared with the message's
// other calls (see Memo). Cancelling ctx stops the script within
// milliseconds (ctxPoll, or a few thousand steps).
func (p *Program) Call(ctx context.Context, input any, params map[string]any) (any, error) {
	return p.call(ctx, input, nil, nil, params)
}

// CallFields is Call with an input dict of names[i]: values[i], in that
// order, converted straight into the script's dict (no Go map in between).
func (p *Program) CallFields(ctx context.Context, names []string, values []any, params map[string]any) (any, error) {
	return p.call(ctx, nil, names, values, params)
}

func (p *Program) call(ctx context.Context, input any, names []string, values []any, params map[string]any) (any, error) {
	if p.main == nil {
		return nil, &ScriptError{Program: p.name, Err: errors.New("the program was only checked, not compiled")}
	}
	release, err := p.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	memo := memoOf(ctx)
	// Evaluated directly only under a memo: a value of the input returned
	// unchanged is then the same Go value in both ways.
	if p.fast != nil && memo != nil {
		if out, ok := p.fast.call(input, names, values, params, p.nparams == 2 && !p.paramsUnused); ok {
			return out, nil
		}
	}
	w := p.threads.Get().(*worker)
	defer p.threads.Put(w)
	args, err := p.convertArgs(memo, w, input, names, values, params)
	if err != nil {
		return nil, err
	}
	w.begin(ctx, p.limits)
	v, err := starlark.Call(&w.th, p.main, args, nil)
	w.args[0], w.args[1] = nil, nil
	if err = w.end(err); err != nil {
		return nil, err
	}
	return p.convertResult(memo, v)
}

// convertArgs converts the call's input (input, or names: values) and
// params into w's argument slots.
func (p *Program) convertArgs(memo *Memo, w *worker, input any, names []string, values []any, params map[string]any) ([]starlark.Value, error) {
	if memo != nil {
		memo.mu.Lock()
		defer memo.mu.Unlock()
	}
	c := toConv{budget: p.limits.MaxInputBytes, memo: memo, low: p.limits.MaxDepth}
	var in starlark.Value
	var err error
	if names != nil {
		in, err = c.fields(names, values, p.limits.MaxDepth)
	} else {
		in, err = c.value(input, p.limits.MaxDepth)
	}
	if err != nil {
		return nil, p.convErr(err, LimitInputSize, p.limits.MaxInputBytes)
	}
	args := w.args[:1]
	args[0] = in
	if p.nparams == 2 {
		var pv starlark.Value = starlark.None
		if params != nil && !p.paramsUnused {
			if pv, err = c.value(params, p.limits.MaxDepth); err != nil {
				return nil, p.convErr(err, LimitInputSize, p.limits.MaxInputBytes)
			}
		}
		args = w.args[:2]
		args[1] = pv
	}
	return args, nil
}

// convertResult converts a call's result back to Go values.
func (p *Program) convertResult(memo *Memo, v starlark.Value) (any, error) {
	if memo != nil {
		memo.mu.Lock()
		defer memo.mu.Unlock()
	}
	budget := p.limits.MaxOutputBytes
	c := fromConv{budget: &budget, memo: memo}
	out, err := c.value(v, p.limits.MaxDepth)
	if err != nil {
		return nil, p.convErr(err, LimitOutputSize, p.limits.MaxOutputBytes)
	}
	return out, nil
}

func (p *Program) convErr(err error, limit string, max int) error {
	switch {
	case errors.Is(err, errBudget):
		return &LimitError{Program: p.name, Limit: limit, Max: strconv.Itoa(max) + " bytes"}
	case errors.Is(err, errDepth):
		return &LimitError{Program: p.name, Limit: LimitDepth, Max: strconv.Itoa(p.limits.MaxDepth)}
	}
	return &ScriptError{Program: p.name, Err: err}
}

// worker is a pooled Starlark thread plus the per-call limit state its
// OnMaxSteps hook reads; pooling keeps the hook a method value, so a call
// allocates neither a thread nor a closure.
type worker struct {
	th       starlark.Thread
	p        *Program
	ctx      context.Context
	deadline time.Time
	maxSteps uint64
	hit      atomic.Pointer[string] // why the thread was cancelled; nil if not
	valueErr *LimitError
	alloc    int // bytes charged to the memory budget
	args     [2]starlark.Value

	// The timer cancels the thread between any two steps, not only every
	// limitCheckPeriod steps: one step may take milliseconds. It stops a
	// call at its deadline and, polling, when its context ends (cheaper
	// than registering with each call's context). mu orders it against
	// the worker's reuse by the next call.
	mu      sync.Mutex
	running bool
	timer   *time.Timer
	armed   bool // the timer will fire: back-to-back calls share it
}

func (p *Program) newWorker() *worker {
	w := &worker{p: p}
	w.th.Name = p.name
	w.th.Print = func(*starlark.Thread, string) {} // print is a no-op: scripts have no stdout
	w.th.Load = func(*starlark.Thread, string) (starlark.StringDict, error) {
		return nil, errors.New("load() is not allowed")
	}
	w.th.OnMaxSteps = w.onSteps
	w.th.SetLocal(workerKey, w)
	return w
}

const workerKey = "tianshu.worker"

func (w *worker) begin(ctx context.Context, l Limits) {
	w.mu.Lock()
	w.ctx = ctx
	w.deadline = time.Now().Add(l.MaxDuration)
	w.maxSteps = l.MaxSteps
	w.hit.Store(nil)
	w.valueErr = nil
	w.alloc = 0
	w.th.Steps = 0
	w.th.Uncancel()
	w.th.SetMaxExecutionSteps(min(limitCheckPeriod, l.MaxSteps))
	w.running = true
	// The timer fires every ctxPoll at most (and at the deadline), while a
	// call runs: an armed timer fires no later than this call's first poll,
	// and onTimer then checks this call's context and deadline: a call
	// neither resets nor stops it.
	switch {
	case w.timer == nil:
		w.timer = time.AfterFunc(min(l.MaxDuration, ctxPoll), w.onTimer)
		w.armed = true
	case !w.armed:
		w.timer.Reset(min(l.MaxDuration, ctxPoll))
		w.armed = true
	}
	w.mu.Unlock()
}

// ctxPoll is how often a running call's context is checked between steps,
// besides every limitCheckPeriod steps: one step (a membership test on a
// long list, a guarded builtin) may take milliseconds.
const ctxPoll = 20 * time.Millisecond

func (w *worker) onTimer() {
	w.mu.Lock()
	switch left := time.Until(w.deadline); {
	case !w.running:
		w.armed = false
	case left <= 0:
		w.stop(LimitTime)
		w.armed = false
	case w.ctx.Err() != nil:
		w.stop("context")
		w.armed = false
	default:
		w.timer.Reset(min(left, ctxPoll))
	}
	w.mu.Unlock()
}

// stop cancels the thread for reason unless it was already stopped.
func (w *worker) stop(reason string) {
	if w.hit.CompareAndSwap(nil, &reason) {
		w.th.Cancel(reason)
	}
}

// limitErr records that the script passed limit and returns the error a
// guard gives back to the interpreter.
func (w *worker) limitErr(limit string) *LimitError {
	l := w.p.limits
	le := &LimitError{Program: w.p.name, Limit: limit}
	switch limit {
	case LimitMemory:
		le.Max = strconv.Itoa(l.MaxMemoryBytes) + " bytes"
	case LimitIntSize:
		le.Max = strconv.Itoa(l.MaxIntBits) + " bits"
	}
	w.valueErr = le
	return le
}

// onSteps runs every limitCheckPeriod steps: it checks the step limit and
// the steps' share of the memory budget, and, as a backstop to the timer,
// the time limit and ctx.
func (w *worker) onSteps(th *starlark.Thread) {
	switch {
	case th.Steps >= w.maxSteps:
		w.stop(LimitSteps)
	case w.alloc+int(th.Steps)*stepCost > w.p.limits.MaxMemoryBytes:
		w.limitErr(LimitMemory)
		th.Cancel(LimitMemory)
	case w.ctx.Err() != nil:
		w.stop("context")
	case time.Now().After(w.deadline):
		w.stop(LimitTime)
	default:
		th.SetMaxExecutionSteps(min(th.Steps+limitCheckPeriod, w.maxSteps))
	}
}

func (w *worker) end(err error) error {
	w.mu.Lock()
	w.running = false
	w.mu.Unlock()
	if err == nil {
		return nil
	}
	name := w.p.name
	hit := ""
	if h := w.hit.Load(); h != nil {
		hit = *h
	}
	switch hit {
	case LimitSteps:
		return &LimitError{Program: name, Limit: LimitSteps, Max: strconv.FormatUint(w.maxSteps, 10)}
	case LimitTime:
		return &LimitError{Program: name, Limit: LimitTime, Max: w.p.limits.MaxDuration.String()}
	case "context":
		return fmt.Errorf("function %q: %w", name, context.Cause(w.ctx))
	}
	if w.valueErr != nil {
		return w.valueErr
	}
	var le *LimitError
	if errors.As(err, &le) {
		return le
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) && isRecursionErr(ee) {
		return &LimitError{Program: name, Limit: LimitRecursion, Max: "0 (recursion is not allowed)"}
	}
	return &ScriptError{Program: name, Err: err}
}

func isRecursionErr(ee *starlark.EvalError) bool {
	return strings.Contains(ee.Msg, "called recursively")
}
