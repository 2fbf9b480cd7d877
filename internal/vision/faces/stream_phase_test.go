package faces

import (
	"context"
	"image"
	"slices"
	"testing"
)

// TestStreamPhase: a stream's periodic full passes come Phase frames
// sooner after its first frame, then every FullEvery frames; a phase
// outside 0..FullEvery−1 is refused.
func TestStreamPhase(t *testing.T) {
	d, err := New(ModelHaar)
	if err != nil {
		t.Fatal(err)
	}
	g := image.NewGray(image.Rect(0, 0, 160, 120))
	for phase, want := range map[int][]int{0: {0, 5, 10}, 2: {0, 3, 8, 13}, 4: {0, 1, 6, 11}} {
		s, err := NewStream(d, GateOptions{FullEvery: 5, Phase: phase})
		if err != nil {
			t.Fatal(err)
		}
		var full []int
		for i := range 14 {
			_, dec, err := s.Detect(context.Background(), g, Options{MinSize: 24})
			if err != nil {
				t.Fatal(err)
			}
			if dec == Detected {
				full = append(full, i)
			}
		}
		if len(full) < len(want) || !slices.Equal(full[:len(want)], want) {
			t.Errorf("phase %d: full passes on frames %v; want %v first", phase, full, want)
		}
	}
	for _, p := range []int{-1, 5} {
		if _, err := NewStream(d, GateOptions{FullEvery: 5, Phase: p}); err == nil {
			t.Errorf("phase %d of fullEvery 5: accepted", p)
		}
	}
}
