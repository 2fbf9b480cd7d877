package faces_test

import (
	"context"
	"image"
	"image/draw"
	"math/rand/v2"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/faces"
)

// TestStreamStillNoise: on a still picture with sensor noise (the demo's
// crowd photo letterboxed to 1280×720, each frame's pixels ±3 grey levels
// at random), borderline faces cross the detector's threshold on some
// frames and not on others. Every face that full detection finds on a
// frame, the stream finds on that frame too, though it searches the whole
// frame only once: near-faces that noise hides at a refresh pass or on a
// watched frame are watched still.
func TestStreamStillNoise(t *testing.T) {
	photo := testPhoto(t, "messi5.jpg", 1153, 720)
	still := image.NewGray(image.Rect(0, 0, 1280, 720))
	draw.Draw(still, photo.Bounds().Add(image.Pt((1280-1153)/2, 0)), photo, image.Point{}, draw.Src)
	r := rand.New(rand.NewPCG(1, 2))
	frame := func() *image.Gray {
		g := image.NewGray(still.Rect)
		for i, v := range still.Pix {
			g.Pix[i] = uint8(min(255, max(0, int(v)+r.IntN(7)-3)))
		}
		return g
	}
	d, err := faces.New(faces.ModelHaar)
	if err != nil {
		t.Fatal(err)
	}
	s, err := faces.NewStream(d, faces.GateOptions{FullEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opt := faces.Options{MinSize: 40}
	var whole, flicker int
	var last []faces.Face
	const frames = 30
	for i := range frames {
		g := frame()
		full, err := d.DetectGray(ctx, g, opt)
		if err != nil {
			t.Fatal(err)
		}
		res, dec, err := s.Detect(ctx, g, opt)
		if err != nil {
			t.Fatal(err)
		}
		if dec == faces.Detected {
			whole++
		}
		for _, f := range full.Faces {
			if i > 0 && !overlapsAny(f.Box.Rect(), last) {
				flicker++
			}
			ok := false
			for _, w := range res.Faces {
				ok = ok || overlap(f.Box.Rect(), w.Box.Rect()) >= 0.3
			}
			if !ok {
				t.Errorf("frame %d (%s): full detection's face %v not found", i, dec, f.Box.Rect())
			}
		}
		last = full.Faces
	}
	if whole != 1 {
		t.Errorf("the whole frame searched on %d frames, want 1 (the first)", whole)
	}
	if flicker == 0 {
		t.Fatal("full detection found no face that it had not found on the frame before: the noise tips no borderline face")
	}
	t.Logf("full detection found a face it had not found on the frame before %d times", flicker)
}

// overlapsAny reports whether r overlaps one of fs by IoU ≥ 0.3.
func overlapsAny(r image.Rectangle, fs []faces.Face) bool {
	for _, f := range fs {
		if overlap(r, f.Box.Rect()) >= 0.3 {
			return true
		}
	}
	return false
}
