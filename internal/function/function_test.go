package function

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustCompile(t testing.TB, src string, l Limits) *Program {
	t.Helper()
	p, err := Compile("t", src, l)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func TestCall(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		input  any
		params map[string]any
		want   any
	}{
		{"identity", "def main(input):\n    return input", map[string]any{"a": int64(1), "b": "x"}, nil, map[string]any{"a": int64(1), "b": "x"}},
		{"params", "def main(input, params):\n    return input['v'] * params['k']", map[string]any{"v": int64(3)}, map[string]any{"k": int64(4)}, int64(12)},
		{"float", "def main(input):\n    return input / 2", 3.0, nil, 1.5},
		{"list", "def main(input):\n    return [x + 1 for x in input]", []any{int64(1), int64(2)}, nil, []any{int64(2), int64(3)}},
		{"json", "def main(input):\n    return json.decode(json.encode(input))", map[string]any{"a": []any{true, nil}}, nil, map[string]any{"a": []any{true, nil}}},
		{"math", "def main(input):\n    return math.sqrt(input)", 16.0, nil, 4.0},
		{"re.match", "def main(input):\n    return re.match(r'(\\w+)-(\\d+)', input)", "cam-12 x", nil, []any{"cam-12", "cam", "12"}},
		{"re.search none", "def main(input):\n    return re.search('z+', input)", "abc", nil, nil},
		{"re.findall", "def main(input):\n    return re.findall('[0-9]+', input)", "a1b22c333", nil, []any{"1", "22", "333"}},
		{"re.sub", "def main(input):\n    return re.sub('(a)(b)', r'\\2\\1$', input)", "abab", nil, "ba$ba$"},
		{"re.split", "def main(input):\n    return re.split(r',\\s*', input)", "a, b,c", nil, []any{"a", "b", "c"}},
		{"opaque passes through", "def main(input):\n    return {'img': input['img'], 't': type(input['img'])}", map[string]any{"img": struct{ X int }{1}}, nil, map[string]any{"img": struct{ X int }{1}, "t": "opaque"}},
		{"augmented list", "def main(input):\n    l = [1]\n    l += [2]\n    s = 'a'\n    s += 'b'\n    s *= 2\n    return [l, s, '%s-%d' % ('x', 3), ','.join(['a','b']), 'a{}'.format(1), 'aa'.replace('a','bb')]", nil, nil,
			[]any{[]any{int64(1), int64(2)}, "abab", "x-3", "a,b", "a1", "bbbb"}},
		{"while and top-level", "N = 0\nfor i in range(3):\n    N += i\ndef main(input):\n    i = 0\n    while i < N:\n        i += 1\n    return i", nil, nil, int64(3)},
		{"time", "def main(input):\n    return time.parse_duration('1s') * 2", nil, nil, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.src, Limits{})
			got, err := p.Call(context.Background(), tc.input, tc.params)
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"load", "load('os', 'x')\ndef main(input):\n    return 1", "load() is not allowed"},
		{"open", "def main(input):\n    return open('/etc/passwd')", "undefined: open"},
		{"sys", "def main(input):\n    return sys.exit(1)", "undefined: sys"},
		{"import", "import os\ndef main(input):\n    return 1", "got import"},
		{"no main", "x = 1", "must define main"},
		{"bad arity", "def main():\n    return 1", "main must take"},
		{"syntax", "def main(input):\n    return (", "t:"},
		{"top-level loop", "while True:\n    pass\ndef main(input):\n    return 1", "steps limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile("t", tc.src, Limits{MaxSteps: 10000})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	_, err := Compile("t", strings.Repeat("#", 70<<10), Limits{})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitSourceSize {
		t.Fatalf("huge source: %v", err)
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		input any
		l     Limits
		limit string
	}{
		{"loop forever", "def main(input):\n    while True:\n        pass", nil, Limits{MaxSteps: 100000}, LimitSteps},
		{"loop forever wall time", "def main(input):\n    while True:\n        pass", nil, Limits{MaxSteps: 1 << 62, MaxDuration: 20 * time.Millisecond}, LimitTime},
		{"string doubling", "def main(input):\n    s = 'x'\n    for i in range(64):\n        s = s + s\n    return len(s)", nil, Limits{}, LimitValueSize},
		{"string aug doubling", "def main(input):\n    s = 'x'\n    for i in range(64):\n        s += s\n    return len(s)", nil, Limits{}, LimitValueSize},
		{"string repeat", "def main(input):\n    return len('x' * 1000000000)", nil, Limits{}, LimitValueSize},
		{"list repeat", "def main(input):\n    return len([0] * 1000000000)", nil, Limits{}, LimitValueSize},
		{"list extend doubling", "def main(input):\n    l = [0]\n    for i in range(64):\n        l.extend(l)\n    return len(l)", nil, Limits{}, LimitValueSize},
		{"join amplification", "def main(input):\n    s = 'x' * 1000000\n    return len(''.join([s] * 1000))", nil, Limits{}, LimitValueSize},
		{"str amplification", "def main(input):\n    s = 'x' * 1000000\n    return len(str([s] * 1000))", nil, Limits{}, LimitValueSize},
		{"format amplification", "def main(input):\n    s = 'x' * 3000000\n    return len('{}{}'.format(s, s))", nil, Limits{}, LimitValueSize},
		{"percent amplification", "def main(input):\n    s = 'x' * 3000000\n    return len('%s%s' % (s, s))", nil, Limits{}, LimitValueSize},
		{"replace amplification", "def main(input):\n    s = 'x' * 1000000\n    return len(s.replace('x', 'yyyyyy'))", nil, Limits{}, LimitValueSize},
		{"huge range", "def main(input):\n    return len(list(range(1 << 40)))", nil, Limits{}, LimitValueSize},
		{"bigint squaring", "def main(input):\n    x = 3\n    for i in range(100):\n        x = x * x\n    return 1", nil, Limits{}, LimitIntSize},
		{"recursion", "def f(n):\n    return f(n)\ndef main(input):\n    return f(1)", nil, Limits{}, LimitRecursion},
		{"huge output", "def main(input):\n    return 'x' * 2000000", nil, Limits{}, LimitOutputSize},
		{"huge input", "def main(input):\n    return 1", strings.Repeat("x", 9<<20), Limits{}, LimitInputSize},
		{"self reference", "def main(input):\n    l = []\n    l.append(l)\n    return l", nil, Limits{}, LimitDepth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.src, tc.l)
			_, err := p.Call(context.Background(), tc.input, nil)
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != tc.limit {
				t.Fatalf("err = %v, want %s limit", err, tc.limit)
			}
			if !strings.Contains(err.Error(), tc.limit) || !strings.Contains(err.Error(), `"t"`) {
				t.Fatalf("message %q should name the program and limit", err)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	p := mustCompile(t, "def main(input):\n    while True:\n        pass", Limits{MaxSteps: 1 << 62, MaxDuration: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Call(ctx, nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestRuntimeErrorIsScriptError(t *testing.T) {
	p := mustCompile(t, "def main(input):\n    return input['missing']", Limits{})
	_, err := p.Call(context.Background(), map[string]any{}, nil)
	var se *ScriptError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("err = %v", err)
	}
	p = mustCompile(t, "def main(input):\n    return {1: 2}", Limits{})
	if _, err = p.Call(context.Background(), nil, nil); !errors.As(err, &se) {
		t.Fatalf("non-string key: %v", err)
	}
}

// A runaway script must not stop other calls of the same program.
func TestConcurrentWithRunaway(t *testing.T) {
	p := mustCompile(t, "def main(input):\n    if input['spin']:\n        while True:\n            pass\n    return {'v': input['v'] + 1}", Limits{MaxSteps: 1 << 62, MaxDuration: 200 * time.Millisecond, MaxMemoryBytes: 1 << 40})
	var wg sync.WaitGroup
	wg.Add(1)
	var spinErr error
	go func() {
		defer wg.Done()
		_, spinErr = p.Call(context.Background(), map[string]any{"spin": true, "v": 0}, nil)
	}()
	for i := 0; i < 200; i++ {
		got, err := p.Call(context.Background(), map[string]any{"spin": false, "v": int64(i)}, nil)
		if err != nil || got.(map[string]any)["v"] != int64(i+1) {
			t.Fatalf("call %d: %v %v", i, got, err)
		}
	}
	wg.Wait()
	var le *LimitError
	if !errors.As(spinErr, &le) || le.Limit != LimitTime {
		t.Fatalf("spin: %v", spinErr)
	}
}

func TestExpr(t *testing.T) {
	e, err := CompileExpr("cond", "item['score'] > threshold and re.search('face', item['label']) != None", []string{"item", "threshold"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := e.EvalBool(context.Background(), map[string]any{"score": 0.9, "label": "face"}, 0.5)
	if err != nil || !ok {
		t.Fatalf("EvalBool = %v, %v", ok, err)
	}
	f, err := CompileExpr("score", "item['w'] * item['h']", []string{"item"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.EvalFloat(context.Background(), map[string]any{"w": int64(3), "h": 2.5}); err != nil || v != 7.5 {
		t.Fatalf("EvalFloat = %v, %v", v, err)
	}
	for _, bad := range []string{"x = 1", "1 +", "open('x')", "undefined_name", "a)\ndef main(x):\n  return (1"} {
		if _, err := CompileExpr("bad", bad, []string{"a"}, Limits{}); err == nil {
			t.Errorf("CompileExpr(%q) should fail", bad)
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"def main(input):\n    return input",
		"def main(input, params):\n    return {'a': input['x'] + params['y']}",
		"load('os', 'x')",
		"def main(input):\n    s = 'x'\n    for i in range(10):\n        s += s\n    return s",
		"def main(input):\n    return [x * 2 for x in range(10) if x % 2]",
		"def main(input):\n    d = {}\n    d['a'] += 1\n    return d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile("fuzz", src, Limits{MaxSteps: 10000, MaxDuration: 100 * time.Millisecond, MaxValueBytes: 1 << 16})
		if err != nil {
			return
		}
		_, _ = p.Call(context.Background(), map[string]any{"x": int64(1), "s": "abc"}, map[string]any{"y": int64(2)})
	})
}

const mapping10 = `def main(input, params):
    return {
        "id": input["id"],
        "camera": input["camera"],
        "ts": input["ts"],
        "score": input["score"],
        "label": input["label"].upper(),
        "x": input["box"][0],
        "y": input["box"][1],
        "w": input["box"][2],
        "h": input["box"][3],
        "ok": input["score"] > 0.5,
    }
`

// Mapping10Input is the input of the 10-field mapping benchmark.
func mapping10Input() map[string]any {
	return map[string]any{"id": "f-1", "camera": "cam-1", "ts": int64(1700000000), "score": 0.93, "label": "face", "box": []any{10.0, 20.0, 30.0, 40.0}}
}

func BenchmarkCall10FieldMapping(b *testing.B) {
	p := mustCompile(b, mapping10, Limits{})
	in := mapping10Input()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Call(ctx, in, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// CallFields converts its names and values as Call converts the same map,
// keys in the given order, under the same input limit.
func TestCallFields(t *testing.T) {
	p := mustCompile(t, "def main(input, params):\n    return {'keys': list(input.keys()), 'in': input, 'k': params['k']}", Limits{})
	names, values := []string{"b", "a"}, []any{[]any{int64(1), "x"}, map[string]any{"c": 2.5}}
	got, err := p.CallFields(context.Background(), names, values, map[string]any{"k": true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"keys": []any{"b", "a"}, "in": map[string]any{"b": values[0], "a": values[1]}, "k": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CallFields = %#v, want %#v", got, want)
	}
	small := mustCompile(t, "def main(input):\n    return 1", Limits{MaxInputBytes: 64})
	_, err = small.CallFields(context.Background(), []string{"s"}, []any{strings.Repeat("x", 100)}, nil)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitInputSize {
		t.Errorf("CallFields over the input limit = %v, want the input-size limit", err)
	}
}

// A worker's timer is shared by back-to-back calls and re-armed after it
// fired idle: either way a long call is stopped by the time limit.
func TestTimeLimitAcrossReusedWorkers(t *testing.T) {
	p := mustCompile(t, "def main(input):\n    if input:\n        while True:\n            pass\n    return 1", Limits{MaxDuration: 20 * time.Millisecond, MaxSteps: 1 << 62, MaxMemoryBytes: 1 << 40})
	ctx := context.Background()
	long := func(when string) {
		t.Helper()
		_, err := p.Call(ctx, true, nil)
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != LimitTime {
			t.Errorf("%s: long call = %v, want the time limit", when, err)
		}
	}
	for range 1000 { // quick calls arm the timer once
		if _, err := p.Call(ctx, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	long("after quick calls")
	time.Sleep(50 * time.Millisecond) // the timer fires while the worker is idle
	long("after an idle worker's timer fired")
	for range 3 {
		long("back to back")
	}
}

// Values a script or an expression never names are not converted: an
// oversized params does not count against the input limit unless read.
func TestUnreadValuesNotConverted(t *testing.T) {
	big := map[string]any{"a": strings.Repeat("x", 1000)}
	l := Limits{MaxInputBytes: 200}
	ctx := context.Background()
	unread := mustCompile(t, "def main(input, params):\n    return input", l)
	if got, err := unread.Call(ctx, int64(1), big); err != nil || got != int64(1) {
		t.Errorf("params unread: %v, %v", got, err)
	}
	read := mustCompile(t, "def main(input, params):\n    return input if input else params", l)
	var le *LimitError
	if _, err := read.Call(ctx, int64(1), big); !errors.As(err, &le) || le.Limit != LimitInputSize {
		t.Errorf("params read: %v; want the input-size limit", err)
	}
	e, err := CompileExpr("e", "len(n) > 2", []string{"n", "params"}, l)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.EvalBool(ctx, []any{int64(1), int64(2), int64(3)}, big); err != nil || !ok {
		t.Errorf("expression with params unread: %v, %v", ok, err)
	}
	e, err = CompileExpr("e", "len(n) > 2 and params", []string{"n", "params"}, l)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.EvalBool(ctx, []any{int64(1), int64(2), int64(3)}, big); !errors.As(err, &le) || le.Limit != LimitInputSize {
		t.Errorf("expression with params read: %v; want the input-size limit", err)
	}
}
