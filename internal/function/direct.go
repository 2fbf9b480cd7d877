package function

import (
	"encoding/json"
	"math"
	"strings"
	"sync"

	"go.starlark.net/syntax"
)

// Direct evaluation. Most flow scripts and switch conditions read a few
// fields of their input, compare and compute a little and return a dict or
// a filtered list: `return {"adult": f["age"] >= 18}`, `len(n) > 2`. For
// those, converting the message into Starlark values, running the
// interpreter and converting the result back costs far more than the
// script's own work. A program whose main (or an expression) uses only the
// subset below is also compiled into a tree of Go closures that evaluates
// it on the message's Go values directly.
//
// The subset: assignments to plain names, if/elif/else, return and pass in
// main's body (a docstring allowed); literals, names, x[k], x.get(k[, d]),
// len(x), + - * / // % (// and % on ints), comparisons, in / not in, and,
// or, not, unary - and +, conditional expressions, dict literals with
// distinct string keys, list and tuple literals, and list comprehensions
// with one for over a list and any number of ifs. A script using anything
// else (another builtin, a global, a loop, a method that is not get, a
// slice) is never evaluated directly.
//
// Direct evaluation must give what Starlark gives or nothing: whenever a
// call could end differently in Starlark — a missing key, an index out of
// range, an unsupported type, an int overflowing 64 bits, a division by
// zero, an input or result past its size or depth limit, more work than a
// small share of the step and memory limits — it gives up and the call runs
// in Starlark from the start, which gives the canonical result or error.
// Nothing is lost by trying: the evaluation is pure (inputs are read-only
// and nothing outside the call is touched). TestDirectMatchesStarlark
// checks both ways agree on generated expressions and values.

// direct is a program (or expression) compiled for direct evaluation.
type direct struct {
	nslots int
	body   dstmt  // main's body; nil for an expression
	expr   dexpr  // the expression; nil for a program
	vars   []int  // expression: the slot of each variable, -1 if unused
	in, pr int    // program: the slots of input and params (-1: none)
	limits Limits // the program's limits
	maxOps int
	pool   sync.Pool // of *dctx
}

// dexpr evaluates an expression; ok false gives up (run in Starlark).
type dexpr func(c *dctx) (v any, ok bool)

// dstmt runs statements; ret true when a return was reached.
type dstmt func(c *dctx) (v any, ret bool, ok bool)

// dctx is one evaluation's state.
type dctx struct {
	slots   []any
	ops     int
	maxOps  int
	created int // elements and bytes of values made here, charged like Starlark's memory budget
	maxMade int
	maxStr  int
	names   []string // CallFields' input
	values  []any    // a copy (the caller's slice does not escape)
}

// step counts one evaluated node; false once the evaluation has done more
// than its share of the limits.
func (c *dctx) step() bool {
	c.ops++
	return c.ops <= c.maxOps
}

// unbound marks a local not assigned yet; fields marks CallFields' input.
type (
	unbound struct{}
	fields  struct{}
)

// directOps is the share of MaxSteps direct evaluation may use: Starlark
// runs a few steps per node (about 2–4; guarded operators add a call), so a
// direct evaluation within 1/16 of the limit is far inside it in Starlark.
const directOps = 16

func newDirect(limits Limits) *direct {
	ops := int(min(limits.MaxSteps/directOps, uint64(limits.MaxMemoryBytes/(2*directOps*stepCost))))
	return &direct{in: -1, pr: -1, limits: limits, maxOps: ops}
}

// ctx returns a fresh evaluation state, pooled: put gives it back.
func (d *direct) ctx() *dctx {
	c, _ := d.pool.Get().(*dctx)
	if c == nil {
		c = &dctx{slots: make([]any, d.nslots)}
	}
	*c = dctx{slots: c.slots, values: c.values[:0], maxOps: d.maxOps, maxMade: d.limits.MaxMemoryBytes / 128, maxStr: d.limits.MaxValueBytes / 2}
	for i := range c.slots {
		c.slots[i] = unbound{}
	}
	return c
}

// put returns c to the pool, holding none of the call's values.
func (d *direct) put(c *dctx) {
	clear(c.slots)
	clear(c.values)
	c.names = nil
	d.pool.Put(c)
}

// compileDirect returns src's main compiled for direct evaluation, or nil
// when the script is outside the subset.
func compileDirect(src string, limits Limits) *direct {
	if limits.MaxIntBits < 64 {
		return nil // Starlark would refuse ints that fit here
	}
	f, err := fileOptions().Parse("direct", src, 0)
	if err != nil {
		return nil
	}
	var def *syntax.DefStmt
	for i, st := range f.Stmts {
		switch s := st.(type) {
		case *syntax.DefStmt:
			if s.Name.Name != "main" || def != nil {
				return nil
			}
			def = s
		case *syntax.ExprStmt:
			if lit, ok := s.X.(*syntax.Literal); !ok || lit.Token != syntax.STRING || i != 0 {
				return nil
			}
		default:
			return nil
		}
	}
	if def == nil || len(def.Params) < 1 || len(def.Params) > 2 {
		return nil
	}
	d := newDirect(limits)
	dc := &dcomp{d: d, locals: map[string]int{}}
	for i, p := range def.Params {
		id, ok := p.(*syntax.Ident)
		if !ok {
			return nil
		}
		s := dc.slot(id.Name)
		if i == 0 {
			d.in = s
		} else {
			d.pr = s
		}
	}
	// Every name assigned in the body is local to main from its start, as
	// Starlark resolves it.
	if !dc.assigned(def.Body) {
		return nil
	}
	for _, n := range []string{"len", "True", "False", "None"} {
		if _, ok := dc.locals[n]; ok {
			return nil
		}
	}
	body := dc.stmts(def.Body)
	if body == nil || dc.bad {
		return nil
	}
	d.body = body
	d.nslots = dc.n
	return d
}

// compileDirectExpr returns the expression src over vars compiled for
// direct evaluation, or nil.
func compileDirectExpr(parsed syntax.Expr, vars []string, used []bool, limits Limits) *direct {
	if limits.MaxIntBits < 64 {
		return nil
	}
	d := newDirect(limits)
	dc := &dcomp{d: d, locals: map[string]int{}}
	d.vars = make([]int, len(vars))
	for i, v := range vars {
		if v == "len" || v == "True" || v == "False" || v == "None" {
			return nil
		}
		d.vars[i] = -1
		if used[i] {
			d.vars[i] = dc.slot(v)
		}
	}
	x := dc.expr(parsed)
	if x == nil || dc.bad {
		return nil
	}
	d.expr = x
	d.nslots = dc.n
	return d
}

// dcomp compiles one function or expression.
type dcomp struct {
	d      *direct
	locals map[string]int
	scopes []map[string]int // comprehension variables, innermost last
	n      int
	bad    bool
}

func (dc *dcomp) slot(name string) int {
	if s, ok := dc.locals[name]; ok {
		return s
	}
	dc.locals[name] = dc.n
	dc.n++
	return dc.n - 1
}

// assigned gives a slot to every name the statements assign; false when a
// statement is outside the subset.
func (dc *dcomp) assigned(stmts []syntax.Stmt) bool {
	for _, st := range stmts {
		switch s := st.(type) {
		case *syntax.AssignStmt:
			id, ok := s.LHS.(*syntax.Ident)
			if !ok || s.Op != syntax.EQ {
				return false
			}
			dc.slot(id.Name)
		case *syntax.IfStmt:
			if !dc.assigned(s.True) || !dc.assigned(s.False) {
				return false
			}
		case *syntax.ReturnStmt, *syntax.ExprStmt:
		case *syntax.BranchStmt:
			if s.Token != syntax.PASS {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (dc *dcomp) stmts(list []syntax.Stmt) dstmt {
	steps := make([]dstmt, 0, len(list))
	for i, st := range list {
		var s dstmt
		switch x := st.(type) {
		case *syntax.AssignStmt:
			slot := dc.locals[x.LHS.(*syntax.Ident).Name]
			rhs := dc.expr(x.RHS)
			if rhs == nil {
				return nil
			}
			s = func(c *dctx) (any, bool, bool) {
				v, ok := rhs(c)
				c.slots[slot] = v
				return nil, false, ok
			}
		case *syntax.ReturnStmt:
			if x.Result == nil {
				s = func(*dctx) (any, bool, bool) { return nil, true, true }
				break
			}
			r := dc.expr(x.Result)
			if r == nil {
				return nil
			}
			s = func(c *dctx) (any, bool, bool) {
				v, ok := r(c)
				return v, true, ok
			}
		case *syntax.IfStmt:
			cond := dc.expr(x.Cond)
			yes := dc.stmts(x.True)
			no := dc.stmts(x.False)
			if cond == nil || yes == nil || no == nil {
				return nil
			}
			s = func(c *dctx) (any, bool, bool) {
				v, ok := cond(c)
				if !ok {
					return nil, false, false
				}
				t, ok := truth(v)
				if !ok {
					return nil, false, false
				}
				if t {
					return yes(c)
				}
				return no(c)
			}
		case *syntax.ExprStmt:
			if lit, ok := x.X.(*syntax.Literal); !ok || lit.Token != syntax.STRING || i != 0 {
				return nil
			}
			continue // a docstring
		case *syntax.BranchStmt: // pass
			continue
		default:
			return nil
		}
		steps = append(steps, s)
	}
	return func(c *dctx) (any, bool, bool) {
		for _, s := range steps {
			if !c.step() {
				return nil, false, false
			}
			v, ret, ok := s(c)
			if !ok || ret {
				return v, ret, ok
			}
		}
		return nil, false, true
	}
}

// lookup resolves a name: comprehension variables, then main's locals; 0
// and false for a universe name or one outside the subset.
func (dc *dcomp) lookup(name string) (int, bool) {
	for i := len(dc.scopes) - 1; i >= 0; i-- {
		if s, ok := dc.scopes[i][name]; ok {
			return s, true
		}
	}
	s, ok := dc.locals[name]
	return s, ok
}

// expr compiles x; nil when it is outside the subset.
func (dc *dcomp) expr(x syntax.Expr) dexpr {
	switch x := x.(type) {
	case *syntax.Ident:
		if s, ok := dc.lookup(x.Name); ok {
			return func(c *dctx) (any, bool) {
				v := c.slots[s]
				if _, ok := v.(unbound); ok {
					return nil, false
				}
				return v, c.step()
			}
		}
		var v any
		switch x.Name {
		case "True":
			v = true
		case "False":
			v = false
		case "None":
			v = nil
		default:
			return nil
		}
		return func(c *dctx) (any, bool) { return v, c.step() }
	case *syntax.Literal:
		var v any
		if x.Token == syntax.BYTES {
			return nil
		}
		switch lv := x.Value.(type) {
		case string:
			v = lv
		case int64:
			v = lv
		case float64:
			v = lv
		default:
			return nil // bytes, big ints
		}
		return func(c *dctx) (any, bool) { return v, c.step() }
	case *syntax.ParenExpr:
		return dc.expr(x.X)
	case *syntax.IndexExpr:
		base, key := dc.expr(x.X), dc.expr(x.Y)
		if base == nil || key == nil {
			return nil
		}
		return func(c *dctx) (any, bool) {
			b, ok := base(c)
			if !ok {
				return nil, false
			}
			k, ok := key(c)
			if !ok || !c.step() {
				return nil, false
			}
			return c.index(b, k)
		}
	case *syntax.CallExpr:
		return dc.call(x)
	case *syntax.UnaryExpr:
		return dc.unary(x)
	case *syntax.BinaryExpr:
		return dc.binary(x)
	case *syntax.CondExpr:
		cond, yes, no := dc.expr(x.Cond), dc.expr(x.True), dc.expr(x.False)
		if cond == nil || yes == nil || no == nil {
			return nil
		}
		return func(c *dctx) (any, bool) {
			v, ok := cond(c)
			if !ok || !c.step() {
				return nil, false
			}
			t, ok := truth(v)
			if !ok {
				return nil, false
			}
			if t {
				return yes(c)
			}
			return no(c)
		}
	case *syntax.DictExpr:
		return dc.dict(x)
	case *syntax.ListExpr:
		return dc.list(x.List)
	case *syntax.TupleExpr:
		return dc.list(x.List)
	case *syntax.Comprehension:
		return dc.comprehension(x)
	}
	return nil
}

func (dc *dcomp) exprs(list []syntax.Expr) []dexpr {
	out := make([]dexpr, len(list))
	for i, e := range list {
		if out[i] = dc.expr(e); out[i] == nil {
			return nil
		}
	}
	return out
}

func (dc *dcomp) list(list []syntax.Expr) dexpr {
	elems := dc.exprs(list)
	if elems == nil && len(list) > 0 {
		return nil
	}
	return func(c *dctx) (any, bool) {
		out := make([]any, len(elems))
		for i, e := range elems {
			v, ok := e(c)
			if !ok {
				return nil, false
			}
			out[i] = fresh(v)
		}
		c.created += len(out) + 1
		return out, c.step() && c.created <= c.maxMade
	}
}

func (dc *dcomp) dict(x *syntax.DictExpr) dexpr {
	keys := make([]string, len(x.List))
	vals := make([]dexpr, len(x.List))
	seen := map[string]bool{}
	for i, e := range x.List {
		entry := e.(*syntax.DictEntry)
		lit, ok := entry.Key.(*syntax.Literal)
		if !ok || lit.Token != syntax.STRING {
			return nil
		}
		k := lit.Value.(string)
		if seen[k] {
			return nil // Starlark fails on a duplicate key
		}
		seen[k] = true
		keys[i] = k
		if vals[i] = dc.expr(entry.Value); vals[i] == nil {
			return nil
		}
	}
	return func(c *dctx) (any, bool) {
		out := make(map[string]any, len(keys))
		for i, k := range keys {
			v, ok := vals[i](c)
			if !ok {
				return nil, false
			}
			out[k] = fresh(v)
		}
		c.created += len(out) + 1
		return out, c.step() && c.created <= c.maxMade
	}
}

func (dc *dcomp) comprehension(x *syntax.Comprehension) dexpr {
	if x.Curly || len(x.Clauses) == 0 {
		return nil
	}
	fc, ok := x.Clauses[0].(*syntax.ForClause)
	if !ok {
		return nil
	}
	id, ok := fc.Vars.(*syntax.Ident)
	if !ok || id.Name == "len" || id.Name == "True" || id.Name == "False" || id.Name == "None" {
		return nil
	}
	seq := dc.expr(fc.X) // in the enclosing scope
	if seq == nil {
		return nil
	}
	slot := dc.n
	dc.n++
	dc.scopes = append(dc.scopes, map[string]int{id.Name: slot})
	defer func() { dc.scopes = dc.scopes[:len(dc.scopes)-1] }()
	var conds []dexpr
	for _, cl := range x.Clauses[1:] {
		ic, ok := cl.(*syntax.IfClause)
		if !ok {
			return nil
		}
		cond := dc.expr(ic.Cond)
		if cond == nil {
			return nil
		}
		conds = append(conds, cond)
	}
	body := dc.expr(x.Body)
	if body == nil {
		return nil
	}
	return func(c *dctx) (any, bool) {
		s, ok := seq(c)
		if !ok {
			return nil, false
		}
		list, ok := s.([]any)
		if !ok {
			return nil, false // a dict iterates in the order its Go map was converted: not reproducible
		}
		out := make([]any, 0, len(list))
	items:
		for _, e := range list {
			e, ok := leaf(e)
			if !ok || !c.step() {
				return nil, false
			}
			c.slots[slot] = e
			for _, cond := range conds {
				v, ok := cond(c)
				if !ok {
					return nil, false
				}
				t, ok := truth(v)
				if !ok {
					return nil, false
				}
				if !t {
					continue items
				}
			}
			v, ok := body(c)
			if !ok {
				return nil, false
			}
			out = append(out, fresh(v))
		}
		c.slots[slot] = unbound{}
		c.created += len(out) + 1
		return out, c.step() && c.created <= c.maxMade
	}
}

func (dc *dcomp) call(x *syntax.CallExpr) dexpr {
	for _, a := range x.Args {
		if b, ok := a.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ { // name=value
			return nil
		}
		if _, ok := a.(*syntax.UnaryExpr); ok { // *args, **kwargs
			return nil
		}
	}
	switch fn := x.Fn.(type) {
	case *syntax.Ident:
		if _, local := dc.lookup(fn.Name); local || fn.Name != "len" || len(x.Args) != 1 {
			return nil
		}
		arg := dc.expr(x.Args[0])
		if arg == nil {
			return nil
		}
		return func(c *dctx) (any, bool) {
			v, ok := arg(c)
			if !ok || !c.step() {
				return nil, false
			}
			switch v := v.(type) {
			case string:
				return int64(len(v)), true
			case []any:
				return int64(len(v)), true
			case map[string]any:
				return int64(len(v)), true
			}
			return nil, false
		}
	case *syntax.DotExpr:
		if fn.Name.Name != "get" || len(x.Args) < 1 || len(x.Args) > 2 {
			return nil
		}
		recv := dc.expr(fn.X)
		args := dc.exprs(x.Args)
		if recv == nil || args == nil {
			return nil
		}
		return func(c *dctx) (any, bool) {
			r, ok := recv(c)
			if !ok {
				return nil, false
			}
			k, ok := args[0](c)
			if !ok {
				return nil, false
			}
			var def any
			if len(args) == 2 {
				if def, ok = args[1](c); !ok {
					return nil, false
				}
			}
			if !c.step() {
				return nil, false
			}
			ks, isStr := k.(string)
			if !isStr && !hashableScalar(k) {
				return nil, false
			}
			switch r.(type) {
			case map[string]any, fields:
			default:
				return nil, false // get on a list or string is an error
			}
			if !isStr {
				return def, true // no such key in a string-keyed dict
			}
			v, found, ok := c.field(r, ks)
			if !ok {
				return nil, false
			}
			if !found {
				return def, true
			}
			return v, true
		}
	}
	return nil
}

func (dc *dcomp) unary(x *syntax.UnaryExpr) dexpr {
	arg := dc.expr(x.X)
	if arg == nil {
		return nil
	}
	switch x.Op {
	case syntax.NOT:
		return func(c *dctx) (any, bool) {
			v, ok := arg(c)
			if !ok || !c.step() {
				return nil, false
			}
			t, ok := truth(v)
			return !t, ok
		}
	case syntax.MINUS, syntax.PLUS:
		neg := x.Op == syntax.MINUS
		return func(c *dctx) (any, bool) {
			v, ok := arg(c)
			if !ok || !c.step() {
				return nil, false
			}
			switch n := v.(type) {
			case int64:
				if !neg {
					return n, true
				}
				if n == math.MinInt64 {
					return nil, false
				}
				return -n, true
			case float64:
				if neg {
					return -n, true
				}
				return n, true
			}
			return nil, false
		}
	}
	return nil
}

func (dc *dcomp) binary(x *syntax.BinaryExpr) dexpr {
	l, r := dc.expr(x.X), dc.expr(x.Y)
	if l == nil || r == nil {
		return nil
	}
	op := x.Op
	switch op {
	case syntax.AND, syntax.OR:
		and := op == syntax.AND
		return func(c *dctx) (any, bool) {
			a, ok := l(c)
			if !ok || !c.step() {
				return nil, false
			}
			t, ok := truth(a)
			if !ok {
				return nil, false
			}
			if t != and {
				return a, true
			}
			return r(c)
		}
	case syntax.EQL, syntax.NEQ, syntax.LT, syntax.LE, syntax.GT, syntax.GE,
		syntax.PLUS, syntax.MINUS, syntax.STAR, syntax.SLASH, syntax.SLASHSLASH, syntax.PERCENT,
		syntax.IN, syntax.NOT_IN:
	default:
		return nil
	}
	return func(c *dctx) (any, bool) {
		a, ok := l(c)
		if !ok {
			return nil, false
		}
		b, ok := r(c)
		if !ok || !c.step() {
			return nil, false
		}
		return c.binop(op, a, b)
	}
}

// index is b[k].
func (c *dctx) index(b, k any) (any, bool) {
	switch b := b.(type) {
	case map[string]any, fields:
		ks, ok := k.(string)
		if !ok {
			return nil, false
		}
		v, found, ok := c.field(b, ks)
		return v, ok && found
	case []any:
		i, ok := k.(int64)
		if !ok {
			return nil, false
		}
		if i < 0 {
			i += int64(len(b))
		}
		if i < 0 || i >= int64(len(b)) {
			return nil, false
		}
		return leaf(b[i])
	}
	return nil, false
}

// field is d[k] for a dict d; found false when d has no k.
func (c *dctx) field(d any, k string) (v any, found, ok bool) {
	if m, isMap := d.(map[string]any); isMap {
		e, found := m[k]
		if !found {
			return nil, false, true
		}
		v, ok := leaf(e)
		return v, true, ok
	}
	for i := len(c.names) - 1; i >= 0; i-- { // the last of a repeated name wins, as in the dict
		if c.names[i] == k {
			v, ok := leaf(c.values[i])
			return v, true, ok
		}
	}
	return nil, false, true
}

// leaf returns a value read from the input as the script sees it: numbers
// as Starlark converts them (int64 or float64), containers and other
// scalars as they are; false for a type direct evaluation leaves to
// Starlark.
func leaf(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool, string, int64, float64, map[string]any, []any:
		return v, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	case float32:
		return float64(x), true
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		f, err := x.Float64()
		return f, err == nil
	}
	return nil, false
}

// fresh is v as an element of a value made here: an empty dict or list of
// the input becomes a new one, as converting it back from Starlark makes.
func fresh(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			return map[string]any{}
		}
	case []any:
		if len(x) == 0 {
			return []any{}
		}
	}
	return v
}

func hashableScalar(v any) bool {
	switch v.(type) {
	case nil, bool, int64, float64, string:
		return true
	}
	return false
}

// truth is Starlark's truth value of v.
func truth(v any) (bool, bool) {
	switch x := v.(type) {
	case nil:
		return false, true
	case bool:
		return x, true
	case int64:
		return x != 0, true
	case float64:
		return x != 0, true
	case string:
		return x != "", true
	case []any:
		return len(x) > 0, true
	case map[string]any:
		return len(x) > 0, true
	}
	return false, false
}

// exact: ints up to 2^53 convert to float64 and back without loss.
const exact = 1 << 53

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		if x > exact || x < -exact {
			return 0, false
		}
		return float64(x), true
	}
	return 0, false
}

// binop is a op b for the operators of the subset.
func (c *dctx) binop(op syntax.Token, a, b any) (any, bool) {
	switch op {
	case syntax.EQL, syntax.NEQ:
		eq, ok := equal(a, b)
		if !ok {
			return nil, false
		}
		return eq == (op == syntax.EQL), true
	case syntax.LT, syntax.LE, syntax.GT, syntax.GE:
		cmp, ok := compare(a, b)
		if !ok {
			return nil, false
		}
		switch op {
		case syntax.LT:
			return cmp < 0, true
		case syntax.LE:
			return cmp <= 0, true
		case syntax.GT:
			return cmp > 0, true
		}
		return cmp >= 0, true
	case syntax.IN, syntax.NOT_IN:
		in, ok := c.contains(b, a)
		if !ok {
			return nil, false
		}
		return in == (op == syntax.IN), true
	}
	// Arithmetic.
	if x, ok := a.(int64); ok {
		if y, ok := b.(int64); ok {
			return intOp(op, x, y)
		}
	}
	if op == syntax.PLUS {
		switch x := a.(type) {
		case string:
			y, ok := b.(string)
			if !ok || len(x)+len(y) > c.maxStr {
				return nil, false
			}
			c.created += len(x) + len(y)
			return x + y, c.created <= c.maxMade
		case []any:
			y, ok := b.([]any)
			if !ok || len(x)+len(y) > c.maxStr/8 {
				return nil, false
			}
			out := make([]any, 0, len(x)+len(y))
			for _, l := range [2][]any{x, y} {
				for _, e := range l {
					e, ok := leaf(e)
					if !ok {
						return nil, false
					}
					out = append(out, fresh(e))
				}
			}
			c.created += len(out) + 1
			return out, c.created <= c.maxMade
		}
	}
	x, ok1 := asFloat(a)
	y, ok2 := asFloat(b)
	if !ok1 || !ok2 {
		return nil, false
	}
	switch op {
	case syntax.PLUS:
		return x + y, true
	case syntax.MINUS:
		return x - y, true
	case syntax.STAR:
		return x * y, true
	case syntax.SLASH:
		if y == 0 {
			return nil, false
		}
		return x / y, true
	}
	return nil, false // float // and %: left to Starlark
}

func intOp(op syntax.Token, x, y int64) (any, bool) {
	switch op {
	case syntax.PLUS:
		s := x + y
		if (s > x) != (y > 0) {
			return nil, false
		}
		return s, true
	case syntax.MINUS:
		s := x - y
		if (s < x) != (y > 0) {
			return nil, false
		}
		return s, true
	case syntax.STAR:
		if x == 0 || y == 0 {
			return int64(0), true
		}
		p := x * y
		if p/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
			return nil, false
		}
		return p, true
	case syntax.SLASH:
		fx, ok1 := asFloat(x)
		fy, ok2 := asFloat(y)
		if !ok1 || !ok2 || fy == 0 {
			return nil, false
		}
		return fx / fy, true
	case syntax.SLASHSLASH, syntax.PERCENT:
		if y == 0 || (x == math.MinInt64 && y == -1) {
			return nil, false
		}
		q, m := x/y, x%y
		if m != 0 && (m < 0) != (y < 0) {
			q--
			m += y
		}
		if op == syntax.SLASHSLASH {
			return q, true
		}
		return m, true
	}
	return nil, false
}

// equal is Starlark's == on scalars: numbers by value, other values of one
// type by value, values of different types unequal; false ok for
// containers (deep equality is left to Starlark).
func equal(a, b any) (eq, ok bool) {
	switch x := a.(type) {
	case nil:
		if !hashableScalar(b) {
			return false, false
		}
		return b == nil, true
	case bool:
		if !hashableScalar(b) {
			return false, false
		}
		y, same := b.(bool)
		return same && x == y, true
	case string:
		if !hashableScalar(b) {
			return false, false
		}
		y, same := b.(string)
		return same && x == y, true
	case int64, float64:
		switch b.(type) {
		case int64, float64:
			if bi, ok := b.(int64); ok {
				if ai, ok := a.(int64); ok {
					return ai == bi, true
				}
			}
			fx, ok1 := asFloat(a)
			fy, ok2 := asFloat(b)
			if !ok1 || !ok2 || fx != fx || fy != fy {
				return false, false
			}
			return fx == fy, true
		case nil, bool, string:
			return false, true
		}
	}
	return false, false
}

// compare orders numbers, strings and bools as Starlark does; false for
// anything else (Starlark fails, or compares containers).
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		}
		return 1, true
	}
	fx, ok1 := asFloat(a)
	fy, ok2 := asFloat(b)
	if !ok1 || !ok2 || fx != fx || fy != fy {
		return 0, false
	}
	switch {
	case fx < fy:
		return -1, true
	case fx > fy:
		return 1, true
	}
	return 0, true
}

// contains is x in coll.
func (c *dctx) contains(coll, x any) (bool, bool) {
	switch coll := coll.(type) {
	case map[string]any, fields:
		k, isStr := x.(string)
		if !isStr {
			return false, hashableScalar(x) // a scalar key is never in a string-keyed dict
		}
		_, found, _ := c.field(coll, k)
		return found, true
	case []any:
		for _, e := range coll {
			e, ok := leaf(e)
			if !ok {
				return false, false
			}
			eq, ok := equal(x, e)
			if !ok {
				return false, false
			}
			if eq {
				return true, true
			}
		}
		return false, true
	case string:
		s, ok := x.(string)
		if !ok {
			return false, false
		}
		return strings.Contains(coll, s), true
	}
	return false, false
}

// cost is what converting v into Starlark (or back) charges to a size
// budget at depth levels left (toConv's and fromConv's formula); false
// when v is past the depth or of a type direct evaluation leaves to
// Starlark.
func cost(v any, depth int) (int, bool) {
	if depth < 0 {
		return 0, false
	}
	switch x := v.(type) {
	case nil, bool, int, int32, uint32, int64, float32, float64:
		return scalarCost, true
	case json.Number:
		_, ok := leaf(x) // a number past float64 fails the conversion
		return scalarCost, ok
	case string:
		return len(x) + scalarCost, true
	case map[string]any:
		n := scalarCost
		for k, e := range x {
			ec, ok := cost(e, depth-1)
			if !ok {
				return 0, false
			}
			n += ec + len(k)
		}
		return n, true
	case []any:
		n := scalarCost
		for _, e := range x {
			ec, ok := cost(e, depth-1)
			if !ok {
				return 0, false
			}
			n += ec
		}
		return n, true
	}
	return 0, false
}

// call evaluates main on input (or names: values) and params. ok false:
// run the call in Starlark.
func (d *direct) call(input any, names []string, values []any, params map[string]any, paramsRead bool) (any, bool) {
	l := d.limits
	in := 0
	if names != nil {
		in = scalarCost
		for i, n := range names {
			vc, ok := cost(values[i], l.MaxDepth-1)
			if !ok {
				return nil, false
			}
			in += vc + len(n)
		}
	} else {
		var ok bool
		if in, ok = cost(input, l.MaxDepth); !ok {
			return nil, false
		}
	}
	if paramsRead && params != nil {
		pc, ok := cost(params, l.MaxDepth)
		if !ok {
			return nil, false
		}
		in += pc
	}
	if in > l.MaxInputBytes {
		return nil, false
	}
	c := d.ctx()
	defer d.put(c)
	if names != nil {
		c.names, c.values = names, append(c.values, values...)
		c.slots[d.in] = fields{}
	} else {
		v, ok := leaf(input)
		if !ok {
			return nil, false
		}
		c.slots[d.in] = v
	}
	if d.pr >= 0 {
		var pv any // None when params is unused or absent
		if paramsRead && params != nil {
			pv = params
		}
		c.slots[d.pr] = pv
	}
	v, _, ok := d.body(c)
	if !ok {
		return nil, false
	}
	return result(v, l)
}

// result is v as the call's result, within the output limits.
func result(v any, l Limits) (any, bool) {
	if _, isFields := v.(fields); isFields {
		return nil, false
	}
	if oc, ok := cost(v, l.MaxDepth); !ok || oc > l.MaxOutputBytes {
		return nil, false
	}
	return fresh(v), true
}

// eval evaluates the expression on args (in vars order; unused ones are
// not read). ok false: evaluate it in Starlark.
func (d *direct) eval(args []any) (any, bool) {
	l := d.limits
	c := d.ctx()
	defer d.put(c)
	in := 0
	for i, s := range d.vars {
		if s < 0 || i >= len(args) {
			continue
		}
		vc, ok := cost(args[i], l.MaxDepth)
		if !ok {
			return nil, false
		}
		in += vc
		v, ok := leaf(args[i])
		if !ok {
			return nil, false
		}
		c.slots[s] = v
	}
	if in > l.MaxInputBytes {
		return nil, false
	}
	return d.expr(c)
}
