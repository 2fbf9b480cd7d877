package device

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestRTSPDropAndRecover pulls from a real RTSP server, kills it mid-stream
// (the status goes offline with ffmpeg's complaint), restarts it, and
// watches the source recover; Close leaves no ffmpeg behind.
func TestRTSPDropAndRecover(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	srv := startRTSPServer(t, 0, "--width", "640", "--height", "360", "--fps", "15")
	rt, _ := newTestRuntime(t)

	res, err := rt.Probe(context.Background(), Config{ID: "p", Driver: "rtsp", Address: srv.URL, Width: 320})
	if err != nil || !res.Online || len(res.Snapshot) == 0 || res.Info["width"] != 320 {
		t.Fatalf("probe %+v %v", res.Info, err)
	}

	rec := &recorder{}
	other := &recorder{}
	cfg := Config{ID: "cam", Driver: "rtsp", Address: srv.URL, FPS: 5, Width: 320,
		Options: map[string]any{"stall": "5s", "timeout": "3s"}}
	src, err := rt.Open(context.Background(), cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Another device, unaffected by this one's trouble.
	dir := imageFolder(t, 2, 32, 32)
	bystander, err := rt.Open(context.Background(), Config{ID: "other", Driver: "replay", Address: dir, FPS: 10}, other)
	if err != nil {
		t.Fatal(err)
	}
	defer bystander.Close()

	st := waitStatus(t, src, waitLong, "frames", func(s Status) bool { return s.FramesDelivered >= 5 })
	if st.State != StateOnline || st.MeasuredFPS <= 0 {
		t.Fatalf("status %+v", st)
	}
	f, _ := rec.lastFrame()
	if f.Width != 320 || f.Height != 180 || len(f.Image) == 0 {
		t.Fatalf("frame %dx%d %d bytes", f.Width, f.Height, len(f.Image))
	}
	pids := src.(ProcessReporter).Processes()
	if len(pids) != 1 || !processAlive(pids[0]) {
		t.Fatalf("ffmpeg pids %v", pids)
	}

	srv.Stop()
	st = waitStatus(t, src, waitLong, "offline after the server died", func(s Status) bool {
		return s.State == StateOffline || s.State == StateError
	})
	if st.LastError == "" || !strings.Contains(st.LastError, "ffmpeg") {
		t.Fatalf("no ffmpeg error: %+v", st)
	}
	t.Logf("after the drop: %s %s: %s", st.State, st.Reason, st.LastError)
	testenv.Eventually(t, waitLong, "old ffmpeg gone", func() bool { return !processAlive(pids[0]) })

	before := st.FramesDelivered
	startRTSPServer(t, srv.Port, "--width", "640", "--height", "360", "--fps", "15")
	st = waitStatus(t, src, waitLong, "recovery", func(s Status) bool {
		return s.State == StateOnline && s.FramesDelivered > before+3
	})
	if st.Reconnects == 0 {
		t.Fatalf("no reconnect counted: %+v", st)
	}
	if b := bystander.Status(); b.State != StateOnline {
		t.Fatalf("bystander %+v", b)
	}

	pids = src.(ProcessReporter).Processes()
	_ = src.Close()
	for _, p := range pids {
		if processAlive(p) {
			t.Fatalf("ffmpeg %d survived Close", p)
		}
	}
}

func TestRTSPRawPixels(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	srv := startRTSPServer(t, 0, "--width", "320", "--height", "240", "--fps", "10")
	rt, _ := newTestRuntime(t)
	for _, format := range []PixelFormat{FormatRGB24, FormatGray} {
		rec := &recorder{}
		src, err := rt.Open(context.Background(), Config{ID: "raw", Driver: "rtsp", Address: srv.URL, Width: 160,
			Options: map[string]any{"format": string(format), "transport": "udp"}}, rec)
		if err != nil {
			t.Fatal(err)
		}
		waitStatus(t, src, waitLong, "raw frames", func(s Status) bool { return s.FramesDelivered >= 3 })
		_ = src.Close()
		f, _ := rec.lastFrame()
		bpp := map[PixelFormat]int{FormatRGB24: 3, FormatGray: 1}[format]
		if f.Format != format || f.Width != 160 || f.Height != 120 || len(f.Pixels) != 160*120*bpp || f.Image != nil {
			t.Fatalf("%s frame %s %dx%d %d bytes", format, f.Format, f.Width, f.Height, len(f.Pixels))
		}
	}
}

func TestRTSPWrongPassword(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	srv := startRTSPServer(t, 0, "--width", "320", "--height", "240", "--user", "admin", "--password", "s3cret")
	rt, _ := newTestRuntime(t)
	_, err := rt.Probe(context.Background(), Config{ID: "p", Driver: "rtsp", Address: srv.URL, Username: "admin", Password: "wrong"})
	if ReasonOf(err) != ReasonAuthFailed {
		t.Fatalf("probe with a wrong password: %v", err)
	}
	res, err := rt.Probe(context.Background(), Config{ID: "p", Driver: "rtsp", Address: srv.URL, Username: "admin", Password: "s3cret"})
	if err != nil || !res.Online {
		t.Fatalf("probe with the right password: %v", err)
	}
	src, err := rt.Open(context.Background(), Config{ID: "w", Driver: "rtsp", Address: srv.URL, Username: "admin", Password: "nope"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st := waitStatus(t, src, waitLong, "auth_failed", func(s Status) bool { return s.Reason == ReasonAuthFailed })
	if st.State != StateError || !strings.Contains(st.LastError, "401") {
		t.Fatalf("status %+v", st)
	}
}

func TestRTSPUnreachable(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	rt, _ := newTestRuntime(t)
	url := fmt.Sprintf("rtsp://127.0.0.1:%d/none", freePort(t))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := rt.Probe(ctx, Config{ID: "u", Driver: "rtsp", Address: url})
	if ReasonOf(err) != ReasonUnreachable {
		t.Fatalf("probe: %v (%s)", err, ReasonOf(err))
	}
	src, err := rt.Open(context.Background(), Config{ID: "u", Driver: "rtsp", Address: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st := waitStatus(t, src, waitLong, "offline", func(s Status) bool { return s.State == StateOffline })
	if st.Reason != ReasonUnreachable {
		t.Fatalf("status %+v", st)
	}
	t.Logf("unreachable reported after %v", time.Since(start))
}

func TestReplayVideo(t *testing.T) {
	ff := testenv.NeedCommand(t, "ffmpeg")
	video := filepath.Join(t.TempDir(), "clip.mp4")
	out, err := exec.Command(ff, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
		"-t", "1", "-c:v", "mpeg4", video).CombinedOutput()
	if err != nil {
		t.Fatalf("make video: %v %s", err, out)
	}
	rt, _ := newTestRuntime(t)
	res, err := rt.Probe(context.Background(), Config{ID: "v", Driver: "replay", Address: video})
	if err != nil || res.Info["kind"] != "video" || res.Info["width"] != 320 {
		t.Fatalf("probe %+v %v", res, err)
	}
	rec := &recorder{}
	src, err := rt.Open(context.Background(), Config{ID: "v", Driver: "replay", Address: video, FPS: 20, Width: 160}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// 10 frames in the clip: more than 25 means it looped.
	waitStatus(t, src, waitLong, "looping", func(s Status) bool { return s.FramesDelivered > 25 })
	f, _ := rec.lastFrame()
	if f.Width != 160 || f.Height != 120 {
		t.Fatalf("frame %dx%d", f.Width, f.Height)
	}
}
