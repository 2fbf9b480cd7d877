package app_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/edge"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// edgeFlowV makes a version of the deploy test's flow whose records are
// of type edge.v<n>.
func edgeFlowV(n int) string {
	return strings.Replace(edgeFlow, `"type": "edge.count"`, fmt.Sprintf(`"type": "edge.v%d"`, n), 1)
}

// A device and a task created on the cloud for an edge node: the cloud
// pushes the task and its flow version to the edge, which runs it (never a
// cloud worker) and reports its state back; a version change made on the
// cloud while the link is down is applied once it is back, a rollback is
// followed, a version that does not validate on the edge is reported and
// the edge keeps the previous one; none of it restarts the task. Two
// platforms, each on its own SQLite store and embedded bus.
func TestEdgeDeploy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cloud := apptest.Start(t, apptest.Options{Args: []string{"--edge.leaf-addr", "127.0.0.1:0", "--edge.heartbeat", "200ms", "--media.root", dir}})
	cc := newSDK(t, cloud.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	r := cc.mustCall("CreateEdgeNode", map[string]any{"Name": "site-2"})
	nodeID, token := r["EdgeNodeId"].(string), r["JoinToken"].(string)

	// Devices name an edge node of their project; tasks follow them.
	if _, code := cc.call("CreateDevice", map[string]any{"Name": "cam", "Driver": "replay", "Address": dir, "EdgeNode": "edge-none"}); code != "ResourceNotFound" {
		t.Errorf("device on an unknown edge node: %q", code)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.jpg"), jpegImage(t, 32, 24, 60), 0o644); err != nil {
		t.Fatal(err)
	}
	devID := cc.mustCall("CreateDevice", map[string]any{"Name": "cam", "Driver": "replay", "Address": dir, "Fps": 5, "EdgeNode": nodeID})["DeviceId"].(string)
	if _, code := cc.call("ModifyDevice", map[string]any{"DeviceId": devID, "EdgeNode": "edge-none"}); code != "ResourceNotFound" {
		t.Errorf("device moved to an unknown edge node: %q", code)
	}
	flowID := cc.mustCall("CreateFlow", map[string]any{"Document": edgeFlowV(1)})["FlowId"].(string)
	camFlow := cc.mustCall("CreateFlow", map[string]any{"Document": `{"name": "cam", "nodes": [
	  {"id": "save", "kind": "store", "config": {"type": "edge.cam"}, "inputs": {"w": "$input.width"}}]}`})["FlowId"].(string)
	if _, code := cc.call("CreateTask", map[string]any{"Name": "x", "FlowId": flowID, "EdgeNodeId": "edge-none",
		"Sources": []any{map[string]any{"Type": "topic", "Id": "in.x"}}}); code != "ResourceNotFound" {
		t.Errorf("task on an unknown edge node: %q", code)
	}
	devTask := cc.mustCall("CreateTask", map[string]any{"Name": "cam", "FlowId": camFlow, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)
	cloudTask := func(id string) map[string]any {
		return cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{id}})["TaskSet"].([]any)[0].(map[string]any)
	}
	if got := cloudTask(devTask)["EdgeNodeId"]; got != nodeID {
		t.Errorf("task on the edge node's device placed on %q", got)
	}

	taskID := cc.mustCall("CreateTask", map[string]any{"Name": "count", "FlowId": flowID, "Start": true, "EdgeNodeId": nodeID,
		"Sources": []any{map[string]any{"Type": "topic", "Id": "in.edge"}}})["TaskId"].(string)

	e := apptest.Start(t, apptest.Options{Args: []string{"--target", "edge", "--cloud", cloud.Endpoint, "--join-token", token, "--edge.heartbeat", "200ms", "--media.root", dir}})
	// The camera and its task reach the edge; its records reach the cloud.
	testenv.Eventually(t, 30*time.Second, "records of the edge camera's task in the cloud", func() bool {
		var n int
		err := cloud.P.DB.QueryRow(ctx, "SELECT COUNT(*) FROM records WHERE task_id = ? AND type = 'edge.cam'", devTask).Scan(&n)
		return err == nil && n > 0
	})
	if d, err := e.P.Devices.Get(ctx, devID); err != nil || d.Config.Driver != "replay" || d.Config.FPS != 5 {
		t.Errorf("the edge's copy of the camera: %+v, %v", d, err)
	}
	testenv.Eventually(t, 30*time.Second, "edge task Running, reported to the cloud", func() bool {
		tk := cloudTask(taskID)
		return tk["Status"] == "Running" && tk["EdgeFlowVersion"] == float64(1)
	})
	local, err := e.P.Tasks.Get(ctx, taskID)
	if err != nil || local.NodeID == "" {
		t.Fatalf("the edge's copy of the task: %+v, %v", local, err)
	}
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := e.P.Bus.Publish(ctx, "in.edge", "cam-1", []byte(fmt.Sprintf(`{"n": %d}`, i)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	countType := func(typ string) int {
		var n int
		if err := cloud.P.DB.QueryRow(ctx, "SELECT COUNT(*) FROM records WHERE task_id = ? AND type = ?", taskID, typ).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	produce(0, 10)
	testenv.Eventually(t, 30*time.Second, "10 edge.v1 records in the cloud", func() bool { return countType("edge.v1") == 10 })

	// Version 2 is made and chosen on the cloud while the link is down.
	if v := cc.mustCall("ModifyFlow", map[string]any{"FlowId": flowID, "Document": edgeFlowV(2)})["Version"]; v != float64(2) {
		t.Fatalf("ModifyFlow made version %v", v)
	}
	hub := cloud.P.EdgeHub
	addr := hub.Addr()
	if err := hub.Close(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "edge sees the link down", func() bool { return !e.P.EdgeLink.Up() })
	cc.mustCall("ModifyTaskFlowVersion", map[string]any{"TaskId": taskID, "FlowVersion": 2})
	produce(10, 15) // still version 1: the edge cannot know yet
	h2, err := edge.StartHub(ctx, edge.HubOptions{Addr: addr, Dir: edge.HubDir(cloud.DataDir), Box: cloud.P.Box, Nodes: cloud.P.EdgeNodes,
		Records: cloud.P.Data, Events: cloud.P.Bus, Placement: cloud.P.EdgePlacement()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Close() })
	testenv.Eventually(t, 30*time.Second, "the edge runs version 2", func() bool {
		tk, err := e.P.Tasks.Get(ctx, taskID)
		return err == nil && tk.FlowVersion == 2 && cloudTask(taskID)["EdgeFlowVersion"] == float64(2)
	})
	testenv.Eventually(t, 30*time.Second, "15 edge.v1 records in the cloud", func() bool { return countType("edge.v1") == 15 })
	// The edge's worker switches at its next pass.
	switched := func(n int) func() bool {
		return func() bool {
			evs, err := e.P.Tasks.Events(ctx, taskID, 100)
			c := 0
			for _, ev := range evs {
				if ev.Type == "version_switched" {
					c++
				}
			}
			return err == nil && c == n
		}
	}
	testenv.Eventually(t, 30*time.Second, "the edge's worker on version 2", switched(1))
	produce(15, 20)
	testenv.Eventually(t, 30*time.Second, "5 edge.v2 records in the cloud", func() bool { return countType("edge.v2") == 5 })

	// Rollback on the cloud: the edge follows.
	cc.mustCall("ModifyTaskFlowVersion", map[string]any{"TaskId": taskID, "FlowVersion": 1})
	testenv.Eventually(t, 30*time.Second, "the edge back on version 1", func() bool {
		tk, err := e.P.Tasks.Get(ctx, taskID)
		return err == nil && tk.FlowVersion == 1 && cloudTask(taskID)["EdgeFlowVersion"] == float64(1)
	})
	testenv.Eventually(t, 30*time.Second, "the edge's worker back on version 1", switched(2))

	// Version 3 runs a subflow that exists only on the cloud: it does not
	// validate on the edge, which reports why and keeps version 1.
	subID := cc.mustCall("CreateFlow", map[string]any{"Document": strings.Replace(edgeFlowV(9), `"edge-echo"`, `"cloud-only"`, 1)})["FlowId"].(string)
	v3 := `{"name": "edge-echo", "nodes": [{"id": "sub", "kind": "subflow", "inputs": {"n": "$input.n"}, "config": {"flow": "` + subID + `"}}]}`
	cc.mustCall("ModifyFlow", map[string]any{"FlowId": flowID, "Document": v3})
	cc.mustCall("ModifyTaskFlowVersion", map[string]any{"TaskId": taskID, "FlowVersion": 3})
	testenv.Eventually(t, 30*time.Second, "the edge reports version 3's error", func() bool {
		tk := cloudTask(taskID)
		return strings.Contains(tk["EdgeError"].(string), subID) && tk["EdgeFlowVersion"] == float64(1) && tk["Status"] == "Running"
	})
	produce(20, 25)
	testenv.Eventually(t, 30*time.Second, "20 edge.v1 records in the cloud", func() bool { return countType("edge.v1") == 20 })

	// Through all of it: one start, on the edge's worker; no cloud worker
	// ever held the task.
	tk := cloudTask(taskID)
	if tk["NodeId"] != "" || tk["EdgeNodeId"] != nodeID {
		t.Errorf("the cloud's view of the task: %v", tk)
	}
	ec := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	for _, side := range []struct {
		name string
		c    *sdk
		want int
	}{{"edge", ec, 1}, {"cloud", cc, 0}} {
		running := 0
		for _, ev := range side.c.mustCall("DescribeTaskEvents", map[string]any{"TaskId": taskID})["EventSet"].([]any) {
			if typ := ev.(map[string]any)["Type"]; typ == "running" || typ == "scheduled" && side.name == "cloud" {
				running++
			}
		}
		if running != side.want {
			t.Errorf("%s: the task started %d times", side.name, running)
		}
	}
	if after, _ := e.P.Tasks.Get(ctx, taskID); after.NodeID != local.NodeID {
		t.Errorf("the edge's task moved from node %s to %s", local.NodeID, after.NodeID)
	}

	// A node's report of another node's task changes nothing; an unknown
	// status is refused.
	pl := cloud.P.EdgePlacement()
	if err := pl.Report(ctx, "edge-other", edge.TaskReport{ID: taskID, Status: "Failed", Error: "forged"}); err != nil {
		t.Fatal(err)
	}
	if err := pl.Report(ctx, nodeID, edge.TaskReport{ID: taskID, Status: "Exploded"}); err == nil {
		t.Error("a report with status Exploded was accepted")
	}
	if tk := cloudTask(taskID); tk["Status"] != "Running" || strings.Contains(tk["EdgeError"].(string), "forged") {
		t.Errorf("another node's report changed the task: %v", tk)
	}

	// StopTask on the cloud stops the edge's copy; the cloud shows it.
	cc.mustCall("StopTask", map[string]any{"TaskId": taskID})
	testenv.Eventually(t, 30*time.Second, "the edge task Stopped", func() bool {
		tk, err := e.P.Tasks.Get(ctx, taskID)
		return err == nil && tk.Status == "Stopped" && cloudTask(taskID)["Status"] == "Stopped"
	})
}

// A flow version that calls an install package (the tianshu-v1 test
// server, as a vendor ships it) is placed on an edge node from the cloud:
// the cloud pushes the algorithm version with the flow, the edge fetches
// the package over the link into its own blob store, runs it under the
// cloud's ids and calls it from the task (the cloud runs no instance of
// it). Rolling the task back to a version without the algorithm stops it
// on the edge; rolling forward again restarts it from the package already
// there. Two platforms, each on its own SQLite store and embedded bus.
func TestEdgeDeployAlgorithm(t *testing.T) {
	ctx := context.Background()
	media := t.TempDir()
	if err := os.WriteFile(filepath.Join(media, "a.jpg"), jpegImage(t, 64, 48, 60), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg := v1Package(t)
	cloud := apptest.Start(t, apptest.Options{Args: []string{"--edge.leaf-addr", "127.0.0.1:0", "--edge.heartbeat", "200ms", "--media.root", media}})
	cc := newSDK(t, cloud.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	r := cc.mustCall("CreateEdgeNode", map[string]any{"Name": "site-alg"})
	nodeID, token := r["EdgeNodeId"].(string), r["JoinToken"].(string)

	// The version is stored on the cloud, not started there.
	algID := cc.mustCall("CreateAlgorithm", map[string]any{"Name": "vendor-detector"})["AlgorithmId"].(string)
	def := map[string]any{"runtime": "process", "protocol": "tianshu-v1", "replicas": 1,
		"contract": map[string]any{"inputs": []any{map[string]any{"name": "image", "type": "image", "required": true}},
			"outputs": []any{map[string]any{"name": "objects", "type": "objects"}}}}
	cc.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": def, "PackageBase64": base64.StdEncoding.EncodeToString(pkg)})
	detect := `{"name": "edge-detect", "nodes": [
	  {"id": "det", "kind": "algorithm", "config": {"algorithm": "` + algID + `"}, "inputs": {"image": "$input.image"}},
	  {"id": "save", "kind": "store", "config": {"type": "edge.detected"}, "inputs": {"objects": "$det.objects", "frame": "$input.frame"}}],
	  "edges": [{"from": "det", "to": "save"}]}`
	plain := `{"name": "edge-detect", "nodes": [
	  {"id": "save", "kind": "store", "config": {"type": "edge.plain"}, "inputs": {"frame": "$input.frame"}}]}`
	flowID := cc.mustCall("CreateFlow", map[string]any{"Document": detect})["FlowId"].(string)
	cc.mustCall("ModifyFlow", map[string]any{"FlowId": flowID, "Document": plain})
	devID := cc.mustCall("CreateDevice", map[string]any{"Name": "cam", "Driver": "replay", "Address": media, "Fps": 5, "EdgeNode": nodeID})["DeviceId"].(string)
	taskID := cc.mustCall("CreateTask", map[string]any{"Name": "detect", "FlowId": flowID, "FlowVersion": 1, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)

	e := apptest.Start(t, apptest.Options{Args: []string{"--target", "edge", "--cloud", cloud.Endpoint, "--join-token", token, "--edge.heartbeat", "200ms", "--media.root", media}})
	ec := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	count := func(typ string) int {
		var n int
		if err := cloud.P.DB.QueryRow(ctx, "SELECT COUNT(*) FROM records WHERE task_id = ? AND type = ?", taskID, typ).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	instances := func(c *sdk) []any {
		return c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)
	}
	edgeVersion := func() (string, string) {
		row, err := e.P.Algos.GetVersion(ctx, algID, "1")
		if err != nil {
			return "", err.Error()
		}
		return row.Desired, row.Def.Package
	}
	testenv.EventuallyExplained(t, 90*time.Second, "records of the edge's calls to the pushed algorithm in the cloud", func() bool { return count("edge.detected") >= 3 },
		func() string {
			d, pk := edgeVersion()
			return fmt.Sprintf("edge version: %s %s; cloud task %v", d, pk, cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"])
		})
	var objects string
	if err := cloud.P.DB.QueryRow(ctx, "SELECT data FROM records WHERE task_id = ? AND type = 'edge.detected' LIMIT 1", taskID).Scan(&objects); err != nil || !strings.Contains(objects, `"objects":[{`) {
		t.Errorf("a detected record: %s, %v", objects, err)
	}
	if desired, pk := edgeVersion(); desired != "running" || !strings.HasPrefix(pk, "edge-artifacts/packages/"+algID+"/") {
		t.Errorf("the edge's copy of the version: %s, package %q", desired, pk)
	}
	if a, err := e.P.Algos.Get(ctx, algID); err != nil || a.ProjectID != "default" || a.Name != "vendor-detector" || a.CurrentVersion != "1" {
		t.Errorf("the edge's copy of the algorithm: %+v, %v", a, err)
	}
	if n := len(instances(ec)); n != 1 {
		t.Errorf("the edge runs %d instances", n)
	}
	// The cloud sees what the node runs, and lists the site's records.
	testenv.Eventually(t, 30*time.Second, "the node reports its deployed versions", func() bool {
		n, err := cloud.P.EdgeNodes.Get(ctx, nodeID)
		return err == nil && n.Versions["algorithm/"+algID] == "1" && n.Versions["flow/"+flowID] == "1" && n.Versions["tianshu"] != ""
	})
	site := cc.mustCall("DescribeRecords", map[string]any{"EdgeNodeIds": []string{nodeID}, "Types": []string{"edge.detected"}, "Limit": 1})
	if total := site["TotalCount"].(float64); total < 3 {
		t.Errorf("DescribeRecords of the site: %v records", total)
	}
	if n := cc.mustCall("DescribeRecords", map[string]any{"EdgeNodeIds": []string{"edge-other"}})["TotalCount"]; n != float64(0) {
		t.Errorf("DescribeRecords of another site: %v records", n)
	}
	if n := len(instances(cc)); n != 0 {
		t.Errorf("the cloud runs %d instances of a version it never started", n)
	}

	// Rollback to the version without the algorithm: the edge stops it.
	cc.mustCall("ModifyTaskFlowVersion", map[string]any{"TaskId": taskID, "FlowVersion": 2})
	testenv.Eventually(t, 60*time.Second, "the algorithm stopped on the edge, records of version 2", func() bool {
		desired, _ := edgeVersion()
		return desired == "stopped" && len(instances(ec)) == 0 && count("edge.plain") > 0
	})
	// And forward again: it runs again from the package the edge kept.
	before := count("edge.detected")
	cc.mustCall("ModifyTaskFlowVersion", map[string]any{"TaskId": taskID, "FlowVersion": 1})
	testenv.Eventually(t, 60*time.Second, "the algorithm running again on the edge, new detected records", func() bool {
		desired, _ := edgeVersion()
		return desired == "running" && len(instances(ec)) == 1 && count("edge.detected") > before
	})
	fetched := 0
	_ = e.P.Blob.List(ctx, "edge-artifacts/", func(blob.Info) error { fetched++; return nil })
	if fetched != 1 {
		t.Errorf("the edge holds %d artifacts", fetched)
	}
	if tk := cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any); tk["EdgeError"] != "" {
		t.Errorf("the task's edge error: %v", tk["EdgeError"])
	}
	cc.mustCall("StopTask", map[string]any{"TaskId": taskID})
}

// Deleting an edge node stops its tasks (StartTask then refuses them by
// the node's name), takes its devices off it, revokes its credential and
// cuts its link; the edge learns that its credential was refused, forgets
// it and stops dialling the cloud.
func TestEdgeDeleteNode(t *testing.T) {
	ctx := context.Background()
	cloud, cc, media, nodeID, token := cloudWithEdgeNode(t, "site-gone")
	devID := cc.mustCall("CreateDevice", map[string]any{"Name": "cam", "Driver": "replay", "Address": media, "Fps": 2, "EdgeNode": nodeID})["DeviceId"].(string)
	flowID := cc.mustCall("CreateFlow", map[string]any{"Document": `{"name": "cam", "nodes": [
	  {"id": "save", "kind": "store", "config": {"type": "edge.cam"}, "inputs": {"w": "$input.width"}}]}`})["FlowId"].(string)
	taskID := cc.mustCall("CreateTask", map[string]any{"Name": "cam", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)
	cloudTask := func() map[string]any {
		return cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
	}

	e := apptest.Start(t, apptest.Options{Args: []string{"--target", "edge", "--cloud", cloud.Endpoint, "--join-token", token, "--edge.heartbeat", "200ms", "--media.root", media}})
	testenv.Eventually(t, 30*time.Second, "the task running on the edge", func() bool { return cloudTask()["Status"] == "Running" })
	if _, err := os.Stat(filepath.Join(edge.HubDir(e.DataDir), "link.json")); err != nil {
		t.Fatalf("the edge's credential: %v", err)
	}

	out := cc.mustCall("DeleteEdgeNode", map[string]any{"EdgeNodeId": nodeID})
	if out["UnplacedDevices"] != float64(1) || out["StoppedTasks"] != float64(1) {
		t.Errorf("DeleteEdgeNode = %v", out)
	}
	if tk := cloudTask(); tk["Status"] != "Stopped" || !strings.Contains(tk["Reason"].(string), nodeID+" deleted") || tk["EdgeNodeId"] != nodeID {
		t.Errorf("the node's task after the delete: %v", tk)
	}
	if d, err := cloud.P.Devices.Get(ctx, devID); err != nil || d.EdgeNode != "" {
		t.Errorf("the node's device after the delete: edge node %q, %v", d.EdgeNode, err)
	}
	if _, code := cc.call("StartTask", map[string]any{"TaskId": taskID}); code != "ResourceNotFound" {
		t.Errorf("StartTask of a task of the deleted node: %q", code)
	}
	if _, code := cc.call("DeleteEdgeNode", map[string]any{"EdgeNodeId": nodeID}); code != "ResourceNotFound" {
		t.Errorf("second DeleteEdgeNode: %q", code)
	}

	// The edge: link cut, credential refused and forgotten, no more dials.
	testenv.Eventually(t, 30*time.Second, "the edge knows it was revoked", func() bool {
		return !e.P.EdgeLink.Up() && e.P.EdgeLink.Revoked() && !e.P.EdgeLink.Dialling()
	})
	if _, err := os.Stat(filepath.Join(edge.HubDir(e.DataDir), "link.json")); !os.IsNotExist(err) {
		t.Errorf("the edge kept its credential: %v", err)
	}
	// What the edge still stores is buffered, for a node joined anew.
	before, _ := e.P.EdgeLink.Buffered(ctx)
	if _, err := e.P.Bus.Publish(ctx, "events.default", "x", []byte(`{"specversion": "1.0", "id": "late-1", "source": "/t", "type": "t"}`),
		map[string]string{"id": "late-1"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "buffering after revocation", func() bool {
		n, err := e.P.EdgeLink.Buffered(ctx)
		return err == nil && n > before
	})
}

// cloudWithEdgeNode starts a cloud that accepts edge nodes (heartbeat
// 200 ms) over a media root holding one JPEG, and creates the edge node
// name: it returns the cloud, its admin SDK, the media root, and the
// node's id and join token.
func cloudWithEdgeNode(t *testing.T, name string, args ...string) (cloud *apptest.Env, cc *sdk, media, nodeID, token string) {
	t.Helper()
	media = t.TempDir()
	if err := os.WriteFile(filepath.Join(media, "a.jpg"), jpegImage(t, 64, 48, 60), 0o644); err != nil {
		t.Fatal(err)
	}
	cloud = apptest.Start(t, apptest.Options{Args: append([]string{"--edge.leaf-addr", "127.0.0.1:0", "--edge.heartbeat", "200ms", "--media.root", media}, args...)})
	cc = newSDK(t, cloud.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	r := cc.mustCall("CreateEdgeNode", map[string]any{"Name": name})
	return cloud, cc, media, r["EdgeNodeId"].(string), r["JoinToken"].(string)
}
