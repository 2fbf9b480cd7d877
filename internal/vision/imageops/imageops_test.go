package imageops_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// allocDuring returns the bytes allocated while f runs.
func allocDuring(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// pngHeader is a PNG signature and an IHDR chunk (with a valid CRC)
// announcing w×h 8-bit RGB, and nothing else: a decompression bomb's head.
func pngHeader(w, h uint32) []byte { return pngHeaderOf(w, h, 8, 2) }

// pngHeaderOf is pngHeader with a given bit depth and colour type.
func pngHeaderOf(w, h uint32, depth, colorType byte) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = depth, colorType
	binary.Write(&buf, binary.BigEndian, uint32(13))
	buf.Write(ihdr)
	binary.Write(&buf, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	// An IDAT that would inflate to w×h×3 bytes is not needed: the header
	// alone must be refused.
	return buf.Bytes()
}

// jpegHeader is SOI, a JFIF APP0 and a baseline SOF0 announcing w×h with
// 3 components.
func jpegHeader(w, h uint16) []byte {
	b := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
		0xFF, 0xC0, 0, 17, 8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 3,
		1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}
	return b
}

// gifHeader is a GIF89a logical screen descriptor of w×h.
func gifHeader(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	b = append(b, 0, 0, 0)
	// One image descriptor of the full size, no colour table, min code 8.
	b = append(b, 0x2C, 0, 0, 0, 0)
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	b = append(b, 0x80, 0, 0, 0, 0, 0, 0, 8)
	return b
}

func TestDecompressionBomb(t *testing.T) {
	for name, data := range map[string][]byte{
		"png":  pngHeader(20000, 20000),
		"jpeg": jpegHeader(20000, 20000),
		"gif":  gifHeader(20000, 20000),
	} {
		var err error
		alloc := allocDuring(func() { _, _, err = imageops.DecodeBytes(data, imageops.Limits{}) })
		if !errors.Is(err, imageops.ErrTooLarge) {
			t.Errorf("%s: err %v, want ErrTooLarge", name, err)
		}
		// 400 MP × 3 bytes would be 1.2 GB; the check costs next to nothing.
		if alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated refusing a bomb", name, alloc)
		}
	}
	// 25 MP is under the pixel limit, but at 16-bit RGBA it would take
	// 200 MB: over the memory limit.
	if _, _, err := imageops.DecodeBytes(pngHeaderOf(5000, 5000, 16, 6), imageops.Limits{}); !errors.Is(err, imageops.ErrTooLarge) {
		t.Errorf("16-bit 25 MP: %v", err)
	}
	// A tighter caller limit applies the same way.
	if _, _, err := imageops.DecodeBytes(read(t, "rgb.png"), imageops.Limits{MaxPixels: 1000}); !errors.Is(err, imageops.ErrTooLarge) {
		t.Errorf("MaxPixels 1000: %v", err)
	}
	if _, _, err := imageops.Decode(bytes.NewReader(read(t, "rgb.png")), imageops.Limits{MaxBytes: 100}); !errors.Is(err, imageops.ErrTooLarge) {
		t.Errorf("MaxBytes 100: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	jpg := read(t, "rgb.jpg")
	png := read(t, "rgb.png")
	corruptPNG := bytes.Clone(png)
	corruptPNG[len(corruptPNG)/2] ^= 0xFF // breaks the IDAT CRC or stream
	cases := map[string][]byte{
		"empty":             nil,
		"not an image":      []byte("hello, world"),
		"truncated jpeg":    jpg[:len(jpg)/2],
		"jpeg header only":  jpg[:200],
		"truncated png":     png[:len(png)/2],
		"corrupt png":       corruptPNG,
		"png signature":     png[:8],
		"zero-size png":     pngHeader(0, 10),
		"zero-size jpeg":    jpegHeader(0, 10),
		"garbage after soi": append([]byte{0xFF, 0xD8}, bytes.Repeat([]byte{0x13}, 1000)...),
	}
	for name, data := range cases {
		if _, _, err := imageops.DecodeBytes(data, imageops.Limits{}); !errors.Is(err, imageops.ErrFormat) {
			t.Errorf("%s: err %v, want ErrFormat", name, err)
		}
	}
	// Flipped bytes inside a JPEG's entropy-coded data may decode to wrong
	// pixels, which is fine, but must give an error or an image of the
	// announced size — never a panic.
	for _, off := range []int{len(jpg) / 3, len(jpg) / 2, len(jpg) - 40} {
		bad := bytes.Clone(jpg)
		bad[off] ^= 0x5A
		img, _, err := imageops.DecodeBytes(bad, imageops.Limits{})
		if err == nil && img.Bounds().Size() != image.Pt(96, 60) {
			t.Errorf("corrupt jpeg at %d: size %v", off, img.Bounds())
		}
	}
}

func TestDecodeKinds(t *testing.T) {
	ref := decodeGray(t, "gray.jpg")
	for _, c := range []struct {
		file string
		kind image.Image
	}{
		{"rgb.jpg", &image.YCbCr{}},
		{"gray.jpg", &image.Gray{}},
		{"cmyk.jpg", &image.CMYK{}},
		{"rgb.png", &image.NRGBA{}},
	} {
		img, _, err := imageops.DecodeBytes(read(t, c.file), imageops.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if got, want := typeName(img), typeName(c.kind); got != want && !(c.file == "rgb.png" && got == "*image.RGBA") {
			t.Errorf("%s decodes to %s, want %s", c.file, got, want)
		}
		g := imageops.Gray(img)
		if g.Rect.Size() != image.Pt(96, 60) {
			t.Fatalf("%s: gray size %v", c.file, g.Rect)
		}
		// Every variant is the same picture: the luma agrees with the
		// grayscale JPEG to within JPEG noise.
		if d := meanAbsDiff(g, ref); d > 6 {
			t.Errorf("%s: mean |Δ| %.1f against gray.jpg", c.file, d)
		}
	}
	for _, f := range []string{"1x1.jpg", "1x1.png"} {
		img, _, err := imageops.DecodeBytes(read(t, f), imageops.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if img.Bounds().Size() != image.Pt(1, 1) {
			t.Errorf("%s: %v", f, img.Bounds())
		}
		if g := imageops.Gray(img); g.Pix[0] < 110 || g.Pix[0] > 130 { // 0.299·200+0.587·100+0.114·50 ≈ 124
			t.Errorf("%s: gray %d", f, g.Pix[0])
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *image.YCbCr:
		return "*image.YCbCr"
	case *image.Gray:
		return "*image.Gray"
	case *image.CMYK:
		return "*image.CMYK"
	case *image.NRGBA:
		return "*image.NRGBA"
	case *image.RGBA:
		return "*image.RGBA"
	}
	return "other"
}

func decodeGray(t *testing.T, name string) *image.Gray {
	t.Helper()
	img, _, err := imageops.DecodeBytes(read(t, name), imageops.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return imageops.Gray(img)
}

func meanAbsDiff(a, b *image.Gray) float64 {
	var s float64
	for y := 0; y < a.Rect.Dy(); y++ {
		for x := 0; x < a.Rect.Dx(); x++ {
			d := float64(a.GrayAt(x, y).Y) - float64(b.GrayAt(x, y).Y)
			if d < 0 {
				d = -d
			}
			s += d
		}
	}
	return s / float64(a.Rect.Dx()*a.Rect.Dy())
}

// A CMYK JPEG written by Go itself (Go encodes a *image.CMYK as YCbCr, so
// this checks the round trip the issue asks for) and a grayscale one.
func TestEncodeRoundTrip(t *testing.T) {
	cm := image.NewCMYK(image.Rect(0, 0, 32, 16))
	for i := 0; i < len(cm.Pix); i += 4 {
		cm.Pix[i], cm.Pix[i+1], cm.Pix[i+2], cm.Pix[i+3] = 0, 200, 200, 0 // red
	}
	b, err := imageops.EncodeJPEGBytes(cm, 90)
	if err != nil {
		t.Fatal(err)
	}
	img, format, err := imageops.DecodeBytes(b, imageops.Limits{})
	if err != nil || format != "jpeg" {
		t.Fatal(format, err)
	}
	r, g, bl, _ := img.At(10, 10).RGBA()
	if r>>8 < 220 || g>>8 > 80 || bl>>8 > 80 {
		t.Errorf("red CMYK came back as %d,%d,%d", r>>8, g>>8, bl>>8)
	}
	gray := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range gray.Pix {
		gray.Pix[i] = 77
	}
	var buf bytes.Buffer
	if err := imageops.EncodeJPEG(&buf, gray, 0); err != nil {
		t.Fatal(err)
	}
	back, err := jpeg.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if v := color.GrayModel.Convert(back.At(3, 3)).(color.Gray).Y; v < 75 || v > 79 {
		t.Errorf("gray 77 came back as %d", v)
	}
	// Quality changes the size.
	big := imageops.ToRGBA(decodeGray(t, "rgb.jpg"))
	lo, _ := imageops.EncodeJPEGBytes(big, 20)
	hi, _ := imageops.EncodeJPEGBytes(big, 95)
	if len(lo) >= len(hi) {
		t.Errorf("quality 20: %d bytes, 95: %d bytes", len(lo), len(hi))
	}
}

func TestCropResizeMask(t *testing.T) {
	img, _, err := imageops.DecodeBytes(read(t, "rgb.jpg"), imageops.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	crop, r, err := imageops.Crop(img, image.Rect(80, 50, 100, 70), 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if want := image.Rect(70, 40, 96, 60); r != want || crop.Rect.Size() != want.Size() {
		t.Errorf("crop %v (%v), want clamped %v", r, crop.Rect, want)
	}
	if _, _, err := imageops.Crop(img, image.Rect(200, 200, 210, 210), 0.1); err == nil {
		t.Error("crop outside the image succeeded")
	}
	for _, sz := range []image.Point{{48, 30}, {200, 125}, {1, 1}, {96, 60}} {
		out, err := imageops.Resize(img, sz.X, sz.Y)
		if err != nil {
			t.Fatal(err)
		}
		if out.Bounds().Size() != sz {
			t.Errorf("resize to %v gave %v", sz, out.Bounds())
		}
	}
	if _, err := imageops.Resize(img, 0, 10); !errors.Is(err, imageops.ErrBadSize) {
		t.Errorf("resize to 0: %v", err)
	}
	if _, err := imageops.Resize(img, 100000, 100000); !errors.Is(err, imageops.ErrBadSize) {
		t.Errorf("resize to 10 GP: %v", err)
	}
	// A flat image stays flat through resizing in both directions.
	flat := image.NewGray(image.Rect(0, 0, 37, 23))
	for i := range flat.Pix {
		flat.Pix[i] = 93
	}
	for _, sz := range []image.Point{{11, 7}, {100, 61}} {
		out, _ := imageops.ResizeGray(flat, sz.X, sz.Y)
		for _, v := range out.Pix {
			if v != 93 {
				t.Fatalf("flat 93 resized to %v has %d", sz, v)
			}
		}
	}
	region := image.Rect(20, 10, 60, 50)
	for _, mode := range []imageops.MaskMode{imageops.Mosaic, imageops.Blur} {
		out, err := imageops.Mask(img, []image.Rectangle{region, image.Rect(-5, -5, 3, 3)}, mode, 0)
		if err != nil {
			t.Fatal(err)
		}
		src := imageops.ToRGBA(img)
		changedIn, changedOut := 0, 0
		for y := 0; y < 60; y++ {
			for x := 0; x < 96; x++ {
				if out.RGBAAt(x, y) != src.RGBAAt(x, y) {
					if image.Pt(x, y).In(region) || image.Pt(x, y).In(image.Rect(0, 0, 3, 3)) {
						changedIn++
					} else {
						changedOut++
					}
				}
			}
		}
		if changedOut != 0 || changedIn < region.Dx()*region.Dy()/2 {
			t.Errorf("mode %d: %d pixels changed inside, %d outside", mode, changedIn, changedOut)
		}
		// Masking loses detail: the region's variance drops a lot.
		if vs, vo := variance(src, region), variance(out, region); vo > vs/2 {
			t.Errorf("mode %d: variance %f → %f", mode, vs, vo)
		}
	}
	if _, err := imageops.Mask(img, nil, 0, 0); err == nil {
		t.Error("mask mode 0 accepted")
	}
}

// variance of the green channel's deviation from its local 5x5 mean —
// a measure of fine detail.
func variance(m *image.RGBA, r image.Rectangle) float64 {
	var s, n float64
	for y := r.Min.Y + 2; y < r.Max.Y-2; y++ {
		for x := r.Min.X + 2; x < r.Max.X-2; x++ {
			var mean float64
			for dy := -2; dy <= 2; dy++ {
				for dx := -2; dx <= 2; dx++ {
					mean += float64(m.RGBAAt(x+dx, y+dy).G)
				}
			}
			d := float64(m.RGBAAt(x, y).G) - mean/25
			s += d * d
			n++
		}
	}
	return s / n
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"rgb.jpg", "gray.jpg", "cmyk.jpg", "rgb.png", "1x1.png"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(pngHeader(20000, 20000))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, _, err := imageops.DecodeBytes(data, imageops.Limits{MaxPixels: 1 << 20})
		if err != nil {
			return
		}
		if px := img.Bounds().Dx() * img.Bounds().Dy(); px > 1<<20 {
			t.Fatalf("decoded %v over the limit", img.Bounds())
		}
		_ = imageops.Gray(img)
	})
}

func TestIoU(t *testing.T) {
	a := image.Rect(0, 0, 10, 10)
	for _, c := range []struct {
		b    image.Rectangle
		want float64
	}{
		{a, 1},
		{image.Rect(20, 20, 30, 30), 0},
		{image.Rect(5, 0, 15, 10), 50.0 / 150},
		{image.Rect(0, 0, 5, 5), 25.0 / 100},
	} {
		if got := imageops.IoU(a, c.b); got != c.want {
			t.Errorf("IoU(%v, %v) = %v, want %v", a, c.b, got, c.want)
		}
	}
}

// TestLuma: Luma gives what Gray gives, over the Y plane of a YCbCr image
// (a sub-image too) without copying it.
func TestLuma(t *testing.T) {
	m := image.NewYCbCr(image.Rect(0, 0, 37, 21), image.YCbCrSubsampleRatio420)
	for i := range m.Y {
		m.Y[i] = uint8(i * 7)
	}
	for _, img := range []*image.YCbCr{m, m.SubImage(image.Rect(5, 3, 30, 20)).(*image.YCbCr)} {
		got, want := imageops.Luma(img), imageops.Gray(img)
		if got.Rect != want.Rect {
			t.Fatalf("rect %v, want %v", got.Rect, want.Rect)
		}
		for y := got.Rect.Min.Y; y < got.Rect.Max.Y; y++ {
			for x := got.Rect.Min.X; x < got.Rect.Max.X; x++ {
				if g, w := got.GrayAt(x, y), want.GrayAt(x, y); g != w {
					t.Fatalf("(%d, %d): %v, want %v", x, y, g, w)
				}
			}
		}
		if &got.Pix[0] != &img.Y[img.YOffset(img.Rect.Min.X, img.Rect.Min.Y)] {
			t.Error("Luma copied the Y plane")
		}
	}
}
