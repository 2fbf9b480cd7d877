package devicecenter

import (
	"hash/maphash"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/device"
)

// A watch tells frames that stop (no_frames) from frames that repeat one
// picture (frozen), by JPEG bytes or by sampled pixels, and is not armed
// before the first frame.
func TestFrameWatch(t *testing.T) {
	st := &stalls{after: 5 * time.Second, seed: maphash.MakeSeed()}
	if w := newFrameWatch(st, device.Config{FPS: 0.1}); w.after != 30*time.Second {
		t.Errorf("a device at 0.1 fps stalls after %v, want three frame intervals (30s)", w.after)
	}
	own := device.Config{FPS: 0.1, Options: map[string]any{device.OptStallEventAfter: "2s"}}
	if w := newFrameWatch(st, own); w.after != 2*time.Second {
		t.Errorf("a device with stall_event_after 2s stalls after %v", w.after)
	}
	w := newFrameWatch(st, device.Config{FPS: 25})
	t0 := time.Unix(1000, 0)
	if stalled, _, _, _, armed := w.state(t0.Add(time.Hour)); stalled || armed {
		t.Fatal("stalled before any frame")
	}
	pic := []byte("jpeg-a")
	for i := range 8 {
		w.frame(device.Frame{Image: pic}, t0.Add(time.Duration(i)*time.Second))
	}
	if stalled, reason, _, same, _ := w.state(t0.Add(7 * time.Second)); !stalled || reason != StallFrozen || same != 7*time.Second {
		t.Fatalf("same picture for 7s: %v %q %v", stalled, reason, same)
	}
	w.frame(device.Frame{Image: []byte("jpeg-b")}, t0.Add(8*time.Second))
	if stalled, _, _, _, _ := w.state(t0.Add(9 * time.Second)); stalled {
		t.Fatal("stalled after a new picture")
	}
	if stalled, reason, age, _, _ := w.state(t0.Add(14 * time.Second)); !stalled || reason != StallNoFrames || age != 6*time.Second {
		t.Fatalf("no frame for 6s: %v %q %v", stalled, reason, age)
	}
	px := make([]byte, 640*480*3)
	w.frame(device.Frame{Pixels: px}, t0.Add(20*time.Second))
	w.frame(device.Frame{Pixels: px}, t0.Add(26*time.Second))
	if stalled, reason, _, _, _ := w.state(t0.Add(26 * time.Second)); !stalled || reason != StallFrozen {
		t.Fatalf("same pixels: %v %q", stalled, reason)
	}
	px2 := append([]byte(nil), px...)
	px2[0] = 9
	w.frame(device.Frame{Pixels: px2}, t0.Add(27*time.Second))
	if stalled, _, _, _, _ := w.state(t0.Add(27 * time.Second)); stalled {
		t.Fatal("stalled after pixels changed")
	}
}
