package cascade_test

import (
	"context"
	"image"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/cascade"
)

// TestDetectRegions checks that a region search finds every raw window
// the whole-image search finds inside the region, at the same pixels
// (both cascades, regions at odd offsets and crossing the border, and a
// sub-image as input), and that every window it finds lies inside a
// region.
func TestDetectRegions(t *testing.T) {
	haar, err := cascade.FrontalFaceHaar()
	if err != nil {
		t.Fatal(err)
	}
	lbp, err := cascade.FrontalFaceLBP()
	if err != nil {
		t.Fatal(err)
	}
	raw := cascade.Params{ScaleFactor: 1.1, MinNeighbors: 0, MinSize: image.Pt(30, 30)}
	messi := loadGray(t, "messi5.jpg")
	astro := loadGray(t, "astronaut.png")
	cases := []struct {
		name    string
		c       *cascade.Cascade
		img     *image.Gray
		regions []image.Rectangle
	}{
		{"haar astronaut face", haar, astro, []image.Rectangle{image.Rect(141, 23, 333, 217)}},
		{"lbp astronaut face", lbp, astro, []image.Rectangle{image.Rect(141, 23, 333, 217)}},
		{"haar messi two regions", haar, messi, []image.Rectangle{image.Rect(-20, 7, 131, 245), image.Rect(193, 41, 371, 300)}},
		{"haar messi whole", haar, messi, []image.Rectangle{messi.Rect}},
		{"haar sub-image", haar, astro.SubImage(image.Rect(101, 3, 401, 303)).(*image.Gray), []image.Rectangle{image.Rect(137, 17, 337, 233)}},
	}
	for _, tc := range cases {
		all, err := tc.c.Detect(context.Background(), tc.img, raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tc.c.DetectRegions(context.Background(), tc.img, tc.regions, raw)
		if err != nil {
			t.Fatal(err)
		}
		have := map[image.Rectangle]bool{}
		for _, d := range got {
			have[d.Rect] = true
			inside := false
			for _, r := range tc.regions {
				// Scaling back rounds: a window may end a pixel past
				// its region.
				inside = inside || d.Rect.In(r.Inset(-1))
			}
			if !inside {
				t.Errorf("%s: window %v outside the regions %v", tc.name, d.Rect, tc.regions)
			}
		}
		want := 0
		for _, d := range all {
			for _, r := range tc.regions {
				if d.Rect.In(r) {
					want++
					if !have[d.Rect] {
						t.Errorf("%s: whole-image window %v in region %v not found by the region search", tc.name, d.Rect, r)
					}
					break
				}
			}
		}
		if want == 0 {
			t.Errorf("%s: no whole-image window in the regions: the comparison says nothing", tc.name)
		}
		t.Logf("%s: %d whole-image windows in the regions, %d found by the region search", tc.name, want, len(got))
	}
	// No region, nothing searched; an empty image region, nothing found.
	if got, err := haar.DetectRegions(context.Background(), astro, nil, raw); err != nil || len(got) != 0 {
		t.Errorf("no region: %v %v", got, err)
	}
	if got, err := haar.DetectRegions(context.Background(), astro, []image.Rectangle{image.Rect(10, 10, 20, 20), image.Rect(600, 600, 700, 700)}, raw); err != nil || len(got) != 0 {
		t.Errorf("regions smaller than a window or outside the image: %v %v", got, err)
	}
}
