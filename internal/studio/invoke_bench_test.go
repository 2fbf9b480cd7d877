package studio_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// faceRoute is the flow of the InvokeFlow row (and of
// internal/app's TestNoErrorUnderLoad): a function keeps the adults of a
// list of faces, a switch routes on how many.
const faceRoute = `{
  "name": "face-route",
  "inputs": {"faces": {"type": "list", "required": true}},
  "nodes": [
    {"id": "shape", "kind": "function", "inputs": {"faces": "$input.faces"},
     "config": {"script": "def main(input, params):\n    return {\"adults\": [f for f in input[\"faces\"] if f[\"age\"] >= 18]}"}},
    {"id": "route", "kind": "switch", "inputs": {"n": "$shape.adults"},
     "config": {"cases": [{"when": "len(n) > 2", "next": "many"}], "default": "few"}},
    {"id": "many", "kind": "noop"},
    {"id": "few", "kind": "noop"}
  ],
  "edges": [{"from": "shape", "to": "route"}],
  "output": {"adults": "$shape.adults"}
}`

// BenchmarkInvokeFlow measures the InvokeFlow action on a 5-face payload as
// the gateway calls it once a request is authorized (decoding, the flow's
// lookup, the run, the answer's encoding), without HTTP or signatures.
func BenchmarkInvokeFlow(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	f, err := e.s.Create(ctx, "", "", "", []byte(faceRoute), "user:bench")
	if err != nil {
		b.Fatal(err)
	}
	faces := make([]map[string]any, 5)
	for i := range faces {
		faces[i] = map[string]any{"age": 10 + 5*i, "box": []int{i * 10, 20, 40, 40}}
	}
	body, _ := json.Marshal(map[string]any{"FlowId": f.ID, "Input": map[string]any{"faces": faces, "seq": "1"}})
	a, ok := e.reg.Lookup("InvokeFlow")
	if !ok {
		b.Fatal("no InvokeFlow")
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := a.Call(ctx, &api.Caller{}, body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(resp); err != nil {
			b.Fatal(err)
		}
	}
}
