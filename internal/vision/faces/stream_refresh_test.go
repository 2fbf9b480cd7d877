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
// refresh's, or sooner by the near-face watch once a refresh saw it as a
// near-face: at the latest on the first refresh frame on which full
// detection finds it, and on a frame on which full detection finds it.
// The refreshes come every FullEvery frames, Phase frames sooner; on the
// other frames only the watch may find something (Motion), and only what
// full detection finds on that frame; only the first frame is searched
// whole. A phase outside 0..FullEvery−1 is refused.
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
	fullFaces := make([][]faces.Face, frames)
	for i := range frames {
		full, err := d.DetectGray(ctx, fade(min(i, 10)), gateOpt)
		if err != nil {
			t.Fatal(err)
		}
		visible[i] = len(full.Faces) > 0
		fullFaces[i] = full.Faces
	}
	// byFull reports whether full detection finds every face of fs on
	// frame i.
	byFull := func(i int, fs []faces.Face) bool {
		for _, f := range fs {
			ok := false
			for _, w := range fullFaces[i] {
				ok = ok || overlap(f.Box.Rect(), w.Box.Rect()) >= 0.5
			}
			if !ok {
				return false
			}
		}
		return true
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
			case i > 0 && !refresh && dec == faces.Motion && !byFull(i, res.Faces):
				t.Errorf("phase %d frame %d: motion found in a fade under the threshold: %+v", phase, i, res.Faces)
			}
		}
		if want < 0 {
			t.Fatalf("phase %d: full detection finds the face on no refresh frame (%v)", phase, visible)
		}
		if first < 0 || first > want || !visible[first] {
			t.Errorf("phase %d: face first found on frame %d; want at the latest frame %d, the first refresh on which full detection finds it, and on a frame full detection finds it on (%v)", phase, first, want, visible)
		}
		t.Logf("phase %d: found on frame %d, first refresh that could: %d", phase, first, want)
	}
	for _, p := range []int{-1, every} {
		if _, err := faces.NewStream(d, faces.GateOptions{FullEvery: every, Phase: p}); err == nil {
			t.Errorf("phase %d of fullEvery %d: accepted", p, every)
		}
	}
}
