package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/gb28181"
	"github.com/tianshu-ai/tianshu/internal/push"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestConsoleInBrowser drives the console in Debian's Chromium through
// playwright-core against a real platform with the demo: test/browser.mjs
// signs in (keyboard only, a field error first), runs every page's steps
// in test/steps/ as the project admin, signs out, and runs them again as a
// viewer of the demo project (what a viewer must not see or do). It fails
// on any browser console error, and checks every screenshot the script
// saved at 1280 and 390 px ($TIANSHU_SCREENSHOTS, or the test's temporary
// folder), which must include consolePages.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a platform and a browser; skipped with -short")
	}
	node := testenv.NeedCommand(t, "node")
	chromium := testenv.Getenv("CHROMIUM", "/usr/bin/chromium")
	if _, err := os.Stat(chromium); err != nil {
		testenv.Unavailable(t, "Chromium not found (apt-get install chromium): "+err.Error())
		return
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core")); err != nil {
		testenv.Unavailable(t, "web/node_modules is not installed (run: npm ci --prefix web): "+err.Error())
		return
	}
	// The algorithms step onboards the bundled example package, whose
	// manifest runs node: the operator allows where node lives.
	pkg := examplePackage(t)
	realNode, err := filepath.EvalSymlinks(node)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--exec.allow", filepath.Dir(node) + "," + filepath.Dir(realNode),
		// The GB/T 28181 step steers a simulated camera's channel (step 25).
		"--gb28181.addr", "127.0.0.1:0",
		// Every message traced and recent traces kept, so a record's detail shows the trace
		// that wrote it (step 92).
		"--otel.sample-ratio", "1", "--otel.recent-traces", "20000", "--otel.recent-bytes", strconv.Itoa(64 << 20),
		// Edge nodes join it (step 93).
		"--edge.leaf-addr", "127.0.0.1:0", "--edge.heartbeat", "1s"}
	// The model-file step uploads a tiny classifier written here; it runs
	// on the repository's onnx-cpu runtime when that is installed.
	// The OCR step onboards the PaddleOCR models the runtime installs.
	model, ocrModels := "", ""
	if serving, err := filepath.Abs(filepath.Join("..", "runtimes")); err == nil {
		if _, err := os.Stat(filepath.Join(serving, "onnx-node", "node_modules", "onnxruntime-node")); err == nil {
			args = append(args, "--worker.serving-dir", serving)
			model = filepath.Join(t.TempDir(), "tiny-classifier.onnx")
			if err := os.WriteFile(model, algotest.TinyClassifier(), 0o644); err != nil {
				t.Fatal(err)
			}
			det, _, _ := algotest.OCRModels(t)
			ocrModels = filepath.Dir(det)
		} else if testenv.InCI() {
			t.Fatalf("runtimes/onnx-node has no node_modules (npm ci --omit=dev --ignore-scripts --prefix runtimes/onnx-node): %v", err)
		} else {
			t.Logf("the model-file step is skipped: runtimes/onnx-node has no node_modules (%v)", err)
		}
	}
	e := apptest.Start(t, apptest.Options{Args: args})
	// About 4 minutes on a quiet machine; the bound is a hang guard, with
	// room for a machine shared with other builds.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	demo, err := e.P.SetupDemo(ctx)
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	viewerPassword := "viewer-password-0123"
	admin := session(t, e.Endpoint, "admin", apptest.AdminPassword)
	joinSite(t, e, admin, demo.FlowId)
	u := admin.call(t, "CreateUser", map[string]any{"UserName": "vic", "Password": viewerPassword, "Role": "viewer"})
	admin.call(t, "CreateProjectMember", map[string]any{"ProjectId": "demo", "PrincipalId": u["UserId"], "Role": "viewer"})

	hook := startReceiver(t)
	ptzLog := startGBCamera(t, ctx, e, admin)

	shots := os.Getenv("TIANSHU_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	cmd := exec.CommandContext(ctx, node, filepath.Join("test", "browser.mjs"))
	cmd.Env = append(os.Environ(),
		"TIANSHU_URL="+e.Endpoint,
		"TIANSHU_ADMIN_PASSWORD="+apptest.AdminPassword,
		"TIANSHU_VIEWER_USER=vic",
		"TIANSHU_VIEWER_PASSWORD="+viewerPassword,
		"TIANSHU_MEDIA="+filepath.Join(e.DataDir, "demo", "photos"),
		"TIANSHU_SCREENSHOTS="+shots,
		"TIANSHU_ALGORITHM_PACKAGE="+pkg,
		"TIANSHU_ONNX_MODEL="+model,
		"TIANSHU_OCR_MODELS="+ocrModels,
		"CHROMIUM="+chromium,
		"TIANSHU_RECEIVER="+hook,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("browser test:\n%s", out)
	if err != nil {
		t.Fatalf("browser test: %v", err)
	}
	// Every screenshot the script took is checked; the pages below must be among them.
	b, err := os.ReadFile(filepath.Join(shots, "shots.json"))
	if err != nil {
		t.Fatalf("screenshot list: %v", err)
	}
	var taken []struct {
		File  string `json:"file"`
		Width int    `json:"width"`
	}
	if err := json.Unmarshal(b, &taken); err != nil {
		t.Fatalf("screenshot list: %v", err)
	}
	seen := map[string]bool{}
	for _, s := range taken {
		checkShot(t, filepath.Join(shots, s.File), s.Width)
		seen[s.File] = true
	}
	// TIANSHU_STEPS runs some steps only: the others' pages are not shot.
	for _, page := range consolePages {
		if os.Getenv("TIANSHU_STEPS") != "" {
			break
		}
		for _, width := range []int{1280, 390} {
			if name := page + "-" + strconv.Itoa(width) + ".png"; !seen[name] {
				t.Errorf("no screenshot %s", name)
			}
		}
	}
	if regexp.MustCompile(os.Getenv("TIANSHU_STEPS")).MatchString(gbStep) {
		// What the pad sent reached the camera: the move, the zoom and the stop.
		for _, want := range []string{"PTZCmd=A50F0109", "PTZCmd=A50F0120", "PTZCmd=A50F0100"} {
			if b, _ := os.ReadFile(ptzLog); !strings.Contains(string(b), want) {
				t.Errorf("the camera did not receive %s: %s", want, b)
			}
		}
	}
	t.Logf("screenshots in %s", shots)
}

// gbStep is the browser step that steers the GB/T 28181 camera.
const gbStep = "25-gb28181.mjs"

// startGBCamera creates a GB/T 28181 camera in the demo project and runs a
// simulated one registering as it (in this process: the console is under
// test, not the simulator), whose channel east-gate the GB28181 step
// steers. The name is ASCII because the Chromium here has no CJK font;
// GBK names are tested in internal/app. It returns the file the camera
// records each DeviceControl in.
func startGBCamera(t *testing.T, ctx context.Context, e *apptest.Env, admin *person) string {
	t.Helper()
	const camID = "34020000001320000031"
	admin.call(t, "CreateDevice", map[string]any{"ProjectId": "demo", "Name": "gb-camera", "Driver": "gb28181", "Address": camID, "Password": "gb-pass"})
	rec := filepath.Join(t.TempDir(), "ptz")
	sm, err := gb28181.NewSimulator(gb28181.SimConfig{Server: e.P.GB28181.Addr(), DeviceID: camID, Password: "gb-pass", Record: rec,
		Channels: []gb28181.SimChannel{{ID: "34020000001310000031", Name: "east-gate"}}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = sm.Run(sctx) }()
	t.Cleanup(func() { stop(); <-done })
	return rec
}

// consolePages are the screenshots the browser test must take, each at
// 1280 and 390 px.
var consolePages = []string{
	"signin", "overview", "devices", "devices-add", "devices-viewer", "device-detail", "device-ptz", "devices-discover", "live", "tasks", "task-detail", "tasks-create",
	"sites", "sites-add", "records-site", "devices-site",
	"records", "records-filtered", "records-bulk-delete", "record-detail", "search", "search-attributes", "watchlists", "watchlists-viewer", "audit", "algorithms", "algorithm-onboard", "algorithm-detail", "algorithm-try",
	"apps", "app-detail", "app-key-secret", "subscriptions", "subscriptions-create", "subscription-detail",
	"members", "roles", "role-edit", "users", "my-account", "flows", "flow-editor", "flow-testrun", "flow-history", "flow-diff",
	"flow-templates", "flow-large",
	"flow-script", "flow-zone", "flow-studio-miswired", "flow-studio-testrun", "flow-studio-diff", "flow-studio-records",
}

// joinSite makes step 93's site: an edge node of the demo project, a second
// platform in this process as its edge box (joined with the node's token),
// a camera on the node and a task over it with the demo's flow, left
// stopped so that the other steps see no more records or live tiles.
func joinSite(t *testing.T, e *apptest.Env, admin *person, flowID string) {
	node := admin.call(t, "CreateEdgeNode", map[string]any{"ProjectId": "demo", "Name": "north-gate", "Description": "gate cameras"})
	photos := filepath.Join(e.DataDir, "demo", "photos")
	apptest.Start(t, apptest.Options{Args: []string{"--target", "edge", "--cloud", e.Endpoint, "--join-token", node["JoinToken"].(string),
		"--edge.heartbeat", "1s", "--media.root", photos}})
	dev := admin.call(t, "CreateDevice", map[string]any{"ProjectId": "demo", "Name": "gate-cam", "Driver": "replay", "Address": photos,
		"Fps": 1, "EdgeNode": node["EdgeNodeId"]})
	admin.call(t, "CreateTask", map[string]any{"ProjectId": "demo", "Name": "gate-faces", "FlowId": flowID, "Start": false,
		"Sources": []any{map[string]any{"Type": "device", "Id": dev["DeviceId"]}}})
}

// examplePackage packs the bundled example algorithm package
// (examples/algorithms/face-attributes-node) for the algorithms step to
// upload, without its self-check (its own test runs that).
func examplePackage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "examples", "algorithms", "face-attributes-node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@vladmandic", "human-models")); err != nil {
		testenv.Unavailable(t, "face-attributes-node has no node_modules: run npm ci --omit=dev --ignore-scripts --prefix examples/algorithms/face-attributes-node")
	}
	out := filepath.Join(t.TempDir(), "face-attributes-node.tar.gz")
	cmd := exec.Command("bash", filepath.Join(dir, "pack.sh"), out)
	cmd.Env = append(os.Environ(), "PACK_CHECK=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pack.sh: %v\n%s", err, b)
	}
	return out
}

// receiver is the far end of the subscriptions step's webhook: a real HTTP
// server on loopback, which apptest's outbound policy lets the platform
// reach. The step gives it the secret the console showed once (POST
// /secret) and reads what arrived (GET /count): every delivery, those whose
// Standard Webhooks signature holds under that secret, those whose does
// not, and deliveries of an event id seen before (a replay's). POST /fail
// always answers 503.
type receiver struct {
	mu                                  sync.Mutex
	secret                              string
	Received, Verified, Bad, Duplicates int
	seen                                map[string]bool
}

// startReceiver starts a receiver and returns its base URL; the webhook
// goes to /hook.
func startReceiver(t *testing.T) string {
	r := &receiver{seen: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		defer r.mu.Unlock()
		r.Received++
		if r.seen[id] {
			r.Duplicates++
		}
		r.seen[id] = true
		if r.secret != "" {
			if push.VerifyWebhook(r.secret, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, time.Now(), 5*time.Minute) == nil {
				r.Verified++
			} else {
				r.Bad++
			}
		}
	})
	// A webhook aimed here fails, so that its events are dead-lettered.
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, "the receiver refuses this one", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("POST /secret", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 256))
		r.mu.Lock()
		r.secret = string(b)
		r.mu.Unlock()
	})
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		_ = json.NewEncoder(w).Encode(r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// checkShot checks that a screenshot is a PNG of the width it was taken at
// and not one flat colour.
func checkShot(t *testing.T, path string, width int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r := img.Bounds()
	if r.Dx() != width || r.Dy() < 200 {
		t.Errorf("%s: %dx%d, want %d wide", path, r.Dx(), r.Dy(), width)
	}
	first := img.At(r.Min.X, r.Min.Y)
	colours := 0
	for y := r.Min.Y; y < r.Max.Y && colours == 0; y += 7 {
		for x := r.Min.X; x < r.Max.X; x += 7 {
			if img.At(x, y) != first {
				colours++
				break
			}
		}
	}
	if colours == 0 {
		t.Errorf("%s: one flat colour", path)
	}
}

type person struct {
	endpoint string
	cookie   *http.Cookie
	csrf     string
}

func session(t testing.TB, endpoint, user, password string) *person {
	t.Helper()
	p := &person{endpoint: endpoint}
	r := p.call(t, "Login", map[string]any{"UserName": user, "Password": password})
	p.csrf = r["CsrfToken"].(string)
	return p
}

func (p *person) call(t testing.TB, action string, params map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(params)
	req, _ := http.NewRequest(http.MethodPost, p.endpoint+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	if p.cookie != nil {
		req.AddCookie(p.cookie)
		req.Header.Set("X-Tianshu-CSRF", p.csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "tianshu_session" {
			p.cookie = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	var env struct {
		Response map[string]any `json:"Response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	if e, ok := env.Response["Error"]; ok {
		t.Fatalf("%s: %v", action, e)
	}
	return env.Response
}
