package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
)

// readyTimeout bounds how long a child may take to answer /readyz.
const readyTimeout = 30 * time.Second

// server is a `tianshu serve` child process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	log    string        // the child's stderr file
	exited chan struct{} // closed when the child has been waited for
	err    error         // Wait's result, once exited is closed
}

// repoRoot returns the module root, where ./cmd/tianshu builds from.
func repoRoot(b *testing.B, goBin string) string {
	b.Helper()
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		b.Fatalf("go env GOMOD: %q, %v", mod, err)
	}
	return filepath.Dir(mod)
}

// goBuild runs `go build args...` in dir with extra environment and
// returns how long it took.
func goBuild(b *testing.B, goBin, dir string, env []string, args ...string) time.Duration {
	b.Helper()
	cmd := exec.Command(goBin, append([]string{"build"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		b.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return d
}

func fileSize(b *testing.B, path string) float64 {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return float64(fi.Size())
}

func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cleanEnv is the environment without the caller's TIANSHU_ variables, so
// the child runs the embedded default.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "TIANSHU_") {
			env = append(env, e)
		}
	}
	return env
}

// startServer starts `tianshu serve` on dataDir and a free loopback port
// and returns once /readyz answers 200, with the time from exec to then.
// The child is killed at cleanup if still running.
func startServer(b *testing.B, bin, dataDir, logName string) (*server, time.Duration) {
	b.Helper()
	s := &server{addr: freeAddr(b), log: filepath.Join(filepath.Dir(dataDir), logName), exited: make(chan struct{})}
	logf, err := os.Create(s.log)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	s.cmd = exec.Command(bin, "serve", "--data-dir", dataDir, "--http-addr", s.addr)
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf // files: no copying goroutines
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + s.addr + "/readyz"

	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	b.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	for {
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, time.Since(t0)
			}
		}
		select {
		case <-s.exited:
			b.Fatalf("tianshu serve exited before ready: %v\n%s", s.err, s.tail())
		default:
		}
		if time.Since(t0) > readyTimeout {
			b.Fatalf("tianshu serve not ready after %s\n%s", readyTimeout, s.tail())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns how long the child took to exit.
func (s *server) stop(b *testing.B) time.Duration {
	b.Helper()
	t0 := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		b.Fatalf("tianshu serve still running 30s after SIGTERM\n%s", s.tail())
	}
	d := time.Since(t0)
	if s.err != nil {
		b.Errorf("tianshu serve after SIGTERM: %v\n%s", s.err, s.tail())
	}
	return d
}

// rss returns the child's resident set size in bytes (Linux only).
func (s *server) rss() (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// shipLDFlags returns the -ldflags the Makefile builds bin/tianshu with
// (SHIP_LDFLAGS), so the size measured is the size shipped.
func shipLDFlags(b *testing.B, root string) string {
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(mk), "\n") {
		if v, ok := strings.CutPrefix(line, "SHIP_LDFLAGS :="); ok {
			return strings.TrimSpace(v)
		}
	}
	b.Fatal("Makefile: no SHIP_LDFLAGS := line")
	return ""
}

// BenchmarkColdStart builds the tianshu binary and runs it as a real child
// process on the embedded default: time from exec to /readyz on an empty
// data dir (first start, bootstrap included) and again on that dir, idle
// RSS after 2 s, shutdown time after SIGTERM, and the binary's size
// (as shipped, and without the Makefile's -ldflags). With
// TIANSHU_BENCH_COLD_BUILD=1 it also times `go build ./cmd/tianshu` with an
// empty build cache (minutes on a small machine). It times itself, so run
// it at the default -benchtime or -benchtime=1x.
func BenchmarkColdStart(b *testing.B) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Skip("go is not in PATH")
	}
	root := repoRoot(b, goBin)
	tmp := b.TempDir()
	bin := filepath.Join(tmp, "tianshu")
	// The binary users get: built as the Makefile's bin/tianshu is.
	ldflags := shipLDFlags(b, root)
	b.Logf("go build -ldflags=%q (warm cache): %s", ldflags, goBuild(b, goBin, root, nil, "-ldflags="+ldflags, "-o", bin, "./cmd/tianshu").Round(time.Millisecond))
	plain := filepath.Join(tmp, "tianshu-plain")
	goBuild(b, goBin, root, nil, "-o", plain, "./cmd/tianshu")
	const idle = 2 * time.Second

	b.ResetTimer()
	dataDir := filepath.Join(tmp, "data")
	first, coldReady := startServer(b, bin, dataDir, "first.log")
	time.Sleep(idle)
	firstRSS, rssErr := first.rss()
	shutdown := first.stop(b)
	again, warmReady := startServer(b, bin, dataDir, "restart.log")
	time.Sleep(idle)
	againRSS, _ := again.rss()
	restartShutdown := again.stop(b)
	b.StopTimer()

	b.ReportMetric(coldReady.Seconds()*1e3, "cold-ready-ms")
	b.ReportMetric(warmReady.Seconds()*1e3, "restart-ready-ms")
	benchtable.Record(b, benchtable.Row{Metric: "cold start to /readyz, empty data dir", Unit: "s",
		Target: "< 1 s", Tianshu: coldReady.Seconds()})
	benchtable.Record(b, benchtable.Row{Metric: "start to /readyz, existing data dir", Unit: "s",
		Tianshu: warmReady.Seconds()})
	if rssErr != nil {
		b.Logf("idle RSS not measured on %s: %v", runtime.GOOS, rssErr)
	} else {
		benchtable.Record(b, benchtable.Row{Metric: "idle RSS, 2 s after first start", Unit: "B", Tianshu: firstRSS})
		benchtable.Record(b, benchtable.Row{Metric: "idle RSS, 2 s after restart", Unit: "B", Tianshu: againRSS})
	}
	benchtable.Record(b, benchtable.Row{Metric: "shutdown after SIGTERM (idle)", Unit: "s",
		Tianshu: max(shutdown, restartShutdown).Seconds()})
	benchtable.Record(b, benchtable.Row{Metric: "binary size, shipped (make build: -ldflags='" + ldflags + "')", Unit: "B",
		Target: "≤ 90 MB (85.8 MiB)", Tianshu: fileSize(b, bin)})
	benchtable.Record(b, benchtable.Row{Metric: "binary size, plain go build (symbols and DWARF kept)", Unit: "B", Tianshu: fileSize(b, plain)})

	if os.Getenv("TIANSHU_BENCH_COLD_BUILD") != "1" {
		b.Log("cold build skipped: set TIANSHU_BENCH_COLD_BUILD=1 to time go build with an empty cache")
		return
	}
	cold := goBuild(b, goBin, root, []string{"GOCACHE=" + filepath.Join(tmp, "gocache")}, "-o", filepath.Join(tmp, "tianshu-cold"), "./cmd/tianshu")
	benchtable.Record(b, benchtable.Row{Metric: "cold build, go build ./cmd/tianshu, empty GOCACHE", Unit: "s", Tianshu: cold.Seconds()})
}
