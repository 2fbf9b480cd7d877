package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app"
)

// The InvokeFlow flows (internal/studio's BenchmarkInvokeFlow runs
// them too, and internal/app's TestNoErrorUnderLoad the first):
// faceRouteFile: a function keeps the adults of a list of faces, a switch
// routes on how many; faceSplitFile: a foreach runs a function per face
// (adult, box area) and its results are the joined list.
const (
	faceRouteFile = "../internal/flow/testdata/face-route.json"
	faceSplitFile = "../internal/flow/testdata/face-split.json"
)

// benchFace is one face of the 5-face payload.
type benchFace struct {
	Age int   `json:"age"`
	Box []int `json:"box"`
}

func benchFaces() []benchFace {
	faces := make([]benchFace, 5)
	for i := range faces {
		faces[i] = benchFace{Age: 10 + 5*i, Box: []int{i * 10, 20, 40, 40}}
	}
	return faces
}

// createFlow stores the flow document at file on p and returns the body of
// an InvokeFlow request for it on the 5-face payload.
func createFlow(b *testing.B, p *app.Platform, file string) []byte {
	doc, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	f, err := p.Studio.Create(context.Background(), "", "", "", doc, "user:bench")
	if err != nil {
		b.Fatal(err)
	}
	return facesBody(f.ID, benchFaces())
}

// facesBody is the InvokeFlow request of flow id on faces.
func facesBody(id string, faces []benchFace) []byte {
	body, _ := json.Marshal(map[string]any{"FlowId": id, "Input": map[string]any{"faces": faces}})
	return body
}

// writeJSON answers v as a hand-written Go service does.
func writeJSON(w http.ResponseWriter, v any) {
	out, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// facesRequest is the request a hand-written Go service decodes.
type facesRequest struct {
	FlowId string
	Input  struct {
		Faces []benchFace `json:"faces"`
	}
}

// BenchmarkInvokeFlowGateway measures InvokeFlow of the face-route flow on
// a 5-face payload through the signed gateway against the same logic as a
// hand-written Go JSON handler (decode, filter, route, encode), with the
// load of BenchmarkGateway.
func BenchmarkInvokeFlowGateway(b *testing.B) {
	p := startPlatform(b)
	body := createFlow(b, p, faceRouteFile)
	compareWithBare(b, p, "InvokeFlow", body, routeHandler(), "InvokeFlow function → switch, 5 faces", "the same logic as a Go handler")
}

// BenchmarkInvokeFlowSplit measures InvokeFlow of the face-split flow
// (split → function → join: a foreach with a function body) on the 5-face
// payload through the signed gateway against the same logic as a Go
// handler (decode, per face: adult and box area, encode the list).
func BenchmarkInvokeFlowSplit(b *testing.B) {
	p := startPlatform(b)
	body := createFlow(b, p, faceSplitFile)
	compareWithBare(b, p, "InvokeFlow", body, splitHandler(), "InvokeFlow split → function → join (foreach), 5 faces", "the same logic as a Go handler")
}

// routeHandler is the face-route flow written as a Go handler: decode,
// keep the adults, route on how many, encode.
func routeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req facesRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		adults := []benchFace{}
		for _, f := range req.Input.Faces {
			if f.Age >= 18 {
				adults = append(adults, f)
			}
		}
		route := "few"
		if len(adults) > 2 {
			route = "many"
		}
		writeJSON(w, map[string]any{"FlowId": req.FlowId, "Output": map[string]any{"adults": adults}, "Route": route})
	})
}

// splitHandler is the face-split flow written as a Go handler: decode,
// per face its adult flag and box area, encode the list.
func splitHandler() http.Handler {
	type scored struct {
		Adult bool `json:"adult"`
		Area  int  `json:"area"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req facesRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out := make([]scored, 0, len(req.Input.Faces))
		for _, f := range req.Input.Faces {
			if len(f.Box) != 4 {
				http.Error(w, "box: want 4 numbers", http.StatusBadRequest)
				return
			}
			out = append(out, scored{Adult: f.Age >= 18, Area: f.Box[2] * f.Box[3]})
		}
		writeJSON(w, map[string]any{"FlowId": req.FlowId, "Output": map[string]any{"faces": out}})
	})
}
