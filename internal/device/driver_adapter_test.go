package device

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// buildSampleAdapter builds examples/adapters/sample into a temp dir.
func buildSampleAdapter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sample-adapter")
	cmd := exec.Command("go", "build", "-o", bin, "../../examples/adapters/sample")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build sample adapter: %v\n%s", err, out)
	}
	return bin
}

func TestAdapterSample(t *testing.T) {
	bin := buildSampleAdapter(t)
	dir := imageFolder(t, 3, 40, 30)
	rt, _ := newTestRuntime(t)
	cfg := Config{ID: "ad", Driver: "adapter", Address: dir, Password: "pw", FPS: 20,
		Options: map[string]any{"command": bin, "password": "pw", "health_interval": "200ms"}}

	res, err := rt.Probe(context.Background(), cfg)
	if err != nil || !res.Online || res.Info["model"] != "Folder camera" || res.Info["adapter_vendor"] != "Tianshu sample" || len(res.Snapshot) == 0 {
		t.Fatalf("probe %+v %v", res.Info, err)
	}
	bad := cfg
	bad.Password = "wrong"
	if _, err := rt.Probe(context.Background(), bad); ReasonOf(err) != ReasonAuthFailed {
		t.Fatalf("wrong password: %v", err)
	}

	rec := &recorder{}
	src, err := rt.Open(context.Background(), cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waitStatus(t, src, waitLong, "frames", func(s Status) bool { return s.FramesDelivered >= 5 })
	testenv.Eventually(t, waitLong, "motion event", func() bool { return len(rec.eventList()) > 0 })
	if ev := rec.eventList()[0]; ev.Type != "motion" || ev.DeviceID != "ad" {
		t.Fatalf("event %+v", ev)
	}
	if f, _ := rec.lastFrame(); f.Width != 40 || len(f.Image) == 0 {
		t.Fatalf("frame %+v", f.Width)
	}

	// The adapter crashes: the driver notices and starts a new one.
	pids := src.(ProcessReporter).Processes()
	if len(pids) != 1 {
		t.Fatalf("pids %v", pids)
	}
	_ = syscall.Kill(pids[0], syscall.SIGKILL)
	before := src.Status().FramesDelivered
	st := waitStatus(t, src, waitLong, "restart", func(s Status) bool {
		return s.Reconnects >= 1 && s.State == StateOnline && s.FramesDelivered > before+3
	})
	if st.LastError == "" {
		t.Fatalf("no error recorded for the crash: %+v", st)
	}
	pids = src.(ProcessReporter).Processes()
	_ = src.Close()
	for _, p := range pids {
		if processAlive(p) {
			t.Fatalf("adapter %d survived Close", p)
		}
	}

	// Wrong password: the adapter reports auth_failed in its stream.
	bsrc, err := rt.Open(context.Background(), bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bsrc.Close()
	waitStatus(t, bsrc, waitLong, "auth_failed", func(s Status) bool { return s.Reason == ReasonAuthFailed && s.Reconnects >= 1 })
	if st := bsrc.Status(); st.Reason != ReasonAuthFailed || st.State != StateError {
		t.Fatalf("after the adapter ended its stream: %+v", st)
	}

	// A command that does not exist fails clearly, before anything starts.
	missing := cfg
	missing.Options = map[string]any{"command": filepath.Join(t.TempDir(), "nope")}
	var fe *FieldError
	if _, err := rt.Probe(context.Background(), missing); !errors.As(err, &fe) || fe.Field != "Options.command" || !strings.Contains(fe.Msg, "not found") {
		t.Fatalf("missing command: %v", err)
	}
}
