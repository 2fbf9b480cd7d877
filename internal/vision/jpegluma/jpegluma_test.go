package jpegluma

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// stdLuma decodes data with image/jpeg and returns its luma plane.
func stdLuma(t testing.TB, data []byte) *image.Gray {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	switch m := img.(type) {
	case *image.Gray:
		return m
	case *image.YCbCr:
		return &image.Gray{Pix: m.Y, Stride: m.YStride, Rect: m.Rect}
	}
	t.Fatalf("image/jpeg gave a %T", img)
	return nil
}

// compare checks that got matches want within the decoders' rounding: no
// sample more than 2 grey levels apart and almost all within 1.
func compare(t *testing.T, name string, got, want *image.Gray) {
	t.Helper()
	if got.Rect != want.Rect {
		t.Fatalf("%s: bounds %v, image/jpeg %v", name, got.Rect, want.Rect)
	}
	var worst, over1, n int
	for y := range want.Rect.Dy() {
		for x := range want.Rect.Dx() {
			d := int(got.Pix[y*got.Stride+x]) - int(want.Pix[y*want.Stride+x])
			d = max(d, -d)
			worst = max(worst, d)
			if d > 1 {
				over1++
			}
			n++
		}
	}
	if worst > 2 || over1*1000 > n {
		t.Errorf("%s: largest difference from image/jpeg %d grey levels, %d of %d samples over 1", name, worst, over1, n)
	}
}

// Every sequential Huffman fixture (made with libjpeg-turbo's cjpeg:
// 4:2:0, 4:2:2, 4:4:0, 4:4:4, 4:1:1, grey, restart intervals of a row and
// of 3 MCUs, optimised tables, 16-bit quantisation tables, one scan per
// component, quality 100, at 117×75, a size no MCU divides) decodes to
// image/jpeg's luma; the codings it does not read are refused with
// ErrUnsupported.
func TestFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.jpg")
	if len(files) < 10 {
		t.Fatalf("%d fixtures", len(files))
	}
	unsupported := map[string]bool{"progressive.jpg": true, "arithmetic.jpg": true, "rgb.jpg": true}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		got, small, err := Decode(data, 1<<30)
		if unsupported[name] {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: %v, want ErrUnsupported", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		compare(t, name, got, stdLuma(t, data))
		checkEighth(t, name, small, got)
		w, h, err := DecodeConfig(data)
		if err != nil || w != 117 || h != 75 {
			t.Errorf("%s: DecodeConfig %dx%d, %v", name, w, h, err)
		}
	}
}

// checkEighth checks that each pixel of the eighth-size image is the mean
// of its 8×8 block of the luma plane (within rounding, and the clamping of
// the block's samples: blocks with a sample at 0 or 255 are left out), the
// padding included.
func checkEighth(t *testing.T, name string, small, luma *image.Gray) {
	t.Helper()
	if small.Rect != image.Rect(0, 0, (luma.Rect.Dx()+7)/8, (luma.Rect.Dy()+7)/8) {
		t.Fatalf("%s: eighth %v for a %v plane", name, small.Rect, luma.Rect)
	}
	worst := 0
	for by := range small.Rect.Dy() {
		for bx := range small.Rect.Dx() {
			sum, clamped := 0, false
			for y := range 8 {
				for x := range 8 {
					v := luma.Pix[(8*by+y)*luma.Stride+8*bx+x]
					sum += int(v)
					clamped = clamped || v == 0 || v == 255
				}
			}
			if clamped {
				continue // the mean of the clamped samples is not the DC's
			}
			d := int(small.Pix[by*small.Stride+bx]) - (sum+32)/64
			worst = max(worst, d, -d)
		}
	}
	if worst > 1 {
		t.Errorf("%s: eighth-size pixel %d grey levels from its block's mean", name, worst)
	}
}

// Images encoded by image/jpeg (4:2:0 colour and grey) at several sizes
// and qualities decode to its own decoder's luma.
func TestMatchesImageJPEG(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []image.Point{{1, 1}, {8, 8}, {15, 17}, {64, 48}, {321, 203}} {
		for _, q := range []int{20, 75, 100} {
			for _, gray := range []bool{false, true} {
				var img image.Image
				if gray {
					g := image.NewGray(image.Rect(0, 0, size.X, size.Y))
					for i := range g.Pix {
						g.Pix[i] = uint8(128 + 100*math.Sin(float64(i%size.X)/5)*math.Cos(float64(i/size.X)/7) + rng.NormFloat64()*10)
					}
					img = g
				} else {
					c := image.NewRGBA(image.Rect(0, 0, size.X, size.Y))
					for y := range size.Y {
						for x := range size.X {
							c.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 5), uint8(rng.IntN(256)), 255})
						}
					}
					img = c
				}
				var buf bytes.Buffer
				if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
					t.Fatal(err)
				}
				got, small, err := Decode(buf.Bytes(), 1<<30)
				if err != nil {
					t.Fatalf("%v q%d gray %v: %v", size, q, gray, err)
				}
				compare(t, "", got, stdLuma(t, buf.Bytes()))
				checkEighth(t, "", small, got)
			}
		}
	}
}

// The inverse DCT matches the transform's definition, computed in
// floating point, within half a grey level plus rounding, over sparse and
// dense blocks with coefficients of a real image's range.
func TestIDCTReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var cos [8][8]float64
	for n := range 8 {
		for k := range 8 {
			cos[n][k] = math.Cos(float64((2*n+1)*k) * math.Pi / 16)
		}
	}
	c := func(k int) float64 {
		if k == 0 {
			return 1 / math.Sqrt2
		}
		return 1
	}
	worst := 0.0
	for i := range 2000 {
		var blk [64]int32
		nz := 1 + rng.IntN(64)
		if i%3 == 0 {
			nz = 1 + rng.IntN(6) // mostly low frequencies, as in real blocks
		}
		for range nz {
			k := rng.IntN(64)
			if i%3 == 0 {
				k = unzig[rng.IntN(10)]
			}
			blk[k] = int32(rng.IntN(801) - 400)
		}
		blk[0] = int32(rng.IntN(2001) - 1000)
		var out [64]byte
		idct(out[:], 8, &blk)
		for y := range 8 {
			for x := range 8 {
				s := 0.0
				for v := range 8 {
					for u := range 8 {
						s += c(u) * c(v) * float64(blk[v*8+u]) * cos[x][u] * cos[y][v]
					}
				}
				want := math.Min(255, math.Max(0, s/4+128))
				worst = math.Max(worst, math.Abs(float64(out[y*8+x])-want))
			}
		}
	}
	if worst > 1 {
		t.Errorf("largest difference from the exact transform: %.2f grey levels", worst)
	}
}

// Bad input: an error, never a panic, and nothing allocated for a header
// over the limit.
func TestBadInput(t *testing.T) {
	data, err := os.ReadFile("testdata/s420.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Decode(data, 117*75-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the pixel limit: %v", err)
	}
	for _, n := range []int{0, 1, 2, 3, 20, 200, 600, len(data) / 2, len(data) - 40} {
		if _, _, err := Decode(data[:n], 1<<30); !errors.Is(err, ErrFormat) {
			t.Errorf("first %d bytes: %v, want ErrFormat", n, err)
		}
	}
	if _, _, err := Decode([]byte("\x89PNG\r\n\x1a\n"), 1<<30); !errors.Is(err, ErrFormat) {
		t.Errorf("a PNG: %v", err)
	}
}

// FuzzDecode: any input gives an error or an image of the header's size,
// never a panic; the seeds (the fixtures, cut and flipped) run with every
// go test.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.jpg")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		for _, at := range []int{len(data) / 3, len(data) / 2, len(data) - 10} {
			b := bytes.Clone(data)
			b[at] ^= 0x5A
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, small, err := Decode(data, 1<<22)
		if err != nil {
			return
		}
		w, h, err := DecodeConfig(data)
		if err != nil || g.Rect != image.Rect(0, 0, w, h) || len(g.Pix) < (h-1)*g.Stride+w {
			t.Fatalf("image %v (stride %d, %d bytes) for a %dx%d header (%v)", g.Rect, g.Stride, len(g.Pix), w, h, err)
		}
		if small.Rect != image.Rect(0, 0, (w+7)/8, (h+7)/8) {
			t.Fatalf("eighth %v for a %dx%d header", small.Rect, w, h)
		}
	})
}

// BenchmarkDecode decodes the frames of BENCH_JPEG_DIR (default: a 720p
// frame made here) with this package and, as the baseline, with
// image/jpeg, and reports the ratio.
func BenchmarkDecode(b *testing.B) {
	var frames [][]byte
	if dir := os.Getenv("BENCH_JPEG_DIR"); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
		for _, f := range files {
			d, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			frames = append(frames, d)
		}
	}
	if len(frames) == 0 {
		frames = append(frames, syntheticFrame(b))
	}
	var ours, std float64
	b.Run("jpegluma", func(b *testing.B) {
		ours = runDecode(b, frames, func(d []byte) error { _, _, err := Decode(d, 1<<30); return err })
	})
	b.Run("image-jpeg", func(b *testing.B) {
		std = runDecode(b, frames, func(d []byte) error { _, err := jpeg.Decode(bytes.NewReader(d)); return err })
	})
	if std > 0 {
		b.Logf("luma decode %.2f ms per frame, image/jpeg %.2f ms: %.2fx", ours/1e6, std/1e6, ours/std)
	}
}

func runDecode(b *testing.B, frames [][]byte, fn func([]byte) error) float64 {
	for i := 0; b.Loop(); i++ {
		if err := fn(frames[i%len(frames)]); err != nil {
			b.Fatal(err)
		}
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// syntheticFrame is a 1280×720 picture with edges and noise, encoded by
// image/jpeg at quality 85.
func syntheticFrame(b *testing.B) []byte {
	rng := rand.New(rand.NewPCG(5, 6))
	img := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	for y := range 720 {
		for x := range 1280 {
			v := uint8(128 + 90*math.Sin(float64(x)/23)*math.Cos(float64(y)/31) + rng.NormFloat64()*6)
			img.Set(x, y, color.RGBA{v, uint8(x / 5), uint8(y / 3), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}
