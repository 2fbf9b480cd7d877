package algorithm

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// grayPNG is a w×h image of one gray level.
func grayPNG(t testing.TB, w, h int, g uint8) media.Image {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = g
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return media.Image{Bytes: buf.Bytes(), ContentType: "image/png"}
}

func classifierServing(model string) *Serving {
	return &Serving{Runtime: "onnx-cpu", Model: model,
		Input:  ServingInput{Width: 8, Height: 8},
		Output: ServingOutput{Kind: KindClassify, Labels: []string{"dark", "mid", "light"}, TopK: 3}}
}

func yoloServing(model string) *Serving {
	return &Serving{Runtime: "onnx-cpu", Model: model,
		Input:  ServingInput{Width: 32, Height: 32},
		Output: ServingOutput{Kind: KindDetect, Format: FormatYOLOv8, Labels: []string{"person", "car"}}}
}

func servingVersion(id string, s *Serving) Version {
	v := Version{AlgorithmID: id, Version: "1", Serving: s, Idempotent: true}
	v.FillServingDefaults()
	return v
}

func TestServingDescriptorErrorsNameTheField(t *testing.T) {
	for _, c := range []struct {
		field string
		edit  func(s *Serving)
	}{
		{"serving.runtime", func(s *Serving) { s.Runtime = "tensorrt" }},
		{"serving.model", func(s *Serving) { s.Model = "" }},
		{"serving.threads", func(s *Serving) { s.Threads = 1000 }},
		{"serving.input.width", func(s *Serving) { s.Input.Width = 0 }},
		{"serving.input.height", func(s *Serving) { s.Input.Height = 100000 }},
		{"serving.input.layout", func(s *Serving) { s.Input.Layout = "CHW" }},
		{"serving.input.channels", func(s *Serving) { s.Input.Channels = "RGBA" }},
		{"serving.input.mean", func(s *Serving) { s.Input.Mean = []float64{0.5} }},
		{"serving.input.std[1]", func(s *Serving) { s.Input.Std = []float64{1, 0, 1} }},
		{"serving.input.scale", func(s *Serving) { s.Input.Scale = -1 }},
		{"serving.output.kind", func(s *Serving) { s.Output.Kind = "segmentation" }},
		{"serving.output.topK", func(s *Serving) { s.Output.TopK = 101 }},
		{"serving.output.activation", func(s *Serving) { s.Output.Activation = "relu" }},
		{"serving.output.labels[1]", func(s *Serving) { s.Output.Labels[1] = strings.Repeat("x", 300) }},
		{"serving.output", func(s *Serving) { s.Output.IoU = 0.5 }},
	} {
		v := servingVersion("cls", classifierServing("m.onnx"))
		c.edit(v.Serving)
		var fe *FieldError
		if err := v.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
	for _, c := range []struct {
		field string
		edit  func(s *Serving)
	}{
		{"serving.output.format", func(s *Serving) { s.Output.Format = "" }},
		{"serving.output.format", func(s *Serving) { s.Output.Format = "ssd" }},
		{"serving.output.confidence", func(s *Serving) { s.Output.Confidence = 2 }},
		{"serving.output.iou", func(s *Serving) { s.Output.IoU = -0.1 }},
		{"serving.output.maxDetections", func(s *Serving) { s.Output.MaxDetections = 5000 }},
	} {
		v := servingVersion("det", yoloServing("m.onnx"))
		c.edit(v.Serving)
		var fe *FieldError
		if err := v.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
	v := servingVersion("cls", classifierServing("m.onnx"))
	v.Package = "pkg.tgz"
	if err := v.Validate(); err == nil || !strings.Contains(err.Error(), "package") {
		t.Errorf("serving with a package: %v", err)
	}
	v = servingVersion("cls", classifierServing("m.onnx"))
	if err := v.Validate(); err != nil {
		t.Fatalf("valid descriptor: %v", err)
	}
	if v.Runtime != RuntimeProcess || v.Protocol != ProtocolOIPV2 || len(v.Contract.Outputs) != 3 {
		t.Errorf("defaults: %+v", v)
	}
}

func readInfo(t *testing.T, path string) (*ModelInfo, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	return ReadModelInfo(f, st.Size())
}

// The model's own inputs and outputs are read from the file and checked
// against the descriptor; a mismatch names the tensor and its shape.
func TestServingModelMetadata(t *testing.T) {
	dir := algotest.ONNXModels(t)
	info, err := readInfo(t, filepath.Join(dir, "yolo.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Inputs) != 1 || info.Inputs[0].String() != `"images" float32 [1,3,32,32]` ||
		len(info.Outputs) != 1 || info.Outputs[0].String() != `"output0" float32 [1,6,4]` {
		t.Fatalf("yolo.onnx: %+v", info)
	}
	s := yoloServing("m")
	if err := CheckServing(s, info); err != nil || s.Input.Tensor != "images" || s.Output.Tensor != "output0" {
		t.Fatalf("check: %v, %+v", err, s)
	}
	// The conv model's weights are initializers, not inputs.
	if info, err := readInfo(t, filepath.Join(dir, "conv.onnx")); err != nil || len(info.Inputs) != 1 {
		t.Fatalf("conv.onnx: %+v %v", info, err)
	}
	for _, c := range []struct {
		want string
		s    func() *Serving
	}{
		{`serving.input: the model's input "images" float32 [1,3,32,32] does not match the descriptor's NCHW [1 3 64 32]`, func() *Serving {
			s := yoloServing("m")
			s.Input.Height = 64
			return s
		}},
		{`serving.input: the model's input "images" float32 [1,3,32,32] does not match the descriptor's NHWC [1 32 32 3]`, func() *Serving {
			s := yoloServing("m")
			s.Input.Layout = LayoutNHWC
			return s
		}},
		{`serving.output.labels: 3 labels for the model's output "output0" float32 [1,6,4] of 2 classes`, func() *Serving {
			s := yoloServing("m")
			s.Output.Labels = []string{"a", "b", "c"}
			return s
		}},
		{`serving.input.tensor: the model has no input "pixels"`, func() *Serving {
			s := yoloServing("m")
			s.Input.Tensor = "pixels"
			return s
		}},
		{`serving.output: the model's output "output0" float32 [1,6,4] is not a classification head`, func() *Serving {
			s := classifierServing("m")
			s.Input.Width, s.Input.Height = 32, 32
			return s
		}},
	} {
		err := CheckServing(c.s(), info)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v\nwant %s", err, c.want)
		}
	}
	cinfo, err := readInfo(t, filepath.Join(dir, "classifier.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	s = classifierServing("m")
	s.Output.Labels = s.Output.Labels[:2]
	if err := CheckServing(s, cinfo); err == nil || !strings.Contains(err.Error(), `2 labels for the model's output "logits" float32 [1,3] of 3 classes`) {
		t.Errorf("labels: %v", err)
	}
	// Files that are not ONNX.
	for name, body := range map[string][]byte{
		"png":   grayPNG(t, 4, 4, 0).Bytes,
		"text":  []byte("hello, this is not a model\n"),
		"empty": nil,
	} {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readInfo(t, p); !errors.Is(err, ErrNotONNX) {
			t.Errorf("%s: %v, want ErrNotONNX", name, err)
		}
	}
}

func servingManager(t *testing.T) *Manager {
	t.Helper()
	dir, allow := algotest.ServingDir(t)
	return newManager(t, Options{ServingDir: dir, Exec: mustPolicy(t, execpolicy.Config{Allow: allow}), MaxRestartBackoff: time.Second})
}

func applyServing(t *testing.T, m *Manager, v Version, model string) {
	t.Helper()
	info, err := readInfo(t, model)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckServing(v.Serving, info); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	applyReady(t, m, v)
}

// A model file and a descriptor are a working algorithm: the classifier's
// logits are m*[-4,0,4] + [2,0,-2] of the input's mean m, the detector's
// candidates are constant (make_onnx.py).
func TestServingClassifierAndDetector(t *testing.T) {
	models := algotest.ONNXModels(t)
	m := servingManager(t)
	cls := filepath.Join(models, "classifier.onnx")
	applyServing(t, m, servingVersion("cls", classifierServing(cls)), cls)

	for _, c := range []struct {
		gray  uint8
		label string
		p     float64
	}{
		// black: m=0, logits [2,0,-2]; white: m=1, [-2,0,2].
		{0, "dark", math.Exp(2) / (math.Exp(2) + 1 + math.Exp(-2))},
		{255, "light", math.Exp(2) / (math.Exp(2) + 1 + math.Exp(-2))},
		{128, "mid", 0}, // m≈0.5: [0, 0, 0] ± 0.0078*4, mid wins only on ties: checked below
	} {
		out, err := m.Invoke(context.Background(), ref("cls", "1"), map[string]any{"image": grayPNG(t, 40, 30, c.gray)})
		if err != nil {
			t.Fatal(err)
		}
		classes, _ := out["classes"].([]any)
		if len(classes) != 3 {
			t.Fatalf("gray %d: %v", c.gray, out)
		}
		if c.p == 0 {
			continue
		}
		if out["label"] != c.label || math.Abs(out["score"].(float64)-c.p) > 1e-5 {
			t.Errorf("gray %d: %v, want %s %.5f", c.gray, out, c.label, c.p)
		}
	}

	// NHWC and BGR with mean/std: a pure blue image (B=255) read as BGR
	// with mean 0.5 and std 0.5 gives channel values 1, -1, -1: mean -1/3.
	nhwc := filepath.Join(models, "nhwc.onnx")
	s := classifierServing(nhwc)
	s.Input.Layout, s.Input.Channels = LayoutNHWC, ChannelsBGR
	s.Input.Mean, s.Input.Std = []float64{0.5, 0.5, 0.5}, []float64{0.5, 0.5, 0.5}
	s.Output.Activation = ActNone
	applyServing(t, m, servingVersion("nhwc", s), nhwc)
	blue := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(blue.Pix); i += 4 {
		blue.Pix[i+2], blue.Pix[i+3] = 255, 255
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, blue)
	out, err := m.Invoke(context.Background(), ref("nhwc", "1"), map[string]any{"image": media.Image{Bytes: buf.Bytes(), ContentType: "image/png"}})
	if err != nil {
		t.Fatal(err)
	}
	// logits = -1/3*[-4,0,4] + [2,0,-2] = [3.333, 0, -3.333].
	if out["label"] != "dark" || math.Abs(out["score"].(float64)-10.0/3) > 1e-4 {
		t.Errorf("nhwc bgr: %v", out)
	}

	yolo := filepath.Join(models, "yolo.onnx")
	applyServing(t, m, servingVersion("yolo", yoloServing(yolo)), yolo)
	// A 64×48 image: boxes scale by 2 across and 1.5 down.
	out, err = m.Invoke(context.Background(), ref("yolo", "1"), map[string]any{"image": grayPNG(t, 64, 48, 90)})
	if err != nil {
		t.Fatal(err)
	}
	objs, _ := out["objects"].([]any)
	if len(objs) != 2 {
		t.Fatalf("objects = %v, want A and C (B suppressed by NMS, D under the threshold)", out)
	}
	a, c := objs[0].(map[string]any), objs[1].(map[string]any)
	if a["label"] != "person" || a["score"] != 0.9 || !equalBox(a["box"], 12, 9, 16, 12) {
		t.Errorf("first = %v, want person 0.9 [12 9 16 12]", a)
	}
	if c["label"] != "car" || c["score"] != 0.7 || !equalBox(c["box"], 42, 31.5, 12, 9) {
		t.Errorf("second = %v, want car 0.7 [42 31.5 12 9]", c)
	}

	// Something that is not an image is refused before the model runs.
	if _, err := m.Invoke(context.Background(), ref("yolo", "1"), map[string]any{"image": media.Image{Bytes: []byte("nope"), ContentType: "image/png"}}); !errors.Is(err, ErrBadInput) {
		t.Errorf("not an image: %v", err)
	}
}

func equalBox(v any, want ...float64) bool {
	b, _ := v.([]any)
	if len(b) != 4 {
		return false
	}
	for i, w := range want {
		if f, _ := b[i].(float64); math.Abs(f-w) > 0.01 {
			return false
		}
	}
	return true
}

// A runtime process that dies is restarted with back-off, and the other
// versions keep answering meanwhile; a model file the runtime cannot load
// fails the instance with the runtime's own message.
func TestServingRuntimeCrashRestarts(t *testing.T) {
	models := algotest.ONNXModels(t)
	m := servingManager(t)
	cls := filepath.Join(models, "classifier.onnx")
	applyServing(t, m, servingVersion("cls", classifierServing(cls)), cls)
	yolo := filepath.Join(models, "yolo.onnx")
	applyServing(t, m, servingVersion("yolo", yoloServing(yolo)), yolo)

	st := statuses(t, m, ref("cls", "1"))
	if err := syscall.Kill(st[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Invoke(context.Background(), ref("yolo", "1"), map[string]any{"image": grayPNG(t, 32, 32, 0)}); err != nil {
		t.Errorf("yolo while cls restarts: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "cls restarted", func() bool {
		st := statuses(t, m, ref("cls", "1"))
		return st[0].Restarts >= 1 && st[0].Status == StatusReady
	})
	if _, err := m.Invoke(context.Background(), ref("cls", "1"), map[string]any{"image": grayPNG(t, 8, 8, 0)}); err != nil {
		t.Errorf("after restart: %v", err)
	}

	// A file that is not a model (refused at onboarding by ReadModelInfo;
	// here given to the runtime directly) fails with the runtime's reason.
	bad := filepath.Join(t.TempDir(), "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	m2 := newManager(t, Options{ServingDir: m.opts.ServingDir, Exec: m.opts.Exec, MaxStartFailures: 2, RestartBackoff: 50 * time.Millisecond})
	if err := m2.Apply(context.Background(), servingVersion("bad", classifierServing(bad))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "bad model failed", func() bool {
		st := statuses(t, m2, ref("bad", "1"))
		return st[0].Status == StatusFailed
	})
	st = statuses(t, m2, ref("bad", "1"))
	if !strings.Contains(st[0].LastError, "cannot load model") || !strings.Contains(st[0].LastError, "gave up after 2 failed starts") {
		t.Errorf("last error = %q", st[0].LastError)
	}
}

// The decoders on tensors written by hand: yolov5's objectness times class
// score, per-class NMS (an overlapping box of another class is kept),
// maxDetections; sigmoid and top-k for classification.
func TestServingDecoders(t *testing.T) {
	// [1, N=4, 5+2]: cx, cy, w, h, obj, s0, s1.
	rows := [][]float32{
		{10, 10, 8, 8, 0.9, 0.9, 0.1},  // 0.81 class 0
		{11, 10, 8, 8, 0.9, 0.1, 0.8},  // 0.72 class 1: overlaps the first, other class: kept
		{10, 11, 8, 8, 0.8, 0.9, 0.0},  // 0.72 class 0: suppressed by the first
		{30, 30, 4, 4, 0.5, 0.45, 0.0}, // 0.225: under 0.25
	}
	var data []float32
	for _, r := range rows {
		data = append(data, r...)
	}
	o := ServingOutput{Kind: KindDetect, Format: FormatYOLOv5, Labels: []string{"a", "b"}}
	out, err := o.detect(data, []int{1, 4, 7}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	objs := out["objects"].([]any)
	if len(objs) != 2 || objs[0].(map[string]any)["label"] != "a" || objs[1].(map[string]any)["label"] != "b" ||
		objs[0].(map[string]any)["score"] != 0.81 || !equalBox(objs[0].(map[string]any)["box"], 6, 6, 8, 8) {
		t.Fatalf("yolov5: %v", out)
	}
	o.MaxDetections = 1
	if out, _ := o.detect(data, []int{1, 4, 7}, 1, 1); len(out["objects"].([]any)) != 1 {
		t.Errorf("maxDetections 1: %v", out)
	}
	if _, err := o.detect(data, []int{4, 7, 1, 1}, 1, 1); !errors.Is(err, ErrBadResponse) {
		t.Errorf("rank 4: %v", err)
	}

	c := ServingOutput{Kind: KindClassify, Activation: ActSigmoid, TopK: 2}
	res := c.classify([]float32{0, 2, -1})
	classes := res["classes"].([]any)
	if res["label"] != "class1" || math.Abs(res["score"].(float64)-1/(1+math.Exp(-2))) > 1e-9 || len(classes) != 2 ||
		classes[1].(map[string]any)["index"] != 0 {
		t.Errorf("sigmoid top-2: %v", res)
	}
}

// Input tensors reach the runtime through system shared memory: each
// call's tensor goes through a registered region instead of the request's
// body, and the region's file is gone from /dev/shm once registered.
func TestServingSharedMemory(t *testing.T) {
	const shmDir = "/dev/shm"
	if _, err := os.Stat(shmDir); err != nil {
		t.Skip("no /dev/shm: tensors go in the body")
	}
	models := algotest.ONNXModels(t)
	m := servingManager(t)
	cls := filepath.Join(models, "classifier.onnx")
	applyServing(t, m, servingVersion("cls", classifierServing(cls)), cls)
	for range 3 {
		out, err := m.Invoke(context.Background(), ref("cls", "1"), map[string]any{"image": grayPNG(t, 40, 30, 0)})
		if err != nil || out["label"] != "dark" {
			t.Fatalf("Invoke = %v, %v", out, err)
		}
	}
	count := func(transport string) float64 {
		var d dto.Metric
		if err := m.metrics.tensors.WithLabelValues("cls", "1", transport).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetCounter().GetValue()
	}
	shm, body := count("shm"), count("body")
	if shm != 3 || body != 0 {
		t.Errorf("tensors: %v by shared memory, %v in the body; want 3 and 0", shm, body)
	}
	left, _ := filepath.Glob(filepath.Join(shmDir, "tianshu-tensor-*"))
	if len(left) != 0 {
		t.Errorf("region files left under %s: %v", shmDir, left)
	}
}

// A runtime that lost its regions (it restarted on the same port) answers
// so; the call is sent again in the body, and the next one registers new
// regions.
func TestServingSharedMemoryLost(t *testing.T) {
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Skip("no /dev/shm: tensors go in the body")
	}
	models := algotest.ONNXModels(t)
	m := servingManager(t)
	cls := filepath.Join(models, "classifier.onnx")
	applyServing(t, m, servingVersion("cls", classifierServing(cls)), cls)
	invoke := func() {
		t.Helper()
		out, err := m.Invoke(context.Background(), ref("cls", "1"), map[string]any{"image": grayPNG(t, 40, 30, 0)})
		if err != nil || out["label"] != "dark" {
			t.Fatalf("Invoke = %v, %v", out, err)
		}
	}
	count := func(transport string) float64 {
		var d dto.Metric
		if err := m.metrics.tensors.WithLabelValues("cls", "1", transport).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetCounter().GetValue()
	}
	invoke()
	d, err := m.lookup(ref("cls", "1"))
	if err != nil {
		t.Fatal(err)
	}
	p := d.proto.(*servingProto)
	in := d.insts[0]
	pool := p.shm.pool(in)
	pool.mu.Lock()
	names := make([]string, 0, len(pool.free))
	for _, r := range pool.free {
		names = append(names, r.name)
	}
	pool.mu.Unlock()
	if len(names) != 1 {
		t.Fatalf("regions %v, want one", names)
	}
	// The server forgets the region, as a new process on the port would.
	resp, err := http.Post(in.address()+"/v2/systemsharedmemory/region/"+names[0]+"/unregister", "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("unregister: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	invoke()
	if shm, body := count("shm"), count("body"); shm != 1 || body != 1 {
		t.Errorf("after the region was lost: %v by shared memory, %v in the body; want 1 and 1", shm, body)
	}
	invoke()
	if shm := count("shm"); shm != 2 {
		t.Errorf("the next call: %v by shared memory in all, want 2 (a new region)", shm)
	}
}
