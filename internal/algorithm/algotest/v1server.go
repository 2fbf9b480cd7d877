// Package algotest holds test helpers for the algorithm center: a
// tianshu-v1 server handler that tests, benchmarks and the packaged test
// program in testdata/v1server share.
package algotest

import (
	"bytes"
	"encoding/json"
	"image"
	_ "image/jpeg" // decoders for DecodeConfig
	_ "image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// V1Server is a tianshu-v1 algorithm for tests: it reports the image's
// size and a fake box covering it, its pid, and echoes its parameters.
// It counts single and batched calls.
type V1Server struct {
	// Name and Version are reported by /v1/metadata.
	Name, Version string
	// Fixed and PerItem are the simulated cost of a call: Fixed once per
	// request, PerItem per image in it.
	Fixed, PerItem time.Duration
	// Serial runs one request at a time, like a model on one GPU, so that
	// batching pays off the way it does there.
	Serial bool
	// Unhealthy makes /v1/health answer 503.
	Unhealthy atomic.Bool

	// Calls counts /v1/infer requests, Batches /v1/infer/batch requests,
	// Items the items in them.
	Calls, Batches, Items atomic.Int64

	busy sync.Mutex
}

// Handler returns the HTTP handler serving the protocol.
func (s *V1Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		if s.Unhealthy.Load() {
			writeError(w, http.StatusServiceUnavailable, "not ready")
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /v1/metadata", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"name": s.Name, "version": s.Version,
			"contract": map[string]any{
				"inputs":  []any{map[string]any{"name": "image", "type": "image", "required": true}},
				"outputs": []any{map[string]any{"name": "objects", "type": "objects"}},
				"batch":   true, "maxBatch": 64,
			},
		})
	})
	mux.HandleFunc("POST /v1/infer", func(w http.ResponseWriter, r *http.Request) {
		s.Calls.Add(1)
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		var params map[string]any
		if h := r.Header.Get("X-Tianshu-Params"); h != "" {
			if err := json.Unmarshal([]byte(h), &params); err != nil {
				writeError(w, http.StatusBadRequest, "X-Tianshu-Params: "+err.Error())
				return
			}
		}
		s.sleep(1)
		out, status, msg := s.infer(r.Header.Get("Content-Type"), body, params)
		if status != 0 {
			writeError(w, status, msg)
			return
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("POST /v1/infer/batch", func(w http.ResponseWriter, r *http.Request) {
		s.Batches.Add(1)
		_, mp, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "Content-Type: "+err.Error())
			return
		}
		mr := multipart.NewReader(r.Body, mp["boundary"])
		type item struct {
			ct   string
			body []byte
		}
		var items []item
		var params []map[string]any
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			b, _ := io.ReadAll(io.LimitReader(p, 64<<20))
			switch p.FormName() {
			case "item":
				items = append(items, item{p.Header.Get("Content-Type"), b})
			case "params":
				if err := json.Unmarshal(b, &params); err != nil {
					writeError(w, http.StatusBadRequest, "params: "+err.Error())
					return
				}
			}
		}
		s.Items.Add(int64(len(items)))
		s.sleep(len(items))
		results := make([]any, len(items))
		for i, it := range items {
			var p map[string]any
			if i < len(params) {
				p = params[i]
			}
			out, status, msg := s.infer(it.ct, it.body, p)
			if status != 0 {
				results[i] = map[string]any{"error": msg}
				continue
			}
			out["batched"] = len(items)
			results[i] = out
		}
		writeJSON(w, map[string]any{"results": results})
	})
	return mux
}

func (s *V1Server) sleep(items int) {
	if d := s.Fixed + time.Duration(items)*s.PerItem; d > 0 {
		if s.Serial {
			s.busy.Lock()
			defer s.busy.Unlock()
		}
		time.Sleep(d)
	}
}

// infer answers one item: status 0 on success.
func (s *V1Server) infer(ct string, body []byte, params map[string]any) (map[string]any, int, string) {
	out := map[string]any{"bytes": len(body), "pid": os.Getpid()}
	if params != nil {
		out["params"] = params
	}
	if v, ok := os.LookupEnv("CUDA_VISIBLE_DEVICES"); ok {
		out["cuda"] = v
	}
	if strings.HasPrefix(ct, "application/json") {
		var in any
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, http.StatusBadRequest, "invalid JSON: " + err.Error()
		}
		out["json"] = in
		return out, 0, ""
	}
	if params != nil && params["fail"] == true {
		return nil, http.StatusUnprocessableEntity, "asked to fail"
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(body))
	if err != nil {
		return nil, http.StatusUnsupportedMediaType, "not an image: " + err.Error()
	}
	out["width"], out["height"], out["format"] = cfg.Width, cfg.Height, format
	out["objects"] = []any{map[string]any{
		"box": []int{0, 0, cfg.Width, cfg.Height}, "label": "thing", "score": 0.9,
		"attributes": map[string]any{"format": format},
	}}
	return out, 0, ""
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
