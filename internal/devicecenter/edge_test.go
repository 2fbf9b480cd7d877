package devicecenter

import (
	"context"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
)

// An edge node reports the status of its own devices only; a device whose
// node stopped reporting turns unknown with ReasonEdgeStale and keeps the
// last frame time and status time the node reported; the prober leaves
// edge devices to their node.
func TestReportEdge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, s := newTestService(t, dir)
	d := &Device{ProjectID: "default", Name: "gate", EdgeNode: "edge-a", Config: device.Config{Driver: "replay", Address: dir}}
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	frame := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	st := device.Status{DeviceID: d.ID, State: device.StateOnline, LastFrameTime: frame, MeasuredFPS: 10}
	if err := s.ReportEdge(ctx, "edge-b", st); !isCode(err, api.ResourceNotFound) {
		t.Fatalf("another node's report: %v", err)
	}
	if err := s.ReportEdge(ctx, "edge-a", device.Status{DeviceID: d.ID, State: "melted"}); !isCode(err, api.InvalidParameterValue) {
		t.Fatalf("an unknown state: %v", err)
	}
	got, _ := s.Get(ctx, d.ID)
	if got.Status != "unknown" {
		t.Fatalf("status after refused reports: %s", got.Status)
	}
	if err := s.ReportEdge(ctx, "edge-a", st); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, d.ID)
	if got.Status != "online" || !got.LastFrame.Equal(frame) || got.MeasuredFPS != 10 || got.StatusTime.IsZero() {
		t.Fatalf("after the node's report: %+v", got)
	}
	reported := got.StatusTime
	if n, err := s.StaleEdge(ctx, reported.Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("stale before the cutoff: %d, %v", n, err)
	}
	if n, err := s.StaleEdge(ctx, reported.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("stale after the cutoff: %d, %v", n, err)
	}
	got, _ = s.Get(ctx, d.ID)
	if got.Status != "unknown" || got.Reason != ReasonEdgeStale || !got.LastFrame.Equal(frame) || !got.StatusTime.Equal(reported) || got.MeasuredFPS != 0 {
		t.Fatalf("stale: %+v", got)
	}
	if n, _ := s.StaleEdge(ctx, reported.Add(time.Minute)); n != 0 {
		t.Fatalf("marked again: %d", n)
	}
	s.ProbeAll(ctx, -time.Hour, 1)
	if got, _ = s.Get(ctx, d.ID); got.Status != "unknown" || got.Reason != ReasonEdgeStale {
		t.Fatalf("the cloud probed an edge device: %+v", got)
	}
}

func isCode(err error, code api.Code) bool {
	e, ok := api.AsError(err)
	return ok && e.Code == code
}
