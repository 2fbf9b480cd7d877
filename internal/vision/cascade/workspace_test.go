package cascade_test

import (
	"context"
	"image"
	"reflect"
	"runtime"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/cascade"
)

// TestWorkspaceReuse runs detections of different sizes and cascades one
// after the other, so that each reuses the pooled buffers of the one
// before (larger, smaller, with and without the squares plane), and checks
// that every one finds what it finds on fresh buffers (two garbage
// collections empty a sync.Pool).
func TestWorkspaceReuse(t *testing.T) {
	haar, err := cascade.FrontalFaceHaar()
	if err != nil {
		t.Fatal(err)
	}
	lbp, err := cascade.FrontalFaceLBP()
	if err != nil {
		t.Fatal(err)
	}
	big := loadGray(t, "astronaut.png")
	small := big.SubImage(image.Rect(100, 20, 300, 260)).(*image.Gray)
	p := cascade.Params{ScaleFactor: 1.1, MinNeighbors: 3, MinSize: image.Pt(30, 30)}
	type run struct {
		c *cascade.Cascade
		g *image.Gray
	}
	runs := []run{{haar, big}, {lbp, small}, {haar, small}, {lbp, big}}
	first := make([][]cascade.Detection, len(runs))
	for i, r := range runs {
		runtime.GC()
		runtime.GC()
		got, err := r.c.Detect(context.Background(), r.g, p)
		if err != nil {
			t.Fatal(err)
		}
		first[i] = got
	}
	for round := 0; round < 2; round++ {
		for i, r := range runs {
			got, err := r.c.Detect(context.Background(), r.g, p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, first[i]) {
				t.Errorf("round %d, run %d on reused buffers: %v, on fresh ones %v", round, i, got, first[i])
			}
		}
	}
	if len(first[0]) == 0 {
		t.Error("no face found on the astronaut photo: the comparison says nothing")
	}
}
