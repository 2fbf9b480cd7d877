package function

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Expr is a compiled Starlark expression over a fixed list of variables,
// used for switch conditions, score and key expressions. Like Program it is
// immutable and safe for concurrent use.
type Expr struct {
	prog *Program
	vars []string
	used []bool  // vars the expression names; the others are passed as None
	fast *direct // evaluates it on Go values when it is simple enough (direct.go)
}

// CompileExpr compiles one expression (no statements) whose free names are
// vars, the modules and the universe; any other name is an error here, not
// at run time. Variables are passed positionally to Eval, in vars order,
// which saves building a map per evaluation.
func CompileExpr(name, src string, vars []string, limits Limits) (*Expr, error) {
	limits = limits.withDefaults()
	if len(src) > limits.MaxSourceBytes {
		return nil, &LimitError{Program: name, Limit: LimitSourceSize, Max: fmt.Sprint(limits.MaxSourceBytes, " bytes")}
	}
	parsed, err := fileOptions().ParseExpr(name, src, 0)
	if err != nil {
		var se syntax.Error
		if errors.As(err, &se) {
			return nil, at(fmt.Errorf("expression %q: %d:%d: %s", name, se.Pos.Line, se.Pos.Col, se.Msg), se.Pos)
		}
		return nil, fmt.Errorf("expression %q: %w", name, err)
	}
	for _, v := range vars {
		if !isIdent(v) {
			return nil, fmt.Errorf("expression %q: variable %q is not an identifier", name, v)
		}
	}
	// The expression is wrapped in a function so that it gets the same
	// guards, limits and pooled threads as a script.
	body := "def main(__args):\n    " + unpackVars(vars) + "return (\n" + src + "\n)\n"
	p, err := compileWrapped(name, body, limits)
	if err != nil {
		// Positions refer to the wrapper: src starts on its line
		// len(vars)+3 ("def main", one line per variable, "return (").
		var rl resolve.ErrorList
		if errors.As(err, &rl) && len(rl) > 0 {
			return nil, &posError{err: fmt.Errorf("expression %q: %s", name, rl[0].Msg), line: max(int(rl[0].Pos.Line)-len(vars)-2, 1), col: int(rl[0].Pos.Col)}
		}
		if line, col := Position(err); line > len(vars)+2 {
			return nil, &posError{err: err, line: line - len(vars) - 2, col: col}
		}
		return nil, err
	}
	// A variable the expression never names cannot be observed, so its
	// value is not converted (a switch's params, most often).
	named := map[string]bool{}
	syntax.Walk(parsed, func(n syntax.Node) bool {
		if id, ok := n.(*syntax.Ident); ok {
			named[id.Name] = true
		}
		return true
	})
	used := make([]bool, len(vars))
	for i, v := range vars {
		used[i] = named[v]
	}
	return &Expr{prog: p, vars: vars, used: used, fast: compileDirectExpr(parsed, vars, used, limits)}, nil
}

func unpackVars(vars []string) string {
	var sb strings.Builder
	for i, v := range vars {
		fmt.Fprintf(&sb, "%s = __args[%d]\n    ", v, i)
	}
	return sb.String()
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func compileWrapped(name, src string, limits Limits) (*Program, error) {
	// Compile checks the source size against the user's text, not ours.
	l := limits
	l.MaxSourceBytes = len(src) + 1
	p, err := Compile(name, src, l)
	if err != nil {
		return nil, err
	}
	p.limits.MaxSourceBytes = limits.MaxSourceBytes
	return p, nil
}

// Vars returns the variable names in the order Eval expects their values.
func (e *Expr) Vars() []string { return e.vars }

func (e *Expr) eval(ctx context.Context, args []any) (starlark.Value, *worker, error) {
	p := e.prog
	elems, err := e.convertArgs(memoOf(ctx), args)
	if err != nil {
		return nil, nil, err
	}
	w := p.threads.Get().(*worker)
	w.args[0] = elems
	w.begin(ctx, p.limits)
	v, err := starlark.Call(&w.th, p.main, w.args[:1], nil)
	w.args[0] = nil
	if err = w.end(err); err != nil {
		p.threads.Put(w)
		if line, col := Position(err); line > len(e.vars)+2 {
			// The backtrace's positions are the wrapper's (see CompileExpr).
			err = &posError{err: err, line: line - len(e.vars) - 2, col: col}
		}
		return nil, nil, err
	}
	return v, w, nil
}

// convertArgs converts the variables the expression names.
func (e *Expr) convertArgs(memo *Memo, args []any) (starlark.Tuple, error) {
	p := e.prog
	if memo != nil {
		memo.mu.Lock()
		defer memo.mu.Unlock()
	}
	c := toConv{budget: p.limits.MaxInputBytes, memo: memo, low: p.limits.MaxDepth}
	elems := make(starlark.Tuple, len(args))
	for i, a := range args {
		if i < len(e.used) && !e.used[i] {
			elems[i] = starlark.None
			continue
		}
		v, err := c.value(a, p.limits.MaxDepth)
		if err != nil {
			return nil, p.convErr(err, LimitInputSize, p.limits.MaxInputBytes)
		}
		elems[i] = v
	}
	return elems, nil
}

// direct evaluates the expression on Go values when it can; ok false:
// evaluate it in Starlark.
func (e *Expr) direct(args []any) (any, bool) {
	if e.fast == nil {
		return nil, false
	}
	return e.fast.eval(args)
}

// Eval evaluates the expression with args bound to Vars() in order and
// returns the result as a Go value.
func (e *Expr) Eval(ctx context.Context, args ...any) (any, error) {
	// As for Program: a container of the input comes back as itself only
	// under a memo, so without one only a scalar is evaluated directly.
	if v, ok := e.direct(args); ok {
		if r, ok := result(v, e.prog.limits); ok {
			switch r.(type) {
			case map[string]any, []any:
				if memoOf(ctx) != nil {
					return r, nil
				}
			default:
				return r, nil
			}
		}
	}
	v, w, err := e.eval(ctx, args)
	if err != nil {
		return nil, err
	}
	defer e.prog.threads.Put(w)
	return e.prog.convertResult(memoOf(ctx), v)
}

// EvalBool evaluates the expression and returns its Python truth value,
// without converting the result.
func (e *Expr) EvalBool(ctx context.Context, args ...any) (bool, error) {
	if v, ok := e.direct(args); ok {
		if t, ok := truth(v); ok {
			return t, nil
		}
	}
	v, w, err := e.eval(ctx, args)
	if err != nil {
		return false, err
	}
	e.prog.threads.Put(w)
	return bool(v.Truth()), nil
}

// EvalFloat evaluates the expression and returns it as a number (ints are
// converted); anything else is a ScriptError.
func (e *Expr) EvalFloat(ctx context.Context, args ...any) (float64, error) {
	if v, ok := e.direct(args); ok {
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case bool:
			if x {
				return 1, nil
			}
			return 0, nil
		}
	}
	v, w, err := e.eval(ctx, args)
	if err != nil {
		return 0, err
	}
	e.prog.threads.Put(w)
	switch x := v.(type) {
	case starlark.Float:
		return float64(x), nil
	case starlark.Int:
		f, _ := starlark.AsFloat(x)
		return f, nil
	case starlark.Bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, &ScriptError{Program: e.prog.name, Err: fmt.Errorf("expression must give a number, got %s", v.Type())}
}

// EvalString evaluates the expression and returns it as a string key:
// strings as they are, other values in their Starlark form.
func (e *Expr) EvalString(ctx context.Context, args ...any) (string, error) {
	if v, ok := e.direct(args); ok {
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	v, w, err := e.eval(ctx, args)
	if err != nil {
		return "", err
	}
	e.prog.threads.Put(w)
	if s, ok := v.(starlark.String); ok {
		return string(s), nil
	}
	return v.String(), nil
}
