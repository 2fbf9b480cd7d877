package devicecenter

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// Stall reasons, in the events' Reason field.
const (
	// StallNoFrames: no frame arrived for the stall period.
	StallNoFrames = "no_frames"
	// StallFrozen: frames arrive, but every one is the same picture (a
	// frozen camera replaying its last frame).
	StallFrozen = "frozen"
)

// stallCheckEvery is how often a running device source looks at its
// frames: a stall is seen at most this long after the stall period ends.
const stallCheckEvery = time.Second

// stallSamples bounds the bytes of decoded pixels a frame's hash reads.
const stallSamples = 4096

// stalls is the device center's stall detector: which device each task
// sees stalled, and the per-device and per-task metrics.
type stalls struct {
	after time.Duration
	m     *stallMetrics
	seed  maphash.Seed

	mu sync.Mutex
	// by is device id → task id → stalled, for the tasks reading it.
	by map[string]map[string]bool
}

type stallMetrics struct {
	stalled     *prometheus.GaugeVec   // device
	stallsTotal *prometheus.CounterVec // device
	frameAge    *prometheus.GaugeVec   // device
	sameFor     *prometheus.GaugeVec   // device
	frames      *prometheus.CounterVec // device
	online      *prometheus.GaugeVec   // device
	taskStalled *prometheus.GaugeVec   // task
}

func newStallMetrics(r prometheus.Registerer) (*stallMetrics, error) {
	m := &stallMetrics{
		stalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tianshu_device_stalled",
			Help: "1 while a device a task reads is stalled: no new frame (none, or the same picture) for the stall period."}, []string{"device"}),
		stallsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_device_stalls_total",
			Help: "Times a device became stalled."}, []string{"device"}),
		frameAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tianshu_device_last_frame_age_seconds",
			Help: "Seconds since the last frame of a device a task reads."}, []string{"device"}),
		sameFor: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tianshu_device_unchanged_seconds",
			Help: "Seconds since the picture of a device a task reads last changed."}, []string{"device"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_device_task_frames_total",
			Help: "Frames a device handed to the tasks that read it."}, []string{"device"}),
		online: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tianshu_device_online",
			Help: "1 while a device's last reported status is online, 0 otherwise."}, []string{"device"}),
		taskStalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tianshu_task_stalled",
			Help: "1 while a device a task reads is stalled."}, []string{"task"}),
	}
	for _, g := range []**prometheus.GaugeVec{&m.stalled, &m.frameAge, &m.sameFor, &m.online, &m.taskStalled} {
		var err error
		if *g, err = telemetry.Register(r, *g); err != nil {
			return nil, fmt.Errorf("devicecenter: register metrics: %w", err)
		}
	}
	for _, c := range []**prometheus.CounterVec{&m.stallsTotal, &m.frames} {
		var err error
		if *c, err = telemetry.Register(r, *c); err != nil {
			return nil, fmt.Errorf("devicecenter: register metrics: %w", err)
		}
	}
	return m, nil
}

// UseStallDetection makes device sources of tasks report a device stalled
// when it sends no new frame for after: device.stalled and task.stalled
// events on the project's events topic (device.recovered, task.recovered
// when new frames come again) and the tianshu_device_* per-device
// metrics, registered with reg (nil: none). Without it nothing is
// detected.
func (s *Service) UseStallDetection(after time.Duration, reg prometheus.Registerer) error {
	if after <= 0 {
		return fmt.Errorf("devicecenter: stall period %v is not positive", after)
	}
	m, err := newStallMetrics(reg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.stall = &stalls{after: after, m: m, seed: maphash.MakeSeed(), by: map[string]map[string]bool{}}
	s.mu.Unlock()
	return nil
}

func (s *Service) stalls() *stalls {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stall
}

// frameWatch follows one task's frames of one device: when the last one
// came and when the picture last changed.
type frameWatch struct {
	st *stalls
	// after is the stall period for this device: the operator's, or three
	// frame intervals of a device configured slower than that allows.
	after time.Duration

	mu      sync.Mutex
	seen    bool
	hash    uint64
	last    time.Time
	changed time.Time
}

// newFrameWatch returns the watch of a device configured as cfg: its own
// stall period (Options.stall_event_after) when it has one, else the
// operator's, raised to three frame intervals for a device configured
// slower than that allows.
func newFrameWatch(st *stalls, cfg device.Config) *frameWatch {
	if own, ok := cfg.StallEventAfter(); ok {
		return &frameWatch{st: st, after: own}
	}
	after := st.after
	if cfg.FPS > 0 {
		after = max(after, time.Duration(3*float64(time.Second)/cfg.FPS))
	}
	return &frameWatch{st: st, after: after}
}

// frame notes a frame received at now. The picture is compared by a hash:
// of the JPEG bytes when the driver hands JPEG (a frozen encoder repeats
// them byte for byte, and hashing them costs far less than decoding), else
// of an evenly spaced sample of the decoded pixels.
func (w *frameWatch) frame(f device.Frame, now time.Time) {
	var h uint64
	switch {
	case f.Image != nil:
		h = maphash.Bytes(w.st.seed, f.Image)
	case len(f.Pixels) > 0:
		var mh maphash.Hash
		mh.SetSeed(w.st.seed)
		step := max(1, len(f.Pixels)/stallSamples)
		for i := 0; i < len(f.Pixels); i += step {
			_ = mh.WriteByte(f.Pixels[i])
		}
		h = mh.Sum64()
	default:
		// Neither picture nor pixels: count arrival, not content.
		h = f.Seq
	}
	w.mu.Lock()
	if !w.seen || h != w.hash {
		w.changed = now
	}
	w.seen, w.hash, w.last = true, h, now
	w.mu.Unlock()
}

// state says whether the device is stalled at now, and why. A source that
// has not had its first frame is never stalled: devices that send only
// events, or that are still connecting (their status says so), are not
// watched.
func (w *frameWatch) state(now time.Time) (stalled bool, reason string, age, same time.Duration, armed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen {
		return false, "", 0, 0, false
	}
	age, same = now.Sub(w.last), now.Sub(w.changed)
	switch {
	case age >= w.after:
		return true, StallNoFrames, age, same, true
	case same >= w.after:
		return true, StallFrozen, age, same, true
	}
	return false, "", age, same, true
}

// checkStall updates the metrics of the device a task source reads and
// publishes the device's and the task's stall or recovery when it changed.
func (ts *TaskSource) checkStall(ctx context.Context, w *frameWatch) {
	st := w.st
	now := ts.s.now()
	stalled, reason, age, same, armed := w.state(now)
	if !armed {
		return
	}
	dev := ts.dev.ID
	st.m.frameAge.WithLabelValues(dev).Set(age.Seconds())
	st.m.sameFor.WithLabelValues(dev).Set(same.Seconds())
	st.mu.Lock()
	tasks := st.by[dev]
	if tasks == nil {
		tasks = map[string]bool{}
		st.by[dev] = tasks
	}
	devBefore, taskBefore := anyTrue(tasks), tasks[ts.taskID]
	tasks[ts.taskID] = stalled
	devAfter := anyTrue(tasks)
	st.mu.Unlock()
	// Set on every check, not only on a change, so that the series exist
	// (at 0) from the first frame and alert rules see them.
	st.m.stalled.WithLabelValues(dev).Set(b2f(devAfter))
	st.m.taskStalled.WithLabelValues(ts.taskID).Set(b2f(stalled))
	st.m.stallsTotal.WithLabelValues(dev) // exists at 0 before the first stall
	data := map[string]any{"DeviceId": dev, "Name": ts.dev.Name, "TaskId": ts.taskID,
		"LastFrameAgeSeconds": age.Seconds(), "UnchangedSeconds": same.Seconds()}
	if stalled {
		data["Reason"] = reason
		data["StallAfterSeconds"] = w.after.Seconds()
	}
	if taskBefore != stalled {
		typ := event.TaskRecoveredType
		if stalled {
			typ = event.TaskStalledType
			ts.s.log.Warn("task input stalled", "task", ts.taskID, "device", dev, "reason", reason, "age", age)
		} else {
			ts.s.log.Info("task input recovered", "task", ts.taskID, "device", dev)
		}
		ts.publishStall(ctx, typ, ts.taskID, event.TaskSource(ts.taskID), data, now)
	}
	if devBefore != devAfter {
		typ := event.DeviceRecoveredType
		if devAfter {
			typ = event.DeviceStalledType
			st.m.stallsTotal.WithLabelValues(dev).Inc()
			ts.s.log.Warn("device stalled", "device", dev, "reason", reason, "age", age)
		} else {
			ts.s.log.Info("device recovered", "device", dev)
		}
		ts.publishStall(ctx, typ, dev, event.DeviceSource(dev), data, now)
	}
}

// stallDone forgets a task source that stopped: its device is no longer
// watched by it. No recovery is announced: nobody sees the device now.
func (ts *TaskSource) stallDone(w *frameWatch) {
	st := w.st
	dev := ts.dev.ID
	st.mu.Lock()
	tasks := st.by[dev]
	delete(tasks, ts.taskID)
	last := len(tasks) == 0
	if last {
		delete(st.by, dev)
	}
	st.mu.Unlock()
	st.m.taskStalled.DeleteLabelValues(ts.taskID)
	if last {
		st.m.stalled.DeleteLabelValues(dev)
		st.m.frameAge.DeleteLabelValues(dev)
		st.m.sameFor.DeleteLabelValues(dev)
	}
}

func (ts *TaskSource) publishStall(ctx context.Context, typ, subject, source string, data map[string]any, now time.Time) {
	if ts.s.events == nil {
		return
	}
	ev := event.New(event.StallID(subject, typ, now), source, typ, subject, now, data)
	ev.ProjectID = ts.dev.ProjectID
	if subject == ts.taskID {
		ev.TaskID = ts.taskID
	}
	b, err := ev.Marshal()
	if err == nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, err = ts.s.events.Publish(pctx, event.Topic(ts.dev.ProjectID), subject, b, ev.Headers())
	}
	if err != nil {
		ts.s.log.Warn("stall event not published", "type", typ, "subject", subject, "err", err)
	}
}

func anyTrue(m map[string]bool) bool {
	for _, v := range m {
		if v {
			return true
		}
	}
	return false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
