package device

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// Generous: the CI machine has two loaded cores.
const waitLong = 60 * time.Second

// newTestRuntime is a Runtime whose exec policy allows, and whose media
// root is, the temp dir the tests build adapters and write pictures in.
func newTestRuntime(t *testing.T) (*Runtime, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	pol, err := execpolicy.New(execpolicy.Config{Allow: []string{os.TempDir()}, Limits: execpolicy.Default().Limits})
	if err != nil {
		t.Fatal(err)
	}
	media, err := execpolicy.NewMedia(execpolicy.MediaConfig{Root: []string{os.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(Options{
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Registerer: reg,
		Backoff:    Backoff{Initial: 100 * time.Millisecond, Max: time.Second},
		Exec:       pol,
		Media:      media,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt, reg
}

// recorder is a Sink that keeps what it got.
type recorder struct {
	mu       sync.Mutex
	frames   []Frame
	events   []Event
	statuses []Status
	delay    time.Duration // makes Frame slow
}

func (r *recorder) Frame(f Frame) {
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.frames) > 64 { // keep memory bounded
		r.frames = append(r.frames[:0], r.frames[len(r.frames)-32:]...)
	}
	r.frames = append(r.frames, f)
}

func (r *recorder) Event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Status(s Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, s)
}

func (r *recorder) lastFrame() (Frame, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.frames) == 0 {
		return Frame{}, false
	}
	return r.frames[len(r.frames)-1], true
}

func (r *recorder) eventList() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func (r *recorder) sawState(s State, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.statuses {
		if st.State == s && (reason == "" || st.Reason == reason) {
			return true
		}
	}
	return false
}

// waitStatus polls src until pred holds and returns that status.
func waitStatus(t *testing.T, src Source, d time.Duration, what string, pred func(Status) bool) Status {
	t.Helper()
	var st Status
	testenv.Eventually(t, d, what, func() bool { st = src.Status(); return pred(st) })
	return st
}

func testJPEG(t testing.TB, w, h int, shade uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{shade, uint8(x), uint8(y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imageFolder writes n JPEGs named 000.jpg… into a temp dir.
func imageFolder(t testing.TB, n, w, h int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.jpg", i)), testJPEG(t, w, h, uint8(i*40)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rtspServer is testdata/rtsp_server.py running as a child process.
type rtspServer struct {
	cmd  *exec.Cmd
	Port int
	URL  string
}

// startRTSPServer starts the GStreamer RTSP server on port (0: a free one),
// waits until it listens, and stops it at the end of the test.
func startRTSPServer(t testing.TB, port int, extra ...string) *rtspServer {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		testenv.Unavailable(t, "Debian's /usr/bin/python3 is needed for the RTSP server")
	}
	check := exec.Command(py, "-c", `import gi; gi.require_version("GstRtspServer","1.0"); from gi.repository import GstRtspServer`)
	if out, err := check.CombinedOutput(); err != nil {
		testenv.Unavailable(t, "GstRtspServer not importable (run scripts/install-device-deps.sh): "+strings.TrimSpace(string(out)))
	}
	if port == 0 {
		port = freePort(t)
	}
	script, _ := filepath.Abs("testdata/rtsp_server.py")
	args := append([]string{script, "--port", fmt.Sprint(port)}, extra...)
	cmd := exec.Command(py, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &rtspServer{cmd: cmd, Port: port, URL: fmt.Sprintf("rtsp://127.0.0.1:%d/test", port)}
	t.Cleanup(s.Stop)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("rtsp server exited: %s", stderr.String())
		}
	case <-time.After(waitLong):
		t.Fatalf("rtsp server not ready: %s", stderr.String())
	}
	return s
}

// Stop kills the server's process group and waits for it.
func (s *rtspServer) Stop() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
}

func processAlive(pid int) bool {
	// A zombie still answers kill(0); /proc tells them apart.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// metricSum adds up every series of the named counter or gauge.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
