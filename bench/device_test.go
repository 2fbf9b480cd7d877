package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// BenchmarkRTSPDriver pulls one H.264 RTSP stream (1280×720, 25 fps, from
// GStreamer's RTSP server) through the rtsp driver at 640 px wide, JPEG and
// then raw rgb24 frames, each time beside `ffmpeg -f null` decoding the same
// stream in the same window: the frames/s each delivers, and the CPU of the
// driver's ffmpeg child against the baseline's (utime+stime over wall, from
// /proc). BENCH_DURATION sets the window (default 10s).
func BenchmarkRTSPDriver(b *testing.B) {
	ff := testenv.NeedCommand(b, "ffmpeg")
	window := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil && d > 0 {
		window = d
	}
	url := startBenchRTSP(b, 1280, 720, 25)
	rt, err := device.NewRuntime(device.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	b.ResetTimer()
	for _, format := range []string{"jpeg", "rgb24"} {
		var frames atomic.Int64
		src, err := rt.Open(context.Background(), device.Config{ID: "bench", Driver: "rtsp", Address: url, Width: 640,
			Options: map[string]any{"format": format}}, device.SinkFuncs{OnFrame: func(device.Frame) { frames.Add(1) }})
		if err != nil {
			b.Fatal(err)
		}
		base := startNullDecoder(b, ff, url)
		// Warm up: both decoding before the window opens.
		deadline := time.Now().Add(60 * time.Second)
		for src.Status().FramesDelivered < 10 || base.frames.Load() < 10 {
			if time.Now().After(deadline) {
				b.Fatalf("no frames: driver %+v, baseline %d", src.Status(), base.frames.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
		pids := src.(device.ProcessReporter).Processes()
		if len(pids) != 1 {
			b.Fatalf("driver ffmpeg pids %v", pids)
		}
		f0, b0, c0, bc0, t0 := frames.Load(), base.frames.Load(), cpuTicks(pids[0]), cpuTicks(base.cmd.Process.Pid), time.Now()
		time.Sleep(window)
		f1, b1, c1, bc1, el := frames.Load(), base.frames.Load(), cpuTicks(pids[0]), cpuTicks(base.cmd.Process.Pid), time.Since(t0).Seconds()
		st := src.Status()
		_ = src.Close()
		base.stop()

		fps, baseFPS := float64(f1-f0)/el, float64(b1-b0)/el
		cpu, baseCPU := float64(c1-c0)/clkTck/el, float64(bc1-bc0)/clkTck/el
		b.ReportMetric(fps, format+"-frames/s")
		b.Logf("%s: driver %.1f frames/s (drops %d), ffmpeg -f null %.1f frames/s; cpu %.2f vs %.2f cores", format, fps, st.Drops, baseFPS, cpu, baseCPU)
		benchtable.Record(b, benchtable.Row{Metric: "rtsp driver frames/s, 640 px " + format + " (vs ffmpeg -f null)", Unit: "frames/s",
			Target: "≥ 0.9× ffmpeg", Tianshu: fps, Baseline: baseFPS})
		benchtable.Record(b, benchtable.Row{Metric: "rtsp driver CPU per stream, 640 px " + format + " (vs ffmpeg -f null)", Unit: "cores",
			Tianshu: cpu, Baseline: baseCPU})
	}
}

// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat; 100 on
// every Linux architecture Go supports.
const clkTck = 100

// cpuTicks returns utime+stime of pid, or 0 when it is gone.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are 14 and 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

type nullDecoder struct {
	cmd    *exec.Cmd
	frames atomic.Int64
}

// startNullDecoder runs `ffmpeg -i url -f null -`, counting frames from its
// -progress output.
func startNullDecoder(b *testing.B, ff, url string) *nullDecoder {
	d := &nullDecoder{}
	d.cmd = exec.Command(ff, "-hide_banner", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url,
		"-an", "-f", "null", "-", "-progress", "pipe:1", "-stats_period", "0.2")
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "frame="); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				d.frames.Store(n)
			}
		}
	}()
	return d
}

func (d *nullDecoder) stop() {
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	_ = d.cmd.Wait()
}

// startBenchRTSP starts internal/device/testdata/rtsp_server.py and returns
// its stream URL.
func startBenchRTSP(b *testing.B, w, h, fps int) string {
	const py = "/usr/bin/python3"
	script, _ := filepath.Abs("../internal/device/testdata/rtsp_server.py")
	if out, err := exec.Command(py, "-c", `import gi; gi.require_version("GstRtspServer","1.0")`).CombinedOutput(); err != nil {
		testenv.Unavailable(b, "GstRtspServer for python3 (scripts/install-device-deps.sh): "+string(out))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(py, script, "--port", strconv.Itoa(port), "--width", strconv.Itoa(w), "--height", strconv.Itoa(h), "--fps", strconv.Itoa(fps))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") {
				close(ready)
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		b.Fatal("rtsp server not ready")
	}
	return fmt.Sprintf("rtsp://127.0.0.1:%d/test", port)
}
