package flow

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/function"
)

// TestKinds runs one small flow per node kind and checks output and node
// statuses.
func TestKinds(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		input    any
		params   map[string]any
		want     map[string]any // subset of Output
		statuses string         // all node statuses, sorted; "" = not checked
	}{
		{
			name:  "noop and passthrough",
			doc:   `{"nodes": [{"id": "a", "kind": "noop", "next": ["b"]}, {"id": "b", "kind": "passthrough", "inputs": {"x": "$input.x", "lit": [1, "$input.x"], "m": {"k": "$$literal"}}}], "output": {"b": "$b"}}`,
			input: map[string]any{"x": "v"},
			want:  map[string]any{"b": map[string]any{"x": "v", "lit": []any{int64(1), "v"}, "m": map[string]any{"k": "$literal"}}},
		},
		{
			name:  "algorithm",
			doc:   `{"nodes": [{"id": "d", "kind": "algorithm", "config": {"algorithm": "alg-detect", "version": "2"}, "inputs": {"image": "$input.img", "minSize": 3}}], "output": {"n": "$d.faces[1].box[0]", "last": "$d.faces[-1].score"}}`,
			input: map[string]any{"img": "xyz"},
			want:  map[string]any{"n": 10.0, "last": 0.2},
		},
		{
			name:   "function with params",
			doc:    `{"parameters": {"k": {"type": "integer", "default": 2}}, "nodes": [{"id": "f", "kind": "function", "inputs": {"v": "$input.v"}, "config": {"script": "def main(input, params):\n    return {'r': input['v'] * params['k']}"}}], "output": {"r": "$f.r", "k": "$params.k", "all": "$params"}}`,
			input:  map[string]any{"v": int64(21)},
			params: map[string]any{},
			want:   map[string]any{"r": int64(42), "k": int64(2), "all": map[string]any{"k": int64(2)}},
		},
		{
			name:     "switch first match",
			doc:      switchDoc,
			input:    map[string]any{"v": int64(5)},
			want:     map[string]any{"small": nil, "big": "big", "merged": map[string]any{"big": "big"}},
			statuses: "big=ok merged=ok s=ok small=skipped",
		},
		{
			name:     "switch default",
			doc:      switchDoc,
			input:    map[string]any{"v": int64(-1)},
			want:     map[string]any{"small": "small", "big": nil},
			statuses: "big=skipped merged=ok s=ok small=ok",
		},
		{
			name:     "switch no match no default",
			doc:      `{"nodes": [{"id": "s", "kind": "switch", "inputs": {"v": "$input.v"}, "config": {"cases": [{"when": "v > 0", "next": "a"}]}}, {"id": "a", "kind": "noop", "next": ["b"]}, {"id": "b", "kind": "noop"}]}`,
			input:    map[string]any{"v": int64(0)},
			statuses: "a=skipped b=skipped s=ok",
		},
		{
			name:     "fan-out and join all",
			doc:      fanDoc("all", 0),
			input:    map[string]any{"x": int64(1)},
			want:     map[string]any{"j": map[string]any{"b1": map[string]any{"x": int64(1)}, "b2": map[string]any{"x": int64(1)}, "b3": map[string]any{"x": int64(1)}}},
			statuses: "b1=ok b2=ok b3=ok j=ok src=ok",
		},
		{
			name:     "foreach in order",
			doc:      `{"nodes": [{"id": "fe", "kind": "foreach", "inputs": {"items": "$input.l", "k": 10}, "config": {"concurrency": 3, "body": {"nodes": [{"id": "m", "kind": "algorithm", "config": {"algorithm": "alg-echo"}, "inputs": {"v": "$item", "i": "$index", "k": "$input.k"}}], "output": {"v": "$m.v", "i": "$m.i", "k": "$m.k"}}}}], "output": {"r": "$fe.results"}}`,
			input:    map[string]any{"l": []any{"a", "b", "c", "d", "e"}},
			want:     map[string]any{"r": []any{map[string]any{"v": "a", "i": int64(0), "k": int64(10)}, map[string]any{"v": "b", "i": int64(1), "k": int64(10)}, map[string]any{"v": "c", "i": int64(2), "k": int64(10)}, map[string]any{"v": "d", "i": int64(3), "k": int64(10)}, map[string]any{"v": "e", "i": int64(4), "k": int64(10)}}},
			statuses: "fe=ok",
		},
		{
			name:  "foreach empty",
			doc:   `{"nodes": [{"id": "fe", "kind": "foreach", "inputs": {"items": "$input.l"}, "config": {"body": {"nodes": [{"id": "m", "kind": "noop"}]}}}], "output": {"r": "$fe.results"}}`,
			input: map[string]any{},
			want:  map[string]any{"r": []any{}},
		},
		{
			name:  "subflow",
			doc:   `{"nodes": [{"id": "sub", "kind": "subflow", "config": {"flow": "flow-double", "version": "1", "params": {"k": 3}}, "inputs": {"v": "$input.v"}}], "output": {"r": "$sub.r"}}`,
			input: map[string]any{"v": int64(7)},
			want:  map[string]any{"r": int64(21)},
		},
		{
			name:     "track bestshot zone window dedup throttle",
			doc:      `{"nodes": [{"id": "t", "kind": "track", "inputs": {"objects": "$input.objs"}, "next": ["b", "z", "w", "d", "th"]}, {"id": "b", "kind": "bestshot", "inputs": {"objects": "$t.objects", "ended": "$t.ended"}, "config": {"emitAfter": "0s"}}, {"id": "z", "kind": "zone", "inputs": {"objects": "$t.objects"}, "config": {"polygon": [[0,0],[100,0],[100,100],[0,100]]}}, {"id": "w", "kind": "window", "inputs": {"items": "$t.objects"}, "config": {"interval": "1m", "key": "item['label']"}}, {"id": "d", "kind": "dedup", "inputs": {"items": "$t.objects"}, "config": {"key": "item['label']", "window": "1m"}}, {"id": "th", "kind": "throttle", "config": {"limit": 1, "interval": "1m"}}]}`,
			input:    map[string]any{"objs": []any{map[string]any{"box": []any{10.0, 10.0, 20.0, 20.0}, "label": "person", "score": 0.5}, map[string]any{"box": []any{200.0, 10.0, 20.0, 20.0}, "label": "person"}}},
			want:     map[string]any{"w": map[string]any{"start": "2026-11-29T10:27:00Z", "counts": map[string]any{"person": int64(2)}, "total": int64(2), "closed": nil}},
			statuses: "b=ok d=ok t=ok th=ok w=ok z=ok",
		},
	}
	opts := testOptions()
	opts.Flows = fakeFlows{"flow-double@1": `{"parameters": {"k": {"type": "integer", "required": true}}, "nodes": [{"id": "f", "kind": "function", "inputs": {"v": "$input.v", "k": "$params.k"}, "config": {"script": "def main(input):\n    return {'r': input['v'] * input['k']}"}}], "output": {"r": "$f.r"}}`}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := compileDoc(t, tc.doc, opts)
			res := runMsg(t, p, Input{Data: tc.input, Params: tc.params, Trace: true, Time: time.Date(2026, 11, 29, 10, 27, 28, 0, time.UTC), Key: "dev-1"})
			for k, want := range tc.want {
				if got := res.Output[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("output %s = %#v\nwant %#v", k, got, want)
				}
			}
			if tc.statuses != "" {
				if got := statuses(res); got != tc.statuses {
					t.Errorf("statuses = %s\nwant       %s", got, tc.statuses)
				}
			}
		})
	}
}

const switchDoc = `{"nodes": [
  {"id": "s", "kind": "switch", "inputs": {"v": "$input.v"}, "config": {"cases": [{"when": "v > 10", "next": "small"}, {"when": "v > 0", "next": "big"}], "default": "small"}},
  {"id": "small", "kind": "function", "config": {"script": "def main(input):\n    return 'small'"}, "next": ["merged"]},
  {"id": "big", "kind": "function", "config": {"script": "def main(input):\n    return 'big'"}, "next": ["merged"]},
  {"id": "merged", "kind": "join"}
], "output": {"small": "$small", "big": "$big", "merged": "$merged"}}`

func fanDoc(mode string, n int) string {
	return fmt.Sprintf(`{"nodes": [
  {"id": "src", "kind": "passthrough", "next": ["b1", "b2", "b3"]},
  {"id": "b1", "kind": "algorithm", "config": {"algorithm": "alg-echo"}, "inputs": {"x": "$src.x"}, "next": ["j"]},
  {"id": "b2", "kind": "algorithm", "config": {"algorithm": "alg-echo"}, "inputs": {"x": "$src.x"}, "next": ["j"]},
  {"id": "b3", "kind": "algorithm", "config": {"algorithm": "alg-echo"}, "inputs": {"x": "$src.x"}, "next": ["j"]},
  {"id": "j", "kind": "join", "config": {"mode": %q, "n": %d}, "timeout": "10s"}
], "output": {"j": "$j"}}`, mode, n)
}

// slowAlgos blocks "alg-slow" until released, to test any/N joins and
// join timeouts without timing assumptions.
func slowOptions(release chan struct{}) Options {
	a := newFakeAlgos()
	a.add("alg-slow", &Contract{}, func(ctx context.Context, in map[string]any) (map[string]any, error) {
		select {
		case <-release:
			return map[string]any{"slow": true}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	return Options{Algorithms: a}
}

func TestJoinModes(t *testing.T) {
	doc := func(mode string, n int, timeout string) string {
		return fmt.Sprintf(`{"nodes": [
  {"id": "src", "kind": "noop", "next": ["fast1", "fast2", "slow"]},
  {"id": "fast1", "kind": "algorithm", "config": {"algorithm": "alg-echo"}, "inputs": {"f": 1}, "next": ["j"]},
  {"id": "fast2", "kind": "algorithm", "config": {"algorithm": "alg-echo"}, "inputs": {"f": 2}, "next": ["j"]},
  {"id": "slow", "kind": "algorithm", "config": {"algorithm": "alg-slow"}, "next": ["j"]},
  {"id": "j", "kind": "join", "config": {"mode": %q, "n": %d}, "timeout": %q, "onError": "skip", "next": ["after"]},
  {"id": "after", "kind": "passthrough", "inputs": {"j": "$j"}}
], "output": {"j": "$j"}}`, mode, n, timeout)
	}
	t.Run("any fires before the slow branch", func(t *testing.T) {
		release := make(chan struct{})
		p := compileDoc(t, doc("any", 0, "1h"), slowOptions(release))
		done := make(chan Result)
		go func() {
			res, _ := p.Run(context.Background(), Input{Trace: true})
			done <- res
		}()
		// The join fired on the first fast branch; the message still waits
		// for the slow branch, which we release only now.
		close(release)
		res := <-done
		j := res.Output["j"].(map[string]any)
		if len(j) < 1 {
			t.Fatalf("join output %v", j)
		}
	})
	t.Run("n of m", func(t *testing.T) {
		release := make(chan struct{})
		p := compileDoc(t, doc("n", 2, "1h"), slowOptions(release))
		done := make(chan Result)
		go func() {
			res, _ := p.Run(context.Background(), Input{Trace: true})
			done <- res
		}()
		close(release)
		res := <-done
		if j := res.Output["j"].(map[string]any); len(j) < 2 {
			t.Fatalf("join output %v", j)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		opts := slowOptions(release)
		joined := make(chan struct{})
		opts.Tracer = tracerFunc(func(node string) {
			if node == "j" {
				close(joined)
			}
		})
		p := compileDoc(t, doc("all", 0, "20ms"), opts)
		done := make(chan Result)
		go func() {
			res, err := p.Run(context.Background(), Input{Trace: true})
			if err != nil {
				t.Errorf("Run: %v", err)
			}
			done <- res
		}()
		// The slow branch is released only after the join has given up.
		<-joined
		close(release)
		res := <-done
		for _, n := range res.Nodes {
			if n.ID == "j" && (n.Status != StatusErrorSkipped || !strings.Contains(n.Error, "timed out")) {
				t.Fatalf("join: %+v", n)
			}
		}
	})
}

type tracerFunc func(node string)

func (f tracerFunc) StartNode(ctx context.Context, _, node, _ string) (context.Context, func(error)) {
	return ctx, func(error) { f(node) }
}

func TestOnError(t *testing.T) {
	a := newFakeAlgos()
	var calls atomic.Int64
	a.add("alg-flaky", &Contract{}, func(context.Context, map[string]any) (map[string]any, error) {
		if calls.Add(1)%3 != 0 {
			return nil, errors.New("transient")
		}
		return map[string]any{"ok": true}, nil
	})
	a.add("alg-fail", &Contract{}, func(context.Context, map[string]any) (map[string]any, error) {
		return nil, errors.New("boom")
	})
	a.add("alg-panic", &Contract{}, func(context.Context, map[string]any) (map[string]any, error) {
		panic("nil map somewhere")
	})
	a.add("alg-hang", &Contract{}, func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	opts := Options{Algorithms: a}
	tests := []struct {
		name, node, onError, extra string
		wantErr                    string
		statuses                   string
	}{
		{"fail", `"algorithm": "alg-fail"`, "fail", "", `node "x" (algorithm): boom`, "after=skipped handler=skipped x=failed"},
		{"skip", `"algorithm": "alg-fail"`, "skip", "", "", "after=ok handler=skipped x=error-skipped"},
		{"route", `"algorithm": "alg-fail"`, "route", `, "errorNext": "handler"`, "", "after=skipped handler=ok x=routed"},
		{"retry succeeds", `"algorithm": "alg-flaky"`, "fail", `, "retry": {"max": 2, "backoff": "1ms"}`, "", "after=ok handler=skipped x=ok"},
		{"panic becomes error", `"algorithm": "alg-panic"`, "fail", "", "panic: nil map somewhere", "after=skipped handler=skipped x=failed"},
		{"node timeout", `"algorithm": "alg-hang"`, "fail", `, "timeout": "10ms"`, "timed out after 10ms", "after=skipped handler=skipped x=failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf(`{"nodes": [
  {"id": "x", "kind": "algorithm", "config": {%s}, "onError": %q %s, "next": ["after"]},
  {"id": "after", "kind": "passthrough", "inputs": {"x": "$x"}},
  {"id": "handler", "kind": "passthrough", "inputs": {"err": "$x.error"}}
], "edges": []}`, tc.node, tc.onError, tc.extra)
			if tc.onError != "route" {
				doc = strings.Replace(doc, `"edges": []`, `"edges": [{"from": "after", "to": "handler"}]`, 1)
				doc = strings.Replace(doc, `"inputs": {"err": "$x.error"}`, `"inputs": {"err": "$after"}`, 1)
			}
			p := compileDoc(t, doc, opts)
			res, err := p.Run(context.Background(), Input{Trace: true})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if got := statuses(res); tc.onError != "route" && tc.name != "skip" && tc.name != "retry succeeds" {
				got = strings.Replace(got, "handler=canceled", "handler=skipped", 1)
				if got != tc.statuses {
					t.Fatalf("statuses = %s, want %s", got, tc.statuses)
				}
			} else if tc.onError == "route" && got != tc.statuses {
				t.Fatalf("statuses = %s, want %s", got, tc.statuses)
			}
			if tc.onError == "route" {
				if h := res.Nodes[len(res.Nodes)-1]; h.ID == "handler" && !strings.Contains(fmt.Sprint(h.Output), "boom") {
					t.Fatalf("handler output %v", h.Output)
				}
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := compileDoc(t, `{"nodes": [{"id": "s", "kind": "algorithm", "config": {"algorithm": "alg-slow"}}]}`, slowOptions(release))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := p.Run(ctx, Input{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
}

// A runaway script in one message must fail that message with a limit
// error naming node and limit, while other messages keep being served.
func TestRunawayScriptsIsolated(t *testing.T) {
	opts := testOptions()
	// The time limit leaves the string case (about 100 ms of fresh memory on a
	// quiet machine) room to reach its own limit first on a loaded one.
	opts.FunctionLimits = function.Limits{MaxSteps: 1 << 40, MaxDuration: 2 * time.Second, MaxMemoryBytes: 1 << 40}
	p := compileDoc(t, `{"nodes": [{"id": "fn", "kind": "function", "inputs": {"mode": "$input.mode", "v": "$input.v"}, "config": {"script": `+
		`"def main(input):\n    if input['mode'] == 'loop':\n        while True:\n            pass\n    if input['mode'] == 'string':\n        s = 'x'\n        for i in range(100):\n            s += s\n    if input['mode'] == 'recurse':\n        return main(input)\n    return input['v'] + 1"}}], "output": {"v": "$fn"}}`, opts)
	var wg sync.WaitGroup
	errs := make(map[string]error)
	var mu sync.Mutex
	for _, mode := range []string{"loop", "string", "recurse"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.Run(context.Background(), Input{Data: map[string]any{"mode": mode, "v": int64(0)}})
			mu.Lock()
			errs[mode] = err
			mu.Unlock()
		}()
	}
	served := 0
	for i := range 100 {
		res, err := p.Run(context.Background(), Input{Data: map[string]any{"mode": "ok", "v": int64(i)}})
		if err != nil || res.Output["v"] != int64(i+1) {
			t.Fatalf("message %d: %v %v", i, res.Output, err)
		}
		served++
	}
	wg.Wait()
	for mode, limit := range map[string]string{"loop": "time", "string": "value-size", "recurse": "recursion"} {
		var le *function.LimitError
		var ne *NodeError
		err := errs[mode]
		if !errors.As(err, &le) || le.Limit != limit || !errors.As(err, &ne) || ne.Node != "fn" {
			t.Errorf("%s: err = %v, want %s limit on node fn", mode, err, limit)
		}
		if !strings.Contains(fmt.Sprint(err), `node "fn"`) || !strings.Contains(fmt.Sprint(err), limit+" limit") {
			t.Errorf("%s: message %q should name node and limit", mode, err)
		}
	}
}

func TestConcurrentMessages(t *testing.T) {
	p := compileDoc(t, faceFlow, testOptions())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				img := strings.Repeat("x", (g+i)%6)
				res, err := p.Run(context.Background(), Input{Data: map[string]any{"image": img}, Sinks: &fakeSinks{}})
				if err != nil {
					t.Error(err)
					return
				}
				if n := len(res.Output["faces"].([]any)); n != len(img) {
					t.Errorf("%d faces for %q", n, img)
					return
				}
			}
		}()
	}
	wg.Wait()
}

type recTracer struct {
	mu    sync.Mutex
	spans []string
}

func (r *recTracer) StartNode(ctx context.Context, flow, node, kind string) (context.Context, func(error)) {
	return ctx, func(err error) {
		r.mu.Lock()
		r.spans = append(r.spans, flow+"/"+node+":"+kind+fmt.Sprint(err != nil))
		r.mu.Unlock()
	}
}

func TestMetricsAndTracer(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	tr := &recTracer{}
	opts := testOptions()
	opts.Metrics, opts.Tracer = m, tr
	p := compileDoc(t, `{"name": "m", "nodes": [{"id": "a", "kind": "noop", "next": ["b"]}, {"id": "b", "kind": "function", "config": {"script": "def main(input):\n    return 1 // input"}}]}`, opts)
	runMsg(t, p, Input{Data: int64(1)})
	if _, err := p.Run(context.Background(), Input{Data: int64(0)}); err == nil {
		t.Fatal("division by zero should fail")
	}
	mfs, _ := reg.Gather()
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.Metric {
			key := mf.GetName()
			for _, l := range mt.Label {
				key += "," + l.GetValue()
			}
			switch {
			case mt.Counter != nil:
				got[key] = mt.Counter.GetValue()
			case mt.Histogram != nil:
				got[key] = float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"tianshu_flow_node_executions_total,m,function,b": 2,
		"tianshu_flow_node_errors_total,m,function,b":     1,
		"tianshu_flow_node_duration_seconds,m,noop,a":     2,
		"tianshu_flow_messages_total,m,ok":                1,
		"tianshu_flow_messages_total,m,failed":            1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
	if len(tr.spans) != 4 || tr.spans[3] != "m/b:functiontrue" {
		t.Errorf("spans = %v", tr.spans)
	}
}

func TestStreamKinds(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	box := func(x float64, id ...int64) map[string]any {
		m := map[string]any{"box": []any{x, 0.0, 10.0, 10.0}, "score": x / 100, "label": "car"}
		if len(id) > 0 {
			m["trackId"] = id[0]
		}
		return m
	}
	type step struct {
		at   time.Duration
		data map[string]any
		key  string
		want string // fmt of the chosen output path, or "stopped" when successors were skipped
	}
	tests := []struct {
		name  string
		node  string
		out   string
		steps []step
	}{
		{"track keeps ids and ends tracks", `{"id": "n", "kind": "track", "inputs": {"objects": "$input.o"}, "config": {"maxAge": "1s"}}`, "$n",
			[]step{
				{0, map[string]any{"o": []any{box(0), box(50)}}, "", "[1 2] [] 2"},
				{100 * time.Millisecond, map[string]any{"o": []any{box(52), box(2)}}, "", "[2 1] [] 2"},
				{100 * time.Millisecond, map[string]any{"o": []any{box(0)}}, "other", "[3] [] 1"},
				{3 * time.Second, map[string]any{"o": []any{box(0)}}, "", "[4] [1 2] 1"},
			}},
		{"bestshot on end", `{"id": "n", "kind": "bestshot", "inputs": {"objects": "$input.o", "ended": "$input.ended"}}`, "$n.best",
			[]step{
				{0, map[string]any{"o": []any{box(10, 1)}}, "", "stopped"},
				{time.Millisecond, map[string]any{"o": []any{box(30, 1)}}, "", "stopped"},
				{2 * time.Millisecond, map[string]any{"o": []any{box(20, 1)}, "ended": []any{int64(1)}}, "", "[map[box:[30 0 10 10] label:car score:0.3 trackId:1]]"},
			}},
		{"bestshot emitAfter and maxAge", `{"id": "n", "kind": "bestshot", "inputs": {"objects": "$input.o"}, "config": {"emitAfter": "1s", "maxAge": "5s", "score": "-item['score']"}}`, "$n.best",
			[]step{
				{0, map[string]any{"o": []any{box(10, 1), box(40, 2)}}, "", "stopped"},
				{500 * time.Millisecond, map[string]any{"o": []any{box(5, 1)}}, "", "stopped"},
				{1500 * time.Millisecond, map[string]any{"o": []any{box(50, 1)}}, "", "[map[box:[5 0 10 10] label:car score:-0.05 trackId:1] map[box:[40 0 10 10] label:car score:-0.4 trackId:2]]"},
				{1600 * time.Millisecond, map[string]any{"o": []any{box(1, 1)}}, "", "stopped"},
			}},
		{"dedup", `{"id": "n", "kind": "dedup", "inputs": {"items": "$input.o"}, "config": {"key": "item['label']", "window": "1s"}}`, "len($n.items)",
			[]step{
				{0, map[string]any{"o": []any{box(1), box(2)}}, "", "1"},
				{500 * time.Millisecond, map[string]any{"o": []any{box(1)}}, "", "stopped"},
				{500 * time.Millisecond, map[string]any{"o": []any{box(1)}}, "dev-2", "1"},
				{1600 * time.Millisecond, map[string]any{"o": []any{box(1)}}, "", "1"},
			}},
		{"dedup across the task's devices", `{"id": "n", "kind": "dedup", "inputs": {"items": "$input.o"}, "config": {"key": "item['label']", "window": "1s", "scope": "task"}}`, "len($n.items)",
			[]step{
				{0, map[string]any{"o": []any{box(1)}}, "", "1"},
				{500 * time.Millisecond, map[string]any{"o": []any{box(1)}}, "dev-2", "stopped"},
				{1600 * time.Millisecond, map[string]any{"o": []any{box(1)}}, "dev-2", "1"},
			}},
		{"throttle messages", `{"id": "n", "kind": "throttle", "config": {"limit": 2, "interval": "1s"}}`, "$n.passed",
			[]step{
				{0, nil, "", "true"},
				{100 * time.Millisecond, nil, "", "true"},
				{200 * time.Millisecond, nil, "", "stopped"},
				{200 * time.Millisecond, nil, "b", "true"},
				{1100 * time.Millisecond, nil, "", "true"},
			}},
		{"throttle items by key", `{"id": "n", "kind": "throttle", "inputs": {"items": "$input.o"}, "config": {"limit": 1, "interval": "1s", "key": "item['score']"}}`, "len($n.items)",
			[]step{
				{0, map[string]any{"o": []any{box(1), box(1), box(2)}}, "", "2"},
				{10 * time.Millisecond, map[string]any{"o": []any{box(1)}}, "", "stopped"},
			}},
		{"window closes", `{"id": "n", "kind": "window", "inputs": {"items": "$input.o"}, "config": {"interval": "1m", "emit": "close"}}`, "$n.closed.total",
			[]step{
				{0, map[string]any{"o": []any{box(1), box(2)}}, "", "stopped"},
				{30 * time.Second, map[string]any{"o": []any{box(1)}}, "", "stopped"},
				{61 * time.Second, map[string]any{"o": []any{box(1)}}, "", "3"},
			}},
		{"zone inside", `{"id": "n", "kind": "zone", "inputs": {"objects": "$input.o"}, "config": {"polygon": [[0,0],[20,0],[20,20],[0,20]], "anchor": "center"}}`, "len($n.objects)",
			[]step{{0, map[string]any{"o": []any{box(1), box(5), box(30)}}, "", "2"}}},
		{"zone enter", `{"id": "n", "kind": "zone", "inputs": {"objects": "$input.o"}, "config": {"polygon": [[0,0],[20,0],[20,20],[0,20]], "mode": "enter", "anchor": "center"}}`, "$n.objects[0].zone",
			[]step{
				{0, map[string]any{"o": []any{box(40, 1)}}, "", "stopped"},
				{time.Second, map[string]any{"o": []any{box(5, 1)}}, "", "enter"},
				{2 * time.Second, map[string]any{"o": []any{box(6, 1)}}, "", "stopped"},
			}},
		{"zone line crossing", `{"id": "n", "kind": "zone", "inputs": {"objects": "$input.o"}, "config": {"line": [[50,-100],[50,100]], "anchor": "center"}}`, "$n.objects[0].direction",
			[]step{
				{0, map[string]any{"o": []any{box(10, 7)}}, "", "stopped"},
				{time.Second, map[string]any{"o": []any{box(70, 7)}}, "", "right"},
				{2 * time.Second, map[string]any{"o": []any{box(20, 7)}}, "", "left"},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probe := strings.TrimSuffix(strings.TrimPrefix(tc.out, "len("), ")")
			doc := fmt.Sprintf(`{"nodes": [%s, {"id": "probe", "kind": "passthrough", "inputs": {"v": %q}}], "edges": [{"from": "n", "to": "probe"}]}`, tc.node, probe)
			p := compileDoc(t, doc, testOptions())
			st := NewState(nil)
			for i, s := range tc.steps {
				key := s.key
				if key == "" {
					key = "dev-1"
				}
				res := runMsg(t, p, Input{Data: s.data, State: st, Time: t0.Add(s.at), Key: key, Trace: true})
				got := "stopped"
				if out, ok := res.Output["probe"]; ok {
					v := out.(map[string]any)["v"]
					if strings.HasPrefix(tc.out, "len(") {
						got = fmt.Sprint(len(v.([]any)))
					} else if tc.name == "track keeps ids and ends tracks" {
						m := v.(map[string]any)
						var ids []any
						for _, o := range m["objects"].([]any) {
							ids = append(ids, o.(map[string]any)["trackId"])
						}
						got = fmt.Sprint(ids, m["ended"], m["active"])
					} else {
						got = fmt.Sprint(v)
					}
				}
				if got != s.want {
					t.Fatalf("step %d: got %s, want %s", i, got, s.want)
				}
			}
		})
	}
}

// Stream state is bounded: the oldest keys are evicted past maxKeys.
func TestStreamStateBounded(t *testing.T) {
	p := compileDoc(t, `{"nodes": [{"id": "n", "kind": "throttle", "config": {"limit": 1, "interval": "1h", "maxKeys": 3}}]}`, testOptions())
	st := NewState(nil)
	t0 := time.Now()
	for i := range 10 {
		runMsg(t, p, Input{State: st, Key: fmt.Sprint("dev-", i), Time: t0})
	}
	ts := st.forNode(&p.nodes[0], nil).(*throttleState)
	if n := ts.keys.len(); n != 3 {
		t.Fatalf("%d keys kept, want 3", n)
	}
	// dev-0 was evicted, so it passes again; dev-9 is remembered.
	res := runMsg(t, p, Input{State: st, Key: "dev-0", Time: t0, Trace: true})
	res2 := runMsg(t, p, Input{State: st, Key: "dev-9", Time: t0, Trace: true})
	if res.Output["n"].(map[string]any)["passed"] != true || res2.Output["n"].(map[string]any)["passed"] != false {
		t.Fatalf("eviction: %v %v", res.Output, res2.Output)
	}
}

func TestYAMLMatchesJSON(t *testing.T) {
	y := `
name: y
nodes:
  - id: f
    kind: function
    inputs: {v: $input.v}
    config:
      script: |
        def main(input):
            return input["v"] * 2
output:
  r: $f
`
	spec, err := Parse([]byte(y), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(t.Context(), spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := runMsg(t, p, Input{Data: map[string]any{"v": int64(4)}})
	if res.Output["r"] != int64(8) {
		t.Fatalf("r = %#v", res.Output["r"])
	}
}

func TestDocumentLimits(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"nodes": [`)
	for i := range 10000 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"id": "n%d", "kind": "noop"}`, i)
	}
	sb.WriteString(`]}`)
	errs := validateDoc(t, sb.String(), Options{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "10000 nodes in all; the limit is 500") {
		t.Fatalf("10,000 nodes: %v", errs)
	}

	body := `{"nodes": [{"id": "leaf", "kind": "noop"}]}`
	for range 12 {
		body = `{"nodes": [{"id": "fe", "kind": "foreach", "inputs": {"items": "$input.l"}, "config": {"body": ` + body + `}}]}`
	}
	errs = validateDoc(t, body, Options{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "deeper than 8 levels") {
		t.Fatalf("deep nesting: %v", errs)
	}

	if _, err := Parse([]byte(`{"name": "`+strings.Repeat("x", 2<<20)+`"}`), Limits{}); err == nil || !strings.Contains(err.Error(), "limit is 1048576") {
		t.Fatalf("2 MiB document: %v", err)
	}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	if _, err := Parse([]byte(`{"output": {"x": `+deep+`}}`), Limits{}); err == nil {
		t.Fatal("20000-deep JSON should be refused")
	}
	script := "def main(input):\n    return 1\n" + strings.Repeat("#", 70<<10)
	errs = validateDoc(t, fmt.Sprintf(`{"nodes": [{"id": "f", "kind": "function", "config": {"script": %q}}]}`, script), Options{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "source-size limit") {
		t.Fatalf("70 KiB script: %v", errs)
	}
}

func TestCustomKind(t *testing.T) {
	reg := NewRegistry()
	reg.Register(&Kind{Name: "upper", Compile: func(b *Builder) Node {
		i := b.RequireArg("s")
		return NodeFunc(func(_ context.Context, c *Call) (any, error) { return strings.ToUpper(c.Arg(i).(string)), nil })
	}})
	p := compileDoc(t, `{"nodes": [{"id": "u", "kind": "upper", "inputs": {"s": "$input"}}], "output": {"u": "$u"}}`, Options{Registry: reg})
	if res := runMsg(t, p, Input{Data: "abc"}); res.Output["u"] != "ABC" {
		t.Fatalf("u = %v", res.Output["u"])
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate kind should panic")
		}
	}()
	reg.Register(&Kind{Name: "noop", Compile: kindNoop().Compile})
}

func TestDedupScopeChecked(t *testing.T) {
	errs := validateDoc(t, `{"nodes": [{"id": "n", "kind": "dedup", "inputs": {"items": "$input.o"}, "config": {"key": "item['label']", "window": "1s", "scope": "galaxy"}}]}`, testOptions())
	if !strings.Contains(fmt.Sprint(errs), "config.scope") {
		t.Errorf("scope galaxy: %v", errs)
	}
}

// An output that repeats one node's fields key for key is that node's map
// when the map has exactly those keys, and a map of its own otherwise.
func TestOutputProjectsOneNode(t *testing.T) {
	p := compileDoc(t, `{"nodes": [{"id": "fn", "kind": "function", "inputs": {"extra": "$input.extra"}, "config": {"script": `+
		`"def main(input):\n    if input['extra']:\n        return {'a': 1, 'b': 2, 'c': 3}\n    return {'a': 1, 'b': 2}"}}], "output": {"a": "$fn.a", "b": "$fn.b"}}`, testOptions())
	for _, extra := range []bool{false, true} {
		res, err := p.Run(context.Background(), Input{Data: map[string]any{"extra": extra}, Trace: true})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"a": int64(1), "b": int64(2)}
		if !reflect.DeepEqual(res.Output, want) {
			t.Fatalf("extra %v: output %v, want %v", extra, res.Output, want)
		}
		node := res.Nodes[len(res.Nodes)-1].Output.(map[string]any)
		shared := reflect.ValueOf(node).UnsafePointer() == reflect.ValueOf(res.Output).UnsafePointer()
		if shared == extra {
			t.Errorf("extra %v: output shared with the node's map: %v", extra, shared)
		}
	}
}
