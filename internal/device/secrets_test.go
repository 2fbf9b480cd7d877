package device

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// syncBuffer is a log destination several goroutines write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newLoggedRuntime is newTestRuntime with every log line kept.
func newLoggedRuntime(t *testing.T) (*Runtime, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	rt, err := NewRuntime(Options{
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: prometheus.NewRegistry(),
		Backoff:    Backoff{Initial: 100 * time.Millisecond, Max: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt, logs
}

// The ffmpeg command line of an RTSP device with credentials carries no
// password, whether it came in Password or in the URL.
func TestFFmpegArgsCarryNoPassword(t *testing.T) {
	env := &Env{}
	for _, cfg := range []Config{
		{ID: "a", Driver: "rtsp", Address: "rtsp://cam.example/live", Username: "admin", Password: "pw-in-field-77"},
		{ID: "b", Driver: "rtsp", Address: "rtsp://admin:pw-in-url-77@cam.example/live"},
	} {
		job := rtspJob(env, cfg)
		args := strings.Join(job.args(), " ")
		if strings.Contains(args, "pw-in-") {
			t.Errorf("%s: ffmpeg argv carries the password: %s", cfg.ID, args)
		}
	}
}

// An RTSP device that cannot be reached: ffmpeg prints the URL in its
// complaint, and neither the probe's error, the source's LastError nor a
// log line may carry the password.
func TestRTSPErrorsCarryNoPassword(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	rt, logs := newLoggedRuntime(t)
	const pw = "unreach-pw-4242"
	for _, cfg := range []Config{
		{ID: "u1", Driver: "rtsp", Address: fmt.Sprintf("rtsp://127.0.0.1:%d/none", freePort(t)), Username: "admin", Password: pw},
		{ID: "u2", Driver: "rtsp", Address: fmt.Sprintf("rtsp://admin:%s@127.0.0.1:%d/none", pw, freePort(t))},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := rt.Probe(ctx, cfg)
		cancel()
		if err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("%s: probe error %v", cfg.ID, err)
		}
		if ReasonOf(err) != ReasonUnreachable {
			t.Errorf("%s: probe reason %s (%v)", cfg.ID, ReasonOf(err), err)
		}
		src, err := rt.Open(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, src, waitLong, "offline", func(s Status) bool { return s.State == StateOffline })
		_ = src.Close()
		if st.LastError == "" || strings.Contains(st.LastError, pw) {
			t.Errorf("%s: LastError %q", cfg.ID, st.LastError)
		}
		t.Logf("%s: %s", cfg.ID, st.LastError)
	}
	if strings.Contains(logs.String(), pw) {
		t.Errorf("logs carry the password:\n%s", logs.String())
	}
}

// A running RTSP source's ffmpeg child shows no password in
// /proc/<pid>/cmdline (what ps shows every local user), and a refused
// password is not echoed in LastError.
func TestRTSPPasswordOffTheProcessTable(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	const pw = "s3cret-on-proc"
	srv := startRTSPServer(t, 0, "--width", "320", "--height", "240", "--user", "admin", "--password", pw)
	rt, logs := newLoggedRuntime(t)
	src, err := rt.Open(context.Background(), Config{ID: "ok", Driver: "rtsp", Address: srv.URL, Username: "admin", Password: pw}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waitStatus(t, src, waitLong, "frames", func(s Status) bool { return s.FramesDelivered >= 2 })
	pids := src.(ProcessReporter).Processes()
	if len(pids) != 1 {
		t.Fatalf("pids %v", pids)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pids[0]))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cmdline, []byte(pw)) {
		t.Errorf("ffmpeg's command line carries the password: %q", cmdline)
	}
	_ = src.Close()

	wrong := strings.Replace(srv.URL, "rtsp://", "rtsp://admin:wrong-pw-on-proc@", 1)
	bad, err := rt.Open(context.Background(), Config{ID: "bad", Driver: "rtsp", Address: wrong}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	st := waitStatus(t, bad, waitLong, "auth_failed", func(s Status) bool { return s.Reason == ReasonAuthFailed })
	if strings.Contains(st.LastError, "wrong-pw-on-proc") || !strings.Contains(st.LastError, "401") {
		t.Errorf("LastError %q", st.LastError)
	}
	if l := logs.String(); strings.Contains(l, pw) || strings.Contains(l, "wrong-pw-on-proc") {
		t.Errorf("logs carry a password:\n%s", l)
	}
}
