package function

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// starlarkOnly compiles src with direct evaluation off: the reference.
func starlarkOnly(t testing.TB, src string, l Limits) *Program {
	t.Helper()
	p, err := Compile("ref", src, l)
	if err != nil {
		t.Fatal(err)
	}
	p.fast = nil
	return p
}

// sameValue is reflect.DeepEqual with NaN equal to NaN.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || x != x && y != y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !sameValue(e, f) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func faces(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"age": int64(10 + 5*i), "box": []any{int64(i * 10), int64(20), int64(40), int64(40)}, "name": fmt.Sprint("p", i)}
	}
	return out
}

// The scripts flows run most (the route and split functions, a
// switch's condition) and the statement forms are evaluated directly and
// give what Starlark gives, the same Go values included.
func TestDirectScripts(t *testing.T) {
	in := faces(5)
	cases := []struct {
		name, src string
		names     []string
		values    []any
		params    map[string]any
	}{
		{"route", "def main(input, params):\n    return {\"adults\": [f for f in input[\"faces\"] if f[\"age\"] >= 18]}", []string{"faces"}, []any{in}, nil},
		{"split", "def main(input, params):\n    f = input[\"face\"]\n    b = f[\"box\"]\n    return {\"adult\": f[\"age\"] >= 18, \"area\": b[2] * b[3]}", []string{"face"}, []any{in[2]}, nil},
		{"statements", `def main(input, params):
    """Grades a face."""
    f = input["face"]
    if f["age"] < 13:
        grade = "child"
    elif f["age"] < 18:
        grade = "teen"
    else:
        pass
        grade = "adult"
    w = f.get("missing", 7)
    if "box" not in f:
        return None
    return {"grade": grade, "w": w // 2, "r": w % -4, "half": w / 2, "name": "n-" + f["name"], "params": params, "last": f["box"][-1], "same": f}`,
			[]string{"face"}, []any{in[1]}, map[string]any{"k": int64(1)}},
		{"no return", "def main(input):\n    x = 1\n", []string{"a"}, []any{int64(1)}, nil},
		{"Go ints and numbers", "def main(input):\n    return [input[\"a\"] + 1, input[\"b\"] * 2, input[\"c\"] - 0.5, input[\"d\"]]",
			[]string{"a", "b", "c", "d"}, []any{7, int32(8), json.Number("2.5"), []any{}}, nil},
		{"conditional and logic", "def main(input):\n    a = input[\"a\"]\n    return {\"x\": a and \"yes\" or \"no\", \"y\": (not a) if a != None else -a, \"z\": [1, 2.5, \"s\", True, None][len(\"abc\") - 4]}",
			[]string{"a"}, []any{int64(3)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.name, tc.src, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if p.fast == nil {
				t.Fatal("not compiled for direct evaluation")
			}
			got, ok := p.fast.call(nil, tc.names, tc.values, tc.params, p.nparams == 2 && !p.paramsUnused)
			if !ok {
				t.Fatal("direct evaluation gave up")
			}
			ref := starlarkOnly(t, tc.src, Limits{})
			ctx := WithMemo(context.Background(), &Memo{})
			want, err := ref.CallFields(ctx, tc.names, tc.values, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(got, want) {
				t.Fatalf("direct %#v\nstarlark %#v", got, want)
			}
			// Through CallFields under a memo: the same, and the faces
			// kept are the input's own maps.
			viaCall, err := p.CallFields(WithMemo(context.Background(), &Memo{}), tc.names, tc.values, tc.params)
			if err != nil || !sameValue(viaCall, want) {
				t.Fatalf("CallFields %#v, %v", viaCall, err)
			}
		})
	}
	// The route flow's adults are the input's maps, not copies.
	p, _ := Compile("route", cases[0].src, Limits{})
	out, _ := p.CallFields(WithMemo(context.Background(), &Memo{}), []string{"faces"}, []any{in}, nil)
	adults := out.(map[string]any)["adults"].([]any)
	if len(adults) != 3 || reflect.ValueOf(adults[0]).UnsafePointer() != reflect.ValueOf(in[2]).UnsafePointer() {
		t.Fatalf("adults %v", adults)
	}
}

// Scripts outside the subset are not evaluated directly, and calls the
// subset cannot finish as Starlark would (errors, limits) run in Starlark
// and give Starlark's error.
func TestDirectGivesUp(t *testing.T) {
	for _, src := range []string{
		"X = 1\ndef main(input):\n    return X",                       // a global
		"def main(input):\n    return min(1, 2)",                      // another builtin
		"def main(input):\n    for x in input:\n        pass",         // a loop
		"def main(input):\n    return input[1:]",                      // a slice
		"def main(input):\n    return input.keys()",                   // another method
		"def main(input):\n    x, y = 1, 2\n    return x",             // unpacking
		"def main(input):\n    return {\"a\": 1, \"a\": 2}",           // duplicate key
		"def main(input):\n    return {k: 1 for k in input}",          // dict comprehension
		"def main(input):\n    len = 3\n    return len",               // shadows a builtin
		"def main(input):\n    return b\"x\"",                         // bytes
		"def main(input):\n    return 1 << 2",                         // bit operators
		"def main(input):\n    x = 1\n    x += 1\n    return x",       // augmented assignment
		"def helper():\n    return 1\ndef main(input):\n    return 1", // another function
	} {
		p, err := Compile("t", src, Limits{})
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if p.fast != nil {
			t.Errorf("%q compiled for direct evaluation", src)
		}
	}
	ctx := WithMemo(context.Background(), &Memo{})
	for _, tc := range []struct {
		src   string
		input map[string]any
		l     Limits
		err   string
	}{
		{"def main(input):\n    return input[\"missing\"]", map[string]any{"a": int64(1)}, Limits{}, `key "missing" not in dict`},
		{"def main(input):\n    return input[\"a\"][5]", map[string]any{"a": []any{int64(1)}}, Limits{}, "out of range"},
		{"def main(input):\n    return input[\"a\"] // 0", map[string]any{"a": int64(1)}, Limits{}, "division by zero"},
		{"def main(input):\n    return input[\"a\"] < \"s\"", map[string]any{"a": int64(1)}, Limits{}, "not implemented"},
		{"def main(input):\n    return x\n    x = 1", map[string]any{}, Limits{}, "referenced before assignment"},
		{"def main(input):\n    return input[\"a\"] * input[\"a\"]", map[string]any{"a": int64(math.MaxInt64)}, Limits{MaxIntBits: 64}, "int-size limit"},
		{"def main(input):\n    return input", map[string]any{"a": strings.Repeat("x", 100)}, Limits{MaxInputBytes: 64}, "input-size limit"},
		{"def main(input):\n    return [input, input]", map[string]any{"a": strings.Repeat("x", 40)}, Limits{MaxOutputBytes: 64}, "output-size limit"},
		{"def main(input):\n    return [f for f in input[\"l\"] if f > 0]", map[string]any{"l": ones(200)}, Limits{MaxSteps: 100}, "steps limit"},
	} {
		p, err := Compile("t", tc.src, tc.l)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if p.fast == nil {
			t.Fatalf("%q: not compiled for direct evaluation", tc.src)
		}
		if _, ok := p.fast.call(tc.input, nil, nil, nil, false); ok {
			t.Errorf("%q: evaluated directly", tc.src)
		}
		_, err = p.Call(ctx, tc.input, nil)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.err)
		}
	}
}

func ones(n int) []any {
	l := make([]any, n)
	for i := range l {
		l[i] = int64(1)
	}
	return l
}

// exprGen makes random expressions over the variables a, b, c and f and
// random values for them: the differential test's inputs.
type exprGen struct{ r *rand.Rand }

var genOps = []string{"+", "-", "*", "/", "//", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "in", "not in", "|"}

func (g *exprGen) expr(depth int) string {
	r := g.r
	if depth <= 0 {
		return g.atom()
	}
	switch r.IntN(12) {
	case 0, 1:
		return g.atom()
	case 2:
		return g.expr(depth-1) + "[" + g.key() + "]"
	case 3:
		return "len(" + g.expr(depth-1) + ")"
	case 4:
		return g.expr(depth-1) + ".get(" + g.key() + ", " + g.expr(depth-1) + ")"
	case 5, 6, 7:
		return "(" + g.expr(depth-1) + " " + genOps[r.IntN(len(genOps))] + " " + g.expr(depth-1) + ")"
	case 8:
		return []string{"not ", "-", "+"}[r.IntN(3)] + "(" + g.expr(depth-1) + ")"
	case 9:
		return "(" + g.expr(depth-1) + " if " + g.expr(depth-1) + " else " + g.expr(depth-1) + ")"
	case 10:
		if r.IntN(2) == 0 {
			return "[" + g.expr(depth-1) + ", " + g.expr(depth-1) + "]"
		}
		return `{"x": ` + g.expr(depth-1) + `, "y": ` + g.expr(depth-1) + "}"
	}
	return "[v " + genOps[r.IntN(8)] + " " + g.atom() + " for v in " + g.expr(depth-1) + " if " + "v " + genOps[6+r.IntN(6)] + " " + g.atom() + "]"
}

func (g *exprGen) key() string {
	return []string{`"age"`, `"box"`, `"name"`, `"x"`, "0", "1", "-1", "3"}[g.r.IntN(8)]
}

func (g *exprGen) atom() string {
	return []string{"a", "b", "c", "f", "0", "1", "-2", "2.5", "0.0", `"s"`, `""`, "True", "False", "None", "9007199254740993", "9223372036854775807"}[g.r.IntN(16)]
}

func (g *exprGen) value(depth int) any {
	r := g.r
	switch r.IntN(14) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return int64(r.IntN(7) - 3)
	case 3:
		return []int64{math.MaxInt64, math.MinInt64, 1 << 53, 1<<53 + 1}[r.IntN(4)]
	case 4:
		return []float64{0, -1.5, 2.5, math.NaN(), math.Inf(1), 1e300}[r.IntN(6)]
	case 5:
		return []string{"", "s", "ab"}[r.IntN(3)]
	case 6:
		return r.IntN(5)
	case 7:
		return json.Number([]string{"3", "2.5", "1e400"}[r.IntN(3)])
	case 8, 9, 10:
		if depth <= 0 {
			return int64(1)
		}
		n := r.IntN(4)
		l := make([]any, n)
		for i := range l {
			l[i] = g.value(depth - 1)
		}
		return l
	}
	if depth <= 0 {
		return "leaf"
	}
	m := map[string]any{}
	for _, k := range []string{"age", "box", "name"} {
		if r.IntN(3) > 0 {
			m[k] = g.value(depth - 1)
		}
	}
	return m
}

// Direct evaluation agrees with Starlark on generated expressions and
// values: whenever it gives a value, Starlark gives the same value (under
// a memo, as flows call it), and its truth and number.
func TestDirectMatchesStarlark(t *testing.T) {
	g := &exprGen{r: rand.New(rand.NewPCG(1, 2))}
	vars := []string{"a", "b", "c", "f"}
	direct, total := 0, 0
	for i := range 4000 {
		src := g.expr(3)
		e, err := CompileExpr("gen", src, vars, Limits{})
		if err != nil {
			continue // e.g. a literal out of range: not the subject here
		}
		ref, err := CompileExpr("gen", src, vars, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		ref.fast = nil
		for range 5 {
			args := []any{g.value(2), g.value(2), g.value(2), g.value(2)}
			total++
			v, ok := e.direct(args)
			if !ok {
				continue
			}
			ctx := WithMemo(context.Background(), &Memo{})
			want, err := ref.Eval(ctx, args...)
			if err != nil {
				t.Fatalf("#%d %s with %#v: direct gave %#v, Starlark failed: %v", i, src, args, v, err)
			}
			got, ok := result(v, e.prog.limits)
			if !ok {
				continue // the result is past a limit: Eval runs it in Starlark
			}
			direct++
			if !sameValue(got, want) {
				t.Fatalf("#%d %s with %#v:\ndirect   %#v\nstarlark %#v", i, src, args, got, want)
			}
			tb, err1 := ref.EvalBool(ctx, args...)
			db, err2 := e.EvalBool(ctx, args...)
			if err1 != nil || err2 != nil || tb != db {
				t.Fatalf("#%d %s: truth %v/%v, %v %v", i, src, db, tb, err2, err1)
			}
			if tf, err := ref.EvalFloat(ctx, args...); err == nil {
				df, err := e.EvalFloat(ctx, args...)
				if err != nil || !sameValue(df, tf) {
					t.Fatalf("#%d %s: number %v/%v, %v", i, src, df, tf, err)
				}
			}
		}
	}
	t.Logf("%d of %d evaluations direct", direct, total)
	if direct < total/10 {
		t.Fatalf("only %d of %d evaluations direct: the generator no longer exercises the subset", direct, total)
	}
}
