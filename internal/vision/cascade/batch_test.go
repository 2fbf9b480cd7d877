package cascade_test

import (
	"context"
	"image"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/cascade"
)

// synthetic images: noise, gradients, flat areas and mixtures, at sizes
// that are not multiples of 8.
func syntheticGrays() map[string]*image.Gray {
	rng := rand.New(rand.NewPCG(7, 8))
	out := map[string]*image.Gray{}
	mk := func(name string, w, h int, f func(x, y int) uint8) {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				g.Pix[y*g.Stride+x] = f(x, y)
			}
		}
		out[name] = g
	}
	mk("noise", 203, 157, func(x, y int) uint8 { return uint8(rng.IntN(256)) })
	mk("gradient", 181, 99, func(x, y int) uint8 { return uint8(x + y) })
	mk("flat", 77, 61, func(x, y int) uint8 { return 90 })
	mk("blocks", 259, 171, func(x, y int) uint8 {
		if (x/23+y/17)%3 == 0 {
			return 60
		}
		return uint8(40 + rng.IntN(120))
	})
	mk("stripes", 150, 131, func(x, y int) uint8 { return uint8(128 + 100*((x/3+y/5)%2)) })
	return out
}

// TestBatchedMatchesScalar checks that the 8-window path returns exactly
// the raw windows of the scalar one, in the same order, on photos and
// synthetic images, whole and by regions, at several parameters.
func TestBatchedMatchesScalar(t *testing.T) {
	c, err := cascade.FrontalFaceHaar()
	if err != nil {
		t.Fatal(err)
	}
	if !cascade.Batch8Available() {
		t.Log("no AVX2: both runs are scalar")
	}
	imgs := syntheticGrays()
	for _, name := range []string{"messi5.jpg", "astronaut.png", "camera.png", "facemark_example.jpg"} {
		imgs[name] = loadGray(t, name)
	}
	// a sub-image whose origin is not at zero
	m := imgs["messi5.jpg"]
	imgs["messi5-sub"] = m.SubImage(image.Rect(37, 21, 37+301, 21+233)).(*image.Gray)
	params := []cascade.Params{
		{ScaleFactor: 1.1},
		{ScaleFactor: 1.05, MinSize: image.Pt(30, 30)},
		{ScaleFactor: 1.3, MinSize: image.Pt(45, 45), MaxSize: image.Pt(200, 200)},
		{ScaleFactor: 1.2, MinSize: image.Pt(60, 60)},
	}
	if testing.Short() {
		params = params[:2]
	}
	ctx := context.Background()
	// With MinNeighbors 0 the detections are the raw windows, in order.
	run := func(g *image.Gray, regions []image.Rectangle, p cascade.Params, scalar bool) []image.Rectangle {
		t.Helper()
		defer cascade.SetScalarOnly(cascade.SetScalarOnly(scalar))
		var ds []cascade.Detection
		var err error
		if regions == nil {
			ds, err = c.Detect(ctx, g, p)
		} else {
			ds, err = c.DetectRegions(ctx, g, regions, p)
		}
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]image.Rectangle, len(ds))
		for i, d := range ds {
			raw[i] = d.Rect
		}
		return raw
	}
	total := 0
	names := make([]string, 0, len(imgs))
	for n := range imgs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		g := imgs[name]
		b := g.Bounds()
		regionSets := map[string][]image.Rectangle{
			"whole": nil,
			"regions": {
				image.Rect(b.Min.X+3, b.Min.Y+5, b.Min.X+3+b.Dx()/2+11, b.Min.Y+5+b.Dy()/2+7),
				image.Rect(b.Min.X+b.Dx()/3+1, b.Min.Y+b.Dy()/4, b.Max.X+20, b.Max.Y-1),
				image.Rect(b.Min.X-10, b.Min.Y+b.Dy()/2, b.Min.X+b.Dx()/2, b.Max.Y+10),
			},
		}
		for rname, regions := range regionSets {
			for _, p := range params {
				want := run(g, regions, p, true)
				got := run(g, regions, p, false)
				if !slices.Equal(got, want) {
					t.Errorf("%s %s %+v: batched %d windows, scalar %d\n got %v\nwant %v", name, rname, p, len(got), len(want), got, want)
				}
				total += len(want)
			}
		}
	}
	if total == 0 {
		t.Fatal("no raw windows at all: the comparison says nothing")
	}
	t.Logf("%d raw windows compared", total)
}
