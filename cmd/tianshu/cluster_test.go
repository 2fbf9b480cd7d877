package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/bus"
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/task"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// proc is a tianshu process started by a test.
type proc struct {
	t    *testing.T
	name string
	args []string
	env  []string
	cmd  *exec.Cmd
	logs *bytes.Buffer
	addr string
}

func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	p := &proc{t: t, name: name, env: env, addr: freeAddr(t)}
	p.args = append([]string{"serve", "--http-addr", p.addr}, args...)
	p.start()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s logs (tail):\n%s", p.name, tail(p.logs.String(), 3000))
		}
	})
	return p
}

func (p *proc) start() {
	p.logs = &bytes.Buffer{}
	p.cmd = exec.Command(binary, p.args...)
	p.cmd.Env = p.env
	p.cmd.Stderr = &lockedWriter{w: p.logs}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready; logs:\n%s", p.name, tail(p.logs.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func call(t *testing.T, endpoint, action string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := Call(ctx, http.DefaultClient, endpoint, tc3.Signer{SecretID: clusterSecretID, SecretKey: clusterSecretKey}, action, b)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	var env struct{ Response map[string]any }
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if e, ok := env.Response["Error"]; ok {
		t.Fatalf("%s: %v", action, e)
	}
	return env.Response
}

const (
	clusterSecretID  = "AKIDclustertest0000000000000000000"
	clusterSecretKey = "cluster-test-secret-key-000000000"
)

// One control plane and two workers as separate processes on PostgreSQL
// and the external NATS. Killing a worker with SIGKILL moves its tasks to
// the survivor, and every message is processed at least once; killing the
// control plane loses nothing and the tasks keep running.
func TestClusterSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	dbURL := storetest.URL(t, "postgres")
	env := cleanEnv("TIANSHU_MASTER_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"TIANSHU_ADMIN_SECRET_ID="+clusterSecretID, "TIANSHU_ADMIN_SECRET_KEY="+clusterSecretKey, "TIANSHU_ADMIN_PASSWORD=cluster-pass")
	shared := []string{"--db", dbURL, "--bus", testenv.NATSURL(), "--worker.lease-ttl", "3s", "--log.level", "info"}
	cp := startProc(t, "control", env, append([]string{"--target", "control", "--data-dir", t.TempDir()}, shared...)...)
	w1 := startProc(t, "worker-1", env, append([]string{"--target", "worker", "--worker.name", "w1", "--data-dir", t.TempDir()}, shared...)...)
	w2 := startProc(t, "worker-2", env, append([]string{"--target", "worker", "--worker.name", "w2", "--data-dir", t.TempDir()}, shared...)...)
	ep := "http://" + cp.addr

	ctx := context.Background()
	b, err := bus.Open(ctx, testenv.NATSURL(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	run := fmt.Sprintf("r%d", rand.Int64N(1e9))
	project := "default"
	// Count processed messages by (topic, n) from the published events.
	var mu sync.Mutex
	seen := map[string]int{}
	sub, err := b.Subscribe(ctx, task.EventsTopic(project), "cluster-"+run, bus.SubscribeOptions{MaxInFlight: 8}, func(_ context.Context, m bus.Message) error {
		var ce task.CloudEvent
		if json.Unmarshal(m.Data, &ce) != nil || ce.Data["run"] != run {
			return nil
		}
		mu.Lock()
		seen[fmt.Sprintf("%v/%v", ce.Data["src"], ce.Data["n"])]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	t.Cleanup(func() { _ = b.DeleteConsumer(context.Background(), task.EventsTopic(project), "cluster-"+run) })

	flow := `{"name": "relay-` + run + `", "nodes": [
	  {"id": "save", "kind": "store", "config": {"type": "relay"}, "inputs": {"n": "$input.n", "src": "$input.src"}},
	  {"id": "tell", "kind": "publish", "config": {"type": "tianshu.test.relay"},
	   "inputs": {"n": "$input.n", "src": "$input.src", "run": "$input.run", "record": "$save.recordId"}}],
	  "edges": [{"from": "save", "to": "tell"}]}`
	flowID := call(t, ep, "CreateFlow", map[string]any{"Document": flow})["FlowId"].(string)
	const tasks = 4
	var topics, taskIDs []string
	for i := 0; i < tasks; i++ {
		topic := fmt.Sprintf("cluster.%s.%d", run, i)
		topics = append(topics, topic)
		id := call(t, ep, "CreateTask", map[string]any{"Name": topic, "FlowId": flowID, "Start": true,
			"Sources": []any{map[string]any{"Type": "topic", "Id": topic}}})["TaskId"].(string)
		taskIDs = append(taskIDs, id)
		t.Cleanup(func() { _ = b.DeleteTopic(context.Background(), topic) })
	}
	nodes := func() map[string]string {
		r := call(t, ep, "DescribeTasks", map[string]any{"TaskIds": taskIDs})
		out := map[string]string{}
		for _, x := range r["TaskSet"].([]any) {
			m := x.(map[string]any)
			if m["Status"] == "Running" {
				out[m["TaskId"].(string)] = m["NodeId"].(string)
			}
		}
		return out
	}
	waitFor(t, 60*time.Second, "all tasks running", func() bool { return len(nodes()) == tasks })

	publish := func(from, to int) {
		for n := from; n < to; n++ {
			for _, topic := range topics {
				data, _ := json.Marshal(map[string]any{"n": n, "src": topic, "run": run})
				if _, err := b.Publish(ctx, topic, "k", data, nil); err != nil {
					t.Error(err) // not Fatal: also called from a goroutine
					return
				}
			}
		}
	}
	publish(0, 200)
	// Kill the worker that runs the most tasks.
	before := nodes()
	count := map[string]int{}
	for _, n := range before {
		count[n]++
	}
	victim := w1
	var victimNode string
	for n, c := range count {
		if c*2 >= tasks {
			victimNode = n
		}
	}
	if victimNode == "" {
		t.Fatalf("no node runs half the tasks: %v", before)
	}
	// Which process is the victim: ask its /metrics? Node ids are per
	// process; find the process whose logs name the node.
	if !bytes.Contains(w1.logs.Bytes(), []byte(victimNode)) {
		victim = w2
	}
	// Publish while the worker dies, so messages are in flight at the kill.
	published := make(chan struct{})
	go func() {
		defer close(published)
		for n := 200; n < 400; n += 10 {
			publish(n, n+10)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	victim.kill9()
	killed := time.Now()
	<-published
	waitFor(t, 30*time.Second, "tasks moved to the survivor", func() bool {
		now := nodes()
		if len(now) != tasks {
			return false
		}
		for _, n := range now {
			if n == victimNode {
				return false
			}
		}
		return true
	})
	t.Logf("tasks running again on the survivor %.1f s after kill -9", time.Since(killed).Seconds())

	// Kill the control plane too: the tasks keep running meanwhile, and a
	// restarted control plane finds everything as it was.
	cp.kill9()
	publish(400, 500)
	cp.start()
	publish(500, 600)
	waitFor(t, 90*time.Second, "every message processed at least once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 600*tasks
	})
	mu.Lock()
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	mu.Unlock()
	t.Logf("%d messages, %d duplicates", 600*tasks, dups)
	// Duplicates come only from messages in flight on the killed worker:
	// at most its in-flight window per task.
	if dups > 4*tasks*4 {
		t.Errorf("%d duplicates: more than the in-flight window", dups)
	}
	if len(nodes()) != tasks {
		t.Fatalf("tasks not running after the control plane restart: %v", nodes())
	}
	// Every message's record is stored exactly once: record ids derive from
	// the message, so a redelivery rewrites the same record.
	for _, id := range taskIDs {
		r := call(t, ep, "DescribeRecords", map[string]any{"TaskIds": []string{id}, "Limit": 1})
		if r["TotalCount"].(float64) != 600 {
			t.Errorf("task %s: %v records, want 600", id, r["TotalCount"])
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
