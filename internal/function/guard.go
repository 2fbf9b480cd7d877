package function

import (
	"strconv"
	"strings"

	sjson "go.starlark.net/lib/json"
	smath "go.starlark.net/lib/math"
	stime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// env is the predeclared environment of one program: the four modules plus
// the checked builtins that guardFile's rewrite calls.
type env struct {
	limits      Limits
	predeclared starlark.StringDict
	// names counts the identifiers of the script as written (before the
	// guards), to tell a parameter that nothing reads.
	names map[string]int
}

const elemCost = 16 // approximate bytes per list element

func newEnv(l Limits) *env {
	e := &env{limits: l}
	jsonMembers := starlark.StringDict{}
	for k, v := range sjson.Module.Members {
		jsonMembers[k] = v
	}
	jsonMembers["encode"] = e.checked("encode", sjson.Module.Members["encode"])
	jsonMembers["indent"] = e.checked("indent", sjson.Module.Members["indent"])
	jsonMembers["decode"] = starlark.NewBuiltin("decode", e.jsonDecode)
	e.predeclared = starlark.StringDict{
		"json":      &starlarkstruct.Module{Name: "json", Members: jsonMembers},
		"math":      smath.Module,
		"time":      stime.Module,
		"re":        newReModule(e),
		"str":       e.checked("str", starlark.Universe["str"]),
		"repr":      e.checked("repr", starlark.Universe["repr"]),
		"range":     starlark.NewBuiltin("range", e.rangeFn),
		"int":       starlark.NewBuiltin("int", e.intFn),
		"list":      e.sized(builtin("list"), elemCost),
		"tuple":     e.sized(builtin("tuple"), elemCost),
		"sorted":    e.sized(builtin("sorted"), elemCost),
		"reversed":  e.sized(builtin("reversed"), elemCost),
		"set":       e.sized(builtin("set"), entryCost),
		"dict":      e.sized(builtin("dict"), entryCost),
		"enumerate": e.sized(builtin("enumerate"), elemCost+tupleCost),
		"zip":       e.sized(builtin("zip"), elemCost+tupleCost),
		"bytes":     e.sized(builtin("bytes"), 1),
		"__slice":   starlark.NewBuiltin("slice", e.slice),
		"__none":    starlark.None,
		"print": starlark.NewBuiltin("print", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return starlark.None, nil
		}),
		"__add":      starlark.NewBuiltin("+", e.binop(syntax.PLUS, false)),
		"__mul":      starlark.NewBuiltin("*", e.binop(syntax.STAR, false)),
		"__mod":      starlark.NewBuiltin("%", e.binop(syntax.PERCENT, false)),
		"__aug_add":  starlark.NewBuiltin("+=", e.binop(syntax.PLUS, true)),
		"__aug_mul":  starlark.NewBuiltin("*=", e.binop(syntax.STAR, true)),
		"__aug_mod":  starlark.NewBuiltin("%=", e.binop(syntax.PERCENT, true)),
		"__sub":      starlark.NewBuiltin("-", e.binop(syntax.MINUS, false)),
		"__or":       starlark.NewBuiltin("|", e.binop(syntax.PIPE, false)),
		"__and":      starlark.NewBuiltin("&", e.binop(syntax.AMP, false)),
		"__xor":      starlark.NewBuiltin("^", e.binop(syntax.CIRCUMFLEX, false)),
		"__shl":      starlark.NewBuiltin("<<", e.binop(syntax.LTLT, false)),
		"__aug_sub":  starlark.NewBuiltin("-=", e.binop(syntax.MINUS, true)),
		"__aug_or":   starlark.NewBuiltin("|=", e.binop(syntax.PIPE, true)),
		"__aug_and":  starlark.NewBuiltin("&=", e.binop(syntax.AMP, true)),
		"__aug_xor":  starlark.NewBuiltin("^=", e.binop(syntax.CIRCUMFLEX, true)),
		"__aug_shl":  starlark.NewBuiltin("<<=", e.binop(syntax.LTLT, true)),
		"__aug_size": starlark.NewBuiltin("+=", e.augSize),
	}
	for name := range guardedMethods {
		e.predeclared["__m_"+name] = starlark.NewBuiltin(name, e.method(name))
	}
	return e
}

func builtin(name string) *starlark.Builtin { return starlark.Universe[name].(*starlark.Builtin) }

func (e *env) tooBig(th *starlark.Thread) error {
	le := &LimitError{Limit: LimitValueSize, Max: strconv.Itoa(e.limits.MaxValueBytes) + " bytes"}
	if w, ok := th.Local(workerKey).(*worker); ok {
		le.Program = w.p.name
		w.valueErr = le
	}
	return le
}

// sizeOf estimates the bytes a value would take once rendered or copied,
// stopping as soon as it passes budget (so it is cheap on huge values and
// finite on self-referencing ones).
func sizeOf(v starlark.Value, budget, depth int) int {
	if depth <= 0 {
		return budget + 1
	}
	switch x := v.(type) {
	case starlark.String:
		return len(x) + 2
	case starlark.Bytes:
		return len(x) + 3
	case starlark.Int:
		return intBits(x)/3 + 1
	case starlark.Indexable: // list, tuple, range
		n := 2
		if r, ok := x.(starlark.Sequence); ok && x.Type() == "range" {
			return r.Len() * 12
		}
		for i := 0; i < x.Len() && n <= budget; i++ {
			n += sizeOf(x.Index(i), budget-n, depth-1) + 2
		}
		return n
	case *starlark.Dict:
		n := 2
		for _, kv := range x.Items() {
			n += sizeOf(kv[0], budget-n, depth-1) + sizeOf(kv[1], budget-n, depth-1) + 4
			if n > budget {
				break
			}
		}
		return n
	}
	return 16
}

func (e *env) checked(name string, fn starlark.Value) starlark.Value {
	return starlark.NewBuiltin(name, func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		for _, a := range args {
			n := sizeOf(a, e.limits.MaxValueBytes, 64)
			if n > e.limits.MaxValueBytes {
				return nil, e.tooBig(th)
			}
			if err := e.charge(th, n); err != nil {
				return nil, err
			}
		}
		return starlark.Call(th, fn, args, kw)
	})
}

func (e *env) rangeFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	r, err := starlark.Call(th, starlark.Universe["range"], args, kw)
	if err != nil {
		return nil, err
	}
	// A range longer than the step budget cannot be walked by a loop, and
	// list(range(n)) would allocate n elements in one step.
	if s, ok := r.(starlark.Sequence); ok && uint64(s.Len()) > max(e.limits.MaxSteps, uint64(e.limits.MaxValueBytes/elemCost)) {
		return nil, e.tooBig(th)
	}
	return r, nil
}

func seqLen(v starlark.Value) (int, bool) {
	switch x := v.(type) {
	case *starlark.List:
		return x.Len(), true
	case starlark.Tuple:
		return len(x), true
	}
	return 0, false
}

// resultSize predicts the size of x op y for the types that can amplify;
// ok is false for everything else.
func resultSize(op syntax.Token, x, y starlark.Value) (int, bool) {
	switch op {
	case syntax.PLUS:
		if a, ok := x.(starlark.String); ok {
			if b, ok := y.(starlark.String); ok {
				return len(a) + len(b), true
			}
		}
		if a, ok := x.(starlark.Bytes); ok {
			if b, ok := y.(starlark.Bytes); ok {
				return len(a) + len(b), true
			}
		}
		if a, ok := seqLen(x); ok {
			if b, ok := seqLen(y); ok {
				return (a + b) * elemCost, true
			}
		}
	case syntax.STAR:
		n, ok := x.(starlark.Int)
		other := y
		if !ok {
			n, ok = y.(starlark.Int)
			other = x
		}
		if !ok {
			return 0, false
		}
		c, ok := n.Int64()
		if !ok {
			return 1 << 62, true
		}
		if c <= 0 {
			return 0, true
		}
		var unit int64
		switch s := other.(type) {
		case starlark.String:
			unit = int64(len(s))
		case starlark.Bytes:
			unit = int64(len(s))
		default:
			l, ok := seqLen(other)
			if !ok {
				return 0, false
			}
			unit = int64(l) * elemCost
		}
		if unit != 0 && c > (1<<62)/unit {
			return 1 << 62, true
		}
		return int(c * unit), true
	case syntax.PERCENT:
		if f, ok := x.(starlark.String); ok {
			return len(f) + strings.Count(string(f), "%")*sizeOf(y, 1<<62, 64), true
		}
	case syntax.PIPE, syntax.AMP, syntax.CIRCUMFLEX, syntax.MINUS:
		switch x.(type) {
		case *starlark.Dict, *starlark.Set:
			// Unions and differences make a new table of at most both sizes.
			return (max(starlark.Len(x), 0) + max(starlark.Len(y), 0)) * entryCost, true
		}
	}
	return 0, false
}

// binop returns the checked form of one operator; for augmented
// assignment it returns y unchanged, so the statement's own in-place
// semantics (list += extends) are kept.
func (e *env) binop(op syntax.Token, aug bool) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		x, y := args[0], args[1]
		xi, xok := x.(starlark.Int)
		yi, yok := y.(starlark.Int)
		if xok && yok {
			if err := e.checkInt(th, op, xi, yi); err != nil {
				return nil, err
			}
		} else if n, ok := resultSize(op, x, y); ok {
			if n > e.limits.MaxValueBytes {
				return nil, e.tooBig(th)
			}
			if err := e.charge(th, n); err != nil {
				return nil, err
			}
		}
		if aug {
			return y, nil
		}
		return starlark.Binary(op, x, y)
	}
}

func (e *env) augSize(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if sizeOf(args[0], e.limits.MaxValueBytes, 64) > e.limits.MaxValueBytes {
		return nil, e.tooBig(th)
	}
	return args[0], nil
}

// method is the checked form of recv.name(args...): for the receiver types
// where name can amplify, the result size is predicted first; any other
// receiver gets its own method unchanged.
func (e *env) method(name string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		if len(args) == 0 {
			return nil, strconv.ErrSyntax
		}
		recv, rest := args[0], args[1:]
		limit := e.limits.MaxValueBytes
		size := 0 // bytes of a value the value-size limit bounds
		mem := 0  // bytes of other values the call's memory budget pays for
		switch r := recv.(type) {
		case starlark.String:
			switch name {
			case "join":
				if len(rest) == 1 {
					if l, ok := rest[0].(starlark.Indexable); ok {
						size = len(r) * l.Len()
						for i := 0; i < l.Len() && size <= limit; i++ {
							size += sizeOf(l.Index(i), limit, 2)
						}
					}
				}
			case "replace":
				if len(rest) >= 2 {
					old, ok1 := rest[0].(starlark.String)
					nw, ok2 := rest[1].(starlark.String)
					if ok1 && ok2 && len(nw) > len(old) {
						n := len(r) + 1
						if len(old) > 0 {
							n = strings.Count(string(r), string(old))
						}
						size = len(r) + n*(len(nw)-len(old))
					}
				}
			case "format":
				biggest := 0
				for _, a := range rest {
					biggest = max(biggest, sizeOf(a, limit, 64))
				}
				for _, kv := range kw {
					biggest = max(biggest, sizeOf(kv[1], limit, 64))
				}
				size = len(r) + strings.Count(string(r), "{")*biggest
			case "split", "rsplit":
				n := len(r)/2 + 1 // whitespace: at most every other byte starts a field
				if len(rest) > 0 {
					if sep, ok := rest[0].(starlark.String); ok && len(sep) > 0 {
						n = strings.Count(string(r), string(sep)) + 1
					}
				}
				mem = n * strCost
			case "splitlines":
				mem = (strings.Count(string(r), "\n") + 1) * strCost
			case "upper", "lower", "title", "capitalize":
				mem = len(r)
			}
		case *starlark.List:
			if name == "extend" && len(rest) == 1 {
				if n, ok := rest[0].(starlark.Sequence); ok {
					size = (r.Len() + n.Len()) * elemCost
				}
			}
		case *starlark.Dict:
			switch name {
			case "items":
				mem = r.Len() * (elemCost + tupleCost)
			case "keys", "values":
				mem = r.Len() * elemCost
			}
		case *starlark.Set:
			switch name {
			case "union", "difference", "intersection", "symmetric_difference":
				mem = r.Len() * entryCost
				for _, a := range rest {
					mem += max(length(a), 0) * entryCost
				}
			}
		}
		if size > limit {
			return nil, e.tooBig(th)
		}
		if err := e.charge(th, size+mem); err != nil {
			return nil, err
		}
		fn, err := getAttr(recv, name)
		if err != nil {
			return nil, err
		}
		return starlark.Call(th, fn, rest, kw)
	}
}

func getAttr(v starlark.Value, name string) (starlark.Value, error) {
	h, ok := v.(starlark.HasAttrs)
	if !ok {
		return nil, starlark.NoSuchAttrError(v.Type() + " has no ." + name + " field or method")
	}
	a, err := h.Attr(name)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, starlark.NoSuchAttrError(v.Type() + " has no ." + name + " field or method")
	}
	return a, nil
}

// guardFile rewrites the amplifying operations of f into calls of the
// checked builtins above. It runs before name resolution, so the new
// identifiers resolve to the predeclared builtins.
func guardFile(f *syntax.File) {
	f.Stmts = rwStmts(f.Stmts)
}

func rwStmts(stmts []syntax.Stmt) []syntax.Stmt {
	for _, s := range stmts {
		rwStmt(s)
	}
	return stmts
}

func call(name string, pos syntax.Position, args ...syntax.Expr) *syntax.CallExpr {
	return &syntax.CallExpr{Fn: &syntax.Ident{NamePos: pos, Name: name}, Lparen: pos, Args: args, Rparen: pos}
}

func rwStmt(s syntax.Stmt) {
	switch x := s.(type) {
	case *syntax.AssignStmt:
		rwTarget(x.LHS)
		x.RHS = rwExpr(x.RHS)
		if name := augNames[x.Op]; name != "" {
			if lhs, ok := clone(x.LHS); ok {
				x.RHS = call(name, x.OpPos, lhs, x.RHS)
			} else {
				x.RHS = call("__aug_size", x.OpPos, x.RHS)
			}
		}
	case *syntax.DefStmt:
		rwParams(x.Params)
		rwStmts(x.Body)
	case *syntax.ExprStmt:
		x.X = rwExpr(x.X)
	case *syntax.ForStmt:
		rwTarget(x.Vars)
		x.X = rwExpr(x.X)
		rwStmts(x.Body)
	case *syntax.WhileStmt:
		x.Cond = rwExpr(x.Cond)
		rwStmts(x.Body)
	case *syntax.IfStmt:
		x.Cond = rwExpr(x.Cond)
		rwStmts(x.True)
		rwStmts(x.False)
	case *syntax.ReturnStmt:
		if x.Result != nil {
			x.Result = rwExpr(x.Result)
		}
	}
}

func rwParams(params []syntax.Expr) {
	for _, p := range params {
		if b, ok := p.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
			b.Y = rwExpr(b.Y)
		}
	}
}

// rwTarget rewrites the evaluated parts of an assignment target (indices,
// receivers) but keeps its shape, which the resolver requires.
func rwTarget(e syntax.Expr) {
	switch x := e.(type) {
	case *syntax.IndexExpr:
		x.X = rwExpr(x.X)
		x.Y = rwExpr(x.Y)
	case *syntax.DotExpr:
		x.X = rwExpr(x.X)
	case *syntax.TupleExpr:
		for _, el := range x.List {
			rwTarget(el)
		}
	case *syntax.ListExpr:
		for _, el := range x.List {
			rwTarget(el)
		}
	case *syntax.ParenExpr:
		rwTarget(x.X)
	}
}

// clone copies a side-effect-free target expression so an augmented
// assignment can read it once more for the size check.
func clone(e syntax.Expr) (syntax.Expr, bool) {
	switch x := e.(type) {
	case *syntax.Ident:
		return &syntax.Ident{NamePos: x.NamePos, Name: x.Name}, true
	case *syntax.Literal:
		c := *x
		return &c, true
	case *syntax.DotExpr:
		r, ok := clone(x.X)
		return &syntax.DotExpr{X: r, Dot: x.Dot, NamePos: x.NamePos, Name: &syntax.Ident{NamePos: x.Name.NamePos, Name: x.Name.Name}}, ok
	case *syntax.IndexExpr:
		a, ok1 := clone(x.X)
		b, ok2 := clone(x.Y)
		return &syntax.IndexExpr{X: a, Lbrack: x.Lbrack, Y: b, Rbrack: x.Rbrack}, ok1 && ok2
	case *syntax.ParenExpr:
		r, ok := clone(x.X)
		return &syntax.ParenExpr{Lparen: x.Lparen, X: r, Rparen: x.Rparen}, ok
	}
	return nil, false
}

// guardedMethods are the methods that can build a large value in one step;
// calls of them are rewritten into checked builtins.
var guardedMethods = map[string]bool{
	"join": true, "replace": true, "format": true, "extend": true,
	"split": true, "rsplit": true, "splitlines": true,
	"upper": true, "lower": true, "title": true, "capitalize": true,
	"items": true, "keys": true, "values": true,
	"union": true, "difference": true, "intersection": true, "symmetric_difference": true,
}

// binopNames are the operators rewritten into checked builtins, and
// augNames their augmented assignments.
var (
	binopNames = map[syntax.Token]string{
		syntax.PLUS: "__add", syntax.STAR: "__mul", syntax.PERCENT: "__mod", syntax.MINUS: "__sub",
		syntax.PIPE: "__or", syntax.AMP: "__and", syntax.CIRCUMFLEX: "__xor", syntax.LTLT: "__shl",
	}
	augNames = map[syntax.Token]string{
		syntax.PLUS_EQ: "__aug_add", syntax.STAR_EQ: "__aug_mul", syntax.PERCENT_EQ: "__aug_mod", syntax.MINUS_EQ: "__aug_sub",
		syntax.PIPE_EQ: "__aug_or", syntax.AMP_EQ: "__aug_and", syntax.CIRCUMFLEX_EQ: "__aug_xor", syntax.LTLT_EQ: "__aug_shl",
	}
)

func rwExpr(e syntax.Expr) syntax.Expr {
	switch x := e.(type) {
	case *syntax.BinaryExpr:
		x.X = rwExpr(x.X)
		x.Y = rwExpr(x.Y)
		if name := binopNames[x.Op]; name != "" {
			return call(name, x.OpPos, x.X, x.Y)
		}
	case *syntax.CallExpr:
		for i, a := range x.Args {
			switch y := a.(type) {
			case *syntax.BinaryExpr:
				if y.Op == syntax.EQ { // keyword argument
					y.Y = rwExpr(y.Y)
					continue
				}
			case *syntax.UnaryExpr:
				if y.Op == syntax.STAR || y.Op == syntax.STARSTAR {
					y.X = rwExpr(y.X)
					continue
				}
			}
			x.Args[i] = rwExpr(a)
		}
		if d, ok := x.Fn.(*syntax.DotExpr); ok && guardedMethods[d.Name.Name] {
			recv := rwExpr(d.X)
			x.Args = append([]syntax.Expr{recv}, x.Args...)
			x.Fn = &syntax.Ident{NamePos: d.NamePos, Name: "__m_" + d.Name.Name}
			return x
		}
		x.Fn = rwExpr(x.Fn)
	case *syntax.Comprehension:
		x.Body = rwExpr(x.Body)
		for _, c := range x.Clauses {
			switch cl := c.(type) {
			case *syntax.ForClause:
				rwTarget(cl.Vars)
				cl.X = rwExpr(cl.X)
			case *syntax.IfClause:
				cl.Cond = rwExpr(cl.Cond)
			}
		}
	case *syntax.CondExpr:
		x.Cond = rwExpr(x.Cond)
		x.True = rwExpr(x.True)
		x.False = rwExpr(x.False)
	case *syntax.DictExpr:
		for _, en := range x.List {
			if d, ok := en.(*syntax.DictEntry); ok {
				d.Key = rwExpr(d.Key)
				d.Value = rwExpr(d.Value)
			}
		}
	case *syntax.DotExpr:
		x.X = rwExpr(x.X)
	case *syntax.IndexExpr:
		x.X = rwExpr(x.X)
		x.Y = rwExpr(x.Y)
	case *syntax.LambdaExpr:
		rwParams(x.Params)
		x.Body = rwExpr(x.Body)
	case *syntax.ListExpr:
		for i, el := range x.List {
			x.List[i] = rwExpr(el)
		}
	case *syntax.TupleExpr:
		for i, el := range x.List {
			x.List[i] = rwExpr(el)
		}
	case *syntax.ParenExpr:
		x.X = rwExpr(x.X)
	case *syntax.SliceExpr:
		// x[lo:hi:step] becomes __slice(x, lo, hi, step), None for a
		// missing bound, so the copy is charged before it is made.
		parts := []syntax.Expr{rwExpr(x.X), x.Lo, x.Hi, x.Step}
		for i, p := range parts[1:] {
			if p == nil {
				parts[i+1] = &syntax.Ident{NamePos: x.Lbrack, Name: "__none"}
			} else {
				parts[i+1] = rwExpr(p)
			}
		}
		return call("__slice", x.Lbrack, parts...)
	case *syntax.UnaryExpr:
		if x.X != nil {
			x.X = rwExpr(x.X)
		}
	}
	return e
}
