package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/edge"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/push"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

const edgeFlow = `{"name": "edge-echo", "nodes": [
  {"id": "shape", "kind": "function", "inputs": {"n": "$input.n"},
   "config": {"script": "def main(input, params):\n    return {\"n\": input[\"n\"]}"}},
  {"id": "save", "kind": "store", "config": {"type": "edge.count"}, "inputs": {"n": "$shape.n"}}],
  "edges": [{"from": "shape", "to": "save"}]}`

// taskRecordIDs lists a task's records in the order the store inserted
// them (SQLite's rowid).
func taskRecordIDs(t *testing.T, e *apptest.Env, taskID string) []string {
	t.Helper()
	rows, err := e.P.DB.Query(context.Background(), "SELECT id FROM records WHERE task_id = ? ORDER BY rowid", taskID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// linkProxy stands for the network between an edge and its cloud: edges
// dial it (the cloud advertises it), it passes bytes to the hub, and cut
// drops every connection and refuses new ones until restore, as a
// firewall blocking the leaf port would.
type linkProxy struct {
	ln net.Listener

	mu     sync.Mutex
	target string
	down   bool
	conns  []net.Conn
}

func newLinkProxy(t *testing.T) *linkProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *linkProxy) addr() string { return p.ln.Addr().String() }

func (p *linkProxy) serve(c net.Conn) {
	p.mu.Lock()
	target, down := p.target, p.down
	p.mu.Unlock()
	if down || target == "" {
		c.Close()
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns = append(p.conns, c, up)
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

func (p *linkProxy) to(target string) { p.mu.Lock(); p.target = target; p.mu.Unlock() }

func (p *linkProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *linkProxy) restore() { p.mu.Lock(); p.down = false; p.mu.Unlock() }

// outageFlow stores a record per frame of the camera, with a crop of the
// frame (an object in the blob store), and publishes an event naming it,
// for the cloud's subscriptions.
const outageFlow = `{"name": "edge-frames", "nodes": [
  {"id": "crop", "kind": "algorithm", "config": {"algorithm": "alg-image-ops"},
   "inputs": {"image": "$input.image", "op": "crop", "box": [4, 4, 16, 12], "quality": 85}},
  {"id": "save", "kind": "store", "config": {"type": "edge.frame"}, "inputs": {"frame": "$input.frame", "w": "$input.width", "crop": "$crop.image"}},
  {"id": "tell", "kind": "publish", "config": {"type": "tianshu.edge.frame"}, "inputs": {"record": "$save.recordId", "frame": "$input.frame"}}],
  "edges": [{"from": "crop", "to": "save"}, {"from": "save", "to": "tell"}]}`

// recordCrops fetches, through DescribeRecords' signed URLs, the objects of
// each record of a task, by record id.
func recordCrops(t *testing.T, c *sdk, taskID string) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for off := 0; ; off += 100 {
		r := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Offset": off, "Limit": 100})
		set := r["RecordSet"].([]any)
		for _, x := range set {
			rec := x.(map[string]any)
			var objs [][]byte
			for _, u := range rec["ObjectUrls"].([]any) {
				objs = append(objs, fetch(t, u.(string)))
			}
			out[rec["RecordId"].(string)] = objs
		}
		if len(set) < 100 {
			return out
		}
	}
}

// hookReceiver is an app's webhook endpoint: it checks each delivery's
// signature and keeps the events in the order they came.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	events []event.Event
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := push.VerifyWebhook(h.secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		ev, err := event.Decode(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.events = append(h.events, ev)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) received() []event.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// edgeEventIDs reads the events of a task from the events topic of the
// edge's default project, from its start: the order the task published in.
func edgeEventIDs(t *testing.T, e *apptest.Env, taskID string, want int) []string {
	t.Helper()
	var mu sync.Mutex
	var got []string
	sub, err := e.P.Bus.Subscribe(context.Background(), event.Topic("default"), "test-reader", bus.SubscribeOptions{},
		func(_ context.Context, m bus.Message) error {
			// The device center's status events share the topic.
			if id := m.Header[event.HeaderID]; strings.HasPrefix(id, taskID+":") {
				mu.Lock()
				got = append(got, id)
				mu.Unlock()
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	testenv.EventuallyExplained(t, 90*time.Second, "the edge's events read back", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= want },
		func() string { mu.Lock(); defer mu.Unlock(); return fmt.Sprintf("%d of %d", len(got), want) })
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(got)
}

// An edge node joins a cloud with its one-time token and shows online. A
// camera (a replay device) and a task over it are created on the cloud for
// the node; the edge runs the task, and its records and events reach the
// cloud's store and a cloud app's webhook. The network between them is cut
// for 60 s: the task keeps running, the edge buffers on disk, the cloud
// shows the node offline. Once the network is back every record arrives
// exactly once in the cloud's store, in the edge's order, and every event
// exactly once at the webhook, in the order the edge published it; the
// task was never restarted. Deleting the node cuts its link. Two
// platforms, each on its own SQLite store and embedded bus.
func TestEdgeStoreAndForward(t *testing.T) {
	ctx := context.Background()
	media := t.TempDir()
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(media, fmt.Sprintf("f%d.jpg", i)), jpegImage(t, 32+8*i, 24, 60), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	px := newLinkProxy(t)
	cloud := apptest.Start(t, apptest.Options{Args: []string{"--edge.leaf-addr", "127.0.0.1:0", "--edge.leaf-advertise", px.addr(),
		"--edge.heartbeat", "200ms", "--media.root", media}})
	px.to(cloud.P.EdgeHub.Addr())
	cc := newSDK(t, cloud.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	r := cc.mustCall("CreateEdgeNode", map[string]any{"Name": "site-1", "Description": "gate cameras"})
	nodeID, token := r["EdgeNodeId"].(string), r["JoinToken"].(string)
	if _, code := cc.call("CreateEdgeNode", map[string]any{"Name": "site-1"}); code != "ResourceInUse" {
		t.Errorf("second node named site-1: %q", code)
	}
	if _, code := cc.call("CreateEdgeNode", map[string]any{"Name": "x", "ProjectId": "prj-none"}); code != "ResourceNotFound" && code != "AuthFailure.UnauthorizedOperation" {
		t.Errorf("node in a project that does not exist: %q", code)
	}

	// The cloud: an app's webhook for the task's events, the camera at
	// the site, the flow and the task, all before the edge exists.
	hook := newHookReceiver(t)
	devID := cc.mustCall("CreateDevice", map[string]any{"Name": "gate-cam", "Driver": "replay", "Address": media, "Fps": 10, "EdgeNode": nodeID})["DeviceId"].(string)
	flowID := cc.mustCall("CreateFlow", map[string]any{"Document": outageFlow})["FlowId"].(string)
	taskID := cc.mustCall("CreateTask", map[string]any{"Name": "frames", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)
	wh := cc.mustCall("CreateSubscription", map[string]any{"Name": "site-hook", "Channel": map[string]any{"Type": "webhook", "Webhook": map[string]any{"Url": hook.srv.URL}},
		"Filter": map[string]any{"TaskIds": []string{taskID}}})
	hook.mu.Lock()
	hook.secret = wh["Secret"].(string)
	hook.mu.Unlock()

	e := apptest.Start(t, apptest.Options{Args: []string{"--target", "edge", "--cloud", cloud.Endpoint, "--join-token", token,
		"--edge.heartbeat", "200ms", "--media.root", media}})
	testenv.Eventually(t, 30*time.Second, "edge node online", func() bool {
		n, err := cloud.P.EdgeNodes.Get(ctx, nodeID)
		return err == nil && !n.LastSeen.IsZero() && n.Versions["tianshu"] != ""
	})
	node := func() map[string]any {
		return cc.mustCall("DescribeEdgeNodes", map[string]any{"EdgeNodeIds": []string{nodeID}})["EdgeNodeSet"].([]any)[0].(map[string]any)
	}
	if info := node(); info["Status"] != "online" || info["JoinedTime"] == "" || info["LastSeenTime"] == "" {
		t.Errorf("DescribeEdgeNodes: %v", info)
	}
	// The token worked once.
	resp, err := http.Post(cloud.Endpoint+edge.JoinPath, "application/json", bytes.NewReader([]byte(`{"Token": "`+token+`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("second join with the same token: %s", resp.Status)
	}

	cloudRecords := func() int { return len(taskRecordIDs(t, cloud, taskID)) }
	testenv.Eventually(t, 60*time.Second, "the edge camera's records and events in the cloud", func() bool {
		return cloudRecords() >= 10 && len(hook.received()) >= 10
	})
	// The camera's status on the cloud is the edge's.
	camera := func() map[string]any {
		return cc.mustCall("DescribeDevices", map[string]any{"DeviceIds": []string{devID}})["DeviceSet"].([]any)[0].(map[string]any)
	}
	testenv.EventuallyExplained(t, 30*time.Second, "the edge camera online on the cloud", func() bool {
		c := camera()
		return c["Status"] == "online" && c["LastFrameTime"] != "" && c["StatusTime"] != ""
	}, func() string { return fmt.Sprint(camera()) })
	edgeTask := func() map[string]any {
		tk, err := e.P.Tasks.Get(ctx, taskID)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"Status": tk.Status, "NodeId": tk.NodeID}
	}
	before := edgeTask()
	if before["Status"] != "Running" || before["NodeId"] == "" {
		t.Fatalf("the edge's task: %v", before)
	}

	// The outage: the network between the edge and the cloud is cut for
	// 60 s (a real minute: the edge's buffer, the cloud's online window
	// and the leaf's redials all run on the clock).
	px.cut()
	testenv.Eventually(t, 30*time.Second, "edge sees the link down", func() bool { return !e.P.EdgeLink.Up() })
	cutAt, inCloud, atEdge := time.Now(), cloudRecords(), len(taskRecordIDs(t, e, taskID))
	testenv.EventuallyExplained(t, 30*time.Second, "the cloud shows the node offline", func() bool { return node()["Status"] == "offline" },
		func() string { return fmt.Sprintf("%v; now %s", node(), time.Now().UTC().Format(time.RFC3339Nano)) })
	// The cloud does not know the camera's status any more, and says why;
	// it keeps the last frame time the edge reported.
	testenv.EventuallyExplained(t, 30*time.Second, "the edge camera unknown on the cloud", func() bool {
		c := camera()
		return c["Status"] == "unknown" && c["Reason"] == "edge_not_reporting" && c["LastFrameTime"] != "" && c["MeasuredFps"] == 0.0
	}, func() string { return fmt.Sprint(camera()) })
	testenv.Eventually(t, 90*time.Second, "60 s of outage", func() bool { return time.Since(cutAt) >= 60*time.Second })
	buffered, err := e.P.EdgeLink.Buffered(ctx)
	if err != nil || buffered < 10 {
		t.Fatalf("the edge buffered %d records and events in 60 s of outage (%v); edge records %d at the cut, %d now; cloud %d, %d; task %v; node %v",
			buffered, err, atEdge, len(taskRecordIDs(t, e, taskID)), inCloud, cloudRecords(), edgeTask(), node())
	}
	if n := cloudRecords(); n != inCloud {
		t.Fatalf("cloud records went from %d to %d during the outage", inCloud, n)
	}
	if tk := edgeTask(); tk["Status"] != "Running" || tk["NodeId"] != before["NodeId"] {
		t.Fatalf("the edge's task during the outage: %v; before: %v", tk, before)
	}
	t.Logf("outage: %d records in the cloud at the cut, %d records and events buffered after %s", inCloud, buffered, time.Since(cutAt).Round(time.Second))

	// The network is back. The task is stopped from the cloud (through the
	// link) so that the set of records is final.
	px.restore()
	testenv.EventuallyExplained(t, 30*time.Second, "the edge camera online on the cloud again", func() bool {
		c := camera()
		return c["Status"] == "online" && c["Reason"] == ""
	}, func() string { return fmt.Sprint(camera()) })
	cc.mustCall("StopTask", map[string]any{"TaskId": taskID})
	testenv.Eventually(t, 60*time.Second, "the edge's task stopped and its buffer empty", func() bool {
		n, err := e.P.EdgeLink.Buffered(ctx)
		return err == nil && n == 0 && edgeTask()["Status"] == "Stopped"
	})
	local := taskRecordIDs(t, e, taskID)
	testenv.EventuallyExplained(t, 30*time.Second, "the edge's records in the cloud", func() bool { return cloudRecords() == len(local) },
		func() string { return fmt.Sprintf("edge %d, cloud %d", len(local), cloudRecords()) })
	if got := taskRecordIDs(t, cloud, taskID); !slices.Equal(local, got) {
		t.Fatalf("cloud records differ from the edge's (ids, order):\n edge  %v\n cloud %v", local, got)
	}
	if len(local) <= inCloud {
		t.Fatalf("no records made during the outage: %d before the cut, %d in all", inCloud, len(local))
	}
	var project string
	if err := cloud.P.DB.QueryRow(ctx, "SELECT project_id FROM records WHERE id = ?", local[0]).Scan(&project); err != nil || project != "default" {
		t.Errorf("forwarded record's project %q, %v", project, err)
	}
	// Each record's crop crossed with it, through the outage: the cloud's
	// URL serves the edge's bytes.
	ec := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	edgeCrops, cloudCrops := recordCrops(t, ec, taskID), recordCrops(t, cc, taskID)
	if len(cloudCrops) != len(local) || len(edgeCrops) != len(local) {
		t.Fatalf("records with objects read: edge %d, cloud %d, of %d", len(edgeCrops), len(cloudCrops), len(local))
	}
	// (A frame whose crop call failed on the loaded machine stores its
	// record without one, on both ends.)
	withCrop, afterCut := 0, 0
	for i, id := range local {
		ep, cp := edgeCrops[id], cloudCrops[id]
		if len(ep) != len(cp) || len(ep) > 1 {
			t.Fatalf("record %s: the cloud has %d objects, the edge %d", id, len(cp), len(ep))
		}
		if len(ep) == 1 {
			if len(ep[0]) == 0 || !bytes.Equal(ep[0], cp[0]) {
				t.Fatalf("record %s: the cloud's crop (%d bytes) differs from the edge's (%d)", id, len(cp[0]), len(ep[0]))
			}
			withCrop++
			if i >= inCloud {
				afterCut++
			}
		}
	}
	t.Logf("crops: %d of %d records, %d made during or after the outage", withCrop, len(local), afterCut)
	if withCrop < len(local)*9/10 || afterCut == 0 {
		t.Fatalf("%d of %d records have a crop, %d of them made during or after the outage", withCrop, len(local), afterCut)
	}

	// The webhook got every event once, in the order the edge published
	// them (one camera: one key), each naming one of the records.
	published := edgeEventIDs(t, e, taskID, len(local))
	testenv.EventuallyExplained(t, 60*time.Second, "every event at the webhook", func() bool { return len(hook.received()) >= len(published) },
		func() string { return fmt.Sprintf("%d of %d", len(hook.received()), len(published)) })
	got := hook.received()
	ids, named := make([]string, len(got)), map[string]int{}
	for i, ev := range got {
		ids[i] = ev.ID
		rec, _ := ev.Data["record"].(string)
		named[rec]++
		if ev.ProjectID != "default" || ev.TaskID != taskID || ev.Subject != devID {
			t.Errorf("event %s: project %q task %q subject %q", ev.ID, ev.ProjectID, ev.TaskID, ev.Subject)
		}
	}
	if !slices.Equal(ids, published) {
		t.Fatalf("webhook events differ from the edge's (ids, order): %d delivered, %d published\n edge    %v\n webhook %v", len(ids), len(published), published, ids)
	}
	for _, id := range local {
		if named[id] != 1 {
			t.Errorf("record %s named by %d events", id, named[id])
		}
	}

	// The task ran through: one start.
	running := 0
	for _, ev := range ec.mustCall("DescribeTaskEvents", map[string]any{"TaskId": taskID})["EventSet"].([]any) {
		if ev.(map[string]any)["Type"] == "running" {
			running++
		}
	}
	if running != 1 {
		t.Errorf("task started %d times", running)
	}
	// The count of forwarded records is written with the next heartbeat.
	// (A batch sent again after its answer was lost, as the cut may do, is
	// counted again: the figure is for people, the store is what counts.)
	var forwarded int64
	testenv.EventuallyExplained(t, 30*time.Second, "forwarded records counted", func() bool {
		n, err := cloud.P.EdgeNodes.Get(ctx, nodeID)
		if err == nil {
			forwarded = n.Forwarded
		}
		return forwarded >= int64(len(local)) && forwarded <= int64(len(local))+500
	}, func() string { return fmt.Sprintf("%d counted, %d records", forwarded, len(local)) })

	// Both ends' edge metrics are documented (TestMetricsDocumented runs
	// neither a hub nor a link).
	names, _ := documentedMetrics(t)
	seen := 0
	for _, env := range []*apptest.Env{cloud, e} {
		for name := range scrapeFamilies(t, env.Endpoint) {
			if strings.HasPrefix(name, "tianshu_edge_") {
				seen++
				if !names[name] {
					t.Errorf("docs/metrics.md does not list %s", name)
				}
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d edge metric families exported", seen)
	}

	// Revocation cuts the link; the edge keeps buffering.
	cc.mustCall("DeleteEdgeNode", map[string]any{"EdgeNodeId": nodeID})
	testenv.Eventually(t, 30*time.Second, "link cut", func() bool { return !e.P.EdgeLink.Up() })
	if _, err := e.P.Bus.Publish(ctx, event.Topic("default"), "x", []byte(`{"specversion": "1.0", "id": "after-1", "source": "/t", "type": "t"}`),
		map[string]string{event.HeaderID: "after-1"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "an event buffered after revocation", func() bool {
		n, err := e.P.EdgeLink.Buffered(ctx)
		return err == nil && n == 1
	})
	if _, code := cc.call("DescribeEdgeNodes", map[string]any{"EdgeNodeIds": []string{nodeID}}); code != "" {
		t.Errorf("DescribeEdgeNodes after delete: %q", code)
	}
}
