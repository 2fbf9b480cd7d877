package task

import (
	"reflect"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
)

// What the live view draws is taken from the traced run: a tracker's
// objects (with their track ids) when the flow tracks, labelled from the
// detection with the same box; otherwise the algorithms' detections,
// labelled by their list's name when they carry no label.
func TestPreviewObjects(t *testing.T) {
	detect := flow.NodeResult{ID: "detect", Kind: "algorithm", Status: flow.StatusOK, Output: map[string]any{
		"faces": []any{
			map[string]any{"box": []any{int64(10), int64(20), int64(30), int64(40)}, "label": "face", "score": 0.9},
			map[string]any{"box": []any{int64(50), int64(60), int64(70), int64(80)}},
		},
		"width": int64(1280),
	}}
	track := flow.NodeResult{ID: "track", Kind: "track", Status: flow.StatusOK, Output: map[string]any{
		"objects": []any{map[string]any{"box": []any{10.0, 20.0, 30.0, 40.0}, "trackId": int64(7), "crop": media.Image{}}},
		"ended":   []any{int64(3)},
	}}
	failed := flow.NodeResult{ID: "other", Kind: "algorithm", Status: flow.StatusFailed, Output: map[string]any{
		"cars": []any{map[string]any{"box": []any{int64(1), int64(1), int64(1), int64(1)}}}}}

	got := objectsOf([]flow.NodeResult{detect, failed})
	want := []PreviewObject{{Box: [4]float64{10, 20, 30, 40}, Label: "face", Score: 0.9}, {Box: [4]float64{50, 60, 70, 80}, Label: "face"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("without a tracker: %+v, want %+v", got, want)
	}
	got = objectsOf([]flow.NodeResult{detect, track})
	want = []PreviewObject{{Box: [4]float64{10, 20, 30, 40}, TrackId: 7, Label: "face"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with a tracker: %+v, want %+v", got, want)
	}
	// A tracker that saw nothing this frame: nothing is drawn, not the
	// detections of some other node.
	empty := track
	empty.Output = map[string]any{"objects": []any{}}
	if got := objectsOf([]flow.NodeResult{detect, empty}); len(got) != 0 {
		t.Errorf("an empty tracker: %+v, want nothing", got)
	}
	// Malformed boxes are skipped.
	bad := flow.NodeResult{Kind: "algorithm", Status: flow.StatusOK, Output: map[string]any{"objects": []any{
		map[string]any{"box": []any{int64(1), "x", int64(1), int64(1)}}, map[string]any{"box": []any{int64(1)}}, "not an object"}}}
	if got := objectsOf([]flow.NodeResult{bad}); len(got) != 0 {
		t.Errorf("malformed: %+v", got)
	}
}

// A frame without a picture is not previewed; one with a picture keeps
// the task's bytes, not a copy.
func TestPreviewOf(t *testing.T) {
	m := &pipeline.Message{Key: "dev-1", Time: time.Unix(100, 0), Data: map[string]any{"frame": int64(3), "width": int64(640), "height": int64(480)}}
	if f := previewOf("task-1", 0, m, flow.Result{}, time.Now()); f != nil {
		t.Fatalf("no picture: %+v", f)
	}
	pic := []byte{0xFF, 0xD8, 0xFF, 0xE0}
	m.Data["image"] = media.Image{Bytes: pic, ContentType: "image/jpeg"}
	f := previewOf("task-1", 2, m, flow.Result{}, time.Now())
	if f == nil || f.Source != 2 || f.Seq != 3 || f.Width != 640 || f.Key != "dev-1" || !f.Captured.Equal(time.Unix(100, 0)) || &f.JPEG[0] != &pic[0] {
		t.Fatalf("preview %+v", f)
	}
}

// A viewer slower than the task loses frames, newest wins, and the task's
// publish never blocks; viewers get only their source's frames, and a
// task nobody watches is not watched.
func TestPreviewDropsForSlowViewers(t *testing.T) {
	p := NewPreviews()
	run := p.acquire("task-1")
	run.running.Add(1)
	if run.watched() || !p.Running("task-1") {
		t.Fatal("a task nobody watches is watched, or a running one is not running")
	}
	s0 := p.Subscribe("task-1", 0)
	s1 := p.Subscribe("task-1", 1)
	if !run.watched() {
		t.Fatal("a watched task is not watched")
	}
	for i := range 5 {
		run.publish(&PreviewFrame{Source: 0, Seq: int64(i)})
	}
	if f := <-s0.C; f.Seq != 4 || s0.Dropped() != 4 {
		t.Errorf("got frame %d after %d dropped, want 4 after 4", f.Seq, s0.Dropped())
	}
	select {
	case f := <-s1.C:
		t.Errorf("source 1's viewer got source 0's frame %+v", f)
	default:
	}
	s0.Stop()
	s0.Stop() // idempotent
	s1.Stop()
	if run.watched() {
		t.Error("watched after every viewer left")
	}
	run.running.Add(-1)
	p.release("task-1", run)
	if p.Running("task-1") || len(p.taps) != 0 {
		t.Errorf("taps left: %v", p.taps)
	}
}
