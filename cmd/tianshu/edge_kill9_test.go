package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// An edge node killed with SIGKILL while its cloud is down (killed too)
// starts again without the cloud and keeps running the task the cloud put
// on it; when the cloud is back, the exchange that follows restarts
// nothing, and the records made meanwhile reach the cloud. Two processes,
// each with its own data dir, store and bus.
func TestEdgeSurvivesKill9Offline(t *testing.T) {
	media := t.TempDir()
	for i := range 3 {
		img := image.NewRGBA(image.Rect(0, 0, 48, 32))
		for p := range img.Pix {
			img.Pix[p] = uint8(p * (i + 3))
		}
		img.Set(1, 1, color.White)
		var b bytes.Buffer
		_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 80})
		if err := os.WriteFile(filepath.Join(media, fmt.Sprintf("f%d.jpg", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := cleanEnv("TIANSHU_MASTER_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"TIANSHU_ADMIN_SECRET_ID="+clusterSecretID, "TIANSHU_ADMIN_SECRET_KEY="+clusterSecretKey, "TIANSHU_ADMIN_PASSWORD=edge-pass")
	leaf := freeAddr(t)
	cloud := startProc(t, "cloud", env, "--data-dir", t.TempDir(), "--edge.leaf-addr", leaf, "--edge.heartbeat", "200ms", "--media.root", media)
	ce := "http://" + cloud.addr
	r := call(t, ce, "CreateEdgeNode", map[string]any{"Name": "site-k9"})
	nodeID, token := r["EdgeNodeId"].(string), r["JoinToken"].(string)
	devID := call(t, ce, "CreateDevice", map[string]any{"Name": "cam", "Driver": "replay", "Address": media, "Fps": 5, "EdgeNode": nodeID})["DeviceId"].(string)
	flowID := call(t, ce, "CreateFlow", map[string]any{"Document": `{"name": "k9", "nodes": [
	  {"id": "save", "kind": "store", "config": {"type": "edge.k9"}, "inputs": {"frame": "$input.frame"}}]}`})["FlowId"].(string)
	taskID := call(t, ce, "CreateTask", map[string]any{"Name": "k9", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)

	edge := startProc(t, "edge", append(env, "TIANSHU_JOIN_TOKEN="+token), "--target", "edge", "--cloud", ce,
		"--data-dir", t.TempDir(), "--edge.heartbeat", "200ms", "--media.root", media)
	ee := "http://" + edge.addr
	records := func(endpoint string) int {
		return int(call(t, endpoint, "DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Limit": 1})["TotalCount"].(float64))
	}
	starts := func() int {
		n := 0
		for _, ev := range call(t, ee, "DescribeTaskEvents", map[string]any{"TaskId": taskID})["EventSet"].([]any) {
			if ev.(map[string]any)["Type"] == "running" {
				n++
			}
		}
		return n
	}
	edgeStatus := func() string {
		set := call(t, ee, "DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)
		if len(set) == 0 {
			return ""
		}
		return set[0].(map[string]any)["Status"].(string)
	}
	testenv.Eventually(t, 90*time.Second, "the edge's records in the cloud", func() bool { return records(ce) >= 5 })

	// The cloud dies, then the edge, which starts again without it.
	cloud.kill9()
	edge.kill9()
	edge.start()
	testenv.EventuallyExplained(t, 90*time.Second, "the task running again on the edge, without its cloud", func() bool {
		return edgeStatus() == "Running" && records(ee) > 0
	}, func() string { return edgeStatus() })
	mark := records(ee)
	testenv.Eventually(t, 30*time.Second, "records made offline", func() bool { return records(ee) >= mark+5 })
	before := starts()

	// The cloud is back on the same port: the records made offline reach
	// it, and the exchanges restart nothing.
	cloud.start()
	inCloud := records(ce)
	testenv.Eventually(t, 60*time.Second, "records made offline in the cloud", func() bool { return records(ce) >= mark+5 && records(ce) > inCloud })
	status := func() string {
		set := call(t, ce, "DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)
		return set[0].(map[string]any)["Status"].(string)
	}
	testenv.Eventually(t, 30*time.Second, "the cloud sees the task running", func() bool { return status() == "Running" })
	seen := records(ce)
	// Ten more exchanges (200 ms apart) after the cloud forwarded records.
	testenv.Eventually(t, 30*time.Second, "more exchanges", func() bool { return records(ce) >= seen+10 })
	if n := starts(); n != before {
		t.Fatalf("the task started %d times after the cloud came back (%d before)", n-before, before)
	}
	if s := edgeStatus(); s != "Running" {
		t.Fatalf("the edge's task: %s", s)
	}
}
