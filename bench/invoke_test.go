package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
)

// faceRouteFlow is the InvokeFlow flow: a function keeps the adults
// of a list of faces, a switch routes on how many (internal/app's
// TestNoErrorUnderLoad runs the same).
const faceRouteFlow = `{
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

// BenchmarkInvokeFlowGateway measures InvokeFlow of faceRouteFlow on a
// 5-face payload through the signed gateway against the same logic as a
// hand-written Go JSON handler (decode, filter, route, encode), with the
// load of BenchmarkGateway.
func BenchmarkInvokeFlowGateway(b *testing.B) {
	p := startPlatform(b)
	f, err := p.Studio.Create(context.Background(), "", "", "", []byte(faceRouteFlow), "user:bench")
	if err != nil {
		b.Fatal(err)
	}
	type face struct {
		Age int   `json:"age"`
		Box []int `json:"box"`
	}
	faces := make([]face, 5)
	for i := range faces {
		faces[i] = face{Age: 10 + 5*i, Box: []int{i * 10, 20, 40, 40}}
	}
	body, _ := json.Marshal(map[string]any{"FlowId": f.ID, "Input": map[string]any{"faces": faces}})
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			FlowId string
			Input  struct {
				Faces []face `json:"faces"`
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		adults := []face{}
		for _, f := range req.Input.Faces {
			if f.Age >= 18 {
				adults = append(adults, f)
			}
		}
		route := "few"
		if len(adults) > 2 {
			route = "many"
		}
		out, _ := json.Marshal(map[string]any{"FlowId": req.FlowId, "Output": map[string]any{"adults": adults}, "Route": route})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	compareWithBare(b, p, "InvokeFlow", body, bare, "InvokeFlow function → switch, 5 faces", "the same logic as a Go handler")
}
