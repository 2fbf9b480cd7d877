package faces_test

import (
	"context"
	"image"
	"image/draw"
	"os"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/faces"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
)

// scene draws generated frames: a textured background (40 px squares, so
// that a camera moving over it changes much of the picture) with the
// astronaut photo (one face, about 60 px) pasted at a position.
type scene struct {
	t     *testing.T
	w, h  int
	photo *image.Gray
}

func newScene(t *testing.T, w, h int) *scene {
	return &scene{t: t, w: w, h: h, photo: testPhoto(t, "astronaut.png", 300, 300)}
}

// testPhoto is a photo of the cascade's testdata in grey at w×h.
func testPhoto(t *testing.T, name string, w, h int) *image.Gray {
	data, err := os.ReadFile("../cascade/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := imageops.DecodeBytes(data, imageops.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	small, err := imageops.Resize(imageops.Gray(img), w, h)
	if err != nil {
		t.Fatal(err)
	}
	return small.(*image.Gray)
}

// frame is the scene seen from camera offset (dx, dy), the photo at (px,
// py), every pixel plus light (clamped).
func (s *scene) frame(dx, dy, px, py, light int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, s.w, s.h))
	for y := range s.h {
		for x := range s.w {
			v := 70
			if ((x+dx)/40+(y+dy)/40)%2 == 0 {
				v = 150
			}
			g.Pix[y*g.Stride+x] = uint8(v)
		}
	}
	r := s.photo.Rect.Add(image.Pt(px-dx, py-dy))
	draw.Draw(g, r, s.photo, image.Point{}, draw.Src)
	if light != 0 {
		for i, v := range g.Pix {
			g.Pix[i] = uint8(min(255, max(0, int(v)+light)))
		}
	}
	return g
}

func newStream(t *testing.T, opt faces.GateOptions) (*faces.Detector, *faces.Stream) {
	d, err := faces.New(faces.ModelLBP)
	if err != nil {
		t.Fatal(err)
	}
	s, err := faces.NewStream(d, opt)
	if err != nil {
		t.Fatal(err)
	}
	return d, s
}

var gateOpt = faces.Options{MinSize: 40, Quality: true}

// reduced makes step give the stream each frame's reduced picture too
// (DetectScaled), as face-detect does with a JPEG's eighth-size DC image.
var reduced bool

// bothWays runs fn with step calling Detect, then DetectScaled.
func bothWays(t *testing.T, fn func(t *testing.T)) {
	for _, r := range []bool{false, true} {
		reduced = r
		t.Run(map[bool]string{false: "Detect", true: "DetectScaled"}[r], fn)
	}
	reduced = false
}

// shrink averages s×s blocks of g (a JPEG's DC image is the s = 8 case).
func shrink(g *image.Gray, s int) *image.Gray {
	out := image.NewGray(image.Rect(0, 0, g.Rect.Dx()/s, g.Rect.Dy()/s))
	for y := range out.Rect.Dy() {
		for x := range out.Rect.Dx() {
			sum := 0
			for dy := range s {
				for dx := range s {
					sum += int(g.Pix[(y*s+dy)*g.Stride+x*s+dx])
				}
			}
			out.Pix[y*out.Stride+x] = uint8((sum + s*s/2) / (s * s))
		}
	}
	return out
}

// step runs one frame through the stream and through full detection and
// checks that the stream found every face full detection found, at
// about the same place.
func step(t *testing.T, d *faces.Detector, s *faces.Stream, g *image.Gray, want faces.Decision) faces.Result {
	t.Helper()
	ctx := context.Background()
	var small *image.Gray
	if reduced {
		small = shrink(g, 4)
	}
	got, dec, err := s.DetectScaled(ctx, g, small, gateOpt)
	if err != nil {
		t.Fatal(err)
	}
	if dec != want {
		t.Errorf("decision %q, want %q", dec, want)
	}
	full, err := d.DetectGray(ctx, g, gateOpt)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Faces) == 0 {
		t.Fatal("full detection finds no face in the generated frame")
	}
	for _, f := range full.Faces {
		best := 0.0
		for _, h := range got.Faces {
			best = max(best, overlap(f.Box.Rect(), h.Box.Rect()))
		}
		if best < 0.5 {
			t.Errorf("%s: face %+v of full detection not found (best IoU %.2f) in %+v", dec, f.Box, best, got.Faces)
		}
	}
	for _, h := range got.Faces {
		if h.Quality == nil {
			t.Errorf("%s: face %+v without quality", dec, h.Box)
		}
	}
	return got
}

func overlap(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	ia := float64(in.Dx() * in.Dy())
	return ia / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia)
}

// TestStreamStillAndMoving (with and without a reduced picture): a still
// face is detected once, followed
// (tracked), searched again where it is by a refresh pass, then followed
// while it moves,
// its motion explained by it; a second face that appears elsewhere is
// found through the motion it makes; an empty still scene is skipped.
// Without local searches (LocalScales -1) the moving face is found in
// its motion regions instead.
func TestStreamStillAndMoving(t *testing.T) { bothWays(t, testStreamStillAndMoving) }

func testStreamStillAndMoving(t *testing.T) {
	sc := newScene(t, 960, 540)
	for _, local := range []int{0, -1} {
		t.Logf("LocalScales %d", local)
		d, s := newStream(t, faces.GateOptions{FullEvery: 6, LocalScales: local})
		step(t, d, s, sc.frame(0, 0, 100, 30, 0), faces.Detected)
		for range 5 {
			step(t, d, s, sc.frame(0, 0, 100, 30, 0), faces.Tracked)
		}
		// The refresh pass: nothing changed, the face's own candidate
		// windows are searched again.
		step(t, d, s, sc.frame(0, 0, 100, 30, 0), faces.Motion)
		moving := faces.Tracked
		if local < 0 {
			moving = faces.Motion
		}
		for i := range 2 {
			step(t, d, s, sc.frame(0, 0, 100+4*(i+1), 30+2*(i+1), 0), moving)
		}
		// A second face appears at the other side.
		g := sc.frame(0, 0, 108, 34, 0)
		draw.Draw(g, sc.photo.Rect.Add(image.Pt(600, 200)), sc.photo, image.Point{}, draw.Src)
		if got := step(t, d, s, g, faces.Motion); len(got.Faces) != 2 {
			t.Errorf("LocalScales %d: %d faces after the second appeared, want 2", local, len(got.Faces))
		}
	}

	empty := &scene{t: t, w: 640, h: 360, photo: image.NewGray(image.Rect(0, 0, 1, 1))}
	_, s := newStream(t, faces.GateOptions{})
	ctx := context.Background()
	for i, want := range []faces.Decision{faces.Detected, faces.Skipped, faces.Skipped} {
		res, dec, err := s.Detect(ctx, empty.frame(0, 0, 0, 0, 0), gateOpt)
		if err != nil || dec != want || len(res.Faces) != 0 {
			t.Errorf("empty frame %d: %q (want %q), %d faces, %v", i, dec, want, len(res.Faces), err)
		}
	}
}

// TestStreamShakeLightSize (with and without a reduced picture): a camera
// that shakes, a sudden change of
// light and a frame of another size each degrade gating to full detection
// instead of missing the face.
func TestStreamShakeLightSize(t *testing.T) { bothWays(t, testStreamShakeLightSize) }

func testStreamShakeLightSize(t *testing.T) {
	sc := newScene(t, 960, 540)
	d, s := newStream(t, faces.GateOptions{FullEvery: 100})
	step(t, d, s, sc.frame(0, 0, 100, 30, 0), faces.Detected)
	step(t, d, s, sc.frame(0, 0, 100, 30, 0), faces.Tracked)
	for i, off := range []image.Point{{14, 9}, {-10, -12}, {12, 10}} {
		t.Logf("shake %d", i)
		step(t, d, s, sc.frame(off.X, off.Y, 100, 30, 0), faces.Detected)
	}
	step(t, d, s, sc.frame(12, 10, 100, 30, 0), faces.Tracked)
	step(t, d, s, sc.frame(12, 10, 100, 30, 60), faces.Detected) // the light comes on
	step(t, d, s, sc.frame(12, 10, 100, 30, 60), faces.Tracked)
	big := newScene(t, 1024, 576)
	step(t, d, s, big.frame(0, 0, 300, 100, 0), faces.Detected) // another frame size
	step(t, d, s, big.frame(0, 0, 300, 100, 0), faces.Tracked)
}

func TestStreamBadOptions(t *testing.T) {
	d, err := faces.New(faces.ModelLBP)
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []faces.GateOptions{{FullEvery: -1}, {FullEvery: 1001}, {MaxMotion: 1.5}, {Threshold: 300}, {LocalScales: 21}} {
		if _, err := faces.NewStream(d, opt); err == nil {
			t.Errorf("%+v accepted", opt)
		}
	}
}
