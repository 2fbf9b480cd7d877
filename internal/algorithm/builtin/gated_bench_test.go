package builtin

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"maps"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
)

// BenchmarkFaceDetectGated runs gated face-detect (one camera, the face
// structuring template's inputs) over 1280×720 JPEG frames of a face
// moving 6 px a frame across a textured background: what one camera costs
// per frame, a full pass every 10 frames and the face followed between
// them, allocations included (-benchmem); first with localScales -1 (no
// following: the baseline, in the same run), then as shipped.
func BenchmarkFaceDetectGated(b *testing.B) {
	face, err := imageops.Resize(astronaut(b), 256, 256)
	if err != nil {
		b.Fatal(err)
	}
	const frames = 40
	jpegs := make([][]byte, frames)
	for i := range jpegs {
		canvas := image.NewRGBA(image.Rect(0, 0, 1280, 720))
		for y := 0; y < 720; y += 40 {
			for x := 0; x < 1280; x += 40 {
				v := uint8(70)
				if (x/40+y/40)%2 == 0 {
					v = 150
				}
				draw.Draw(canvas, image.Rect(x, y, x+40, y+40), image.NewUniform(color.Gray{Y: v}), image.Point{}, draw.Src)
			}
		}
		draw.Draw(canvas, face.Bounds().Add(image.Pt(100+6*i, 100)), face, face.Bounds().Min, draw.Src)
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, canvas, &jpeg.Options{Quality: 85}); err != nil {
			b.Fatal(err)
		}
		jpegs[i] = buf.Bytes()
	}
	// Each variant gets a fresh algorithm (its own stream and caches).
	run := func(b *testing.B, extra map[string]any) float64 {
		algs, err := All()
		if err != nil {
			b.Fatal(err)
		}
		detect := algs["face-detect"].Func
		decisions := map[any]int{}
		b.ReportAllocs()
		b.ResetTimer()
		t0 := processCPU(b)
		for i := range b.N {
			in := map[string]any{"image": media.Image{Bytes: jpegs[i%frames], ContentType: "image/jpeg"},
				"minSize": 40, "quality": true, "gate": true, "key": "cam", "fullEvery": 10}
			maps.Copy(in, extra)
			out, err := detect(context.Background(), in)
			if err != nil {
				b.Fatal(err)
			}
			decisions[out["decision"]]++
		}
		perFrame := (processCPU(b) - t0).Seconds() / float64(b.N)
		b.StopTimer()
		b.ReportMetric(1000*perFrame, "cpu-ms/frame")
		b.Logf("%v: %.1f ms CPU per frame, decisions %v", extra, 1000*perFrame, decisions)
		return perFrame
	}
	var base, followed float64
	b.Run("localScales=-1", func(b *testing.B) { base = run(b, map[string]any{"localScales": -1}) })
	b.Run("shipped", func(b *testing.B) { followed = run(b, nil) })
	if base > 0 {
		b.Logf("CPU per frame, shipped vs localScales -1 (the baseline, same run): %.1f vs %.1f ms, %.2fx", 1000*followed, 1000*base, followed/base)
	}
}

// astronaut is the test photo with one face, decoded.
func astronaut(b *testing.B) image.Image {
	raw, err := os.ReadFile("../../vision/cascade/testdata/astronaut.png")
	if err != nil {
		b.Fatal(err)
	}
	img, _, err := imageops.DecodeBytes(raw, imageops.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	return img
}

// processCPU is this process's user and system CPU time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
