package device

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/execpolicy"
)

// policyRuntime is a Runtime under an explicit exec policy and media roots.
func policyRuntime(t *testing.T, allow, media []string) *Runtime {
	t.Helper()
	pol, err := execpolicy.New(execpolicy.Config{Allow: allow, Limits: execpolicy.Default().Limits})
	if err != nil {
		t.Fatal(err)
	}
	m, err := execpolicy.NewMedia(execpolicy.MediaConfig{Root: media})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(Options{Registerer: prometheus.NewRegistry(), Exec: pol, Media: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

func wantFieldErr(t *testing.T, what string, err error, field string) *FieldError {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Fatalf("%s: got %v; want a refusal of %s", what, err, field)
	}
	return fe
}

// An adapter whose command is a shell is refused, probed without being
// saved, under the default policy (nothing allowed) and under one that
// allows another directory; nothing is started.
func TestAdapterCommandOutsideAllowIsRefused(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	for name, rt := range map[string]*Runtime{
		"default": policyRuntime(t, nil, nil),
		"other":   policyRuntime(t, []string{t.TempDir()}, nil),
	} {
		for _, cmd := range []string{"/bin/sh", "sh", "../../../bin/sh"} {
			cfg := Config{ID: "probe", Driver: "adapter", Address: "x",
				Options: map[string]any{"command": cmd, "args": []any{"-c", "touch " + marker}}}
			_, err := rt.Probe(context.Background(), cfg)
			fe := wantFieldErr(t, name+" "+cmd, err, "Options.command")
			if !strings.Contains(fe.Msg, "--exec.allow") {
				t.Errorf("%s %s: message %q does not say how to allow it", name, cmd, fe.Msg)
			}
			if _, err := rt.Open(context.Background(), cfg, nil); err == nil {
				t.Errorf("%s %s: opened", name, cmd)
			}
			if err := rt.Check(cfg); err == nil {
				t.Errorf("%s %s: Check passed", name, cmd)
			}
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the shell ran")
	}
}

// An allowed adapter gets only what the device declares, never the
// server's environment, and a directory of its own outside the server's.
func TestAdapterEnvironmentIsClean(t *testing.T) {
	t.Setenv("TIANSHU_ADMIN_SECRET_KEY", "the-platform-admin-secret")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "cloud-secret")
	allowed, out := t.TempDir(), t.TempDir()
	dump := filepath.Join(out, "env")
	script := filepath.Join(allowed, "dump-env")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n{ env; echo \"cwd=$(pwd)\"; } > \"$DUMP\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rt := policyRuntime(t, []string{allowed}, nil)
	_, err := rt.Probe(context.Background(), Config{ID: "probe", Driver: "adapter", Address: "x",
		Options: map[string]any{"command": script, "env": []any{"DUMP=" + dump, "VENDOR_MODE=1"}, "start_timeout": "5s"}})
	if err == nil {
		t.Fatal("a script that serves nothing probed fine")
	}
	b, rerr := os.ReadFile(dump)
	if rerr != nil {
		t.Fatalf("adapter did not run (%v): %v", err, rerr)
	}
	env := string(b)
	for _, leak := range []string{"the-platform-admin-secret", "TIANSHU_ADMIN_SECRET_KEY", "cloud-secret"} {
		if strings.Contains(env, leak) {
			t.Errorf("the server's environment reached the adapter (%s):\n%s", leak, env)
		}
	}
	wd, _ := os.Getwd()
	for _, want := range []string{"VENDOR_MODE=1", EnvAdapterAddr + "=unix://", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("adapter environment lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "cwd="+wd+"\n") {
		t.Errorf("adapter runs in the server's working directory:\n%s", env)
	}
}

// A device's own ffmpeg must be under --exec.allow; the default ffmpeg
// (the operator's) needs nothing.
func TestFFmpegOptionOutsideAllowIsRefused(t *testing.T) {
	media := t.TempDir()
	video := filepath.Join(media, "v.mkv")
	if err := os.WriteFile(video, []byte("not really a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	sh := filepath.Join(t.TempDir(), "sh")
	if err := os.WriteFile(sh, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rt := policyRuntime(t, nil, []string{media})
	for _, cfg := range []Config{
		{ID: "p", Driver: "replay", Address: video, Options: map[string]any{"ffmpeg": "/bin/sh"}},
		{ID: "p", Driver: "replay", Address: video, Options: map[string]any{"ffmpeg": sh}},
		{ID: "p", Driver: "rtsp", Address: "rtsp://127.0.0.1:1/x", Options: map[string]any{"ffmpeg": "/bin/sh"}},
		{ID: "p", Driver: "onvif", Address: "http://127.0.0.1:1/onvif", Options: map[string]any{"ffmpeg": "/bin/sh"}},
	} {
		_, err := rt.Probe(context.Background(), cfg)
		wantFieldErr(t, cfg.Driver+" "+cfg.Options["ffmpeg"].(string), err, "Options.ffmpeg")
		if err := rt.Check(cfg); err == nil {
			t.Errorf("%s: Check passed", cfg.Driver)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the device's ffmpeg ran")
	}
	// Allowed, it runs.
	allowed := policyRuntime(t, []string{filepath.Dir(sh)}, []string{media})
	_, _ = allowed.Probe(context.Background(), Config{ID: "p", Driver: "replay", Address: video, Options: map[string]any{"ffmpeg": sh}})
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("an allowed ffmpeg did not run")
	}
}

// A replay address outside the media roots is refused with the same
// message whether the path exists or not; inside, it plays.
func TestReplayAddressOutsideMediaRoot(t *testing.T) {
	media := t.TempDir()
	dir := imageFolder(t, 2, 40, 30)
	inside := filepath.Join(media, "cam")
	if err := os.Rename(dir, inside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(media, "etc")); err != nil {
		t.Fatal(err)
	}
	rt := policyRuntime(t, nil, []string{media})
	msgs := map[string]string{}
	for _, addr := range []string{"/etc", "/etc/no-such-dir-here", "/root", filepath.Join(media, "etc"), filepath.Join(media, "etc", "passwd"),
		filepath.Join(media, "etc", "nothing"), filepath.Join(media, "..", "..", "etc"), "etc"} {
		_, err := rt.Probe(context.Background(), Config{ID: "p", Driver: "replay", Address: addr})
		fe := wantFieldErr(t, addr, err, "Address")
		msgs[strings.ReplaceAll(fe.Msg, addr, "ADDR")] = addr
		if strings.Contains(strings.ToLower(fe.Msg), "permission") || strings.Contains(fe.Msg, "not a directory") {
			t.Errorf("%s: message tells what is there: %q", addr, fe.Msg)
		}
		if _, err := rt.Open(context.Background(), Config{ID: "p", Driver: "replay", Address: addr}, nil); err == nil {
			t.Errorf("%s: opened", addr)
		}
	}
	if len(msgs) != 1 {
		t.Errorf("refusals differ, telling which paths exist: %v", msgs)
	}
	res, err := rt.Probe(context.Background(), Config{ID: "p", Driver: "replay", Address: inside})
	if err != nil || !res.Online || res.Info["images"] != 2 {
		t.Fatalf("inside the media root: %+v %v", res, err)
	}
	// No media root configured: nothing plays.
	if _, err := policyRuntime(t, nil, nil).Probe(context.Background(), Config{ID: "p", Driver: "replay", Address: inside}); err == nil {
		t.Error("played with no media root")
	}
}

// ffmpeg children get a clean environment too.
func TestFFmpegEnvironmentIsClean(t *testing.T) {
	t.Setenv("TIANSHU_ADMIN_SECRET_KEY", "the-platform-admin-secret")
	allowed, media, out := t.TempDir(), t.TempDir(), t.TempDir()
	dump := filepath.Join(out, "env")
	fake := filepath.Join(allowed, "ffmpeg")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nenv > "+dump+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	video := filepath.Join(media, "v.mkv")
	if err := os.WriteFile(video, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rt := policyRuntime(t, []string{allowed}, []string{media})
	_, _ = rt.Probe(context.Background(), Config{ID: "p", Driver: "replay", Address: video, Options: map[string]any{"ffmpeg": fake}})
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatalf("fake ffmpeg did not run: %v", err)
	}
	if strings.Contains(string(b), "the-platform-admin-secret") {
		t.Errorf("the server's environment reached ffmpeg:\n%s", b)
	}
}
