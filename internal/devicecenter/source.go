package devicecenter

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
)

// TaskSource is the task source of type "device": frames and events from a
// device. By default (DropPolicy "latest") it is live: a slow flow drops
// stale frames rather than queue them. With DropPolicy "none" it applies
// back-pressure instead, numbers frames stably (message id <device>-<seq>),
// and checkpoints the last frame up to which every frame was acknowledged,
// so the task resumes after it on any worker (a replay device seeks there;
// a live one just goes on numbering from there). Its status reaches the
// device center while the task runs.
type TaskSource struct {
	s      *Service
	dev    *Device
	taskID string

	// lossless is DropPolicy "none"; the fields below serve it.
	lossless bool
	save     func(context.Context, string) error
	mu       sync.Mutex
	// done is the Seq up to which every frame was acknowledged: where a
	// (re)started Run resumes. It only grows.
	done uint64
}

// NewTaskSource is the pipeline.SourceFactory for type "device".
func (s *Service) NewTaskSource(ctx context.Context, spec pipeline.SourceSpec, env pipeline.SourceEnv) (pipeline.Source, error) {
	d, err := s.Get(ctx, spec.Id)
	if err != nil {
		return nil, err
	}
	if d.ProjectID != env.ProjectID {
		return nil, fmt.Errorf("device %s belongs to project %s, not %s", d.ID, d.ProjectID, env.ProjectID)
	}
	ts := &TaskSource{s: s, dev: d, taskID: env.TaskID, lossless: spec.DropPolicy == pipeline.DropNone, save: env.SavePosition}
	if ts.lossless && env.Position != "" {
		if ts.done, err = strconv.ParseUint(env.Position, 10, 64); err != nil {
			return nil, fmt.Errorf("device %s: checkpoint %q is not a frame number", d.ID, env.Position)
		}
	}
	return ts, nil
}

// Live implements pipeline.Source: latest-frame-wins unless DropPolicy is "none".
func (ts *TaskSource) Live() bool { return !ts.lossless }

// Run implements pipeline.Source: it opens the device and forwards what it
// produces until ctx ends. The driver reconnects by itself. A lossless
// source whose frame a sink could not write ends Run with an error, and the
// runner's restart resumes after the last frame fully acknowledged.
func (ts *TaskSource) Run(ctx context.Context, emit pipeline.Emit) error {
	// emit blocks with back-pressure: the source's Close must first end
	// those waits, so the device works on a context of its own.
	rctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	cfg := ts.dev.Config
	var acks *ackTracker
	if ts.lossless {
		ts.mu.Lock()
		cfg.Delivery = device.Delivery{Backpressure: true, After: ts.done}
		acks = &ackTracker{}
		ts.mu.Unlock()
	}
	var watch *frameWatch
	if st := ts.s.stalls(); st != nil {
		watch = newFrameWatch(st, cfg)
		defer ts.stallDone(watch)
	}
	sink := device.SinkFuncs{
		OnFrame: func(f device.Frame) {
			if watch != nil {
				watch.frame(f, ts.s.now())
				watch.st.m.frames.WithLabelValues(ts.dev.ID).Inc()
			}
			// group lets a flow treat the cameras of one group as one (dedup
			// scope task keyed by it).
			data := map[string]any{"device": ts.dev.ID, "group": ts.dev.Group, "frame": int64(f.Seq), "width": int64(f.Width), "height": int64(f.Height)}
			if f.Image != nil {
				data["image"] = media.Image{Bytes: f.Image, ContentType: "image/jpeg"}
			}
			m := pipeline.Message{ID: fmt.Sprintf("%s-%d-%d", ts.dev.ID, f.Time.UnixNano(), f.Seq), Key: ts.dev.ID, Time: f.Time, Data: data}
			if acks != nil {
				m.ID = fmt.Sprintf("%s-%d", ts.dev.ID, f.Seq)
				acks.sent(f.Seq)
				m.Ack = func(err error) { ts.acked(rctx, stop, acks, f.Seq, err) }
			}
			_ = emit(rctx, m)
		},
		OnEvent: func(e device.Event) {
			data := map[string]any{"device": ts.dev.ID, "event": e.Type, "data": e.Data}
			if e.Snapshot != nil {
				data["image"] = media.Image{Bytes: e.Snapshot, ContentType: "image/jpeg"}
			}
			_ = emit(rctx, pipeline.Message{ID: fmt.Sprintf("%s-ev-%d", ts.dev.ID, e.Time.UnixNano()), Key: ts.dev.ID, Time: e.Time, Data: data})
		},
		OnStatus: func(st device.Status) {
			// Status calls must not block the source: save it aside.
			go func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				ts.s.ReportStatus(sctx, st)
			}()
		},
	}
	src, err := ts.s.rt.Open(rctx, cfg, sink)
	if err != nil {
		return err
	}
	// Report frame rate and last frame time periodically while running.
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	// The stall check runs on a ticker of its own so that a stall is seen
	// within a second of the stall period; without detection it never fires.
	var stallC <-chan time.Time
	if watch != nil {
		st := time.NewTicker(stallCheckEvery)
		defer st.Stop()
		stallC = st.C
	}
	for {
		select {
		case <-rctx.Done():
			stop(nil)
			_ = src.Close()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return context.Cause(rctx)
		case <-t.C:
			ts.s.ReportStatus(context.WithoutCancel(ctx), src.Status())
		case <-stallC:
			ts.checkStall(ctx, watch)
		}
	}
}

// acked takes a frame's acknowledgement: success moves the checkpoint over
// every frame acknowledged in order; a failure (a sink could not write)
// ends the run so the frame comes again.
func (ts *TaskSource) acked(ctx context.Context, stop context.CancelCauseFunc, acks *ackTracker, seq uint64, err error) {
	if err != nil {
		if ctx.Err() == nil {
			stop(fmt.Errorf("frame %d not stored (%w); resuming after frame %d", seq, err, ts.position()))
		}
		return
	}
	upTo, moved := acks.ack(seq)
	if !moved {
		return
	}
	ts.mu.Lock()
	if upTo <= ts.done {
		// A run that ended may still see late acknowledgements, after a
		// new run started from an earlier frame: never move back.
		ts.mu.Unlock()
		return
	}
	ts.done = upTo
	ts.mu.Unlock()
	if ts.save != nil {
		if err := ts.save(ctx, strconv.FormatUint(upTo, 10)); err != nil {
			ts.s.log.Warn("device source checkpoint refused", "task", ts.taskID, "device", ts.dev.ID, "err", err)
		}
	}
}

func (ts *TaskSource) position() uint64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.done
}

// ackTracker finds the last frame up to which every frame handed to the
// task was acknowledged. Frames are sent in Seq order, possibly with gaps
// (a replay file that did not decode), and acknowledged in any order.
type ackTracker struct {
	mu      sync.Mutex
	pending []uint64        // sent, not yet passed by the checkpoint, in order
	acked   map[uint64]bool // acknowledged among pending
}

func (a *ackTracker) sent(seq uint64) {
	a.mu.Lock()
	a.pending = append(a.pending, seq)
	a.mu.Unlock()
}

// ack marks seq done and returns the new checkpoint when it moved.
func (a *ackTracker) ack(seq uint64) (upTo uint64, moved bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acked == nil {
		a.acked = map[uint64]bool{}
	}
	a.acked[seq] = true
	for len(a.pending) > 0 && a.acked[a.pending[0]] {
		upTo, moved = a.pending[0], true
		delete(a.acked, a.pending[0])
		a.pending = a.pending[1:]
	}
	return upTo, moved
}
