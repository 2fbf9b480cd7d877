package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/push"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// A replay camera whose video freezes (3 s of moving picture, then 12 s of
// one still picture, then moving again) raises tianshu.device.stalled and
// tianshu.task.stalled while it is frozen, seen by an SSE subscription as
// an application sees it, and tianshu.device.recovered when the picture
// moves again; /metrics shows tianshu_device_stalled meanwhile. The stall
// period is the default (5 s); the issue asks for the event within 10 s of
// the freeze: the test logs the measured time rather than assert a timing.
func TestFrozenReplayDeviceStalls(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		testenv.Unavailable(t, "no ffmpeg")
	}
	dir := t.TempDir()
	video := filepath.Join(dir, "freeze.avi")
	// Intra-only MJPEG: every still frame decodes to the same pixels.
	cmd := exec.Command(ffmpeg, "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=3",
		"-f", "lavfi", "-i", "color=c=gray:size=160x120:rate=10:duration=12",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=6",
		"-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1[v]", "-map", "[v]", "-c:v", "mjpeg", "-q:v", "3", video)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", dir}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	events := stallEvents(t, ctx, e, c)

	devID := c.mustCall("CreateDevice", map[string]any{"Name": "freezing", "Driver": "replay", "Address": video, "Fps": 10})["DeviceId"].(string)
	started := time.Now()
	taskID := watchDevice(t, c, devID)

	got := map[string]int{}
	wait := func(typ string) stallEvent { t.Helper(); return waitStall(t, ctx, events, got, started, typ) }
	stalledEv := wait("tianshu.device.stalled")
	if stalledEv.data["DeviceId"] != devID || stalledEv.data["Reason"] != "frozen" || stalledEv.data["TaskId"] != taskID {
		t.Errorf("device.stalled data %v", stalledEv.data)
	}
	if v, ok := scrape(t, e, `tianshu_device_stalled{device="`+devID+`"}`); !ok || v != 1 {
		t.Errorf("tianshu_device_stalled = %v (present %v)", v, ok)
	}
	if got["tianshu.task.stalled"] != 1 {
		t.Errorf("task.stalled events before device.stalled: %d", got["tianshu.task.stalled"])
	}
	if d := c.mustCall("DescribeDevices", map[string]any{"DeviceIds": []string{devID}})["DeviceSet"].([]any)[0].(map[string]any); d["Status"] != "online" {
		t.Errorf("device status %v while frozen: frames still come", d["Status"])
	}
	// The freeze-to-subscriber latency is what the issue bounds (10 s):
	// the picture had not changed for UnchangedSeconds when the platform
	// raised the event, and the subscriber got it later by the delivery.
	same, _ := stalledEv.data["UnchangedSeconds"].(float64)
	delivery := stalledEv.at.Sub(stalledEv.time)
	latency := time.Duration(same*float64(time.Second)) + delivery
	t.Logf("device.stalled: picture frozen %.2fs when raised, delivered %v later: %v from freeze to subscriber (stall period 5s)", same, delivery.Round(time.Millisecond), latency.Round(10*time.Millisecond))
	rec := wait("tianshu.device.recovered")
	if got["tianshu.task.recovered"] == 0 {
		wait("tianshu.task.recovered")
	}
	t.Logf("device.recovered %v after device.stalled (the still part lasts 12 s)", rec.at.Sub(stalledEv.at).Round(10*time.Millisecond))
	testenv.Eventually(t, 10*time.Second, "tianshu_device_stalled 0", func() bool {
		v, ok := scrape(t, e, `tianshu_device_stalled{device="`+devID+`"}`)
		return ok && v == 0
	})
	if _, ok := scrape(t, e, `tianshu_device_last_frame_age_seconds{device="`+devID+`"}`); !ok {
		t.Error("no tianshu_device_last_frame_age_seconds for the device")
	}
}

// stallEvent is a device or task event as an SSE subscriber receives it.
type stallEvent struct {
	typ  string
	data map[string]any
	time time.Time // the event's time attribute
	at   time.Time // when it arrived here
}

// stallEvents subscribes to the default project's device and task events
// over SSE, as a browser would, and returns what arrives.
func stallEvents(t *testing.T, ctx context.Context, e *apptest.Env, c *sdk) <-chan stallEvent {
	t.Helper()
	subID := c.mustCall("CreateSubscription", map[string]any{"Name": "stalls", "Channel": map[string]any{"Type": "sse"},
		"Filter": map[string]any{"Types": []string{"tianshu.device.*", "tianshu.task.*"}}})["SubscriptionId"].(string)
	exp := time.Now().Add(time.Hour).Unix()
	u := fmt.Sprintf("%s%s?subscription=%s&secret_id=%s&expires=%d&signature=%s", e.Endpoint, push.SSEPath, subID, apptest.AdminSecretID, exp,
		push.SignStream(apptest.AdminSecretKey, subID, exp))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("SSE: %s %s", resp.Status, b)
	}
	events := make(chan stallEvent, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ce struct {
					Type string         `json:"type"`
					Time time.Time      `json:"time"`
					Data map[string]any `json:"data"`
				}
				if json.Unmarshal([]byte(line), &ce) == nil {
					events <- stallEvent{ce.Type, ce.Data, ce.Time, time.Now()}
				}
			}
		}
		close(events)
	}()

	return events
}

// watchDevice starts a task that reads device devID and returns its id.
func watchDevice(t *testing.T, c *sdk, devID string) string {
	t.Helper()
	doc := `{"name": "frames", "nodes": [{"id": "n", "kind": "noop", "inputs": {"frame": "$input.frame"}}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	return c.mustCall("CreateTask", map[string]any{"Name": "watch-" + devID, "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)
}

// waitStall returns the next event of type typ, counting in got every
// event it passes and logging each with its time since started.
func waitStall(t *testing.T, ctx context.Context, events <-chan stallEvent, got map[string]int, started time.Time, typ string) stallEvent {
	t.Helper()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("SSE ended before %s", typ)
			}
			got[ev.typ]++
			t.Logf("%s after %v: %v", ev.typ, ev.at.Sub(started).Round(10*time.Millisecond), ev.data)
			if ev.typ == typ {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no %s", typ)
		}
	}
}

// A replay camera that plays its folder once and stops sending frames
// raises tianshu.device.stalled with reason no_frames, after the device's
// own stall period (Options.stall_event_after 3s) rather than the
// operator's (--worker.stall-after 2s); an out-of-range period is refused.
func TestEndedReplayDeviceStalls(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".jpg"), jpegImage(t, 32, 24, uint8(60*i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", dir, "--worker.stall-after", "2s"}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	events := stallEvents(t, ctx, e, c)
	if _, code := c.call("CreateDevice", map[string]any{"Name": "bad", "Driver": "replay", "Address": dir,
		"Options": map[string]any{"stall_event_after": "10ms"}}); code != "InvalidParameterValue" {
		t.Errorf("stall_event_after 10ms: %q, want InvalidParameterValue", code)
	}
	devID := c.mustCall("CreateDevice", map[string]any{"Name": "once", "Driver": "replay", "Address": dir, "Fps": 10,
		"Options": map[string]any{"loop": false, "stall_event_after": "3s"}})["DeviceId"].(string)
	started := time.Now()
	taskID := watchDevice(t, c, devID)
	ev := waitStall(t, ctx, events, map[string]int{}, started, "tianshu.device.stalled")
	if ev.data["Reason"] != "no_frames" || ev.data["TaskId"] != taskID || ev.data["StallAfterSeconds"] != 3.0 {
		t.Errorf("device.stalled data %v", ev.data)
	}
	if v, ok := scrape(t, e, `tianshu_task_stalled{task="`+taskID+`"}`); !ok || v != 1 {
		t.Errorf("tianshu_task_stalled = %v (present %v)", v, ok)
	}
}
