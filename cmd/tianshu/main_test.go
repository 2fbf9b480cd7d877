package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/app"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tianshu-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tianshu")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func TestDocsAreGenerated(t *testing.T) {
	want := api.Markdown(app.NewRegistry(nil))
	got, err := os.ReadFile("../../docs/api.md")
	if err != nil || string(got) != want {
		t.Fatalf("docs/api.md is out of date: run `go run ./cmd/tianshu docs > docs/api.md` (err %v)", err)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cleanEnv is the environment without any TIANSHU_ variable of the caller.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "TIANSHU_") {
			env = append(env, e)
		}
	}
	return append(env, extra...)
}

// A newcomer's first run: the platform starts on the embedded default,
// writes credentials once (mode 0600, never to the logs), answers ctl, and
// exits 0 on SIGTERM.
func TestServeCtlAndSignal(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(binary, "serve", "--data-dir", dir, "--http-addr", addr)
	cmd.Env = cleanEnv()
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	start := time.Now()
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("not ready after 30 s; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	credPath := filepath.Join(dir, app.CredentialsFile)
	fi, err := os.Stat(credPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v", err, fi.Mode())
	}
	var cred app.InitialCredentials
	b, _ := os.ReadFile(credPath)
	if err := json.Unmarshal(b, &cred); err != nil || cred.SecretKey == "" || cred.Password == "" {
		t.Fatalf("credentials %s: %v", b, err)
	}

	ctlEnv := cleanEnv("TIANSHU_ENDPOINT=http://"+addr, "TIANSHU_SECRET_ID="+cred.SecretId, "TIANSHU_SECRET_KEY="+cred.SecretKey)
	out, err := runCmd(ctlEnv, "ctl", "DescribeApps", "--Limit", "1")
	if err != nil {
		t.Fatalf("ctl DescribeApps: %v\n%s", err, out)
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil || r["TotalCount"] != float64(1) {
		t.Fatalf("ctl output %s", out)
	}
	// A field typed as string stays a string even when it looks like JSON.
	if out, err := runCmd(ctlEnv, "ctl", "CreateApp", "--Name", "123", "--json", `{"Role":"viewer"}`); err != nil || !strings.Contains(string(out), `"AppId"`) {
		t.Fatalf("ctl CreateApp: %v\n%s", err, out)
	}
	out, err = runCmd(ctlEnv, "ctl", "DescribeApps", "--Limit", "500")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "InvalidParameterValue: Limit") {
		t.Fatalf("ctl with a bad value: %v\n%s", err, out)
	}
	wrong := cleanEnv("TIANSHU_ENDPOINT=http://"+addr, "TIANSHU_SECRET_ID="+cred.SecretId, "TIANSHU_SECRET_KEY=nope")
	if out, err := runCmd(wrong, "ctl", "DescribeApps"); err == nil || !strings.Contains(string(out), "AuthFailure.SignatureFailure") {
		t.Fatalf("ctl with a wrong key: %v\n%s", err, out)
	}

	// ctl login keeps a session; calls without a key use it; logout ends it.
	sessionPath := filepath.Join(t.TempDir(), "cli", "session.json")
	person := cleanEnv("TIANSHU_ENDPOINT=http://"+addr, "TIANSHU_SESSION_FILE="+sessionPath)
	if out, err := runCmd(append(person, "TIANSHU_PASSWORD=wrong password"), "ctl", "login", "--user", "admin"); err == nil || !strings.Contains(string(out), "AuthFailure.LoginFailed") {
		t.Fatalf("ctl login with a wrong password: %v\n%s", err, out)
	}
	if out, err := runCmd(append(person, "TIANSHU_PASSWORD="+cred.Password), "ctl", "login", "--user", "admin"); err != nil {
		t.Fatalf("ctl login: %v\n%s", err, out)
	}
	if fi, err := os.Stat(sessionPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v, mode %v", err, fi.Mode())
	}
	if kept, _ := os.ReadFile(sessionPath); strings.Contains(string(kept), cred.Password) {
		t.Fatal("the session file holds the password")
	}
	noEndpoint := cleanEnv("TIANSHU_SESSION_FILE=" + sessionPath) // the session knows its endpoint
	if out, err := runCmd(noEndpoint, "ctl", "DescribeMySessions"); err != nil || !strings.Contains(string(out), `"Current": true`) {
		t.Fatalf("ctl with the session: %v\n%s", err, out)
	}
	if out, err := runCmd(append(person, "TIANSHU_SECRET_ID="+cred.SecretId, "TIANSHU_SECRET_KEY="+cred.SecretKey), "ctl", "DescribeApps", "--Limit", "1"); err != nil {
		t.Fatalf("a key still signs beside a kept session: %v\n%s", err, out)
	}
	if out, err := runCmd(person, "ctl", "logout"); err != nil {
		t.Fatalf("ctl logout: %v\n%s", err, out)
	}
	if _, err := os.Stat(sessionPath); !os.IsNotExist(err) {
		t.Fatalf("session file after logout: %v", err)
	}
	if out, err := runCmd(person, "ctl", "DescribeApps"); err == nil || !strings.Contains(string(out), "ctl login") {
		t.Fatalf("ctl without key or session: %v\n%s", err, out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after SIGTERM")
	}
	for _, secret := range []string{cred.SecretKey, cred.Password} {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a generated secret appears in the logs")
		}
	}
	// Every log line is JSON with a constant message.
	sc := bufio.NewScanner(&logs)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line["msg"] == nil {
			t.Fatalf("log line is not slog JSON: %s", sc.Text())
		}
	}

	// A second start reuses the data dir and does not write credentials again.
	_ = os.Remove(credPath)
	cmd2 := exec.Command(binary, "migrate", "--data-dir", dir)
	cmd2.Env = cleanEnv()
	if out, err := cmd2.CombinedOutput(); err != nil || !strings.Contains(string(out), "applied 0 migration") {
		t.Fatalf("migrate on a migrated store: %v\n%s", err, out)
	}
}

func runCmd(env []string, args ...string) ([]byte, error) {
	c := exec.Command(binary, args...)
	c.Env = env
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.Bytes(), err
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, err := runCmd(cleanEnv(), "serve", "--data-dir", t.TempDir(), "--http-addr", l.Addr().String())
	if err == nil || !strings.Contains(string(out), "port already in use") || !strings.Contains(string(out), l.Addr().String()) {
		t.Fatalf("serve on a busy port: %v\n%s", err, out)
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--db", "oracle://x"}, "db: scheme"},
		{[]string{"--http-addr", "nonsense"}, "http_addr"},
		{[]string{"--target", "api,nosuch"}, `unknown target "nosuch"`},
		{[]string{"--log.level", "loud"}, "log.level"},
		{[]string{"--gb28181.addr", "127.0.0.1:0", "--gb28181.server-id", "123"}, "gb28181.server-id"},
	} {
		out, err := runCmd(cleanEnv(), append([]string{"serve", "--data-dir", t.TempDir()}, c.args...)...)
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("serve %v: %v\n%s", c.args, err, out)
		}
	}
}
