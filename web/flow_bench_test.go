package web_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// BenchmarkFlowEditorLarge measures the flow editor with a 200-node flow
// (the browser step's generated flow, steps/84-flow-large.mjs) in
// Chromium: panned with the mouse and zoomed with the wheel for 4 s after
// auto-layout, it reports the median and worst-5 % frame rate from the
// page's animation-frame times. Chromium runs headless without a GPU, so
// this is the software-rendering worst case. Run:
// go test ./web -run '^$' -bench FlowEditorLarge -benchtime 1x
func BenchmarkFlowEditorLarge(b *testing.B) {
	node, chromium, ok := browserTools(b)
	if !ok {
		return
	}
	e := apptest.Start(b, apptest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("test", "flow-large-fps.mjs"))
	cmd.Env = append(os.Environ(), "TIANSHU_URL="+e.Endpoint, "TIANSHU_ADMIN_PASSWORD="+apptest.AdminPassword, "CHROMIUM="+chromium)
	b.ResetTimer()
	out, err := cmd.Output()
	b.StopTimer()
	if err != nil {
		b.Fatalf("flow-large-fps.mjs: %v\n%s", err, out)
	}
	var r struct {
		Nodes, Frames int
		Ms            float64
		Mean          float64
		P50, Worst5   float64
		MaxMs         float64
		Errors        []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	if len(r.Errors) > 0 || r.Frames == 0 {
		b.Fatalf("%d frames, console errors %v", r.Frames, r.Errors)
	}
	b.Logf("%d nodes, pan and zoom: %d frames in %.0f ms; mean %.1f fps, p50 %.1f fps, worst 5%% %.1f fps, longest frame %.0f ms", r.Nodes, r.Frames, r.Ms, r.Mean, r.P50, r.Worst5, r.MaxMs)
	b.ReportMetric(r.Mean, "fps-mean")
	b.ReportMetric(r.P50, "fps-p50")
	b.ReportMetric(r.Worst5, "fps-worst5%")
}

// browserTools answers node and Chromium for a benchmark that drives the
// console in the browser; ok is false (the benchmark is skipped, or fails
// under TIANSHU_CI) when either, or web/node_modules, is missing.
func browserTools(b *testing.B) (node, chromium string, ok bool) {
	node = testenv.NeedCommand(b, "node")
	chromium = testenv.Getenv("CHROMIUM", "/usr/bin/chromium")
	if _, err := os.Stat(chromium); err != nil {
		testenv.Unavailable(b, "Chromium not found: "+err.Error())
		return "", "", false
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core")); err != nil {
		testenv.Unavailable(b, "web/node_modules is not installed: "+err.Error())
		return "", "", false
	}
	return node, chromium, true
}
