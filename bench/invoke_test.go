package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
)

// faceRouteFile is the InvokeFlow flow: a function keeps the adults
// of a list of faces, a switch routes on how many (internal/studio's
// BenchmarkInvokeFlow and internal/app's TestNoErrorUnderLoad run it too).
const faceRouteFile = "../internal/flow/testdata/face-route.json"

// BenchmarkInvokeFlowGateway measures InvokeFlow of that flow on a
// 5-face payload through the signed gateway against the same logic as a
// hand-written Go JSON handler (decode, filter, route, encode), with the
// load of BenchmarkGateway.
func BenchmarkInvokeFlowGateway(b *testing.B) {
	p := startPlatform(b)
	doc, err := os.ReadFile(faceRouteFile)
	if err != nil {
		b.Fatal(err)
	}
	f, err := p.Studio.Create(context.Background(), "", "", "", doc, "user:bench")
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
