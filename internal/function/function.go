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
// operators and methods that can amplify memory in one step (+, *, %,
// augmented assignment, str.join, str.replace, str.format, list.extend,
// str(), repr(), json.encode, range) into checked calls that refuse to build
// a value larger than Limits.MaxValueBytes. Everything else grows at most a
// bounded amount per step, which the step limit bounds.
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
	limits  Limits
	env     *env
	threads sync.Pool
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
// the same step and time limits as a call. Syntax errors, undefined names
// (open, sys, ...) and load statements are reported as errors.
func Compile(name, src string, limits Limits) (*Program, error) {
	limits = limits.withDefaults()
	if len(src) > limits.MaxSourceBytes {
		return nil, &LimitError{Program: name, Limit: LimitSourceSize, Max: strconv.Itoa(limits.MaxSourceBytes) + " bytes"}
	}
	f, err := fileOptions().Parse(name, src, 0)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", name, err)
	}
	for _, st := range f.Stmts {
		if l, ok := st.(*syntax.LoadStmt); ok {
			return nil, fmt.Errorf("function %q: %s: load() is not allowed; json, math, time and re are predeclared", name, l.Load)
		}
	}
	guardFile(f)
	e := newEnv(limits)
	prog, err := starlark.FileProgram(f, e.predeclared.Has)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", name, err)
	}
	p := &Program{name: name, limits: limits, env: e}
	p.threads.New = func() any { return p.newWorker() }
	w := p.newWorker()
	w.begin(context.Background(), limits)
	globals, err := prog.Init(&w.th, e.predeclared)
	if err = w.end(err); err != nil {
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
	return p, nil
}

// Call runs main(input, params) and returns its result converted to Go
// values (nil, bool, int64, float64, string, []byte, []any, map[string]any,
// time.Time, time.Duration, or a Go value that passed through opaque).
// Cancelling ctx stops the script within a few thousand steps.
func (p *Program) Call(ctx context.Context, input any, params map[string]any) (any, error) {
	w := p.threads.Get().(*worker)
	defer p.threads.Put(w)
	budget := p.limits.MaxInputBytes
	in, err := toStarlark(input, &budget, p.limits.MaxDepth)
	if err != nil {
		return nil, p.convErr(err, LimitInputSize, p.limits.MaxInputBytes)
	}
	args := w.args[:1]
	args[0] = in
	if p.nparams == 2 {
		var pv starlark.Value = starlark.None
		if params != nil {
			if pv, err = toStarlark(params, &budget, p.limits.MaxDepth); err != nil {
				return nil, p.convErr(err, LimitInputSize, p.limits.MaxInputBytes)
			}
		}
		args = w.args[:2]
		args[1] = pv
	}
	w.begin(ctx, p.limits)
	v, err := starlark.Call(&w.th, p.main, args, nil)
	w.args[0], w.args[1] = nil, nil
	if err = w.end(err); err != nil {
		return nil, err
	}
	obudget := p.limits.MaxOutputBytes
	out, err := fromStarlark(v, &obudget, p.limits.MaxDepth)
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
	hit      string // limit that cancelled the thread, "" if none
	valueErr *LimitError
	args     [2]starlark.Value
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
	w.ctx = ctx
	w.deadline = time.Now().Add(l.MaxDuration)
	w.maxSteps = l.MaxSteps
	w.hit = ""
	w.valueErr = nil
	w.th.Steps = 0
	w.th.Uncancel()
	w.th.SetMaxExecutionSteps(min(limitCheckPeriod, l.MaxSteps))
}

// onSteps runs every limitCheckPeriod steps: it is where the time limit and
// ctx are checked, so no timer or goroutine is needed per call.
func (w *worker) onSteps(th *starlark.Thread) {
	switch {
	case th.Steps >= w.maxSteps:
		w.hit = LimitSteps
	case w.ctx.Err() != nil:
		w.hit = "context"
	case time.Now().After(w.deadline):
		w.hit = LimitTime
	default:
		th.SetMaxExecutionSteps(min(th.Steps+limitCheckPeriod, w.maxSteps))
		return
	}
	th.Cancel(w.hit)
}

func (w *worker) end(err error) error {
	if err == nil {
		return nil
	}
	name := w.p.name
	switch w.hit {
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
