package builtin

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/vision/faces"
)

// BenchmarkFaceDetectSlots runs 32 concurrent full-frame face-detect calls
// (8 cameras × 4 messages in flight, as the worker does) over distinct
// 1280×720 JPEG frames, first with as many slots as calls (every call
// decodes and searches at once, as before the slots) and then with the
// shipped one slot per core, and reports the process CPU per frame of
// each and their ratio, measured in the same run.
func BenchmarkFaceDetectSlots(b *testing.B) {
	face := astronaut(b)
	const calls, frames = 32, 48 // more frames than the decode cache holds
	jpegs := make([][]byte, frames)
	for i := range jpegs {
		canvas := image.NewRGBA(image.Rect(0, 0, 1280, 720))
		draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.Gray{Y: uint8(60 + i)}), image.Point{}, draw.Src)
		draw.Draw(canvas, face.Bounds().Add(image.Pt(100+10*i, 100)), face, face.Bounds().Min, draw.Src)
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, canvas, &jpeg.Options{Quality: 85}); err != nil {
			b.Fatal(err)
		}
		jpegs[i] = buf.Bytes()
	}
	haar, err := faces.New(faces.ModelHaar)
	if err != nil {
		b.Fatal(err)
	}
	run := func(slots int) float64 {
		fd := &faceDetector{haar: haar, lbp: haar, streams: map[string]*faceStream{}, frames: &decodeCache{}, slots: make(chan struct{}, slots)}
		n := b.N * frames
		var next sync.Mutex
		i := 0
		var wg sync.WaitGroup
		start := processCPU(b)
		for range calls {
			wg.Go(func() {
				for {
					next.Lock()
					k := i
					i++
					next.Unlock()
					if k >= n {
						return
					}
					// A fresh slice per call: the decode cache keys by identity.
					frame := append([]byte(nil), jpegs[k%frames]...)
					in := map[string]any{"image": media.Image{Bytes: frame, ContentType: "image/jpeg"}, "minSize": 40}
					if _, err := fd.detect(context.Background(), in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return float64(processCPU(b)-start) / float64(time.Millisecond) / float64(n)
	}
	b.ResetTimer()
	before := run(calls)
	after := run(runtime.GOMAXPROCS(0))
	b.ReportMetric(before, "ms-cpu/frame-32-at-once")
	b.ReportMetric(after, "ms-cpu/frame-per-core")
	b.ReportMetric(after/before, "ratio")
}
