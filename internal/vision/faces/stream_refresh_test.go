package faces_test

import (
	"context"
	"image"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/faces"
)

// TestStreamRefresh: a face that fades in too slowly for the frame-to-frame
// motion (each frame under the motion threshold brighter than the last) is
// found by the refresh pass, which compares the frame with the last
// refresh's: on the first refresh frame on which full detection finds it,
// not before. The refreshes come every FullEvery frames, Phase frames
// sooner; the other frames search nothing new (no Motion), and only the
// first frame is searched whole. A phase outside 0..FullEvery−1 is
// refused.
func TestStreamRefresh(t *testing.T) {
	sc := newScene(t, 960, 540)
	withFace := sc.frame(0, 0, 100, 200, 0)
	empty := &scene{t: t, w: 960, h: 540, photo: image.NewGray(image.Rect(0, 0, 1, 1))}
	bg := empty.frame(0, 0, 0, 0, 0)
	// fade is the face at share k/10 over the background (k ≤ 10): a
	// frame differs from the last by at most a tenth of the face's
	// contrast with the background (under 25 gray levels here).
	fade := func(k int) *image.Gray {
		g := image.NewGray(bg.Rect)
		for i := range g.Pix {
			g.Pix[i] = uint8((int(bg.Pix[i])*(10-k) + int(withFace.Pix[i])*k) / 10)
		}
		return g
	}
	d, _ := newStream(t, faces.GateOptions{})
	ctx := context.Background()
	const every, frames = 5, 21
	visible := make([]bool, frames)
	for i := range frames {
		full, err := d.DetectGray(ctx, fade(min(i, 10)), gateOpt)
		if err != nil {
			t.Fatal(err)
		}
		visible[i] = len(full.Faces) > 0
	}
	t.Logf("full detection finds the face on frames %v", visible)
	for phase := range every {
		s, err := faces.NewStream(d, faces.GateOptions{FullEvery: every, Phase: phase})
		if err != nil {
			t.Fatal(err)
		}
		want, first := -1, -1
		for i := range frames {
			res, dec, err := s.Detect(ctx, fade(min(i, 10)), gateOpt)
			if err != nil {
				t.Fatal(err)
			}
			refresh := i > 0 && (i+phase)%every == 0
			if want < 0 && refresh && visible[i] {
				want = i
			}
			if first < 0 && len(res.Faces) > 0 {
				first = i
			}
			switch {
			case i == 0 && dec != faces.Detected:
				t.Errorf("phase %d: first frame %q", phase, dec)
			case i > 0 && dec == faces.Detected:
				t.Errorf("phase %d frame %d: searched whole", phase, i)
			case i > 0 && !refresh && dec == faces.Motion:
				t.Errorf("phase %d frame %d: motion found in a fade under the threshold", phase, i)
			}
		}
		if want < 0 {
			t.Fatalf("phase %d: full detection finds the face on no refresh frame (%v)", phase, visible)
		}
		if first != want {
			t.Errorf("phase %d: face first found on frame %d; want frame %d, the first refresh on which full detection finds it (found on %v)", phase, first, want, visible)
		}
	}
	for _, p := range []int{-1, every} {
		if _, err := faces.NewStream(d, faces.GateOptions{FullEvery: every, Phase: p}); err == nil {
			t.Errorf("phase %d of fullEvery %d: accepted", p, every)
		}
	}
}
