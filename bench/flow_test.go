// Package bench holds benchmarks that compare Tianshu's engines with the
// same work written directly in Go, measured in the same run.
package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/function"
)

//go:noinline
func noop(_ context.Context, in any) (any, error) { return nil, nil }

func compile(b *testing.B, doc string, reg *flow.Registry) *flow.Plan {
	b.Helper()
	spec, err := flow.Parse([]byte(doc), flow.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := flow.Compile(context.Background(), spec, flow.Options{Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// report runs the plan and the direct Go version in sub-benchmarks of one
// run, reports the executor's overhead per node and the ratio, and returns
// the ns/op of each (0 for one the -bench pattern left out).
func report(b *testing.B, nodes int, plan func(), direct func()) (flowNs, directNs float64) {
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			direct()
		}
		directNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("flow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			plan()
		}
		flowNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if directNs > 0 {
			b.ReportMetric((flowNs-directNs)/float64(nodes), "overhead-ns/node")
			b.ReportMetric(flowNs/directNs, "x-direct")
		}
		b.ReportMetric(float64(nodes)*1e9/flowNs, "node-execs/s")
	})
	return flowNs, directNs
}

// recordPerNode adds the time per node through the executor beside the
// same work in Go to the benchmark table. The target is on the difference.
func recordPerNode(b *testing.B, nodes int, flowNs, directNs float64) {
	if flowNs == 0 || directNs == 0 {
		return
	}
	benchtable.Record(b, benchtable.Row{
		Metric: "flow " + strings.TrimPrefix(b.Name(), "Benchmark") + " per node", Unit: "ns/node",
		Target: "overhead ≤ 2 µs/node", Tianshu: flowNs / float64(nodes), Baseline: directNs / float64(nodes),
	})
}

func linearDoc(n int) string {
	var nodes []string
	for i := range n {
		next := ""
		if i < n-1 {
			next = fmt.Sprintf(`, "next": ["n%d"]`, i+1)
		}
		nodes = append(nodes, fmt.Sprintf(`{"id": "n%d", "kind": "noop"%s}`, i, next))
	}
	return `{"name": "linear", "nodes": [` + strings.Join(nodes, ",") + `]}`
}

// (a) a 10-node linear flow of no-op nodes.
func BenchmarkLinear10(b *testing.B) {
	p := compile(b, linearDoc(10), nil)
	ctx := context.Background()
	in := flow.Input{Data: map[string]any{"x": 1}}
	f, d := report(b, 10, func() {
		if _, err := p.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
	}, func() {
		var v any = in.Data
		for range 10 {
			v, _ = noop(ctx, v)
		}
		_ = v
	})
	recordPerNode(b, 10, f, d)
}

func fanDoc(kind string) string {
	var nodes []string
	var next []string
	for i := range 8 {
		nodes = append(nodes, fmt.Sprintf(`{"id": "b%d", "kind": %q, "next": ["j"]}`, i, kind))
		next = append(next, fmt.Sprintf("%q", fmt.Sprint("b", i)))
	}
	return `{"name": "fan", "nodes": [{"id": "src", "kind": "noop", "next": [` + strings.Join(next, ",") + `]},` +
		strings.Join(nodes, ",") + `, {"id": "j", "kind": "join"}], "output": {"j": "$j"}}`
}

// (b) fan-out to 8 + join. With cheap branches the executor runs them
// inline; with "blocking" branches (kinds that wait on I/O, like
// algorithms) each gets a goroutine, compared with the same goroutines
// written by hand.
func BenchmarkFanOut8Join(b *testing.B) {
	ctx := context.Background()
	merge := func(outs []any) map[string]any {
		m := make(map[string]any, len(outs))
		for i, o := range outs {
			m[fmt.Sprint("b", i)] = o
		}
		return m
	}
	names := []string{"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"}
	b.Run("inline", func(b *testing.B) {
		p := compile(b, fanDoc("noop"), nil)
		f, d := report(b, 10, func() {
			if _, err := p.Run(ctx, flow.Input{}); err != nil {
				b.Fatal(err)
			}
		}, func() {
			noop(ctx, nil)
			m := make(map[string]any, 8)
			for _, n := range names {
				m[n], _ = noop(ctx, nil)
			}
			m2 := make(map[string]any, 1)
			m2["j"] = m
		})
		recordPerNode(b, 10, f, d)
		_ = merge
	})
	b.Run("goroutines", func(b *testing.B) {
		reg := flow.NewRegistry()
		reg.Register(&flow.Kind{Name: "io", Blocking: true, Compile: func(*flow.Builder) flow.Node {
			return flow.NodeFunc(func(ctx context.Context, _ *flow.Call) (any, error) { return noop(ctx, nil) })
		}})
		p := compile(b, fanDoc("io"), reg)
		f, d := report(b, 10, func() {
			if _, err := p.Run(ctx, flow.Input{}); err != nil {
				b.Fatal(err)
			}
		}, func() {
			noop(ctx, nil)
			var wg sync.WaitGroup
			var mu sync.Mutex
			m := make(map[string]any, 8)
			for _, n := range names {
				wg.Add(1)
				go func() {
					defer wg.Done()
					v, _ := noop(ctx, nil)
					mu.Lock()
					m[n] = v
					mu.Unlock()
				}()
			}
			wg.Wait()
			m2 := make(map[string]any, 1)
			m2["j"] = m
		})
		recordPerNode(b, 10, f, d)
	})
}

// (c) foreach over 16 items, a one-node body per item.
func BenchmarkForeach16(b *testing.B) {
	doc := `{"name": "fe", "nodes": [{"id": "fe", "kind": "foreach", "inputs": {"items": "$input.items"},
	  "config": {"body": {"nodes": [{"id": "n", "kind": "noop"}], "output": {"v": "$item"}}}}], "output": {"r": "$fe.results"}}`
	p := compile(b, doc, nil)
	items := make([]any, 16)
	for i := range items {
		items[i] = map[string]any{"i": i}
	}
	ctx := context.Background()
	in := flow.Input{Data: map[string]any{"items": items}}
	f, d := report(b, 17, func() {
		if _, err := p.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
	}, func() {
		results := make([]any, len(items))
		for i, it := range items {
			noop(ctx, it)
			results[i] = map[string]any{"v": it}
		}
		_ = map[string]any{"r": results}
	})
	recordPerNode(b, 17, f, d)
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

func mappingInput() map[string]any {
	return map[string]any{"id": "f-1", "camera": "cam-1", "ts": int64(1700000000), "score": 0.93, "label": "face", "box": []any{10.0, 20.0, 30.0, 40.0}}
}

//go:noinline
func mapGo(in map[string]any) map[string]any {
	box := in["box"].([]any)
	return map[string]any{
		"id": in["id"], "camera": in["camera"], "ts": in["ts"], "score": in["score"],
		"label": strings.ToUpper(in["label"].(string)),
		"x":     box[0], "y": box[1], "w": box[2], "h": box[3],
		"ok": in["score"].(float64) > 0.5,
	}
}

// (d) a function node doing a 10-field dict mapping, beside the same
// mapping in Go; "call" is the sandbox alone, "flow" the whole node.
func BenchmarkFunction10Fields(b *testing.B) {
	ctx := context.Background()
	in := mappingInput()
	prog, err := function.Compile("map10", mapping10, function.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("call", func(b *testing.B) {
		f, d := report(b, 1, func() {
			if _, err := prog.Call(ctx, in, nil); err != nil {
				b.Fatal(err)
			}
		}, func() { mapGo(in) })
		if f > 0 && d > 0 {
			benchtable.Record(b, benchtable.Row{Metric: "function call, 10-field mapping", Unit: "ns",
				Target: "≤ 10 µs", Tianshu: f, Baseline: d})
		}
	})
	doc := fmt.Sprintf(`{"name": "fn", "nodes": [{"id": "f", "kind": "function", "config": {"script": %q}}], "output": {"r": "$f"}}`, mapping10)
	p := compile(b, doc, nil)
	b.Run("flow", func(b *testing.B) {
		f, d := report(b, 1, func() {
			if _, err := p.Run(ctx, flow.Input{Data: in}); err != nil {
				b.Fatal(err)
			}
		}, func() { _ = map[string]any{"r": mapGo(in)} })
		if f > 0 && d > 0 {
			benchtable.Record(b, benchtable.Row{Metric: "flow with one function node, 10-field mapping", Unit: "ns",
				Tianshu: f, Baseline: d})
		}
	})
}

// A single-node test run (Plan.RunNode, the editor's "run this node on
// pinned inputs") beside the whole traced run of the same 10-node flow
// (the baseline), measured in the same run: what rerunning one node saves
// when its upstream outputs are pinned.
func BenchmarkTestRunSingleNode(b *testing.B) {
	var nodes []string
	for i := range 10 {
		next := ""
		if i < 9 {
			next = fmt.Sprintf(`, "next": ["n%d"]`, i+1)
		}
		nodes = append(nodes, fmt.Sprintf(`{"id": "n%d", "kind": "passthrough", "inputs": {"v": "$input.v"}%s}`, i, next))
	}
	p := compile(b, `{"name": "chain", "nodes": [`+strings.Join(nodes, ",")+`]}`, nil)
	ctx := context.Background()
	in := flow.Input{Data: map[string]any{"v": 1}, Trace: true}
	pinned := map[string]any{"n8": map[string]any{"v": 1}}
	var wholeNs, oneNs float64
	b.Run("whole", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Run(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
		wholeNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("single", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.RunNode(ctx, in, "n9", pinned); err != nil {
				b.Fatal(err)
			}
		}
		oneNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if wholeNs > 0 {
			b.ReportMetric(oneNs/wholeNs, "x-whole")
		}
	})
	if wholeNs > 0 && oneNs > 0 {
		benchtable.Record(b, benchtable.Row{Metric: "flow single-node test run of a 10-node flow (baseline: the whole traced run)", Unit: "ns",
			Tianshu: oneNs, Baseline: wholeNs})
	}
}
