package function

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// A script's input and params are frozen: changing them in place is an
// error that says so, and a copy can be changed freely.
func TestInputIsReadOnly(t *testing.T) {
	in := map[string]any{"faces": []any{map[string]any{"age": int64(30)}}, "n": int64(1)}
	for _, src := range []string{
		"def main(input):\n    input['x'] = 1\n    return input",
		"def main(input):\n    input['faces'].append(1)\n    return input",
		"def main(input):\n    input['faces'][0]['age'] = 3\n    return input",
		"def main(input, params):\n    params['k'] = 2\n    return input",
	} {
		p := mustCompile(t, src, Limits{})
		_, err := p.Call(context.Background(), in, map[string]any{"k": int64(1)})
		var se *ScriptError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "frozen") {
			t.Errorf("%q: err = %v, want a ScriptError about a frozen value", src, err)
		}
	}
	p := mustCompile(t, "def main(input):\n    d = dict(input)\n    d['x'] = 1\n    f = [dict(x, adult=x['age'] >= 18) for x in input['faces']]\n    d['faces'] = f\n    return d", Limits{})
	got, err := p.Call(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"faces": []any{map[string]any{"age": int64(30), "adult": true}}, "n": int64(1), "x": int64(1)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("copy: got %v, want %v", got, want)
	}
	if len(in) != 2 || len(in["faces"].([]any)[0].(map[string]any)) != 1 {
		t.Errorf("the caller's input changed: %v", in)
	}
}

// Within one message (a Memo), a map or list converted for one call is not
// converted again for the next, and one a script returns unchanged goes
// back as the very Go value it came from.
func TestMemoSharesConversions(t *testing.T) {
	faces := []any{
		map[string]any{"age": int64(12), "box": []any{int64(1), int64(2)}},
		map[string]any{"age": int64(40), "box": []any{int64(3), int64(4)}},
	}
	// In Starlark (direct evaluation, which these scripts qualify for,
	// converts nothing: TestDirectScripts).
	keep := starlarkOnly(t, "def main(input):\n    return {'adults': [f for f in input['faces'] if f['age'] >= 18], 'all': input['faces']}", Limits{})
	var m Memo
	ctx := WithMemo(context.Background(), &m)
	out, err := keep.CallFields(ctx, []string{"faces"}, []any{faces}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := out.(map[string]any)
	adults := res["adults"].([]any)
	if len(adults) != 1 || reflect.ValueOf(adults[0]).UnsafePointer() != reflect.ValueOf(faces[1]).UnsafePointer() {
		t.Errorf("adults = %v: want the input's own second face", adults)
	}
	if all := res["all"].([]any); &all[0] != &faces[0] || len(all) != len(faces) {
		t.Errorf("all: want the input's own list back")
	}
	// The next call of the message sees the same frozen values.
	n := len(m.entries)
	count := starlarkOnly(t, "def main(input):\n    return len(input['a']) + len(input['f'])", Limits{})
	if got, err := count.CallFields(ctx, []string{"a", "f"}, []any{adults, faces}, nil); err != nil || got != int64(3) {
		t.Fatalf("count = %v, %v", got, err)
	}
	if len(m.entries) != n+1 { // only the new list of adults
		t.Errorf("memo entries %d after the second call, want %d", len(m.entries), n+1)
	}
	// Without a memo every call converts afresh, and the result is a copy.
	out, err = keep.CallFields(context.Background(), []string{"faces"}, []any{faces}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if all := out.(map[string]any)["all"].([]any); &all[0] == &faces[0] || !reflect.DeepEqual(all, faces) {
		t.Errorf("without a memo: want an equal copy")
	}
	m.Reset()
	if len(m.entries) != 0 || len(m.fwd) != 0 || len(m.back) != 0 {
		t.Errorf("Reset left %d entries", len(m.entries))
	}
}

// The limits do not depend on whether a value was converted by an earlier
// call of the message: a memoized value is charged its size again and
// counts its depth again.
func TestMemoKeepsLimits(t *testing.T) {
	big := []any{strings.Repeat("x", 600), strings.Repeat("y", 600)}
	var m Memo
	ctx := WithMemo(context.Background(), &m)
	wide := mustCompile(t, "def main(input):\n    return len(input)", Limits{MaxInputBytes: 4000})
	if _, err := wide.Call(ctx, big, nil); err != nil {
		t.Fatal(err)
	}
	small := mustCompile(t, "def main(input):\n    return len(input)", Limits{MaxInputBytes: 1000})
	var le *LimitError
	if _, err := small.Call(ctx, big, nil); !errors.As(err, &le) || le.Limit != LimitInputSize {
		t.Errorf("memoized value over the input budget: %v", err)
	}

	deep := map[string]any{"a": map[string]any{"b": map[string]any{"c": int64(1)}}}
	if _, err := wide.Call(ctx, deep, nil); err != nil {
		t.Fatal(err)
	}
	shallow := mustCompile(t, "def main(input):\n    return 1", Limits{MaxDepth: 3})
	if _, err := shallow.Call(ctx, map[string]any{"d": deep}, nil); !errors.As(err, &le) || le.Limit != LimitDepth {
		t.Errorf("memoized value below the depth limit: %v", err)
	}
	// The same value fits where it is shallower.
	if _, err := shallow.Call(ctx, deep, nil); err != nil {
		t.Errorf("memoized value within the depth limit: %v", err)
	}
	// Results are held to the output limit in the same way.
	ret := mustCompile(t, "def main(input):\n    return input", Limits{MaxOutputBytes: 1000})
	if _, err := ret.Call(ctx, big, nil); !errors.As(err, &le) || le.Limit != LimitOutputSize {
		t.Errorf("memoized result over the output budget: %v", err)
	}
}

// Calls of one message may run at once (concurrent branches, foreach
// items): they share the memo safely. Run with -race.
func TestMemoConcurrentCalls(t *testing.T) {
	faces := make([]any, 20)
	for i := range faces {
		faces[i] = map[string]any{"age": int64(i), "box": []any{int64(i), int64(i)}}
	}
	p := mustCompile(t, "def main(input):\n    return [f for f in input['faces'] if f['age'] % 2 == 0]", Limits{})
	e, err := CompileExpr("t", "len(faces) > 5", []string{"faces"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var m Memo
	ctx := WithMemo(context.Background(), &m)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := p.CallFields(ctx, []string{"faces"}, []any{faces[i:]}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := e.EvalBool(ctx, out); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
