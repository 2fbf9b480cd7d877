package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestChartProcessesStart runs what the chart renders for a scaled install
// as real processes on this machine, without Kubernetes: each replica of
// the control, push and worker Deployments is the tianshu binary with the
// rendered arguments and environment (Secret values from the rendered
// Secret), on the real PostgreSQL, NATS and Redis, and an object store in
// a shared directory (the pods would share S3). Only the listening address
// and the data dir are changed, by flags, since the replicas share one
// host. Every process must report ready on /readyz, as the readiness probe
// asks, and stop cleanly on SIGTERM within terminationGracePeriodSeconds.
func TestChartProcessesStart(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	helm, _, _ := tools(t)
	testenv.NeedTCP(t, "PostgreSQL", "127.0.0.1:5432")
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	testenv.NeedTCP(t, "Redis", "127.0.0.1:6379")

	dir := t.TempDir()
	// The bundled demo photos, for a replay camera every process may read
	// (extraArgs: --media.root).
	photos := filepath.Join(dir, "photos")
	if err := os.CopyFS(photos, os.DirFS(filepath.Join("..", "..", "examples", "demo", "photos"))); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tianshu")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/tianshu").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	values := fmt.Sprintf(`db: {url: %q}
bus: {url: %q}
blob: {url: %q}
cache: {url: %q}
admin: {password: chart-process-test, secretId: %s, secretKey: %s}
extraArgs: [%q]
control: {replicas: 2}
push: {replicas: 1}
workers:
  pools:
    - {name: cpu, kind: Deployment, replicas: 1, labels: {site: test}, capacity: 2}
`, storetest.URL(t, "postgres"), testenv.NATSURL(), "file://"+filepath.Join(dir, "objects"), testenv.RedisURL(),
		procSecretID, procSecretKey, "--media.root="+photos)
	vf := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(vf, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, helm, "template", "tianshu", chartDir, "-n", "tianshu", "-f", vf)
	if err != nil {
		t.Fatal(err)
	}
	objs := parseManifests(t, out)
	secrets := renderedSecrets(t, objs)

	type proc struct {
		name string
		cmd  *exec.Cmd
		addr string
		log  *bytes.Buffer
		done chan error
	}
	var procs []*proc
	grace := 0
	for _, o := range objs {
		if o.kind() != "Deployment" {
			continue
		}
		if g, ok := get(o, "spec", "template", "spec", "terminationGracePeriodSeconds").(int); ok {
			grace = g
		}
		args, env := containerCommand(t, o, secrets, nil)
		replicas, _ := get(o, "spec", "replicas").(int)
		for i := range replicas {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			p := &proc{name: fmt.Sprintf("%s-%d", o.name(), i), addr: addr, log: &bytes.Buffer{}, done: make(chan error, 1)}
			p.cmd = exec.Command(bin, append(args, "--http-addr="+addr, "--data-dir="+filepath.Join(dir, p.name))...)
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "TIANSHU_") {
					p.cmd.Env = append(p.cmd.Env, kv)
				}
			}
			for k, v := range env {
				p.cmd.Env = append(p.cmd.Env, k+"="+v)
			}
			p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
			if err := p.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { p.done <- p.cmd.Wait() }()
			t.Cleanup(func() {
				if p.cmd.ProcessState == nil {
					_ = p.cmd.Process.Kill()
				}
			})
			procs = append(procs, p)
		}
	}
	if len(procs) != 4 {
		t.Fatalf("%d processes rendered, want 2 control, 1 push, 1 worker", len(procs))
	}
	if grace == 0 {
		t.Fatal("no terminationGracePeriodSeconds rendered")
	}

	client := &http.Client{Timeout: 5 * time.Second}
	for _, p := range procs {
		testenv.EventuallyExplained(t, 120*time.Second, p.name+" ready", func() bool {
			select {
			case err := <-p.done:
				t.Fatalf("%s exited: %v\n%s", p.name, err, p.log)
			default:
			}
			resp, err := client.Get("http://" + p.addr + "/readyz")
			if err != nil {
				return false
			}
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
			t.Logf("%s ready: %s", p.name, strings.ReplaceAll(strings.TrimSpace(body.String()), "\n", "; "))
			return true
		}, func() string { return p.log.String() })
	}

	// docs/kubernetes.md's scaled walk-through: a face-structuring task on
	// a camera, placed on the worker by its pool's labels, storing faces.
	var control string
	for _, p := range procs {
		if strings.HasPrefix(p.name, "tianshu-control-") {
			control = "http://" + p.addr
		}
	}
	flowID := signedCall(t, control, "CreateFlow", map[string]any{"ProjectId": "default", "TemplateName": "face-structuring"})["FlowId"]
	deviceID := signedCall(t, control, "CreateDevice", map[string]any{"ProjectId": "default", "Name": "door", "Driver": "replay",
		"Address": photos, "Fps": 2})["DeviceId"]
	taskID := signedCall(t, control, "CreateTask", map[string]any{"ProjectId": "default", "Name": "door-faces", "FlowId": flowID,
		"Sources": []any{map[string]any{"Type": "device", "Id": deviceID}}, "Constraints": map[string]any{"Labels": map[string]any{"site": "test"}},
		"Start": true})["TaskId"]
	testenv.EventuallyExplained(t, 120*time.Second, "a face record of task "+fmt.Sprint(taskID), func() bool {
		r := signedCall(t, control, "DescribeRecords", map[string]any{"ProjectId": "default", "TaskIds": []any{taskID}, "Types": []any{"face"}, "Limit": 5})
		n, _ := r["TotalCount"].(float64)
		if n > 0 {
			t.Logf("task %s stored %v face records", taskID, n)
		}
		return n > 0
	}, func() string {
		var logs strings.Builder
		for _, p := range procs {
			fmt.Fprintf(&logs, "== %s\n%s\n", p.name, tailString(p.log.String(), 3000))
		}
		return fmt.Sprint(signedCall(t, control, "DescribeTasks", map[string]any{"ProjectId": "default"})) + "\n" + logs.String()
	})

	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(grace)*time.Second)
	defer cancel()
	for _, p := range procs {
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s: stop: %v\n%s", p.name, err, p.log)
			}
		case <-ctx.Done():
			t.Errorf("%s did not stop within terminationGracePeriodSeconds (%ds)\n%s", p.name, grace, p.log)
		}
	}
}

const (
	procSecretID  = "AKIDchartprocesstest00000000000000"
	procSecretKey = "chart-process-test-secret-key-0000"
)

// signedCall calls an action signed with the admin key the values set.
func signedCall(t *testing.T, endpoint, action string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", api.Version)
	tc3.Signer{SecretID: procSecretID, SecretKey: procSecretKey}.Sign(req, b, time.Now())
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	defer resp.Body.Close()
	var env struct{ Response map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s: HTTP %d: %v", action, resp.StatusCode, err)
	}
	if e, ok := env.Response["Error"]; ok {
		t.Fatalf("%s: %v", action, e)
	}
	return env.Response
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
