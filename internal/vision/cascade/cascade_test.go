package cascade_test

import (
	"context"
	"errors"
	"image"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/cascade"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
)

func TestLoadEmbedded(t *testing.T) {
	h, err := cascade.FrontalFaceHaar()
	if err != nil {
		t.Fatal(err)
	}
	if w, hh := h.WindowSize(); h.Feature() != cascade.Haar || w != 24 || hh != 24 || h.Stages() != 25 {
		t.Errorf("haar: %v %dx%d %d stages", h.Feature(), w, hh, h.Stages())
	}
	l, err := cascade.FrontalFaceLBP()
	if err != nil {
		t.Fatal(err)
	}
	if w, hh := l.WindowSize(); l.Feature() != cascade.LBP || w != 24 || hh != 24 || l.Stages() != 20 {
		t.Errorf("lbp: %v %dx%d %d stages", l.Feature(), w, hh, l.Stages())
	}
}

func TestLoadErrors(t *testing.T) {
	cases := map[string]struct {
		xml  string
		want error
	}{
		"not xml":    {"hello", cascade.ErrInvalid},
		"wrong root": {"<foo/>", cascade.ErrInvalid},
		"old format": {`<opencv_storage><haarcascade_frontalface type_id="opencv-haar-classifier"></haarcascade_frontalface></opencv_storage>`, cascade.ErrOldFormat},
		"hog":        {`<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HOG</featureType></cascade></opencv_storage>`, cascade.ErrUnsupported},
		"bad feature index": {`<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>
			<height>24</height><width>24</width><stages><_><stageThreshold>0</stageThreshold><weakClassifiers>
			<_><internalNodes>0 -1 7 0.5</internalNodes><leafValues>1 -1</leafValues></_></weakClassifiers></_></stages>
			<features><_><rects><_>0 0 2 2 -1.</_><_>0 0 1 2 2.</_></rects></_></features></cascade></opencv_storage>`, cascade.ErrInvalid},
		"rect outside window": {`<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>
			<height>24</height><width>24</width><stages><_><stageThreshold>0</stageThreshold><weakClassifiers>
			<_><internalNodes>0 -1 0 0.5</internalNodes><leafValues>1 -1</leafValues></_></weakClassifiers></_></stages>
			<features><_><rects><_>20 0 8 2 -1.</_><_>0 0 1 2 2.</_></rects></_></features></cascade></opencv_storage>`, cascade.ErrInvalid},
		"tilted rect outside window": {`<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>
			<height>24</height><width>24</width><stages><_><stageThreshold>0</stageThreshold><weakClassifiers>
			<_><internalNodes>0 -1 0 0.5</internalNodes><leafValues>1 -1</leafValues></_></weakClassifiers></_></stages>
			<features><_><rects><_>1 0 8 2 -1.</_><_>2 0 1 2 2.</_></rects><tilted>1</tilted></_></features></cascade></opencv_storage>`, cascade.ErrInvalid},
		"window too big": {`<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>
			<height>300</height><width>300</width></cascade></opencv_storage>`, cascade.ErrUnsupported},
	}
	for name, c := range cases {
		_, err := cascade.Load(strings.NewReader(c.xml))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
}

// A tiny hand-made cascade: one stage, one stump on "left half darker than
// right half" — checks tree evaluation, thresholds and the sliding window
// without a trained model.
func TestHandMadeCascade(t *testing.T) {
	xml := `<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>
		<height>8</height><width>8</width><stages><_><stageThreshold>0.5</stageThreshold><weakClassifiers>
		<_><internalNodes>0 -1 0 0.5</internalNodes><leafValues>-1 1</leafValues></_></weakClassifiers></_></stages>
		<features><_><rects><_>0 0 8 8 -1.</_><_>4 0 4 8 2.</_></rects></_></features></cascade></opencv_storage>`
	c, err := cascade.Load(strings.NewReader(xml))
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 40, 20))
	for y := 0; y < 20; y++ {
		for x := 0; x < 40; x++ {
			v := uint8(20)
			if x >= 20 {
				v = 220
			}
			img.Pix[y*img.Stride+x] = v
		}
	}
	dets, err := c.Detect(context.Background(), img, cascade.Params{ScaleFactor: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) == 0 {
		t.Fatal("no windows across the edge")
	}
	for _, d := range dets {
		// Only windows whose right half is brighter than their left pass.
		if d.Rect.Min.X >= 20 || d.Rect.Max.X <= 20 {
			t.Errorf("window %v does not straddle the edge", d.Rect)
		}
	}
}

func TestDetectEdgeCases(t *testing.T) {
	c, err := cascade.FrontalFaceLBP()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, sz := range []image.Point{{1, 1}, {23, 100}, {24, 24}, {0, 0}} {
		img := image.NewGray(image.Rect(0, 0, sz.X, sz.Y))
		if _, err := c.Detect(ctx, img, cascade.DefaultParams()); err != nil {
			t.Errorf("%v: %v", sz, err)
		}
	}
	img := image.NewGray(image.Rect(0, 0, 64, 64))
	if _, err := c.Detect(ctx, img, cascade.Params{ScaleFactor: 1}); err == nil {
		t.Error("scale factor 1 accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Detect(cctx, img, cascade.DefaultParams()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// A sub-image: boxes come back in the parent's coordinates.
	g := loadGray(t, "astronaut.png")
	full, _ := c.Detect(ctx, g, cascade.DefaultParams())
	sub := g.SubImage(image.Rect(100, 0, 400, 300)).(*image.Gray)
	part, _ := c.Detect(ctx, sub, cascade.DefaultParams())
	if len(full) == 0 || len(part) == 0 {
		t.Fatalf("no face: full %v, part %v", full, part)
	}
	found := false
	for _, d := range part {
		for _, f := range full {
			if imageops.IoU(d.Rect, f.Rect) > 0.7 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("sub-image boxes %v not in parent coordinates (full %v)", part, full)
	}
}

func TestGroupRectangles(t *testing.T) {
	r := func(x, y, s int) image.Rectangle { return image.Rect(x, y, x+s, y+s) }
	rects := []image.Rectangle{r(100, 100, 50), r(102, 101, 50), r(99, 100, 52), r(101, 99, 48), // a face
		r(300, 300, 40),                  // a lone window
		r(110, 110, 20), r(111, 110, 20)} // small pair inside the face
	got := cascade.GroupRectangles(rects, 2, 0.2)
	if len(got) != 1 || got[0].Neighbors != 4 {
		t.Fatalf("got %v", got)
	}
	if want := image.Rect(100, 100, 150, 150); got[0].Rect != want {
		t.Errorf("average %v, want %v", got[0].Rect, want)
	}
	if n := len(cascade.GroupRectangles(rects, 0, 0.2)); n != len(rects) {
		t.Errorf("minNeighbors 0: %d boxes", n)
	}
}

func BenchmarkDetect(b *testing.B) {
	for _, name := range []string{"haar", "lbp"} {
		var c *cascade.Cascade
		var err error
		if name == "haar" {
			c, err = cascade.FrontalFaceHaar()
		} else {
			c, err = cascade.FrontalFaceLBP()
		}
		if err != nil {
			b.Fatal(err)
		}
		g := loadGray(b, "facemark_example.jpg")
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.Detect(context.Background(), g, cascade.DefaultParams()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
