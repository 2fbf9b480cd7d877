package task

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
)

// PreviewFrame is one frame a task processed, as the live view shows it:
// the encoded picture the flow saw and the objects it found on it.
type PreviewFrame struct {
	TaskID string
	// Source is the index of the task's source the frame came from.
	Source int
	// Key is the message key: the device (or upload) id.
	Key string
	Seq int64
	// Captured is the frame's capture time (the message time).
	Captured      time.Time
	Width, Height int
	// JPEG is the frame's encoded picture, shared with the task, never
	// copied: nobody may change it.
	JPEG        []byte
	ContentType string
	Objects     []PreviewObject
	// Processed is when the flow finished with the frame.
	Processed time.Time
}

// PreviewObject is one object the flow found on a frame.
type PreviewObject struct {
	// Box is [x, y, width, height] in pixels of the frame.
	Box     [4]float64 `json:"Box"`
	TrackId int64      `json:"TrackId,omitempty"`
	Label   string     `json:"Label,omitempty"`
	Score   float64    `json:"Score,omitempty"`
}

// Previews is this process's tap on the frames its tasks process: viewers
// subscribe per task and source, and runners hand each frame to the
// task's subscribers. A runner checks one atomic counter per frame; only
// while somebody watches does it trace the flow and hand frames over, and
// a viewer that cannot keep up loses frames (newest wins), never slowing
// the task.
type Previews struct {
	mu   sync.Mutex
	taps map[string]*tap // by task id
}

// NewPreviews returns an empty tap set.
func NewPreviews() *Previews { return &Previews{taps: map[string]*tap{}} }

// tap is one task's viewers; it lives while a runner or a viewer holds it.
type tap struct {
	viewers atomic.Int32
	refs    int // guarded by Previews.mu
	running atomic.Int32

	mu   sync.Mutex
	subs map[*PreviewSub]struct{}
}

// PreviewSub is one viewer of one task's source. Frames arrive on C; a
// frame not yet taken when the next arrives is replaced by it.
type PreviewSub struct {
	C       chan *PreviewFrame
	source  int
	dropped atomic.Int64
	p       *Previews
	taskID  string
	t       *tap
	once    sync.Once
}

func (p *Previews) acquire(taskID string) *tap {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.taps[taskID]
	if t == nil {
		t = &tap{subs: map[*PreviewSub]struct{}{}}
		p.taps[taskID] = t
	}
	t.refs++
	return t
}

func (p *Previews) release(taskID string, t *tap) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t.refs--
	if t.refs == 0 {
		delete(p.taps, taskID)
	}
}

// Running reports whether taskID runs in this process now.
func (p *Previews) Running(taskID string) bool {
	p.mu.Lock()
	t := p.taps[taskID]
	p.mu.Unlock()
	return t != nil && t.running.Load() > 0
}

// Subscribe starts watching source of taskID. Call Stop when done.
func (p *Previews) Subscribe(taskID string, source int) *PreviewSub {
	t := p.acquire(taskID)
	s := &PreviewSub{C: make(chan *PreviewFrame, 1), source: source, p: p, taskID: taskID, t: t}
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	t.viewers.Add(1)
	return s
}

// Dropped is how many frames this viewer lost because it was slower than
// the task.
func (s *PreviewSub) Dropped() int64 { return s.dropped.Load() }

// Stop ends the subscription; it is idempotent.
func (s *PreviewSub) Stop() {
	s.once.Do(func() {
		s.t.mu.Lock()
		delete(s.t.subs, s)
		s.t.mu.Unlock()
		s.t.viewers.Add(-1)
		s.p.release(s.taskID, s.t)
	})
}

// watched is the per-frame check of the runner: one atomic load.
func (t *tap) watched() bool { return t != nil && t.viewers.Load() > 0 }

// publish hands f to the viewers of its source without ever blocking.
func (t *tap) publish(f *PreviewFrame) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := range t.subs {
		if s.source != f.Source {
			continue
		}
		for {
			select {
			case s.C <- f:
			default:
				select {
				case <-s.C:
					s.dropped.Add(1)
				default:
				}
				continue
			}
			break
		}
	}
}

// previewOf builds the preview of message m from the flow's traced result,
// or nil when the message carries no picture.
func previewOf(taskID string, source int, m *pipeline.Message, res flow.Result, now time.Time) *PreviewFrame {
	data, ct, ok := media.AsImage(m.Data["image"])
	if !ok || len(data) == 0 {
		return nil
	}
	f := &PreviewFrame{TaskID: taskID, Source: source, Key: m.Key, Captured: m.Time, JPEG: data, ContentType: ct,
		Width: intOf(m.Data["width"]), Height: intOf(m.Data["height"]), Seq: int64(intOf(m.Data["frame"])), Processed: now}
	f.Objects = objectsOf(res.Nodes)
	return f
}

// objectsOf picks the objects to draw from a traced run. A tracker's
// objects are the frame's objects with their track ids, so they win when
// the flow tracks; otherwise the algorithms' detections are drawn.
// Objects carry a box [x, y, w, h]; a label missing on a tracked object
// is taken from the detection with the same box, or from the name of the
// list it came in ("faces" → "face").
func objectsOf(nodes []flow.NodeResult) []PreviewObject {
	var tracked, detected []PreviewObject
	trackRan := false
	labels := map[[4]float64]string{}
	for _, n := range nodes {
		if n.Status != flow.StatusOK {
			continue
		}
		out, ok := n.Output.(map[string]any)
		if !ok {
			continue
		}
		switch n.Kind {
		case "track":
			trackRan = true
			tracked = appendObjects(tracked, out["objects"], "")
		case "algorithm":
			for k, v := range out {
				detected = appendObjects(detected, v, singular(k))
			}
		}
	}
	for _, o := range detected {
		if o.Label != "" {
			labels[o.Box] = o.Label
		}
	}
	if !trackRan {
		return detected
	}
	for i := range tracked {
		if tracked[i].Label == "" {
			tracked[i].Label = labels[tracked[i].Box]
		}
	}
	return tracked
}

// maxPreviewObjects bounds what one frame's overlay carries.
const maxPreviewObjects = 256

func appendObjects(dst []PreviewObject, v any, label string) []PreviewObject {
	list, ok := v.([]any)
	if !ok {
		return dst
	}
	for _, it := range list {
		if len(dst) >= maxPreviewObjects {
			break
		}
		o, ok := it.(map[string]any)
		if !ok {
			continue
		}
		box, ok := boxOf(o["box"])
		if !ok {
			continue
		}
		po := PreviewObject{Box: box, Label: label}
		for _, k := range []string{"label", "type", "class"} {
			if s, ok := o[k].(string); ok && s != "" {
				po.Label = s
				break
			}
		}
		if id, ok := numberOf(o["trackId"]); ok {
			po.TrackId = int64(id)
		}
		if s, ok := numberOf(o["score"]); ok {
			po.Score = s
		}
		dst = append(dst, po)
	}
	return dst
}

func boxOf(v any) ([4]float64, bool) {
	var b [4]float64
	switch x := v.(type) {
	case []any:
		if len(x) != 4 {
			return b, false
		}
		for i, e := range x {
			f, ok := numberOf(e)
			if !ok {
				return b, false
			}
			b[i] = f
		}
		return b, true
	case []int64:
		if len(x) != 4 {
			return b, false
		}
		for i, e := range x {
			b[i] = float64(e)
		}
		return b, true
	case []float64:
		if len(x) != 4 {
			return b, false
		}
		copy(b[:], x)
		return b, true
	}
	return b, false
}

func numberOf(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func intOf(v any) int {
	f, _ := numberOf(v)
	return int(f)
}

func singular(k string) string {
	switch {
	case strings.HasSuffix(k, "ies"):
		return strings.TrimSuffix(k, "ies") + "y"
	case strings.HasSuffix(k, "s") && !strings.HasSuffix(k, "ss"):
		return strings.TrimSuffix(k, "s")
	}
	return k
}
