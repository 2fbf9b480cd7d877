package bench

import (
	"bufio"
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/media"
)

// BenchmarkONNXServing measures one call of a model-file version through
// the invoker and the onnx-cpu serving runtime (JPEG decode, resize and
// normalization in Go, the tensor over OIP v2's binary extension to the
// Node.js server, session.run, softmax and top-k) against the same model
// run by ONNX Runtime called directly from a Node.js script (session.run
// on a tensor of the same shape, same session options), in the same run:
// the two alternate in rounds of 5 calls so that load from elsewhere on
// the machine weighs on both alike. The model (make_onnx.py's conv.onnx)
// is four 3×3 convolutions on a 224×224 image, about 115M multiply-adds,
// the scale of a small classifier.
func BenchmarkONNXServing(b *testing.B) {
	models := algotest.ONNXModels(b)
	servingDir, allow := algotest.ServingDir(b)
	model := filepath.Join(models, "conv.onnx")
	pol, err := execpolicy.New(execpolicy.Config{Allow: allow})
	if err != nil {
		b.Fatal(err)
	}
	m, err := algorithm.New(algorithm.Options{Registerer: prometheus.NewRegistry(), WorkDir: b.TempDir(), ServingDir: servingDir, Exec: pol})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	s := &algorithm.Serving{Runtime: "onnx-cpu", Model: model,
		Input: algorithm.ServingInput{Tensor: "images", Width: 224, Height: 224,
			Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}},
		Output: algorithm.ServingOutput{Kind: algorithm.KindClassify, Tensor: "logits", TopK: 5}}
	v := algorithm.Version{AlgorithmID: "conv", Version: "1", Serving: s}
	v.FillServingDefaults()
	applyEndpoint(b, m, v)

	// A 320×240 camera-like JPEG: gradients, so the decoder has work.
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := range 240 {
		for x := range 320 {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	inputs := map[string]any{"image": media.Image{Bytes: jb.Bytes(), ContentType: "image/jpeg"}}
	ref := algorithm.Ref{ID: "conv"}

	ort := filepath.Join(servingDir, "onnx-node", "node_modules", "onnxruntime-node")
	cmd := exec.Command("node", "testdata/onnx_direct.js", ort, model, "images", "1,3,224,224")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		b.Fatalf("onnx_direct.js: %q %s", lines.Text(), stderr.String())
	}
	const round = 5
	// CPU time: the direct script's own; for the invoker, this process's
	// (which does nothing else meanwhile) plus the runtime server's.
	st, err := m.Instances(ref)
	if err != nil || st[0].PID == 0 {
		b.Fatalf("instances: %+v %v", st, err)
	}
	serverPID := st[0].PID
	cpuNow := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) + procCPU(b, serverPID)
	}
	// The runtime server's share of the invoker's CPU, apart.
	var directCPU, invokeCPU, serverCPU time.Duration
	direct := func() time.Duration {
		if _, err := stdin.Write([]byte("run " + strconv.Itoa(round) + "\n")); err != nil {
			b.Fatal(err)
		}
		if !lines.Scan() {
			b.Fatalf("onnx_direct.js ended: %s", stderr.String())
		}
		f := strings.Fields(lines.Text())
		if len(f) != 2 {
			b.Fatalf("onnx_direct.js: %q", lines.Text())
		}
		ns, err1 := strconv.ParseInt(f[0], 10, 64)
		us, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("onnx_direct.js: %q", lines.Text())
		}
		directCPU += time.Duration(us) * time.Microsecond
		return time.Duration(ns)
	}
	invoke := func() time.Duration {
		c0, s0 := cpuNow(), procCPU(b, serverPID)
		t0 := time.Now()
		for range round {
			if _, err := m.Invoke(context.Background(), ref, inputs); err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(t0)
		invokeCPU += cpuNow() - c0
		serverCPU += procCPU(b, serverPID) - s0
		return d
	}
	// The pre-processing alone (decode, resize, normalize: what a caller
	// of ONNX Runtime would do too), for the second baseline.
	var prepT, prepCPU time.Duration
	prep := func() {
		c0 := cpuNow()
		t0 := time.Now()
		for range round {
			if _, _, err := s.InputTensor(jb.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
		prepT += time.Since(t0)
		prepCPU += cpuNow() - c0
	}
	for range 3 { // warm both
		direct()
		invoke()
		prep()
	}
	var directT, invokeT time.Duration
	directCPU, invokeCPU, serverCPU, prepT, prepCPU = 0, 0, 0, 0, 0
	rounds := 0
	b.ResetTimer()
	for b.Loop() {
		directT += direct()
		invokeT += invoke()
		prep()
		rounds++
	}
	directNs := float64(directT.Nanoseconds()) / float64(rounds*round)
	invokeNs := float64(invokeT.Nanoseconds()) / float64(rounds*round)
	b.ReportMetric(directNs, "direct-ns/call")
	b.ReportMetric(invokeNs, "invoker-ns/call")
	b.ReportMetric(invokeNs/directNs, "x-direct")
	directCPUNs := float64(directCPU.Nanoseconds()) / float64(rounds*round)
	invokeCPUNs := float64(invokeCPU.Nanoseconds()) / float64(rounds*round)
	b.ReportMetric(directCPUNs, "direct-cpu-ns/call")
	b.ReportMetric(invokeCPUNs, "invoker-cpu-ns/call")
	b.ReportMetric(invokeCPUNs/directCPUNs, "x-direct-cpu")
	b.ReportMetric(float64(serverCPU.Nanoseconds())/float64(rounds*round), "server-cpu-ns/call")
	prepNs := float64(prepT.Nanoseconds()) / float64(rounds*round)
	prepCPUNs := float64(prepCPU.Nanoseconds()) / float64(rounds*round)
	b.ReportMetric(prepNs, "prep-ns/call")
	b.ReportMetric(invokeNs/(directNs+prepNs), "x-prep+direct")
	b.ReportMetric(invokeCPUNs/(directCPUNs+prepCPUNs), "x-prep+direct-cpu")
	const what = "ONNX model-file algorithm, 224×224 conv net, 320×240 JPEG"
	benchtable.Record(b, benchtable.Row{Metric: what + ", wall, vs session.run on a ready tensor", Unit: "ns",
		Target: "≤ 1.2× ONNX Runtime direct", Tianshu: invokeNs, Baseline: directNs})
	benchtable.Record(b, benchtable.Row{Metric: what + ", CPU, vs session.run on a ready tensor", Unit: "ns",
		Target: "≤ 1.2× ONNX Runtime direct", Tianshu: invokeCPUNs, Baseline: directCPUNs})
	benchtable.Record(b, benchtable.Row{Metric: what + ", wall, vs the same pre-processing + session.run", Unit: "ns",
		Target: "≤ 1.2× ONNX Runtime direct", Tianshu: invokeNs, Baseline: directNs + prepNs})
	benchtable.Record(b, benchtable.Row{Metric: what + ", CPU, vs the same pre-processing + session.run", Unit: "ns",
		Target: "≤ 1.2× ONNX Runtime direct", Tianshu: invokeCPUNs, Baseline: directCPUNs + prepCPUNs})
}
