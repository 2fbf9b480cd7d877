package algorithm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func endpointVersion(id string, urls ...string) Version {
	return Version{AlgorithmID: id, Version: "1", Contract: imageContract(), Runtime: RuntimeEndpoint, Endpoints: urls}
}

func applyReady(t *testing.T, m *Manager, v Version) {
	t.Helper()
	if err := m.Apply(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, v.AlgorithmID+" ready", allReady(t, m, ref(v.AlgorithmID, v.Version)))
}

func TestBuiltin(t *testing.T) {
	m := newManager(t, Options{})
	err := m.RegisterBuiltin("double", Builtin{Func: func(ctx context.Context, in map[string]any) (map[string]any, error) {
		x, _ := in["x"].(float64)
		if x < 0 {
			return nil, errors.New("negative")
		}
		return map[string]any{"y": 2 * x}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterBuiltin("double", Builtin{Func: func(context.Context, map[string]any) (map[string]any, error) { return nil, nil }}); err == nil {
		t.Fatal("duplicate builtin accepted")
	}
	v := Version{AlgorithmID: "double", Version: "1", Runtime: RuntimeBuiltin,
		Contract: Contract{Inputs: []Field{{Name: "x", Type: TypeNumber, Required: true}}, Outputs: []Field{{Name: "y", Type: TypeNumber}}}}
	if err := m.Apply(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	out, err := m.Invoke(context.Background(), ref("double", ""), map[string]any{"x": 21.0})
	if err != nil || out["y"] != 42.0 {
		t.Fatalf("invoke: %v %v", out, err)
	}
	_, err = m.Invoke(context.Background(), ref("double", "1"), map[string]any{"x": -1.0})
	var ie *InvokeError
	if !errors.As(err, &ie) || ie.Reason != ReasonAlgorithm {
		t.Fatalf("builtin error: %v", err)
	}
	c, err := m.Contract(ref("double", ""))
	if err != nil || c.Inputs[0].Type != "number" {
		t.Fatalf("contract: %+v %v", c, err)
	}
	c.Inputs[0].Type = TypeText
	if c, _ := m.Contract(ref("double", "")); c.Inputs[0].Type != "number" {
		t.Fatalf("a caller changed the running version's contract: %+v", c)
	}
	if _, err := m.Contract(ref("nope", "")); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Fatalf("unknown: %v", err)
	}
	v2 := v
	v2.Package = "missing"
	v2.Version = "2"
	var fe *FieldError
	if err := m.Apply(context.Background(), v2); !errors.As(err, &fe) || fe.Field != "package" {
		t.Fatalf("missing builtin: %v", err)
	}
	if err := m.Apply(context.Background(), Version{AlgorithmID: "c", Version: "1", Runtime: RuntimeContainer, Image: "reg/x:1", Contract: v.Contract}); !errors.Is(err, ErrContainerRuntime) {
		t.Fatalf("container: %v", err)
	}
	if err := m.Stop(context.Background(), ref("double", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Invoke(context.Background(), ref("double", "1"), nil); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Fatalf("after stop: %v", err)
	}
}

func TestTianshuV1EndpointAndParams(t *testing.T) {
	s := &algotest.V1Server{Name: "det", Version: "1"}
	srv := v1Endpoint(t, s)
	m := newManager(t, Options{})
	applyReady(t, m, endpointVersion("det", srv.URL))
	out, err := m.Invoke(context.Background(), ref("det", ""), map[string]any{"image": pngImage(t, 64, 48), "threshold": 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if out["width"] != 64.0 || out["height"] != 48.0 {
		t.Fatalf("out %v", out)
	}
	objs := out["objects"].([]any)
	box := objs[0].(map[string]any)["box"].([]any)
	if box[2] != 64.0 || out["params"].(map[string]any)["threshold"] != 0.5 {
		t.Fatalf("out %v", out)
	}
	// Raw []byte images are sniffed; JSON-only inputs travel as JSON.
	if out, err = m.Invoke(context.Background(), ref("det", ""), map[string]any{"image": pngImage(t, 8, 8).Bytes}); err != nil || out["format"] != "png" {
		t.Fatalf("bytes: %v %v", out, err)
	}
	if out, err = m.Invoke(context.Background(), ref("det", ""), map[string]any{"text": "hi"}); err != nil || out["json"].(map[string]any)["text"] != "hi" {
		t.Fatalf("json: %v %v", out, err)
	}
	// A 4xx is the caller's problem: not retried, instance stays healthy.
	_, err = m.Invoke(context.Background(), ref("det", ""), map[string]any{"image": media.Image{Bytes: []byte("nope"), ContentType: "image/jpeg"}})
	var re *RemoteError
	if !errors.As(err, &re) || re.Status != http.StatusUnsupportedMediaType || re.Retryable() {
		t.Fatalf("415: %v", err)
	}
	if st := statuses(t, m, ref("det", "1")); st[0].Breaker != BreakerClosed {
		t.Fatalf("breaker %s after a 4xx", st[0].Breaker)
	}
	md, err := FetchMetadata(context.Background(), nil, srv.URL)
	if err != nil || md.Name != "det" || md.Contract.Inputs[0].Type != TypeImage {
		t.Fatalf("metadata %+v %v", md, err)
	}
}

func TestOversizedImageIsRefusedBeforeSending(t *testing.T) {
	s := &algotest.V1Server{}
	srv := v1Endpoint(t, s)
	m := newManager(t, Options{MaxImageBytes: 1000})
	applyReady(t, m, endpointVersion("det", srv.URL))
	_, err := m.Invoke(context.Background(), ref("det", ""), map[string]any{"image": media.Image{Bytes: make([]byte, 2000)}})
	var ie *InvokeError
	if !errors.Is(err, ErrInputTooLarge) || !errors.As(err, &ie) || ie.Reason != ReasonBadInput {
		t.Fatalf("got %v", err)
	}
	if s.Calls.Load() != 0 {
		t.Fatal("oversized image was sent")
	}
	_, err = m.Invoke(context.Background(), ref("det", ""), map[string]any{"a": pngImage(t, 2, 2), "b": pngImage(t, 2, 2)})
	if !errors.Is(err, ErrBadInput) {
		t.Fatalf("two images: %v", err)
	}
}

func TestGarbageAndHangingEndpointsDoNotStallOthers(t *testing.T) {
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>certainly not JSON")
	}))
	defer garbage.Close()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == TianshuHealthPath {
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	good := v1Endpoint(t, &algotest.V1Server{})

	m := newManager(t, Options{})
	applyReady(t, m, endpointVersion("garbage", garbage.URL))
	hv := endpointVersion("hang", hang.URL)
	hv.Timeout = Duration(300 * time.Millisecond)
	applyReady(t, m, hv)
	applyReady(t, m, endpointVersion("good", good.URL))

	img := pngImage(t, 4, 4)
	_, err := m.Invoke(context.Background(), ref("garbage", ""), map[string]any{"image": img})
	var ie *InvokeError
	if !errors.Is(err, ErrBadResponse) || !errors.As(err, &ie) || ie.Reason != ReasonBadResponse {
		t.Fatalf("garbage: %v", err)
	}
	var wg sync.WaitGroup
	hangErrs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := m.Invoke(context.Background(), ref("hang", ""), map[string]any{"image": img})
			if time.Since(start) > 20*time.Second {
				err = fmt.Errorf("hang took %v", time.Since(start))
			}
			hangErrs <- err
		}()
	}
	// While the hanging calls wait, another algorithm answers.
	for range 10 {
		if _, err := m.Invoke(context.Background(), ref("good", ""), map[string]any{"image": img}); err != nil {
			t.Fatalf("good algorithm stalled: %v", err)
		}
	}
	wg.Wait()
	close(hangErrs)
	for err := range hangErrs {
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ie) || ie.Reason != ReasonTimeout {
			t.Fatalf("hang: %v", err)
		}
	}
}

func TestRetriesOnlyWhenSafe(t *testing.T) {
	var calls atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == TianshuHealthPath {
			return
		}
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"warming up"}`)
		case 2:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			io.WriteString(w, `{"ok":true}`)
		}
	}))
	defer flaky.Close()
	m := newManager(t, Options{})
	applyReady(t, m, endpointVersion("flaky", flaky.URL))
	in := map[string]any{"image": pngImage(t, 2, 2)}
	// 503 is retried; the 500 that follows may have been processed: not.
	_, err := m.Invoke(context.Background(), ref("flaky", ""), in)
	var re *RemoteError
	if !errors.As(err, &re) || re.Status != 500 || calls.Load() != 2 {
		t.Fatalf("got %v after %d calls", err, calls.Load())
	}
	if out, err := m.Invoke(context.Background(), ref("flaky", ""), in); err != nil || out["ok"] != true {
		t.Fatalf("third: %v %v", out, err)
	}

	// A refused connection is retried on another instance: nothing was sent.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	good := v1Endpoint(t, &algotest.V1Server{})
	v := endpointVersion("two", dead, good.URL)
	if err := m.Apply(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "good endpoint ready", func() bool {
		for _, s := range statuses(t, m, ref("two", "1")) {
			if s.ID == good.URL && s.Status == StatusReady {
				return true
			}
		}
		return false
	})
	// Mark the dead one ready by hand, as if it had just died.
	d, _ := m.lookup(ref("two", "1"))
	for _, in := range d.insts {
		if in.id == dead {
			in.setStatus(StatusReady, "")
		}
	}
	for range 20 {
		if _, err := m.Invoke(context.Background(), ref("two", ""), in); err != nil {
			t.Fatalf("refused connection not retried elsewhere: %v", err)
		}
	}
}

func TestBreakerOpensAndProbes(t *testing.T) {
	var bad atomic.Bool
	bad.Store(true)
	var badCalls atomic.Int64
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == TianshuHealthPath {
			return // healthy by its own account
		}
		badCalls.Add(1)
		if bad.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer failing.Close()
	good := v1Endpoint(t, &algotest.V1Server{})
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := newManager(t, Options{Now: clock, BreakerFailures: 3, BreakerCooldown: time.Minute})
	applyReady(t, m, endpointVersion("br", failing.URL, good.URL))
	in := map[string]any{"image": pngImage(t, 2, 2)}
	testenv.Eventually(t, 30*time.Second, "breaker open", func() bool {
		_, _ = m.Invoke(context.Background(), ref("br", ""), in)
		for _, s := range statuses(t, m, ref("br", "1")) {
			if s.ID == failing.URL {
				return s.Breaker == BreakerOpen
			}
		}
		return false
	})
	before := badCalls.Load()
	for range 20 {
		if _, err := m.Invoke(context.Background(), ref("br", ""), in); err != nil {
			t.Fatalf("call with open breaker: %v", err)
		}
	}
	if badCalls.Load() != before {
		t.Fatal("calls reached an instance whose breaker is open")
	}
	// After the cool-down one probe goes through; its success closes it.
	bad.Store(false)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	testenv.Eventually(t, 30*time.Second, "breaker closed", func() bool {
		_, _ = m.Invoke(context.Background(), ref("br", ""), in)
		for _, s := range statuses(t, m, ref("br", "1")) {
			if s.ID == failing.URL {
				return s.Breaker == BreakerClosed
			}
		}
		return false
	})
}

func TestStickyRouting(t *testing.T) {
	servers := make([]*algotest.V1Server, 3)
	urls := make([]string, 3)
	for i := range servers {
		servers[i] = &algotest.V1Server{}
		urls[i] = v1Endpoint(t, servers[i]).URL
	}
	m := newManager(t, Options{})
	v := endpointVersion("sticky", urls...)
	v.Sticky = "meta.camera"
	applyReady(t, m, v)
	img := pngImage(t, 2, 2)
	counts := func() []int64 {
		c := make([]int64, 3)
		for i, s := range servers {
			c[i] = s.Calls.Load()
		}
		return c
	}
	used := map[int]bool{}
	for cam := range 12 {
		before := counts()
		for range 5 {
			if _, err := m.Invoke(context.Background(), ref("sticky", ""), map[string]any{"image": img, "meta": map[string]any{"camera": fmt.Sprintf("cam-%d", cam)}}); err != nil {
				t.Fatal(err)
			}
		}
		after := counts()
		hit := -1
		for i := range after {
			switch after[i] - before[i] {
			case 0:
			case 5:
				hit = i
			default:
				t.Fatalf("camera %d spread over instances: %v -> %v", cam, before, after)
			}
		}
		used[hit] = true
	}
	if len(used) < 2 {
		t.Fatalf("12 keys all went to one instance: %v", used)
	}
}

func TestMicroBatchingMergesConcurrentCalls(t *testing.T) {
	s := &algotest.V1Server{Fixed: 20 * time.Millisecond}
	srv := v1Endpoint(t, s)
	m := newManager(t, Options{})
	v := endpointVersion("batch", srv.URL)
	v.Contract.Batch, v.Contract.MaxBatch = true, 16
	v.Batch = Batch{Max: 8, Wait: Duration(50 * time.Millisecond)}
	applyReady(t, m, v)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := m.Invoke(context.Background(), ref("batch", ""), map[string]any{"image": pngImage(t, 10+i, 5), "i": i})
			if err != nil {
				errs <- err
				return
			}
			// Each caller gets its own item's answer back.
			if out["width"] != float64(10+i) || out["params"].(map[string]any)["i"] != float64(i) {
				errs <- fmt.Errorf("call %d got %v", i, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s.Batches.Load() == 0 || s.Calls.Load()+s.Batches.Load() >= n {
		t.Fatalf("%d calls became %d single and %d batched requests", n, s.Calls.Load(), s.Batches.Load())
	}
	t.Logf("%d calls became %d single and %d batched requests (%d items)", n, s.Calls.Load(), s.Batches.Load(), s.Items.Load())
}

func TestBuiltinBatch(t *testing.T) {
	m := newManager(t, Options{})
	var batches atomic.Int64
	err := m.RegisterBuiltin("sum", Builtin{
		Func: func(ctx context.Context, in map[string]any) (map[string]any, error) {
			return map[string]any{"y": in["x"]}, nil
		},
		Batch: func(ctx context.Context, items []map[string]any) ([]map[string]any, []error) {
			batches.Add(1)
			time.Sleep(10 * time.Millisecond)
			out := make([]map[string]any, len(items))
			for i, it := range items {
				out[i] = map[string]any{"y": it["x"], "n": len(items)}
			}
			return out, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	v := Version{AlgorithmID: "sum", Version: "1", Runtime: RuntimeBuiltin, Batch: Batch{Max: 4, Wait: Duration(30 * time.Millisecond)},
		Contract: Contract{Inputs: []Field{{Name: "x", Type: TypeNumber}}, Batch: true}}
	if err := m.Apply(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := m.Invoke(context.Background(), ref("sum", ""), map[string]any{"x": i})
			if err != nil || out["y"] != i {
				t.Errorf("item %d: %v %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	if batches.Load() == 0 {
		t.Fatal("no batch call")
	}
}

func TestOIPv2(t *testing.T) {
	var got map[string]any
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/models/resnet/versions/3/ready":
			return
		case "/v2/models/resnet/versions/3/infer":
		default:
			http.NotFound(w, r)
			return
		}
		var req struct {
			Inputs []Tensor `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		got = map[string]any{}
		for _, in := range req.Inputs {
			got[in.Name] = in
		}
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{
			"model_name": "resnet",
			"outputs": []any{
				map[string]any{"name": "label", "shape": []int{1}, "datatype": "BYTES", "data": []string{"cat"}},
				map[string]any{"name": "score", "shape": []int{1}, "datatype": "FP32", "data": []float64{0.75}},
				map[string]any{"name": "embedding", "shape": []int{2, 2}, "datatype": "FP32", "data": []float64{1, 2, 3, 4}},
			},
		})
	}))
	defer srv.Close()
	m := newManager(t, Options{})
	v := endpointVersion("resnet", srv.URL)
	v.Protocol, v.ModelVersion = ProtocolOIPV2, "3"
	applyReady(t, m, v)
	out, err := m.Invoke(context.Background(), ref("resnet", ""), map[string]any{
		"image": pngImage(t, 3, 3), "k": int64(5), "prompt": "a cat", "vec": []any{[]any{1.5, 2.0}, []any{3.0, 4.0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["label"] != "cat" || out["score"] != 0.75 {
		t.Fatalf("out %v", out)
	}
	emb := out["embedding"].([]any)
	if emb[1].([]any)[0] != 3.0 {
		t.Fatalf("embedding %v", emb)
	}
	mu.Lock()
	defer mu.Unlock()
	vec := got["vec"].(Tensor)
	if vec.Datatype != "FP64" || len(vec.Shape) != 2 || vec.Shape[0] != 2 {
		t.Fatalf("vec tensor %+v", vec)
	}
	if got["image"].(Tensor).Datatype != "BYTES" || got["k"].(Tensor).Datatype != "INT64" || got["prompt"].(Tensor).Data.([]any)[0] != "a cat" {
		t.Fatalf("tensors %+v", got)
	}
}

func TestHTTPMappedVendorAPI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v3/face/detect" || r.Header.Get("X-Api-Key") != "k1" || r.URL.Query().Get("mode") != "fast" {
			w.WriteHeader(404)
			io.WriteString(w, `{"code": 404, "msg": "no such route"}`)
			return
		}
		var req struct {
			Img       string  `json:"img_base64"`
			Threshold float64 `json:"threshold"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Img == "" {
			w.WriteHeader(400)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"code": 0, "data": map[string]any{
			"faces": []any{map[string]any{"x": 1, "y": 2, "w": 30, "h": 40, "conf": req.Threshold + 0.1}},
		}})
	}))
	defer srv.Close()
	m := newManager(t, Options{})
	v := endpointVersion("vendor", srv.URL)
	v.Protocol = ProtocolHTTPMapped
	v.Mapping = Mapping{
		Request: `
def main(input):
    return {
        "path": "/api/v3/face/detect",
        "query": {"mode": "fast"},
        "headers": {"X-Api-Key": "k1"},
        "json": {"img_base64": input["image"]["base64"], "threshold": input.get("threshold", 0.5)},
    }
`,
		Response: `
def main(resp):
    body = resp["json"]
    if body["code"] != 0:
        fail("vendor error %d" % body["code"])
    return {"objects": [
        {"box": [f["x"], f["y"], f["w"], f["h"]], "label": "face", "score": f["conf"], "attributes": {}}
        for f in body["data"]["faces"]
    ]}
`,
	}
	applyReady(t, m, v)
	out, err := m.Invoke(context.Background(), ref("vendor", ""), map[string]any{"image": pngImage(t, 5, 5), "threshold": 0.8})
	if err != nil {
		t.Fatal(err)
	}
	obj := out["objects"].([]any)[0].(map[string]any)
	if obj["label"] != "face" || fmt.Sprint(obj["box"].([]any)[3]) != "40" || obj["score"].(float64) < 0.89 {
		t.Fatalf("out %v", out)
	}

	bad := v
	bad.Version = "2"
	bad.Mapping.Request = "def main(input):\n    return undefined_name\n"
	var fe *FieldError
	if err := m.Apply(context.Background(), bad); !errors.As(err, &fe) || fe.Field != "mapping.request" {
		t.Fatalf("bad script: %v", err)
	}
}

// An embedding output of a declared dimension: answers of that length pass,
// another length (the wrong model behind the version) is refused as a bad
// response naming the contract's shape, before any record is made of it.
func TestEmbeddingDimension(t *testing.T) {
	var dim atomic.Int64
	dim.Store(4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == TianshuMetadataPath {
			json.NewEncoder(w).Encode(map[string]any{"contract": map[string]any{"outputs": []any{map[string]any{"name": "embedding", "type": "embedding", "dim": dim.Load()}}}})
			return
		}
		if r.URL.Path != TianshuInferPath {
			w.WriteHeader(http.StatusOK)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"embedding": make([]float64, dim.Load())})
	}))
	defer srv.Close()
	m := newManager(t, Options{})
	v := endpointVersion("descriptor", srv.URL)
	v.Contract.Outputs = []Field{{Name: "embedding", Type: TypeEmbedding, Dim: 4}}
	applyReady(t, m, v)
	out, err := m.Invoke(context.Background(), ref("descriptor", ""), map[string]any{"image": pngImage(t, 3, 3)})
	if err != nil || len(out["embedding"].([]any)) != 4 {
		t.Fatalf("4 values: %v, %v", out, err)
	}
	dim.Store(6)
	_, err = m.Invoke(context.Background(), ref("descriptor", ""), map[string]any{"image": pngImage(t, 3, 3)})
	if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "output embedding has 6 values; the contract declares an embedding of dim 4") {
		t.Fatalf("6 values: %v", err)
	}
	var md Metadata
	if err := json.Unmarshal([]byte(`{"contract": {"outputs": [{"name": "embedding", "type": "embedding", "dim": 512}]}}`), &md); err != nil {
		t.Fatal(err)
	}
	if err := v.Contract.checkMetadata(&md.Contract); err == nil || err.Error() != "contract.outputs[0].dim: the package's /v1/metadata declares output embedding as an embedding of dim 512; the definition declares 4" {
		t.Fatalf("metadata of dim 512: %v", err)
	}
}
