package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/examples"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// BenchmarkLiveViewInBrowser measures the live view as a person sees it:
// four replay cameras of 720p frames (the demo's photos scaled and padded
// by ffmpeg) at 5 fps, each read by a task running the face-structuring
// flow, watched at once in a 2×2 grid in Chromium. It reports the median
// and p90 of the latency each tile shows (capture to screen), beside the
// part the flow itself took (capture to the flow's end) as the baseline:
// the ratio is what the live view adds on top of the task. Run:
// go test ./web -run '^$' -bench LiveViewInBrowser -benchtime 1x
func BenchmarkLiveViewInBrowser(b *testing.B) {
	node, chromium, ok := browserTools(b)
	if !ok {
		return
	}
	ffmpeg := testenv.NeedCommand(b, "ffmpeg")
	// TIANSHU_BENCH_LIVE_ARGS passes flags to the platform, e.g.
	// "--worker.in-flight 1": one frame of a camera at a time, the newest.
	e := apptest.Start(b, apptest.Options{Args: strings.Fields(os.Getenv("TIANSHU_BENCH_LIVE_ARGS"))})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	frames := filepath.Join(e.DataDir, "media", "live-720p") // under a media root
	if err := os.MkdirAll(frames, 0o755); err != nil {
		b.Fatal(err)
	}
	photos, _ := fs.Glob(examples.FS, "demo/photos/*.jpg")
	for _, p := range photos {
		src := filepath.Join(b.TempDir(), filepath.Base(p))
		data, _ := fs.ReadFile(examples.FS, p)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			b.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, ffmpeg, "-loglevel", "error", "-y", "-i", src,
			"-vf", "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2", "-q:v", "3", filepath.Join(frames, filepath.Base(p))).CombinedOutput()
		if err != nil {
			b.Fatalf("ffmpeg: %v\n%s", err, out)
		}
	}
	admin := session(b, e.Endpoint, "admin", apptest.AdminPassword)
	face, _ := fs.ReadFile(examples.FS, "flows/face-structuring.json")
	for _, flow := range []struct{ name, doc string }{
		{"face", string(face)},
		// Nothing found, nothing drawn: the live view's own part alone.
		{"passthrough", `{"name": "pass", "inputs": {"image": {"type": "image", "required": true}}, "nodes": [{"id": "pass", "kind": "passthrough"}]}`},
	} {
		b.Run(flow.name, func(b *testing.B) {
			measureLive(ctx, b, admin, e.Endpoint, node, chromium, frames, flow.name, flow.doc)
		})
	}
}

// measureLive runs four cameras into four tasks of the flow doc, watches
// them in the browser and records what the tiles showed; the tasks stop at
// the end.
func measureLive(ctx context.Context, b *testing.B, admin *person, endpoint, node, chromium, frames, name, doc string) {
	call := func(action string, params map[string]any) map[string]any { return admin.call(b, action, params) }
	flowID := call("CreateFlow", map[string]any{"Document": json.RawMessage(doc)})["FlowId"].(string)
	var tiles []string
	for i := range 4 {
		dev := call("CreateDevice", map[string]any{"Name": fmt.Sprintf("cam-%s-%d", name, i), "Driver": "replay", "Address": frames, "Fps": 5})["DeviceId"].(string)
		task := call("CreateTask", map[string]any{"Name": fmt.Sprintf("%s-720p-%d", name, i), "FlowId": flowID,
			"Sources": []any{map[string]any{"Type": "device", "Id": dev}}, "Start": true})["TaskId"].(string)
		tiles = append(tiles, task+":0")
		defer call("StopTask", map[string]any{"TaskId": task})
	}
	cmd := exec.CommandContext(ctx, node, filepath.Join("test", "live-latency.mjs"))
	cmd.Env = append(os.Environ(), "TIANSHU_URL="+endpoint, "TIANSHU_ADMIN_PASSWORD="+apptest.AdminPassword, "CHROMIUM="+chromium,
		"TIANSHU_LIVE_PATH=/live?project=default&grid=2&tiles="+strings.Join(tiles, ","), "TIANSHU_SECONDS=20")
	b.ResetTimer()
	out, err := cmd.Output()
	b.StopTimer()
	if err != nil {
		b.Fatalf("live-latency.mjs: %v\n%s", err, out)
	}
	var r struct {
		Tiles                              int
		LatencyP50, LatencyP90, LatencyMax float64
		FlowP50, FlowP90                   float64
		Fps                                []float64
		Errors                             []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	if len(r.Errors) > 0 || r.Tiles != 4 {
		b.Fatalf("%d tiles, console errors %v", r.Tiles, r.Errors)
	}
	stats := call("DescribeTaskStats", map[string]any{"TaskId": strings.TrimSuffix(tiles[0], ":0")})
	b.Logf("4×720p, %s flow: capture to screen p50 %.0f ms, p90 %.0f ms, max %.0f ms; flow p50 %.0f ms, p90 %.0f ms; fps per tile %v; first task's nodes %v",
		name, r.LatencyP50, r.LatencyP90, r.LatencyMax, r.FlowP50, r.FlowP90, r.Fps, stats["NodeLatency"])
	b.ReportMetric(r.LatencyP50, "p50-ms")
	b.ReportMetric(r.LatencyP90, "p90-ms")
	b.ReportMetric(r.FlowP50, "flow-p50-ms")
	benchtable.Record(b, benchtable.Row{Metric: "live view capture to screen p50, 4 cameras 720p, " + name + " flow (baseline: the flow's part)", Unit: "ms",
		Target: "≤ 500 ms", Tianshu: r.LatencyP50, Baseline: r.FlowP50})
}
