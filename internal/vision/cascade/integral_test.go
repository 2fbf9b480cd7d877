package cascade

import (
	"image"
	"math/rand/v2"
	"testing"
)

// TestIntegrals checks both integral images against their definitions,
// by brute force on a random image.
func TestIntegrals(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sz := range []image.Point{{1, 1}, {7, 3}, {3, 9}, {23, 17}} {
		w, h := sz.X, sz.Y
		img := make([]uint8, w*h)
		for i := range img {
			img[i] = uint8(r.IntN(256))
		}
		stride := w + 3
		sum := make([]int32, stride*(h+1))
		sq := make([]uint32, stride*(h+1))
		tilt := make([]int32, stride*(h+1))
		integral(img, w, h, stride, sum, sq)
		tiltedIntegral(img, w, h, stride, tilt)
		for Y := 0; Y <= h; Y++ {
			for X := 0; X <= w; X++ {
				var s, q, ts int64
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						v := int64(img[y*w+x])
						if x < X && y < Y {
							s += v
							q += v * v
						}
						if d := x - X + 1; y < Y && d <= Y-y-1 && -d <= Y-y-1 {
							ts += v
						}
					}
				}
				i := Y*stride + X
				if int64(sum[i]) != s || int64(sq[i]) != q || int64(tilt[i]) != ts {
					t.Fatalf("%v at (%d,%d): sum %d/%d sq %d/%d tilted %d/%d", sz, X, Y, sum[i], s, sq[i], q, tilt[i], ts)
				}
			}
		}
	}
}
