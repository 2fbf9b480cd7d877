package quality_test

import (
	"errors"
	"image"
	"os"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
	"github.com/tianshu-ai/tianshu/internal/vision/quality"
)

// The astronaut's face, as OpenCV's Haar cascade finds it.
var face = image.Rect(177, 66, 177+95, 66+95)

func astronaut(t *testing.T) image.Image {
	t.Helper()
	f, err := os.Open("../cascade/testdata/astronaut.png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := imageops.Decode(f, imageops.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestAssess(t *testing.T) {
	img := astronaut(t)
	g := imageops.Gray(img)
	m, err := quality.Assess(g, face)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sharp face: %+v", m)
	if m.Size != 95 || m.Score < 0.5 || m.Score > 1 || m.Frontalness < 0.5 {
		t.Errorf("sharp frontal face: %+v", m)
	}

	// The same face blurred scores lower, on sharpness above all.
	blurred, _ := imageops.Mask(img, []image.Rectangle{face}, imageops.Blur, 3)
	mb, _ := quality.Assess(imageops.Gray(blurred), face)
	t.Logf("blurred: %+v", mb)
	if mb.Sharpness > m.Sharpness/3 || mb.Score >= m.Score {
		t.Errorf("blurred face: %+v", mb)
	}

	// The same face at a third of the size scores lower.
	small, _ := imageops.Resize(img, 512/3, 512/3)
	sface := image.Rect(face.Min.X/3, face.Min.Y/3, face.Max.X/3, face.Max.Y/3)
	ms, _ := quality.Assess(imageops.Gray(small), sface)
	t.Logf("small: %+v", ms)
	if ms.Score >= m.Score {
		t.Errorf("small face: %+v", ms)
	}

	// A box half off the face is less symmetric than the face.
	off := face.Add(image.Pt(45, 0))
	mo, _ := quality.Assess(g, off)
	t.Logf("off-centre: %+v", mo)
	if mo.Frontalness >= m.Frontalness {
		t.Errorf("off-centre box: frontalness %.2f ≥ %.2f", mo.Frontalness, m.Frontalness)
	}

	// Darkened, it scores lower on brightness.
	dark := image.NewGray(g.Rect)
	for i, v := range g.Pix {
		dark.Pix[i] = v / 6
	}
	md, _ := quality.Assess(dark, face)
	if md.Score >= m.Score {
		t.Errorf("dark face: %+v", md)
	}

	all := quality.AssessAll(g, []image.Rectangle{off, face, image.Rect(900, 900, 950, 950)})
	if quality.Best(all) != 1 || all[2].Score != 0 {
		t.Errorf("best of %+v", all)
	}
	if quality.Best(nil) != -1 {
		t.Error("best of none")
	}
}

func TestAssessEdgeCases(t *testing.T) {
	flat := image.NewGray(image.Rect(0, 0, 50, 50))
	m, err := quality.Assess(flat, flat.Rect)
	if err != nil || m.Score != 0 || m.Sharpness != 0 || m.Frontalness != 0 {
		t.Errorf("flat: %+v %v", m, err)
	}
	one := image.NewGray(image.Rect(0, 0, 1, 1))
	if m, err := quality.Assess(one, one.Rect); err != nil || m.Score != 0 {
		t.Errorf("1x1: %+v %v", m, err)
	}
	if _, err := quality.Assess(flat, image.Rect(60, 60, 70, 70)); !errors.Is(err, quality.ErrEmptyBox) {
		t.Errorf("outside: %v", err)
	}
	// A box partly outside is clamped.
	m, err = quality.Assess(flat, image.Rect(40, 40, 70, 70))
	if err != nil || m.Box != image.Rect(40, 40, 50, 50) {
		t.Errorf("clamped: %+v %v", m, err)
	}
}
