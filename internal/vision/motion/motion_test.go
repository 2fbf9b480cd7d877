package motion_test

import (
	"errors"
	"image"
	"image/color"
	"image/draw"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/motion"
)

// scene is a textured 640×480 frame with a bright square at sq.
func scene(sq image.Rectangle) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := 0; y < 480; y++ {
		for x := 0; x < 640; x++ {
			v := uint8(60 + (x/16+y/16)%2*20) // a checkerboard: texture, not motion
			m.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	draw.Draw(m, sq, image.NewUniform(color.RGBA{240, 240, 240, 255}), image.Point{}, draw.Src)
	return m
}

func TestMotion(t *testing.T) {
	d, err := motion.New(motion.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a := scene(image.Rect(100, 100, 180, 180))
	r, err := d.Update(a)
	if err != nil || !r.First || r.Motion {
		t.Fatalf("first frame: %+v %v", r, err)
	}
	// The same frame again: no motion.
	if r, _ := d.Update(a); r.Motion || r.Ratio != 0 || len(r.Boxes) != 0 {
		t.Errorf("still frame: %+v", r)
	}
	// The square moves right by 200 px: two changed places (where it was,
	// where it is), boxes around them.
	b := scene(image.Rect(300, 100, 380, 180))
	r, _ = d.Update(b)
	if !r.Motion || len(r.Boxes) != 2 {
		t.Fatalf("moved square: %+v", r)
	}
	for _, want := range []image.Rectangle{image.Rect(100, 100, 180, 180), image.Rect(300, 100, 380, 180)} {
		ok := false
		for _, box := range r.Boxes {
			if box.Intersect(want) == want && box.Dx() < want.Dx()+30 {
				ok = true
			}
		}
		if !ok {
			t.Errorf("no box around %v in %v", want, r.Boxes)
		}
	}
	// Frame-size change starts over.
	if r, _ := d.Update(image.NewGray(image.Rect(0, 0, 320, 240))); !r.First {
		t.Errorf("new size: %+v", r)
	}
}

func TestMotionMask(t *testing.T) {
	left := [][]image.Point{{{0, 0}, {320, 0}, {320, 480}, {0, 480}}}
	bm := image.NewGray(image.Rect(0, 0, 4, 3)) // left half of a 4-wide bitmap
	for y := 0; y < 3; y++ {
		bm.SetGray(0, y, color.Gray{255})
		bm.SetGray(1, y, color.Gray{255})
	}
	for name, cfg := range map[string]motion.Config{"polygon": {Polygons: left}, "bitmap": {Bitmap: bm}} {
		d, err := motion.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d.Update(scene(image.Rect(400, 300, 480, 380)))
		// Motion on the right only: ignored.
		if r, _ := d.Update(scene(image.Rect(500, 300, 580, 380))); r.Motion || r.Ratio != 0 {
			t.Errorf("%s: motion outside the region reported: %+v", name, r)
		}
		// Motion crossing into the left half: reported, boxes inside it.
		r, _ := d.Update(scene(image.Rect(200, 300, 280, 380)))
		if !r.Motion {
			t.Fatalf("%s: motion inside the region missed: %+v", name, r)
		}
		for _, box := range r.Boxes {
			if box.Max.X > 330 {
				t.Errorf("%s: box %v leaves the region", name, box)
			}
		}
	}
}

func TestMotionSmallAndBad(t *testing.T) {
	d, _ := motion.New(motion.Config{})
	one := image.NewGray(image.Rect(0, 0, 1, 1))
	if r, err := d.Update(one); err != nil || !r.First {
		t.Errorf("1x1: %+v %v", r, err)
	}
	one2 := image.NewGray(image.Rect(0, 0, 1, 1))
	one2.Pix[0] = 255
	if _, err := d.Update(one2); err != nil {
		t.Errorf("1x1 again: %v", err)
	}
	if _, err := d.Update(image.NewGray(image.Rect(0, 0, 0, 0))); err == nil {
		t.Error("empty frame accepted")
	}
	for _, cfg := range []motion.Config{{Width: 2}, {Threshold: 300}, {MinRatio: 2}, {Polygons: [][]image.Point{{{0, 0}, {1, 1}}}}, {Bitmap: &image.Gray{}}} {
		if _, err := motion.New(cfg); !errors.Is(err, motion.ErrConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	d.Reset()
	if r, _ := d.Update(one); !r.First {
		t.Error("reset did not forget the previous frame")
	}
}

// shrink averages s×s blocks of a grey frame (what a JPEG's DC image is).
func shrink(m *image.RGBA, s int) *image.Gray {
	b := m.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dx()/s, b.Dy()/s))
	for y := range out.Rect.Dy() {
		for x := range out.Rect.Dx() {
			sum := 0
			for dy := range s {
				for dx := range s {
					sum += int(m.Pix[m.PixOffset(x*s+dx, y*s+dy)])
				}
			}
			out.Pix[y*out.Stride+x] = uint8((sum + s*s/2) / (s * s))
		}
	}
	return out
}

// UpdateSmall, given the frames already shrunk, sees what Update sees in
// the frames: the same motion, boxes within a working pixel or two, in
// the frame's coordinates; a picture narrower than the working width is
// refused.
func TestUpdateSmall(t *testing.T) {
	full, _ := motion.New(motion.Config{})
	small, _ := motion.New(motion.Config{})
	frames := []*image.RGBA{scene(image.Rect(100, 100, 180, 180)), scene(image.Rect(100, 100, 180, 180)), scene(image.Rect(300, 100, 380, 180))}
	for i, f := range frames {
		want, err := full.Update(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := small.UpdateSmall(f.Bounds(), shrink(f, 2))
		if err != nil {
			t.Fatal(err)
		}
		if got.First != want.First || got.Motion != want.Motion || len(got.Boxes) != len(want.Boxes) {
			t.Fatalf("frame %d: small %+v, full %+v", i, got, want)
		}
		for j := range want.Boxes {
			a, b := got.Boxes[j], want.Boxes[j]
			if abs(a.Min.X-b.Min.X) > 8 || abs(a.Min.Y-b.Min.Y) > 8 || abs(a.Max.X-b.Max.X) > 8 || abs(a.Max.Y-b.Max.Y) > 8 {
				t.Errorf("frame %d box %d: small %v, full %v", i, j, a, b)
			}
		}
	}
	if _, err := small.UpdateSmall(frames[0].Bounds(), shrink(frames[0], 8)); !errors.Is(err, motion.ErrSmall) {
		t.Errorf("an 80 px picture for a 160 px working width: %v", err)
	}
}

func abs(v int) int { return max(v, -v) }
