package app_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/task"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// The live view streams the demo task's frames with the faces its flow
// found, to people who may read the task and to nobody else: a viewer of
// another project or one narrowed to another device gets ResourceNotFound,
// no session is refused, a forged ticket or a foreign origin cannot open a
// stream, and the operator's per-project limit holds.
func TestLiveView(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo; skipped with -short")
	}
	e := apptest.Start(t, apptest.Options{Args: []string{"--api.live.max-viewers-per-project", "1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := e.P.SetupDemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := login(t, e.Endpoint, "admin", apptest.AdminPassword)
	person := func(name, project, role string) *browser {
		u := admin.mustCall("CreateUser", map[string]any{"UserName": name, "Password": "live-password-0123", "Role": "viewer"})
		admin.mustCall("CreateProjectMember", map[string]any{"ProjectId": project, "PrincipalId": u["UserId"], "Role": role})
		return login(t, e.Endpoint, name, "live-password-0123")
	}
	other := admin.mustCall("CreateProject", map[string]any{"Name": "elsewhere"})["ProjectId"].(string)
	outsider := person("outsider", other, "viewer")
	admin.mustCall("CreateRole", map[string]any{"ProjectId": "demo", "Name": "gate-only", "Actions": []string{"Describe*"}, "DeviceIds": []string{"dev-gate"}})
	narrowed := person("narrowed", "demo", "gate-only")
	viewer := person("watcher", "demo", "viewer")

	req := map[string]any{"TaskId": d.TaskId, "SourceIndex": 0}
	wantCall(t, outsider, "DescribeLiveStream", req, "ResourceNotFound")
	wantCall(t, narrowed, "DescribeLiveStream", req, "ResourceNotFound")
	wantCall(t, viewer, "DescribeLiveStream", map[string]any{"TaskId": d.TaskId, "SourceIndex": 3}, "InvalidParameterValue")
	anonymous := &browser{t: t, endpoint: e.Endpoint}
	if _, code := anonymous.call("DescribeLiveStream", req); !strings.HasPrefix(code, "AuthFailure.") {
		t.Fatalf("DescribeLiveStream without a session: %q, want an authentication failure", code)
	}

	// The task starts on the worker shortly after the demo is set up.
	var url string
	for deadline := time.Now().Add(time.Minute); ; {
		r, code := viewer.call("DescribeLiveStream", req)
		if code == "" {
			url = r["Url"].(string)
			break
		}
		if code != "FailedOperation" || time.Now().After(deadline) {
			t.Fatalf("DescribeLiveStream: %s %v", code, r["Error"])
		}
		time.Sleep(100 * time.Millisecond) // polling the task's start
	}
	// The console's page is /live; the streams are beside it.
	if r, err := http.Get(e.Endpoint + "/live?project=demo"); err != nil || r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /live: %v %v, want the console", err, r)
	} else {
		r.Body.Close()
	}
	ws := "ws" + strings.TrimPrefix(e.Endpoint, "http")
	if _, resp, err := websocket.DefaultDialer.Dial(ws+task.LivePath+"?ticket=tsl1.forged.x", nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged ticket: %v %v, want 401", err, resp)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(ws+url, http.Header{"Origin": {"http://evil.example"}}); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v, want 403", err, resp)
	}
	conn, _, err := websocket.DefaultDialer.Dial(ws+url, http.Header{"Origin": {e.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// One stream per project on this server (the flag above).
	if _, resp, err := websocket.DefaultDialer.Dial(ws+url, nil); err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second stream: %v %v, want 429", err, resp)
	}

	readFace(t, conn, d.TaskId, d.DeviceId)
}

// readFace reads frames until one has an object, checks it is a tracked
// face, and acknowledges each frame as the console does.
func readFace(t *testing.T, conn *websocket.Conn, taskID, deviceID string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	for frames := 0; ; frames++ {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("after %d frames: %v", frames, err)
		}
		if kind != websocket.BinaryMessage || len(msg) < 4 {
			t.Fatalf("message kind %d, %d bytes", kind, len(msg))
		}
		n := binary.BigEndian.Uint32(msg)
		var h task.LiveFrameHeader
		if err := json.Unmarshal(msg[4:4+n], &h); err != nil {
			t.Fatal(err)
		}
		jpeg := msg[4+n:]
		// The next frame comes once this one is acknowledged.
		if err := conn.WriteMessage(websocket.TextMessage, []byte("ack")); err != nil {
			t.Fatal(err)
		}
		if h.TaskId != taskID || h.Key != deviceID || h.Width == 0 || h.CapturedMs == 0 || h.SentMs < h.CapturedMs || len(jpeg) < 3 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
			t.Fatalf("frame %+v with %d bytes of picture starting % x", h, len(jpeg), jpeg[:min(3, len(jpeg))])
		}
		if len(h.Objects) > 0 {
			o := h.Objects[0]
			if o.Label != "face" || o.TrackId == 0 || o.Box[2] <= 0 || o.Box[3] <= 0 {
				t.Fatalf("object %+v: want a face with a track id and a box", o)
			}
			t.Logf("frame %d of %s: %d faces after %d frames, %.0f ms from capture to send", h.Seq, h.Key, len(h.Objects), frames, h.SentMs-h.CapturedMs)
			break
		}
	}
}

// Scaled out, the replica serving the console need not run the task: a
// control-plane replica relays the frames of a task that a worker-only
// replica runs, over ephemeral NATS subjects, on a shared PostgreSQL.
func TestLiveViewAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo on two replicas; skipped with -short")
	}
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	dbURL := storetest.URL(t, "postgres")
	key := map[string]string{"TIANSHU_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	control := apptest.Start(t, apptest.Options{Args: []string{"--db", dbURL, "--bus", testenv.NATSURL(), "--target", "control"}, Env: key})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := control.P.SetupDemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	worker := apptest.Start(t, apptest.Options{Args: []string{"--db", dbURL, "--bus", testenv.NATSURL(), "--target", "worker",
		"--media.root", filepath.Join(control.DataDir, "demo")}, Env: key})
	admin := login(t, control.Endpoint, "admin", apptest.AdminPassword)
	var url string
	for deadline := time.Now().Add(time.Minute); ; {
		r, code := admin.call("DescribeLiveStream", map[string]any{"TaskId": d.TaskId})
		if code == "" {
			if r["NodeId"] != worker.P.Worker.ID() {
				t.Fatalf("task runs on %v, want the worker replica %s", r["NodeId"], worker.P.Worker.ID())
			}
			url = r["Url"].(string)
			break
		}
		if code != "FailedOperation" || time.Now().After(deadline) {
			t.Fatalf("DescribeLiveStream: %s %v", code, r["Error"])
		}
		time.Sleep(100 * time.Millisecond) // polling the task's start on the worker
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(control.Endpoint, "http")+url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	readFace(t, conn, d.TaskId, d.DeviceId)
}
