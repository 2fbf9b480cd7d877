package algorithm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func mustPolicy(t *testing.T, c execpolicy.Config) *execpolicy.Policy {
	t.Helper()
	p, err := execpolicy.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A package's command runs from inside the package only: an absolute
// command, one that escapes the package, a link out of it, or a bare name
// found only on the server's PATH is refused, and nothing starts.
func TestProcessCommandOutsidePackageIsRefused(t *testing.T) {
	m := newManager(t, Options{StartupTimeout: 2 * time.Second, Exec: mustPolicy(t, execpolicy.Default())})
	marker := filepath.Join(t.TempDir(), "ran")
	linked := t.TempDir()
	if err := os.WriteFile(filepath.Join(linked, "manifest.json"), []byte(`{"command": "bin/srv", "args": ["-c", "touch `+marker+`; exec sleep 30"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(linked, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/sh", filepath.Join(linked, "bin", "srv")); err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]string{"linked out": linked}
	for name, cmd := range map[string]string{"absolute": "/bin/sh", "escapes": "../../../../../../bin/sh", "dot escapes": "./../../../../../../bin/sh", "bare on PATH": "sh"} {
		pkgs[name] = tarGz(t, t.TempDir(), []tarEntry{{name: "manifest.json", body: `{"command": "` + cmd + `", "args": ["-c", "touch ` + marker + `; exec sleep 30"]}`}})
	}
	for name, pkg := range pkgs {
		err := m.Apply(context.Background(), processVersion("p-"+strings.ReplaceAll(name, " ", "-"), pkg, 1))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "manifest.command" {
			t.Errorf("%s: got %v; want a refusal of manifest.command", name, err)
		}
	}
	// A refused Apply starts no instance (Apply starts them before it
	// returns), so nothing can have run the command.
	for name := range pkgs {
		id := "p-" + strings.ReplaceAll(name, " ", "-")
		if st, err := m.Instances(Ref{ID: id}); !errors.Is(err, ErrUnknownAlgorithm) {
			t.Fatalf("%s: instances after its refusal: %v, %v", name, st, err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a command outside the package ran")
	}
}

// A bare command name runs from a directory the operator allowed.
func TestProcessBareCommandFromAllowedDir(t *testing.T) {
	allowed := t.TempDir()
	bin, err := os.ReadFile(v1serverBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(allowed, "v1server"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	man := v1Manifest(nil)
	man["command"] = "v1server"
	pkg := v1Package(t, man)
	m := newManager(t, Options{Exec: mustPolicy(t, execpolicy.Default())})
	var fe *FieldError
	if err := m.Apply(context.Background(), processVersion("bare", pkg, 1)); !errors.As(err, &fe) || fe.Field != "manifest.command" {
		t.Fatalf("not allowed: %v", err)
	}
	m = newManager(t, Options{Exec: mustPolicy(t, execpolicy.Config{Allow: []string{allowed}})})
	applyReady(t, m, processVersion("bare", pkg, 1))
}

// A process gets only what its manifest and the operator declare, never
// the server's environment, and a home of its own.
func TestProcessEnvironmentIsClean(t *testing.T) {
	t.Setenv("TIANSHU_ADMIN_SECRET_KEY", "the-platform-admin-secret")
	dump := filepath.Join(t.TempDir(), "env")
	pkg := tarGz(t, t.TempDir(), []tarEntry{
		{name: "bin/", typ: '5', mode: 0o755},
		{name: "bin/dump", mode: 0o755, body: "#!/bin/sh\n{ env; echo \"cwd=$(pwd)\"; } > \"$DUMP.tmp\" && mv \"$DUMP.tmp\" \"$DUMP\"\nexec sleep 60\n"},
		{name: "manifest.json", body: `{"command": "bin/dump", "env": {"DUMP": "` + dump + `", "MODEL": "small"}}`},
	})
	m := newManager(t, Options{StartupTimeout: 30 * time.Second, ProcessEnv: []string{"OPERATOR_SET=1"}})
	if err := m.Apply(context.Background(), processVersion("envdump", pkg, 1)); err != nil {
		t.Fatal(err)
	}
	var env string
	testenv.Eventually(t, 30*time.Second, "process dumped its environment", func() bool {
		b, err := os.ReadFile(dump)
		env = string(b)
		return err == nil
	})
	if strings.Contains(env, "the-platform-admin-secret") {
		t.Errorf("the server's environment reached the process:\n%s", env)
	}
	home, _ := os.UserHomeDir()
	for _, want := range []string{"MODEL=small", "OPERATOR_SET=1", "PACKAGE_DIR=", "PORT="} {
		if !strings.Contains(env, want) {
			t.Errorf("process environment lacks %s:\n%s", want, env)
		}
	}
	if home != "" && strings.Contains(env, "HOME="+home+"\n") {
		t.Errorf("process shares the server's home:\n%s", env)
	}
}

// A process that exits with status 0 while starting is restarted, not a
// crash of the server.
func TestProcessExitZeroDuringStartup(t *testing.T) {
	pkg := tarGz(t, t.TempDir(), []tarEntry{
		{name: "quit", mode: 0o755, body: "#!/bin/sh\nexit 0\n"},
		{name: "manifest.json", body: `{"command": "quit"}`},
	})
	m := newManager(t, Options{StartupTimeout: 5 * time.Second, MaxStartFailures: 2})
	if err := m.Apply(context.Background(), processVersion("quit", pkg, 1)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "exit reported", func() bool {
		s := statuses(t, m, ref("quit", "1"))[0]
		return strings.Contains(s.LastError, "exited during startup with status 0")
	})
}
