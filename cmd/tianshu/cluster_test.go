package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/bus"
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
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
// and the external NATS, running four tasks on replay devices read without
// drops (DropPolicy "none") and four on bus topics. Killing a worker with
// SIGKILL moves its tasks to the survivor within seconds; the replay tasks
// resume after their checkpoints, so every frame's record is stored and only
// frames processed since the victim's last checkpoint run twice; every
// topic message is processed at least once. Killing the control plane loses
// nothing and the tasks keep running.
func TestClusterSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	dbURL := storetest.URL(t, "postgres")
	env := cleanEnv("TIANSHU_MASTER_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"TIANSHU_ADMIN_SECRET_ID="+clusterSecretID, "TIANSHU_ADMIN_SECRET_KEY="+clusterSecretKey, "TIANSHU_ADMIN_PASSWORD=cluster-pass")
	const (
		leaseTTL = 3 * time.Second
		// The worker reconciles, and writes checkpoints, every
		// min(1 s, lease TTL / 4).
		checkpointEvery = leaseTTL / 4
		inFlight        = 4 // the worker's default per task
		fps             = 20
	)
	// Every replay device plays one folder of small JPEGs, the media root
	// of every process (all run on this machine).
	folder := t.TempDir()
	shared := []string{"--db", dbURL, "--bus", testenv.NATSURL(), "--worker.lease-ttl", leaseTTL.String(), "--log.level", "info",
		"--media.root", folder}
	cp := startProc(t, "control", env, append([]string{"--target", "control", "--data-dir", t.TempDir()}, shared...)...)
	w1 := startProc(t, "worker-1", env, append([]string{"--target", "worker", "--worker.name", "w1", "--data-dir", t.TempDir()}, shared...)...)
	w2 := startProc(t, "worker-2", env, append([]string{"--target", "worker", "--worker.name", "w2", "--data-dir", t.TempDir()}, shared...)...)
	ep := "http://" + cp.addr

	ctx := context.Background()
	sdb, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	b, err := bus.Open(ctx, testenv.NATSURL(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	run := fmt.Sprintf("r%d", rand.Int64N(1e9))
	project := "default"
	// Count processed messages from the published events: topic messages
	// by (topic, n), frames by (task, frame).
	// The counter starts after what the topic held before this run, and
	// notes every sequence it handled, so the test can wait until it has
	// counted everything stored up to a moment.
	topicHead := b.(interface {
		LastSeq(context.Context, string) (uint64, error)
	})
	events := event.Topic(project)
	startSeq, err := topicHead.LastSeq(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	frameEvents := map[string]map[int64]int{} // task → frame → events
	handled := map[uint64]bool{}
	countedUpTo := func(seq uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		return uint64(len(handled)) >= seq-startSeq
	}
	sub, err := b.Subscribe(ctx, events, "cluster-"+run, bus.SubscribeOptions{MaxInFlight: 8, StartSeq: startSeq + 1}, func(_ context.Context, m bus.Message) error {
		var ce event.Event
		mu.Lock()
		defer mu.Unlock()
		handled[m.Seq] = true
		if json.Unmarshal(m.Data, &ce) != nil {
			return nil
		}
		switch {
		case ce.Data["run"] == run:
			seen[fmt.Sprintf("%v/%v", ce.Data["src"], ce.Data["n"])]++
		case ce.Type == "tianshu.test.frame":
			f, _ := ce.Data["frame"].(float64)
			if frameEvents[ce.TaskID] == nil {
				frameEvents[ce.TaskID] = map[int64]int{}
			}
			frameEvents[ce.TaskID][int64(f)]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	t.Cleanup(func() { _ = b.DeleteConsumer(context.Background(), event.Topic(project), "cluster-"+run) })

	relay := `{"name": "relay-` + run + `", "nodes": [
	  {"id": "save", "kind": "store", "config": {"type": "relay"}, "inputs": {"n": "$input.n", "src": "$input.src"}},
	  {"id": "tell", "kind": "publish", "config": {"type": "tianshu.test.relay"},
	   "inputs": {"n": "$input.n", "src": "$input.src", "run": "$input.run", "record": "$save.recordId"}}],
	  "edges": [{"from": "save", "to": "tell"}]}`
	relayID := call(t, ep, "CreateFlow", map[string]any{"Document": relay})["FlowId"].(string)
	// The store node keeps the frame number, so records count by frame.
	frames := `{"name": "frames-` + run + `", "nodes": [
	  {"id": "save", "kind": "store", "config": {"type": "frame"}, "inputs": {"frame": "$input.frame", "device": "$input.device"}},
	  {"id": "tell", "kind": "publish", "config": {"type": "tianshu.test.frame"},
	   "inputs": {"frame": "$input.frame", "record": "$save.recordId"}}],
	  "edges": [{"from": "save", "to": "tell"}]}`
	framesID := call(t, ep, "CreateFlow", map[string]any{"Document": frames})["FlowId"].(string)

	for i := 0; i < 5; i++ {
		img := image.NewGray(image.Rect(0, 0, 32, 24))
		for p := range img.Pix {
			img.Pix[p] = uint8(40 * i)
		}
		var jb bytes.Buffer
		if err := jpeg.Encode(&jb, img, nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(folder, fmt.Sprintf("%02d.jpg", i)), jb.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const tasks = 4
	var topics, topicTasks, replayTasks []string
	for i := 0; i < tasks; i++ {
		dev := call(t, ep, "CreateDevice", map[string]any{"Name": fmt.Sprintf("replay-%s-%d", run, i), "Driver": "replay",
			"Address": folder, "Fps": fps})["DeviceId"].(string)
		id := call(t, ep, "CreateTask", map[string]any{"Name": fmt.Sprintf("replay-%s-%d", run, i), "FlowId": framesID, "Start": true,
			"Sources": []any{map[string]any{"Type": "device", "Id": dev, "DropPolicy": "none"}}})["TaskId"].(string)
		replayTasks = append(replayTasks, id)

		topic := fmt.Sprintf("cluster.%s.%d", run, i)
		topics = append(topics, topic)
		id = call(t, ep, "CreateTask", map[string]any{"Name": topic, "FlowId": relayID, "Start": true,
			"Sources": []any{map[string]any{"Type": "topic", "Id": topic}}})["TaskId"].(string)
		topicTasks = append(topicTasks, id)
		t.Cleanup(func() { _ = b.DeleteTopic(context.Background(), topic) })
	}
	allTasks := append(append([]string(nil), replayTasks...), topicTasks...)
	nodes := func() map[string]string {
		r := call(t, ep, "DescribeTasks", map[string]any{"TaskIds": allTasks})
		out := map[string]string{}
		for _, x := range r["TaskSet"].([]any) {
			m := x.(map[string]any)
			if m["Status"] == "Running" {
				out[m["TaskId"].(string)] = m["NodeId"].(string)
			}
		}
		return out
	}
	testenv.Eventually(t, 60*time.Second, "all tasks running", func() bool { return len(nodes()) == 2*tasks })
	// lastFrame is the highest frame a task has published an event for.
	lastFrame := func(id string) int64 {
		mu.Lock()
		defer mu.Unlock()
		var hi int64
		for f := range frameEvents[id] {
			hi = max(hi, f)
		}
		return hi
	}
	testenv.Eventually(t, 30*time.Second, "frames from every replay task", func() bool {
		for _, id := range replayTasks {
			if lastFrame(id) < 2*fps {
				return false
			}
		}
		return true
	})

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
	// Kill the worker that runs the most replay tasks.
	before := nodes()
	count := map[string]int{}
	for _, id := range replayTasks {
		count[before[id]]++
	}
	var victimNode string
	for n, c := range count {
		if c*2 >= tasks {
			victimNode = n
		}
	}
	if victimNode == "" {
		t.Fatalf("no node runs half the replay tasks: %v", before)
	}
	var moved []string
	for _, id := range replayTasks {
		if before[id] == victimNode {
			moved = append(moved, id)
		}
	}
	// Node ids are per process: the victim is the process whose logs name
	// the node.
	victim := w1
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
	// Where the moved replay tasks will resume: their checkpoints, which
	// nobody writes until the survivor runs them (not before the victim's
	// lease lapses), and the last frame the victim published: once the
	// counter has handled every event stored by now.
	atKillSeq, err := topicHead.LastSeq(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "events stored before the kill counted", func() bool { return countedUpTo(atKillSeq) })
	resumeAt, atKill := map[string]int64{}, map[string]int64{}
	for _, id := range moved {
		var pos string
		if err := sdb.QueryRow(ctx, "SELECT position FROM task_checkpoints WHERE task_id = ? AND source_index = 0", id).Scan(&pos); err != nil {
			t.Fatalf("checkpoint of %s: %v", id, err)
		}
		resumeAt[id], _ = strconv.ParseInt(pos, 10, 64)
		atKill[id] = lastFrame(id)
	}
	testenv.Eventually(t, 30*time.Second, "tasks moved to the survivor", func() bool {
		now := nodes()
		if len(now) != 2*tasks {
			return false
		}
		for _, n := range now {
			if n == victimNode {
				return false
			}
		}
		return true
	})
	placed := time.Since(killed)
	// Running means frames again: each moved replay task publishes frames
	// past the ones it had published when its worker died.
	testenv.Eventually(t, 30*time.Second, "frames from the moved replay tasks", func() bool {
		for _, id := range moved {
			if lastFrame(id) <= atKill[id]+fps/2 {
				return false
			}
		}
		return true
	})
	flowing := time.Since(killed)
	t.Logf("after kill -9: every task Running on the survivor in %.1f s, frames of the %d moved replay tasks flowing in %.1f s",
		placed.Seconds(), len(moved), flowing.Seconds())
	if flowing > 10*time.Second {
		t.Errorf("the moved tasks ran again %.1f s after the kill; want within 10 s", flowing.Seconds())
	}
	<-published

	// Kill the control plane too: the tasks keep running meanwhile, and a
	// restarted control plane finds everything as it was.
	cp.kill9()
	publish(400, 500)
	cp.start()
	publish(500, 600)
	testenv.Eventually(t, 60*time.Second, "every message processed at least once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 600*tasks
	})
	if len(nodes()) != 2*tasks {
		t.Fatalf("tasks not running after the control plane restart: %v", nodes())
	}
	for _, id := range replayTasks {
		call(t, ep, "StopTask", map[string]any{"TaskId": id})
	}
	testenv.Eventually(t, 30*time.Second, "the replay tasks stopped", func() bool {
		r := call(t, ep, "DescribeTasks", map[string]any{"TaskIds": replayTasks})
		for _, x := range r["TaskSet"].([]any) {
			if x.(map[string]any)["Status"] != "Stopped" {
				return false
			}
		}
		return true
	})

	mu.Lock()
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	mu.Unlock()
	t.Logf("topics: %d messages, %d duplicates", 600*tasks, dups)
	// Duplicates come only from messages in flight on the killed worker:
	// at most its in-flight window per task.
	if dups > 4*tasks*4 {
		t.Errorf("%d duplicates: more than the in-flight window", dups)
	}
	// Every message's record is stored exactly once: record ids derive from
	// the message, so a redelivery rewrites the same record.
	for _, id := range topicTasks {
		r := call(t, ep, "DescribeRecords", map[string]any{"TaskIds": []string{id}, "Limit": 1})
		if r["TotalCount"].(float64) != 600 {
			t.Errorf("task %s: %v records, want 600", id, r["TotalCount"])
		}
	}

	// Replay: every frame from 1 to the highest stored has its record
	// (count by frame: records, like event ids, are one per frame).
	// Subscribers see each event once: JetStream drops a republished event
	// id. Duplicate processing happens on the survivor, for the frames the
	// victim processed after its last checkpoint write; it is bounded by
	// what the victim does in one checkpoint interval (plus a second of
	// slack for a loaded machine) and its in-flight window.
	bound := int64(fps*(checkpointEvery+time.Second).Seconds()) + 2*inFlight
	for _, id := range replayTasks {
		stored := map[int64]bool{}
		for off := 0; ; off += 100 {
			r := call(t, ep, "DescribeRecords", map[string]any{"TaskIds": []string{id}, "Limit": 100, "Offset": off})
			set := r["RecordSet"].([]any)
			for _, x := range set {
				data, _ := x.(map[string]any)["Data"].(map[string]any)
				f, _ := data["frame"].(float64)
				stored[int64(f)] = true
			}
			if len(set) < 100 {
				break
			}
		}
		var hi int64
		for f := range stored {
			hi = max(hi, f)
		}
		var missing []int64
		for f := int64(1); f <= hi; f++ {
			if !stored[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 || stored[0] {
			t.Errorf("replay task %s: frames 1..%d stored but %d missing: %v (frame 0 stored: %v)", id, hi, len(missing), head(missing, 20), stored[0])
		}
		mu.Lock()
		dupEvents := 0
		for _, c := range frameEvents[id] {
			dupEvents += c - 1
		}
		mu.Unlock()
		if dupEvents > 0 {
			t.Errorf("replay task %s: a subscriber saw %d duplicate events", id, dupEvents)
		}
		p, wasMoved := resumeAt[id]
		if !wasMoved {
			t.Logf("replay task %s (not moved): frames 1..%d stored", id, hi)
			continue
		}
		// The survivor started after the checkpoint, not at frame 1: it
		// received about hi-p frames (its stats are saved every interval,
		// and a few frames were still in flight at the stop).
		st := call(t, ep, "DescribeTaskStats", map[string]any{"TaskId": id})
		received := int64(st["Received"].(float64))
		redone := atKill[id] - p
		t.Logf("replay task %s (moved): frames 1..%d stored; the victim got to frame %d, its checkpoint was %d: %d frames processed twice (bound %d); the survivor received %d",
			id, hi, atKill[id], p, redone, bound, received)
		switch {
		case p < 1 || hi <= atKill[id]:
			t.Errorf("replay task %s: checkpoint %d, highest frame %d, %d at the kill: no progress saved or made", id, p, hi, atKill[id])
		case redone < 0 || redone > bound:
			t.Errorf("replay task %s: %d frames processed twice; want 0..%d (fps × (checkpoint interval + 1 s) + 2 × in-flight)", id, redone, bound)
		case received > hi-p+2*inFlight+2:
			t.Errorf("replay task %s: the survivor received %d frames for frames %d..%d: it did not resume after the checkpoint", id, received, p+1, hi)
		}
	}
}

func head(s []int64, n int) []int64 {
	if len(s) > n {
		return s[:n]
	}
	return s
}
