package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/edge"
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

// An edge node joins a cloud with its one-time token and shows online; a
// task on the edge stores records that reach the cloud; with the cloud's
// leaf listener down the task keeps running and the edge buffers on disk;
// once the listener is back every record arrives exactly once, in order,
// and the task was never restarted. Deleting the node cuts its link.
// Two platforms, each on its own SQLite store and embedded bus.
func TestEdgeStoreAndForward(t *testing.T) {
	ctx := context.Background()
	cloud := apptest.Start(t, apptest.Options{Args: []string{"--edge.leaf-addr", "127.0.0.1:0", "--edge.heartbeat", "200ms"}})
	cc := newSDK(t, cloud.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	r := cc.mustCall("CreateEdgeNode", map[string]any{"Name": "site-1", "Description": "gate cameras"})
	nodeID, token := r["EdgeNodeId"].(string), r["JoinToken"].(string)
	if _, code := cc.call("CreateEdgeNode", map[string]any{"Name": "site-1"}); code != "ResourceInUse" {
		t.Errorf("second node named site-1: %q", code)
	}
	if _, code := cc.call("CreateEdgeNode", map[string]any{"Name": "x", "ProjectId": "prj-none"}); code != "ResourceNotFound" && code != "AuthFailure.UnauthorizedOperation" {
		t.Errorf("node in a project that does not exist: %q", code)
	}

	e := apptest.Start(t, apptest.Options{Args: []string{"--target", "edge", "--cloud", cloud.Endpoint, "--join-token", token, "--edge.heartbeat", "200ms"}})
	testenv.Eventually(t, 30*time.Second, "edge node online", func() bool {
		n, err := cloud.P.EdgeNodes.Get(ctx, nodeID)
		return err == nil && !n.LastSeen.IsZero() && n.Versions["tianshu"] != ""
	})
	info := cc.mustCall("DescribeEdgeNodes", map[string]any{"EdgeNodeIds": []string{nodeID}})["EdgeNodeSet"].([]any)[0].(map[string]any)
	if info["Status"] != "online" || info["JoinedTime"] == "" || info["LastSeenTime"] == "" {
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

	ec := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	flowID := ec.mustCall("CreateFlow", map[string]any{"Document": edgeFlow})["FlowId"].(string)
	taskID := ec.mustCall("CreateTask", map[string]any{"Name": "count", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "topic", "Id": "in.edge"}}})["TaskId"].(string)
	task := func() map[string]any {
		return ec.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
	}
	testenv.Eventually(t, 30*time.Second, "edge task Running", func() bool { return task()["Status"] == "Running" })
	nodeBefore := task()["NodeId"]
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := e.P.Bus.Publish(ctx, "in.edge", "cam-1", []byte(fmt.Sprintf(`{"n": %d}`, i)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 20)
	testenv.Eventually(t, 30*time.Second, "20 records in the cloud", func() bool { return len(taskRecordIDs(t, cloud, taskID)) == 20 })

	// The outage: the cloud's leaf listener goes away.
	hub := cloud.P.EdgeHub
	addr := hub.Addr()
	if err := hub.Close(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "edge sees the link down", func() bool { return !e.P.EdgeLink.Up() })
	produce(20, 50)
	testenv.Eventually(t, 30*time.Second, "30 records buffered on the edge", func() bool {
		n, err := e.P.EdgeLink.Buffered(ctx)
		return err == nil && n == 30
	})
	if n := len(taskRecordIDs(t, cloud, taskID)); n != 20 {
		t.Fatalf("cloud has %d records during the outage", n)
	}

	// The listener comes back on the same address.
	h2, err := edge.StartHub(ctx, edge.HubOptions{Addr: addr, Dir: edge.HubDir(cloud.DataDir), Nodes: cloud.P.EdgeNodes, Records: cloud.P.Data})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Close() })
	testenv.Eventually(t, 60*time.Second, "50 records in the cloud", func() bool { return len(taskRecordIDs(t, cloud, taskID)) >= 50 })
	testenv.Eventually(t, 30*time.Second, "edge buffer empty", func() bool {
		n, err := e.P.EdgeLink.Buffered(ctx)
		return err == nil && n == 0
	})
	local, got := taskRecordIDs(t, e, taskID), taskRecordIDs(t, cloud, taskID)
	if len(local) != 50 || !slices.Equal(local, got) {
		t.Fatalf("cloud records differ from the edge's (ids, order):\n edge  %v\n cloud %v", local, got)
	}
	var project string
	if err := cloud.P.DB.QueryRow(ctx, "SELECT project_id FROM records WHERE id = ?", got[0]).Scan(&project); err != nil || project != "default" {
		t.Errorf("forwarded record's project %q, %v", project, err)
	}
	// The task ran through: one start, same node.
	if tk := task(); tk["Status"] != "Running" || tk["NodeId"] != nodeBefore {
		t.Errorf("task after the outage: %v", tk)
	}
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
	testenv.Eventually(t, 30*time.Second, "50 forwarded records counted", func() bool {
		n, err := cloud.P.EdgeNodes.Get(ctx, nodeID)
		return err == nil && n.Forwarded == 50
	})

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
	if seen < 8 {
		t.Errorf("only %d edge metric families exported", seen)
	}

	// Revocation cuts the link; the edge keeps buffering.
	cc.mustCall("DeleteEdgeNode", map[string]any{"EdgeNodeId": nodeID})
	testenv.Eventually(t, 30*time.Second, "link cut", func() bool { return !e.P.EdgeLink.Up() })
	produce(50, 55)
	testenv.Eventually(t, 30*time.Second, "5 records buffered after revocation", func() bool {
		n, err := e.P.EdgeLink.Buffered(ctx)
		return err == nil && n == 5
	})
	if _, code := cc.call("DescribeEdgeNodes", map[string]any{"EdgeNodeIds": []string{nodeID}}); code != "" {
		t.Errorf("DescribeEdgeNodes after delete: %q", code)
	}
}
