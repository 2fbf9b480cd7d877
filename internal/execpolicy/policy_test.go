package execpolicy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func mustPolicy(t *testing.T, c Config) *Policy {
	t.Helper()
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// program writes an executable shell script at dir/name.
func program(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolve(t *testing.T) {
	allowed, outside := t.TempDir(), t.TempDir()
	tool := program(t, allowed, "tool", "true")
	program(t, outside, "evil", "true")
	if err := os.Symlink(filepath.Join(outside, "evil"), filepath.Join(allowed, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(allowed, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Nothing is allowed by default.
	for _, p := range []*Policy{nil, mustPolicy(t, Default())} {
		if _, err := p.Resolve("/bin/sh"); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("default policy ran /bin/sh: %v", err)
		}
	}
	p := mustPolicy(t, Config{Allow: []string{allowed}})
	real, _ := filepath.EvalSymlinks(tool)
	for _, name := range []string{tool, "tool", filepath.Join(allowed, "sub", "..", "tool")} {
		if got, err := p.Resolve(name); err != nil || got != real {
			t.Errorf("Resolve(%q) = %q, %v; want %q", name, got, err, real)
		}
	}
	refused := []string{"/bin/sh", "./tool", "../tool", filepath.Join(allowed, "..", filepath.Base(outside), "evil"),
		filepath.Join(allowed, "link"), "link", "/nonexistent/x", ""}
	for _, name := range refused {
		if _, err := p.Resolve(name); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Resolve(%q) = %v; want ErrNotAllowed", name, err)
		}
	}
	// Inside them, a missing program is said to be missing.
	for _, name := range []string{filepath.Join(allowed, "missing"), "missing", "sh"} {
		if _, err := p.Resolve(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(%q) = %v; want ErrNotFound", name, err)
		}
	}
	// Outside the allowed directories, existing and missing paths read the same.
	_, e1 := p.Resolve("/etc/passwd")
	_, e2 := p.Resolve("/etc/no-such-file")
	if strings.ReplaceAll(e1.Error(), "/etc/passwd", "X") != strings.ReplaceAll(e2.Error(), "/etc/no-such-file", "X") {
		t.Errorf("refusals differ: %q / %q", e1, e2)
	}
	if _, err := p.Resolve(filepath.Join(allowed, "data")); err == nil || errors.Is(err, ErrNotAllowed) {
		t.Errorf("non-executable: %v", err)
	}
	// A single file may be allowed.
	pf := mustPolicy(t, Config{Allow: []string{tool}})
	if got, err := pf.Resolve("tool"); err != nil || got != real {
		t.Errorf("allowed file: %q %v", got, err)
	}
	if _, err := New(Config{Allow: []string{"/"}}); err == nil {
		t.Error("/ allowed")
	}
	if _, err := New(Config{Allow: []string{"relative/dir"}}); err == nil {
		t.Error("relative allow accepted")
	}
}

func TestResolveIn(t *testing.T) {
	pkg, outside := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(pkg, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := program(t, filepath.Join(pkg, "bin"), "srv", "true")
	program(t, outside, "evil", "true")
	if err := os.Symlink(filepath.Join(outside, "evil"), filepath.Join(pkg, "bin", "out")); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(srv)
	for _, rel := range []string{"bin/srv", "./bin/srv"} {
		if got, err := ResolveIn(pkg, rel); err != nil || got != real {
			t.Errorf("ResolveIn(%q) = %q, %v", rel, got, err)
		}
	}
	for _, rel := range []string{"/bin/sh", "../" + filepath.Base(outside) + "/evil", "bin/out", "bin/../../x", ""} {
		if got, err := ResolveIn(pkg, rel); err == nil {
			t.Errorf("ResolveIn(%q) = %q", rel, got)
		}
	}
}

func TestCommandEnvDirLimits(t *testing.T) {
	t.Setenv("TIANSHU_ADMIN_SECRET_KEY", "server-secret")
	work := t.TempDir()
	p := mustPolicy(t, Config{WorkDir: work, Limits: Limits{OpenFiles: 100, AddressSpace: 1 << 30, Processes: 500, CPUSeconds: 60}})
	script := program(t, t.TempDir(), "dump", `sleep 0.3; env; echo "cwd=$(pwd)"; cat /proc/self/limits`)
	c, err := p.Command(context.Background(), Spec{Path: script, Env: []string{"DECLARED=yes", "PATH=/bin:/usr/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c.Cmd.Stdout, c.Cmd.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	s := out.String()
	if strings.Contains(s, "server-secret") || strings.Contains(s, "TIANSHU_") {
		t.Errorf("the server's environment reached the child:\n%s", s)
	}
	home, _ := filepath.EvalSymlinks(c.Home)
	for _, want := range []string{"DECLARED=yes", "PATH=/bin:/usr/bin", "HOME=" + c.Home, "TMPDIR=" + c.Home, "cwd=" + home} {
		if !strings.Contains(s, want) {
			t.Errorf("child output lacks %q:\n%s", want, s)
		}
	}
	if !strings.HasPrefix(c.Home, work) {
		t.Errorf("home %s not under the work dir %s", c.Home, work)
	}
	for _, re := range []string{"Max cpu time +60 +60", "Max address space +1073741824 +1073741824", "Max open files +100 +100", "Max processes +500 +500"} {
		if !regexpMatch(re, s) {
			t.Errorf("limits lack %q:\n%s", re, s)
		}
	}
	c.Cleanup()
	if _, err := os.Stat(c.Home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("home left behind: %v", err)
	}
}

func TestCommandUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	if _, err := New(Config{User: "root"}); err == nil {
		t.Error("root accepted as the children's user")
	}
	p := mustPolicy(t, Config{User: "nobody"})
	if p.RunsAsRoot() {
		t.Error("RunsAsRoot with a user")
	}
	c, err := p.Command(context.Background(), Spec{Path: "/bin/sh", Args: []string{"-c", "id -u; id -G; touch $HOME/ok"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cleanup()
	out, err := c.Cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) < 2 || lines[0] != nobody.Uid || lines[1] != nobody.Gid {
		t.Errorf("child ran as %q; want uid %s gid %s only", out, nobody.Uid, nobody.Gid)
	}
	if _, err := os.Stat(filepath.Join(c.Home, "ok")); err != nil {
		t.Errorf("child cannot write its home: %v", err)
	}
	if !mustPolicy(t, Config{}).RunsAsRoot() {
		t.Error("no user as root: RunsAsRoot false")
	}
}

func TestMedia(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "cam"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := NewMedia(MediaConfig{Root: []string{root}})
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(filepath.Join(root, "cam"))
	if got, err := m.Resolve(filepath.Join(root, "cam")); err != nil || got != real {
		t.Fatalf("inside: %q %v", got, err)
	}
	msgs := map[string]bool{}
	for _, name := range []string{"/etc", "/etc/no-such-dir", filepath.Join(root, "out"), filepath.Join(root, "out", "secret"),
		filepath.Join(root, "out", "missing"), filepath.Join(root, "..", filepath.Base(outside)), "relative", filepath.Join(root, "missing")} {
		_, err := m.Resolve(name)
		if !errors.Is(err, ErrOutsideMedia) {
			t.Fatalf("Resolve(%q) = %v", name, err)
		}
		msgs[strings.Replace(err.Error(), name, "X", 1)] = true
	}
	if len(msgs) != 1 {
		t.Errorf("refusals differ, telling which paths exist: %v", msgs)
	}
	if _, err := (*Media)(nil).Resolve(root); !errors.Is(err, ErrOutsideMedia) {
		t.Error("nil Media allowed a path")
	}
}
