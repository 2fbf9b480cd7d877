package builtin

import (
	"context"
	"errors"
	"image"
	"os"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/vision/faces"
)

// TestFaceDetectGate: with gate and a key the second, unchanged frame is
// not searched again and its face is carried over; without a key every
// frame is searched; bad gate options are refused naming the input.
func TestFaceDetectGate(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	detect := all["face-detect"].Func
	raw, err := os.ReadFile("../../vision/cascade/testdata/astronaut.png")
	if err != nil {
		t.Fatal(err)
	}
	img := media.Image{Bytes: raw, ContentType: "image/png"}
	ctx := context.Background()
	call := func(extra map[string]any) (map[string]any, error) {
		in := map[string]any{"image": img, "minSize": 40, "model": "lbp"}
		for k, v := range extra {
			in[k] = v
		}
		return detect(ctx, in)
	}
	var faces int
	for i, want := range []string{"detected", "tracked", "tracked"} {
		out, err := call(map[string]any{"gate": true, "key": "cam-1", "fullEvery": 5})
		if err != nil {
			t.Fatal(err)
		}
		got := out["faces"].([]any)
		if i == 0 {
			faces = len(got)
		}
		if out["decision"] != want || len(got) != faces || faces == 0 {
			t.Errorf("frame %d: decision %v (want %s), %d faces (first frame %d)", i, out["decision"], want, len(got), faces)
		}
	}
	for range 2 {
		out, err := call(map[string]any{"gate": true})
		if err != nil || out["decision"] != "detected" {
			t.Errorf("no key: %v, %v", out["decision"], err)
		}
	}
	for _, bad := range []map[string]any{{"gate": true, "key": "k", "fullEvery": 0}, {"gate": true, "key": "k", "maxMotion": 2.0},
		{"gate": true, "key": strings.Repeat("k", 300)}, {"gate": true, "key": "k", "localScales": 0}, {"gate": true, "key": "k", "localScales": 21}} {
		_, err := call(bad)
		if !errors.Is(err, algorithm.ErrBadInput) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// TestDecodeCache: a frame's bytes decode once; other bytes of the same
// content do not hit the entry.
func TestDecodeCache(t *testing.T) {
	raw, err := os.ReadFile("../../vision/cascade/testdata/messi5.jpg")
	if err != nil {
		t.Fatal(err)
	}
	var c decodeCache
	a, err := c.decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := c.decode(raw); b != a {
		t.Error("same bytes decoded again")
	}
	if _, ok := c.get(append([]byte(nil), raw...), true); ok {
		t.Error("a copy of the bytes hit the cache")
	}
	if _, err := c.decode([]byte("nope")); !errors.Is(err, algorithm.ErrBadInput) {
		t.Errorf("garbage: %v", err)
	}
	// A frame decoded in full serves its luma; a luma-only decode
	// (jpegluma) serves no caller that needs the colours.
	if g, _, err := c.luma(raw); err != nil || &g.Pix[0] != &a.(*image.YCbCr).Y[0] {
		t.Errorf("luma of a frame decoded in full: decoded again (%v)", err)
	}
	other := append([]byte(nil), raw...)
	g, eighth, err := c.luma(other)
	if err != nil {
		t.Fatal(err)
	}
	if eighth == nil || eighth.Rect.Dx() != (g.Rect.Dx()+7)/8 {
		t.Errorf("luma-only decode: eighth-size image %v for %v", eighth, g.Rect)
	}
	if g2, e2, _ := c.luma(other); g2 != g || e2 != eighth {
		t.Error("same bytes' luma decoded again")
	}
	full, err := c.decode(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := full.(*image.YCbCr); !ok {
		t.Errorf("full decode after a luma-only one gave a %T", full)
	}
	if _, _, err := c.luma([]byte("nope")); !errors.Is(err, algorithm.ErrBadInput) {
		t.Errorf("garbage's luma: %v", err)
	}
	// A PNG (no JPEG to read the luma of) is decoded in full.
	png, err := os.ReadFile("../../vision/cascade/testdata/astronaut.png")
	if err != nil {
		t.Fatal(err)
	}
	if g, _, err := c.luma(png); err != nil || g.Rect.Dx() == 0 {
		t.Errorf("PNG's luma: %v", err)
	}
}

// TestFaceDetectSlots: face-detect searches at most one frame per core at
// a time; a call that finds every slot taken waits for one, and gives up
// with its context.
func TestFaceDetectSlots(t *testing.T) {
	haar, err := faces.New(faces.ModelHaar)
	if err != nil {
		t.Fatal(err)
	}
	fd := &faceDetector{haar: haar, lbp: haar, streams: map[string]*faceStream{}, frames: &decodeCache{}, slots: make(chan struct{}, 1)}
	raw, err := os.ReadFile("../../vision/cascade/testdata/astronaut.png")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"image": media.Image{Bytes: raw, ContentType: "image/png"}, "minSize": 40}
	fd.slots <- struct{}{} // another frame is being searched
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := fd.detect(ctx, in)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("all slots taken, context cancelled: %v, want context.Canceled", err)
	}
	<-fd.slots
	out, err := fd.detect(context.Background(), in)
	if err != nil || len(out["faces"].([]any)) == 0 {
		t.Fatalf("with a free slot: %v faces, %v", out["faces"], err)
	}
	if len(fd.slots) != 0 {
		t.Errorf("%d slots still taken after the call", len(fd.slots))
	}
}
