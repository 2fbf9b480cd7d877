package device

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Config{ID: "d1", Driver: "replay", Address: "/tmp"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no id", Config{Driver: "replay", Address: "/x"}, "ID"},
		{"no driver", Config{ID: "d"}, "Driver"},
		{"unknown driver", Config{ID: "d", Driver: "nope"}, "Driver"},
		{"fps", Config{ID: "d", Driver: "replay", Address: "/x", FPS: -1}, "FPS"},
		{"fps high", Config{ID: "d", Driver: "replay", Address: "/x", FPS: 1000}, "FPS"},
		{"width", Config{ID: "d", Driver: "replay", Address: "/x", Width: 3}, "Width"},
		{"replay address", Config{ID: "d", Driver: "replay"}, "Address"},
		{"unknown option", Config{ID: "d", Driver: "replay", Address: "/x", Options: map[string]any{"lop": true}}, "Options.lop"},
		{"bad option type", Config{ID: "d", Driver: "replay", Address: "/x", Options: map[string]any{"loop": 3.0}}, "Options.loop"},
		{"rtsp scheme", Config{ID: "d", Driver: "rtsp", Address: "http://x"}, "Address"},
		{"rtsp transport", Config{ID: "d", Driver: "rtsp", Address: "rtsp://x/y", Options: map[string]any{"transport": "sctp"}}, "Options.transport"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v, want a FieldError on %s", c.name, err, c.field)
		}
	}
}

// TestGB28181Driver: the address is a GB id, options are checked, and
// without the SIP server a probe says so. The driver with a real server
// is tested in internal/app (TestGB28181Devices, TestGB28181LiveVideo).
func TestGB28181Driver(t *testing.T) {
	err := Config{ID: "d", Driver: "gb28181", Address: "sip:34020000001320000001@10.0.0.2"}.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Address" {
		t.Fatalf("sip URL as address: %v", err)
	}
	cfg := Config{ID: "d", Driver: "gb28181", Address: "34020000001320000001"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.Options = map[string]any{"parent": "12"}
	if err := bad.Validate(); !errors.As(err, &fe) || fe.Field != "Options.parent" {
		t.Fatalf("bad parent: %v", err)
	}
	bad.Options = map[string]any{"transport": "sctp"}
	if err := bad.Validate(); !errors.As(err, &fe) || fe.Field != "Options.transport" {
		t.Fatalf("bad transport: %v", err)
	}
	rt, _ := newTestRuntime(t)
	if _, err := rt.Probe(context.Background(), cfg); ReasonOf(err) != ReasonConfig || !strings.Contains(err.Error(), "--gb28181.addr") {
		t.Fatalf("Probe without a server: %v", err)
	}
}

func TestDriversRegistered(t *testing.T) {
	got := strings.Join(Drivers(), ",")
	for _, want := range []string{"replay", "rtsp"} {
		if !strings.Contains(got, want) {
			t.Errorf("driver %s not registered: %s", want, got)
		}
	}
}

// TestLatestFrameWins: a consumer slower than the device sees the newest
// frames, and the ones it missed are counted as drops, not queued.
func TestLatestFrameWins(t *testing.T) {
	rt, reg := newTestRuntime(t)
	dir := imageFolder(t, 5, 64, 48)
	rec := &recorder{delay: 200 * time.Millisecond}
	src, err := rt.Open(context.Background(), Config{ID: "cam", Driver: "replay", Address: dir, FPS: 50}, rec)
	if err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, src, waitLong, "drops", func(s Status) bool { return s.Drops >= 10 && s.FramesDelivered >= 3 })
	if st.State != StateOnline {
		t.Fatalf("state %s", st.State)
	}
	f, _ := rec.lastFrame()
	if f.DeviceID != "cam" || f.Width != 64 || f.Height != 48 || f.Seq < 2 {
		t.Fatalf("frame %+v", f)
	}
	if got := metricSum(t, reg, "tianshu_device_drops_total"); got < 10 {
		t.Fatalf("drops metric %v", got)
	}
	_ = src.Close()
	if n := metricSum(t, reg, "tianshu_device_frames_total"); n < 10 {
		t.Fatalf("frames metric %v", n)
	}
	before := len(rec.frames)
	time.Sleep(50 * time.Millisecond)
	if len(rec.frames) != before {
		t.Fatal("sink called after Close")
	}
	if src.Status().State != StateClosed {
		t.Fatalf("state after close %s", src.Status().State)
	}
}

// TestDriverCountersFromFirstSource: a driver's frame, drop, event and
// reconnect counters are exported at 0 as soon as one of its sources
// opens, before anything happened to count.
func TestDriverCountersFromFirstSource(t *testing.T) {
	rt, reg := newTestRuntime(t)
	dir := imageFolder(t, 1, 16, 16)
	src, err := rt.Open(context.Background(), Config{ID: "z", Driver: "replay", Address: dir, FPS: 1}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"tianshu_device_frames_total": false, "tianshu_device_drops_total": false,
		"tianshu_device_events_total": false, "tianshu_device_reconnects_total": false}
	for _, mf := range mfs {
		if _, ok := want[mf.GetName()]; !ok {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				want[mf.GetName()] = want[mf.GetName()] || l.GetName() == "driver" && l.GetValue() == "replay"
			}
		}
	}
	for name, ok := range want {
		if !ok {
			t.Errorf("%s has no series for driver replay", name)
		}
	}
}

func TestReplayFolder(t *testing.T) {
	rt, _ := newTestRuntime(t)
	dir := imageFolder(t, 3, 80, 60)
	// A broken file is skipped; a PNG is converted.
	if err := os.WriteFile(filepath.Join(dir, "001b.jpg"), []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := rt.Probe(context.Background(), Config{ID: "p", Driver: "replay", Address: dir, Width: 40})
	if err != nil || !res.Online || res.Info["images"] != 4 || res.Info["width"] != 40 || res.Info["height"] != 30 {
		t.Fatalf("probe %+v %v", res, err)
	}
	rec := &recorder{}
	src, err := rt.Open(context.Background(), Config{ID: "r", Driver: "replay", Address: dir, FPS: 20, Width: 40,
		Options: map[string]any{"loop": false}}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st := waitStatus(t, src, waitLong, "replay to finish", func(s Status) bool { return s.State == StateOffline })
	if st.Reason != ReasonStreamEnded || st.FramesDelivered == 0 {
		t.Fatalf("status %+v", st)
	}
	f, _ := rec.lastFrame()
	if f.Width != 40 || f.Height != 30 {
		t.Fatalf("frame size %dx%d", f.Width, f.Height)
	}
	if _, err := f.Decode(); err != nil {
		t.Fatal(err)
	}
	if !rec.sawState(StateOnline, "") {
		t.Fatal("no online status")
	}
}

func TestReplayMissingFolder(t *testing.T) {
	rt, _ := newTestRuntime(t)
	src, err := rt.Open(context.Background(), Config{ID: "m", Driver: "replay", Address: filepath.Join(t.TempDir(), "none")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st := waitStatus(t, src, waitLong, "error", func(s Status) bool { return s.State == StateError })
	if st.Reason != ReasonConfig || !strings.Contains(st.LastError, "no such file") {
		t.Fatalf("status %+v", st)
	}
}

func TestReadJPEGConcatenated(t *testing.T) {
	a, b := testJPEG(t, 32, 16, 1), testJPEG(t, 48, 32, 200)
	// An APP1 segment holding an EOI marker must not split the picture.
	app := []byte{0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD8}
	withApp := append(append([]byte{0xFF, 0xD8}, app...), b[2:]...)
	r := bufio.NewReader(bytes.NewReader(append(append([]byte{}, a...), withApp...)))
	got1, err := readJPEG(r, 1<<20)
	if err != nil || !bytes.Equal(got1, a) {
		t.Fatalf("first: %v", err)
	}
	got2, err := readJPEG(r, 1<<20)
	if err != nil || !bytes.Equal(got2, withApp) {
		t.Fatalf("second: %v", err)
	}
	if _, err := readJPEG(r, 1<<20); err == nil {
		t.Fatal("want EOF")
	}
	if _, err := readJPEG(bufio.NewReader(strings.NewReader("<html>")), 1<<20); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestReadPNM(t *testing.T) {
	data := append([]byte("P6\n2 1\n255\n"), 1, 2, 3, 4, 5, 6)
	data = append(data, append([]byte("P5\n# c\n1 2\n255\n"), 7, 8)...)
	r := bufio.NewReader(bytes.NewReader(data))
	f, err := readFrame(r, FormatRGB24)
	if err != nil || f.Width != 2 || f.Height != 1 || !bytes.Equal(f.Pixels, []byte{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("%+v %v", f, err)
	}
	img, err := f.Decode()
	if err != nil || img.Bounds().Dx() != 2 {
		t.Fatal(err)
	}
	f, err = readFrame(r, FormatGray)
	if err != nil || f.Width != 1 || f.Height != 2 || !bytes.Equal(f.Pixels, []byte{7, 8}) {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(3, 100)
	for i := range 10 {
		_, _ = tb.Write([]byte(strings.Repeat("x", i) + "\n"))
	}
	if got := tb.String(); got != "xxxxxxx\nxxxxxxxx\nxxxxxxxxx" {
		t.Fatalf("%q", got)
	}
}
