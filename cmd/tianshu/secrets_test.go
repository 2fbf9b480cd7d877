package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app"
)

// serveProc runs `tianshu serve` on dir until the test ends or stop.
type serveProc struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
}

func startServe(t *testing.T, dir string, env []string) *serveProc {
	t.Helper()
	p := &serveProc{addr: freeAddr(t), logs: &bytes.Buffer{}}
	p.cmd = exec.Command(binary, "serve", "--data-dir", dir, "--http-addr", p.addr)
	p.cmd.Env = env
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("not ready after 30 s; logs:\n%s", p.logs.String())
		}
	}
}

func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve exit: %v\n%s", err, p.logs.String())
	}
}

// ctlWorks calls DescribeApps signed with the pair and fails the test
// unless it answers.
func (p *serveProc) ctlWorks(t *testing.T, when, id, key string) {
	t.Helper()
	out, err := runCmd(cleanEnv("TIANSHU_ENDPOINT=http://"+p.addr, "TIANSHU_SECRET_ID="+id, "TIANSHU_SECRET_KEY="+key),
		"ctl", "DescribeApps", "--Limit", "1")
	if err != nil || !strings.Contains(string(out), "TotalCount") {
		t.Fatalf("%s: ctl DescribeApps: %v\n%s\nserve logs:\n%s", when, err, out, p.logs.String())
	}
}

// The documented procedure on a data dir, with a replica serving all
// along (restarted between the steps, as docs/secrets.md says): the key
// created before the rotation keeps signing calls at every step, a key
// created mid-rotation by the replica still sealing under the old key is
// moved by the sweep, and no key material reaches the output or the logs.
func TestSecretsRotateEndToEnd(t *testing.T) {
	dir := t.TempDir()
	env := cleanEnv()
	srv := startServe(t, dir, env)
	var cred app.InitialCredentials
	b, err := os.ReadFile(filepath.Join(dir, app.CredentialsFile))
	if err != nil || json.Unmarshal(b, &cred) != nil {
		t.Fatalf("credentials: %v %s", err, b)
	}
	srv.ctlWorks(t, "before", cred.SecretId, cred.SecretKey)

	var output bytes.Buffer
	secretsRun := func(args ...string) string {
		t.Helper()
		out, err := runCmd(env, append([]string{"secrets"}, append(args, "--data-dir", dir)...)...)
		output.Write(out)
		if err != nil {
			t.Fatalf("tianshu secrets %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	// 1. Stage: the running replica, which knows only the old key, keeps working.
	if out := secretsRun("stage"); !strings.Contains(out, "staged key") {
		t.Fatalf("stage said %s", out)
	}
	srv.ctlWorks(t, "after stage", cred.SecretId, cred.SecretKey)
	srv.stop(t)
	srv = startServe(t, dir, env) // the replica learns the staged key

	// 2. Rotate while it serves.
	out := secretsRun("rotate")
	if !strings.Contains(out, "app_keys.secret_key_enc: 1 rows, 1 re-encrypted") || !strings.Contains(out, "algorithm_secrets.secrets_enc: 0 rows") {
		t.Fatalf("rotate said %s", out)
	}
	srv.ctlWorks(t, "during", cred.SecretId, cred.SecretKey)
	// The replica still seals under the old key until it restarts.
	ctlEnv := cleanEnv("TIANSHU_ENDPOINT=http://"+srv.addr, "TIANSHU_SECRET_ID="+cred.SecretId, "TIANSHU_SECRET_KEY="+cred.SecretKey)
	created, err := runCmd(ctlEnv, "ctl", "CreateAppKey", "--AppId", cred.AppId)
	var pair struct{ SecretId, SecretKey string }
	if err != nil || json.Unmarshal(created, &pair) != nil || pair.SecretKey == "" {
		t.Fatalf("CreateAppKey: %v\n%s", err, created)
	}

	// 3. Restart on the new keyring, sweep, restart again: both keys work.
	srv.stop(t)
	srv = startServe(t, dir, env)
	srv.ctlWorks(t, "after restart", cred.SecretId, cred.SecretKey)
	srv.ctlWorks(t, "mid-rotation key", pair.SecretId, pair.SecretKey)
	if out := secretsRun("rotate"); !strings.Contains(out, "app_keys.secret_key_enc: 2 rows, 1 re-encrypted, 1 current") {
		t.Fatalf("sweep said %s", out)
	}
	status := secretsRun("status")
	ring, _ := os.ReadFile(filepath.Join(dir, "master.key"))
	keys := strings.Fields(string(ring))
	if len(keys) != 2 {
		t.Fatalf("master.key holds %d entries, want 2", len(keys))
	}
	raw, _ := base64.StdEncoding.DecodeString(keys[0])
	if !strings.Contains(status, "app_keys.secret_key_enc: 2 under ") || !strings.Contains(status, "(current)") || strings.Contains(status, "previous)") {
		t.Fatalf("status after the sweep: %s", status)
	}
	srv.stop(t)
	srv = startServe(t, dir, env)
	srv.ctlWorks(t, "after", cred.SecretId, cred.SecretKey)
	srv.ctlWorks(t, "after", pair.SecretId, pair.SecretKey)
	srv.stop(t)

	for _, k := range keys {
		if strings.Contains(output.String(), k) || strings.Contains(srv.logs.String(), k) {
			t.Fatal("key material in the output or the logs")
		}
	}
	if len(raw) != 32 {
		t.Fatalf("current key is %d bytes", len(raw))
	}
}

// With TIANSHU_MASTER_KEY the keyring to set is written to a 0600 file,
// never printed, and the new key may be given.
func TestSecretsRotateEnv(t *testing.T) {
	dir := t.TempDir()
	a := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	b := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	envFile := filepath.Join(dir, "master-key.env")
	run := func(env []string, args ...string) string {
		t.Helper()
		out, err := runCmd(env, append([]string{"secrets"}, append(args, "--data-dir", dir)...)...)
		if err != nil {
			t.Fatalf("tianshu secrets %v: %v\n%s", args, err, out)
		}
		if strings.Contains(string(out), a) || strings.Contains(string(out), b) {
			t.Fatalf("key material printed:\n%s", out)
		}
		return string(out)
	}
	run(cleanEnv("TIANSHU_MASTER_KEY="+a, "TIANSHU_NEW_MASTER_KEY="+b), "stage")
	got, err := os.ReadFile(envFile)
	if err != nil || string(got) != "TIANSHU_MASTER_KEY="+a+",next:"+b+"\n" {
		t.Fatalf("env file after stage: %q, %v", got, err)
	}
	if fi, _ := os.Stat(envFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("env file mode %v", fi.Mode())
	}
	staged := strings.TrimSpace(strings.TrimPrefix(string(got), "TIANSHU_MASTER_KEY="))
	run(cleanEnv("TIANSHU_MASTER_KEY="+staged), "rotate")
	got, _ = os.ReadFile(envFile)
	if string(got) != "TIANSHU_MASTER_KEY="+b+","+a+"\n" {
		t.Fatalf("env file after rotate: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "master.key")); !os.IsNotExist(err) {
		t.Fatal("the env case wrote master.key")
	}
}
