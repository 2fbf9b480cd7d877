package devicecenter

import (
	"bytes"
	"hash/maphash"
	"image"
	"image/jpeg"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/device"
)

// BenchmarkStallWatch measures what the stall detector adds per frame of a
// 1280x720 camera: hashing its JPEG bytes, and sampling its decoded RGB
// pixels, against the baseline of decoding that JPEG once (what every
// frame a flow reads costs anyway). It reports each per frame and the
// ratios hash/decode.
func BenchmarkStallWatch(b *testing.B) {
	img := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	for i := range img.Pix {
		img.Pix[i] = uint8(i*7 + i/1280)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		b.Fatal(err)
	}
	pic := buf.Bytes()
	pixels := make([]byte, 1280*720*3)
	w := newFrameWatch(&stalls{after: 5 * time.Second, seed: maphash.MakeSeed()}, device.Config{})
	now := time.Now()
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		if _, err := jpeg.Decode(bytes.NewReader(pic)); err != nil {
			b.Fatal(err)
		}
	}
	t1 := time.Now()
	for range b.N {
		w.frame(device.Frame{Image: pic}, now)
	}
	t2 := time.Now()
	for range b.N {
		w.frame(device.Frame{Pixels: pixels}, now)
	}
	t3 := time.Now()
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(per(t1.Sub(t0)), "decode-ns/frame")
	b.ReportMetric(per(t2.Sub(t1)), "jpeghash-ns/frame")
	b.ReportMetric(per(t3.Sub(t2)), "pixelsample-ns/frame")
	b.ReportMetric(per(t2.Sub(t1))/per(t1.Sub(t0)), "jpeghash/decode")
	b.ReportMetric(per(t3.Sub(t2))/per(t1.Sub(t0)), "pixelsample/decode")
	b.ReportMetric(float64(len(pic)), "jpeg-bytes")
}
