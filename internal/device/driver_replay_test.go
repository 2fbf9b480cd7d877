package device

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// widthFolder writes n JPEGs whose widths tell them apart: file i is
// 16+8i pixels wide.
func widthFolder(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.jpg", i)), testJPEG(t, 16+8*i, 16, uint8(i*40)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// seqSink keeps every frame's Seq and width and can hold Frame calls, as a
// consumer applying back-pressure does.
type seqSink struct {
	mu       sync.Mutex
	seqs     []uint64
	widths   []int
	times    []time.Time
	statuses []Status
	hold     chan struct{} // while not nil and open, Frame waits
}

func (s *seqSink) Frame(f Frame) {
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs = append(s.seqs, f.Seq)
	s.widths = append(s.widths, f.Width)
	s.times = append(s.times, time.Now())
}

func (s *seqSink) Event(Event) {}

func (s *seqSink) Status(st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses = append(s.statuses, st)
}

func (s *seqSink) snapshot() (seqs []uint64, widths []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.seqs...), append([]int(nil), s.widths...)
}

// A replay opened after frame 7 of a looping folder of 5 starts with frame 8,
// which is file 2, and goes on in order; with back-pressure none is dropped.
func TestReplayFolderResumesAfter(t *testing.T) {
	rt, _ := newTestRuntime(t)
	dir := widthFolder(t, 5)
	sink := &seqSink{}
	src, err := rt.Open(context.Background(), Config{ID: "r", Driver: "replay", Address: dir, FPS: 100,
		Delivery: Delivery{Backpressure: true, After: 7}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	testenv.Eventually(t, waitLong, "12 frames", func() bool { s, _ := sink.snapshot(); return len(s) >= 12 })
	_ = src.Close()
	seqs, widths := sink.snapshot()
	for i, seq := range seqs {
		if want := uint64(8 + i); seq != want {
			t.Fatalf("frame %d has Seq %d, want %d (seqs %v)", i, seq, want, seqs)
		}
		if want := 16 + 8*int((seq-1)%5); widths[i] != want {
			t.Fatalf("frame Seq %d is %d wide, want file %d (%d wide)", seq, widths[i], (seq-1)%5, want)
		}
	}
	if st := src.Status(); st.Drops != 0 {
		t.Fatalf("%d drops with back-pressure", st.Drops)
	}
}

// Without looping, a replay resumed past the last file is finished at once;
// one resumed inside the folder plays the rest. A file that does not decode
// keeps its Seq (left out), so Seq still names the file.
func TestReplayFolderNoLoopResume(t *testing.T) {
	rt, _ := newTestRuntime(t)
	dir := widthFolder(t, 4)
	if err := os.WriteFile(filepath.Join(dir, "001b.jpg"), []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Files by name: 000 (16), 001 (24), 001b (bad), 002 (32), 003 (40).
	sink := &seqSink{}
	src, err := rt.Open(context.Background(), Config{ID: "r", Driver: "replay", Address: dir, FPS: 100,
		Options: map[string]any{"loop": false}, Delivery: Delivery{Backpressure: true, After: 1}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waitStatus(t, src, waitLong, "replay to finish", func(s Status) bool { return s.State == StateOffline })
	seqs, widths := sink.snapshot()
	if fmt.Sprint(seqs) != "[2 4 5]" || fmt.Sprint(widths) != "[24 32 40]" {
		t.Fatalf("seqs %v widths %v, want [2 4 5] [24 32 40]", seqs, widths)
	}

	done := &seqSink{}
	src2, err := rt.Open(context.Background(), Config{ID: "r2", Driver: "replay", Address: dir, FPS: 100,
		Options: map[string]any{"loop": false}, Delivery: Delivery{After: 5}}, done)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	st := waitStatus(t, src2, waitLong, "replay to finish", func(s Status) bool { return s.State == StateOffline })
	if s, _ := done.snapshot(); len(s) != 0 || st.Reason != ReasonStreamEnded {
		t.Fatalf("resumed past the end: frames %v, status %+v", s, st)
	}
}

// Options.start begins a folder at the file start × Fps names, and a loop
// comes back to the first file; Seq counts from the start, so a resume
// after frame K continues K files after it. Without looping, the files
// from start to the end play once.
func TestReplayFolderStart(t *testing.T) {
	rt, _ := newTestRuntime(t)
	dir := widthFolder(t, 5)
	play := func(opts map[string]any, after uint64, n int) ([]uint64, []int) {
		t.Helper()
		sink := &seqSink{}
		src, err := rt.Open(context.Background(), Config{ID: "s", Driver: "replay", Address: dir, FPS: 100, Options: opts,
			Delivery: Delivery{Backpressure: true, After: after}}, sink)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if n > 0 {
			testenv.Eventually(t, waitLong, "frames", func() bool { s, _ := sink.snapshot(); return len(s) >= n })
		} else {
			waitStatus(t, src, waitLong, "replay to finish", func(s Status) bool { return s.State == StateOffline })
		}
		_ = src.Close()
		seqs, widths := sink.snapshot()
		if n > 0 {
			seqs, widths = seqs[:n], widths[:n]
		}
		return seqs, widths
	}
	// 30 ms at 100 fps: file 3 (40 wide) first.
	if seqs, widths := play(map[string]any{"start": "30ms"}, 0, 7); fmt.Sprint(seqs, widths) != "[1 2 3 4 5 6 7] [40 48 16 24 32 40 48]" {
		t.Fatalf("start 30ms: seqs %v widths %v", seqs, widths)
	}
	// A start past the folder's length wraps when looping: 0.08 s is file 8 % 5.
	if seqs, widths := play(map[string]any{"start": 0.08}, 6, 3); fmt.Sprint(seqs, widths) != "[7 8 9] [48 16 24]" {
		t.Fatalf("start 0.08 after 6: seqs %v widths %v", seqs, widths)
	}
	if seqs, widths := play(map[string]any{"start": "30ms", "loop": false}, 0, 0); fmt.Sprint(seqs, widths) != "[1 2] [40 48]" {
		t.Fatalf("start 30ms, no loop: seqs %v widths %v", seqs, widths)
	}
	if seqs, _ := play(map[string]any{"start": "1s", "loop": false}, 0, 0); len(seqs) != 0 {
		t.Fatalf("start past the end, no loop: seqs %v", seqs)
	}
	for _, bad := range []any{"-1s", "25h", "soon", true} {
		err := replayDriver{}.Validate(Config{ID: "s", Driver: "replay", Address: dir, Options: map[string]any{"start": bad}})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "Options.start" {
			t.Errorf("start %v: %v, want a FieldError naming Options.start", bad, err)
		}
	}
}

// A sink that holds a frame for a while (back-pressure) loses nothing, still
// gets statuses meanwhile, and does not get a burst of frames afterwards:
// the pacer starts over instead of catching up.
func TestBackpressureHoldsReplay(t *testing.T) {
	rt, _ := newTestRuntime(t)
	dir := widthFolder(t, 3)
	hold := make(chan struct{})
	sink := &seqSink{hold: hold}
	const fps = 20
	src, err := rt.Open(context.Background(), Config{ID: "r", Driver: "replay", Address: dir, FPS: fps,
		Delivery: Delivery{Backpressure: true}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// The first frame is held: the source goes online and says so while
	// Frame blocks.
	testenv.Eventually(t, waitLong, "an online status while Frame is held", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, st := range sink.statuses {
			if st.State == StateOnline {
				return true
			}
		}
		return false
	})
	// The producer, with the mailbox full, waits for the sink rather than
	// replace the frame there: for 12 frame periods.
	str := src.(*stream)
	testenv.Eventually(t, waitLong, "the producer waiting 12 frame periods", func() bool {
		str.mu.Lock()
		defer str.mu.Unlock()
		return !str.waitingSince.IsZero() && str.env.Clock.Now().Sub(str.waitingSince) >= 12*time.Second/fps
	})
	if st := src.Status(); st.Drops != 0 || st.FramesDelivered > 2 {
		t.Fatalf("while held: %+v", st)
	}
	sink.mu.Lock()
	sink.hold = nil
	sink.mu.Unlock()
	released := time.Now()
	close(hold)
	testenv.Eventually(t, waitLong, "10 frames", func() bool { s, _ := sink.snapshot(); return len(s) >= 10 })
	sink.mu.Lock()
	times := append([]time.Time(nil), sink.times...)
	sink.mu.Unlock()
	// Frame 1 was held, frame 2 waited in the mailbox, frame 3 for the
	// mailbox and frame 4 is due at once; from then on they come at the
	// pace, not in a burst.
	n := 0
	for _, tm := range times {
		if tm.Sub(released) < 200*time.Millisecond {
			n++
		}
	}
	if n > 9 { // held 12 periods: catching up would deliver more than 12 at once
		t.Fatalf("%d frames within 200ms of the release: a burst", n)
	}
	seqs, _ := sink.snapshot()
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v: a frame was lost", seqs)
		}
	}
}

// A video opened after frame K starts with the video's frame K+1 exactly:
// frame n of the test video is a grey of its own level, and the resumed
// source's frames match a full replay's frame for frame.
func TestReplayVideoResumesAfter(t *testing.T) {
	video := levelsVideo(t)
	rt, _ := newTestRuntime(t)
	play := func(after uint64, opts ...any) map[uint64]int {
		var mu sync.Mutex
		levels := map[uint64]int{}
		sink := SinkFuncs{OnFrame: func(f Frame) {
			img, err := f.Decode()
			if err != nil {
				return
			}
			mu.Lock()
			levels[f.Seq] = grey(img)
			mu.Unlock()
		}}
		o := map[string]any{"loop": false, "format": "gray"}
		for i := 0; i+1 < len(opts); i += 2 {
			o[opts[i].(string)] = opts[i+1]
		}
		src, err := rt.Open(context.Background(), Config{ID: "v", Driver: "replay", Address: video, FPS: 20,
			Options: o, Delivery: Delivery{Backpressure: true, After: after}}, sink)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		waitStatus(t, src, waitLong, "replay to finish", func(s Status) bool { return s.State == StateOffline })
		_ = src.Close()
		mu.Lock()
		defer mu.Unlock()
		return levels
	}
	full, resumed := play(0), play(12)
	if len(full) != 30 || len(resumed) != 30-12 {
		t.Fatalf("%d frames from the start (want 30), %d resumed after 12 (want 18)", len(full), len(resumed))
	}
	for seq := uint64(2); seq <= 30; seq++ {
		if full[seq] <= full[seq-1] {
			t.Fatalf("test video levels do not grow: %v", full)
		}
	}
	for seq := uint64(13); seq <= 30; seq++ {
		if got, want := resumed[seq], full[seq]; got < want-1 || got > want+1 {
			t.Fatalf("resumed frame Seq %d has level %d, the full replay's %d (resumed %v, full %v)", seq, got, want, resumed, full)
		}
	}
	// Options.start: 0.5 s in is frame 11, Seq 1; resumed after 4, Seq 5
	// is frame 15.
	for _, after := range []uint64{0, 4} {
		started := play(after, "start", "500ms")
		if len(started) != 20-int(after) {
			t.Fatalf("started 0.5 s in after %d: %d frames, want %d: %v", after, len(started), 20-after, started)
		}
		for seq := after + 1; seq <= 20; seq++ {
			if got, want := started[seq], full[seq+10]; got < want-1 || got > want+1 {
				t.Fatalf("started 0.5 s in, frame Seq %d has level %d, the full replay's Seq %d %d (started %v, full %v)", seq, got, seq+10, want, started, full)
			}
		}
	}
}

// levelsVideo writes a 1.5 s, 20 fps video whose frame n is a grey of
// level 16+7n.
func levelsVideo(t *testing.T) string {
	t.Helper()
	ffmpeg := testenv.NeedCommand(t, "ffmpeg")
	video := filepath.Join(t.TempDir(), "levels.mkv")
	out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=black:s=32x32:r=20:d=1.5",
		"-vf", "geq=lum='16+7*N':cb=128:cr=128", "-c:v", "ffv1", "-pix_fmt", "yuv420p", video).CombinedOutput()
	if err != nil {
		t.Fatalf("make video: %v: %s", err, out)
	}
	return video
}

// A looping video started 0.5 s in plays frames 10…29, then comes back to
// frame 0, not to where it started.
func TestReplayVideoStartLoops(t *testing.T) {
	video := levelsVideo(t)
	rt, _ := newTestRuntime(t)
	var mu sync.Mutex
	var levels []int
	sink := SinkFuncs{OnFrame: func(f Frame) {
		if img, err := f.Decode(); err == nil {
			mu.Lock()
			levels = append(levels, grey(img))
			mu.Unlock()
		}
	}}
	src, err := rt.Open(context.Background(), Config{ID: "v", Driver: "replay", Address: video, FPS: 20,
		Options: map[string]any{"format": "gray", "start": "500ms"}, Delivery: Delivery{Backpressure: true}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	testenv.Eventually(t, waitLong, "35 frames", func() bool { mu.Lock(); defer mu.Unlock(); return len(levels) >= 35 })
	_ = src.Close()
	mu.Lock()
	defer mu.Unlock()
	// The levels grow from frame 10 to 29, drop at the loop, grow again.
	drops := 0
	for i := 1; i < 35; i++ {
		if levels[i] < levels[i-1] {
			drops++
			if i != 20 || levels[i] > levels[0]/2 {
				t.Fatalf("the loop came back at frame Seq %d to level %d (first %d): %v", i+1, levels[i], levels[0], levels)
			}
		}
	}
	if drops != 1 {
		t.Fatalf("%d drops in level, want 1 at the loop: %v", drops, levels)
	}
}

// grey is the picture's mean luminance.
func grey(img image.Image) int {
	b := img.Bounds()
	sum, n := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			sum += int((r + g + bl) / 3 >> 8)
			n++
		}
	}
	return sum / max(1, n)
}
