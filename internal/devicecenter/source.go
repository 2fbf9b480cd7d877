package devicecenter

import (
	"context"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/task"
)

// TaskSource is the task source of type "device": frames and events from a
// device, newest first (a slow flow drops stale frames rather than queue
// them). Its status reaches the device center while the task runs.
type TaskSource struct {
	s      *Service
	dev    *Device
	taskID string
}

// NewTaskSource is the task.SourceFactory for type "device".
func (s *Service) NewTaskSource(ctx context.Context, spec task.SourceSpec, env task.SourceEnv) (task.Source, error) {
	d, err := s.Get(ctx, spec.Id)
	if err != nil {
		return nil, err
	}
	if d.ProjectID != env.ProjectID {
		return nil, fmt.Errorf("device %s belongs to project %s, not %s", d.ID, d.ProjectID, env.ProjectID)
	}
	return &TaskSource{s: s, dev: d, taskID: env.TaskID}, nil
}

// Live implements task.Source.
func (ts *TaskSource) Live() bool { return true }

// Run implements task.Source: it opens the device and forwards what it
// produces until ctx ends. The driver reconnects by itself.
func (ts *TaskSource) Run(ctx context.Context, emit task.Emit) error {
	sink := device.SinkFuncs{
		OnFrame: func(f device.Frame) {
			data := map[string]any{"device": ts.dev.ID, "frame": int64(f.Seq), "width": int64(f.Width), "height": int64(f.Height)}
			if f.Image != nil {
				data["image"] = algorithm.Image{Bytes: f.Image, ContentType: "image/jpeg"}
			}
			_ = emit(ctx, task.Message{ID: fmt.Sprintf("%s-%d-%d", ts.dev.ID, f.Time.UnixNano(), f.Seq), Key: ts.dev.ID, Time: f.Time, Data: data})
		},
		OnEvent: func(e device.Event) {
			data := map[string]any{"device": ts.dev.ID, "event": e.Type, "data": e.Data}
			if e.Snapshot != nil {
				data["image"] = algorithm.Image{Bytes: e.Snapshot, ContentType: "image/jpeg"}
			}
			_ = emit(ctx, task.Message{ID: fmt.Sprintf("%s-ev-%d", ts.dev.ID, e.Time.UnixNano()), Key: ts.dev.ID, Time: e.Time, Data: data})
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
	src, err := ts.s.rt.Open(ctx, ts.dev.Config, sink)
	if err != nil {
		return err
	}
	// Report frame rate and last frame time periodically while running.
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return src.Close()
		case <-t.C:
			ts.s.ReportStatus(context.WithoutCancel(ctx), src.Status())
		}
	}
}
