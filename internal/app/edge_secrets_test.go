package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// A flow version pushed to an edge calls an algorithm version with a
// secret: the edge gets the value over the link, seals it under its own
// master key, and its calls carry it to the vendor; the edge's API never
// shows it (DescribeAlgorithmVersions masks it, no stored definition holds
// it) and the cloud runs no instance of the version.
func TestEdgeDeploySecrets(t *testing.T) {
	const key = "sk-edge-vendor-5f19c2"
	ctx := context.Background()
	var mu sync.Mutex
	var got []string
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	defer vendor.Close()
	cloud, cc, media, nodeID, token := cloudWithEdgeNode(t, "site-sec")

	algID := cc.mustCall("CreateAlgorithm", map[string]any{"Name": "vendor-api"})["AlgorithmId"].(string)
	def := map[string]any{"runtime": "endpoint", "protocol": "http-mapped", "endpoints": []string{vendor.URL},
		"contract": map[string]any{"inputs": []any{map[string]any{"name": "frame", "type": "number", "required": true}},
			"outputs": []any{map[string]any{"name": "ok", "type": "bool"}}},
		"mapping": map[string]any{
			"request":  "def main(input):\n    return {\"path\": \"/\", \"headers\": {\"Authorization\": \"Bearer ${secret:VENDOR_KEY}\"}, \"json\": {}}\n",
			"response": "def main(resp):\n    return {\"ok\": True}\n"}}
	cc.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": def,
		"Secrets": []map[string]string{{"Name": "VENDOR_KEY", "Value": key}}})
	flowID := cc.mustCall("CreateFlow", map[string]any{"Document": `{"name": "edge-vendor", "nodes": [
	  {"id": "call", "kind": "algorithm", "config": {"algorithm": "` + algID + `"}, "inputs": {"frame": "$input.frame"}},
	  {"id": "save", "kind": "store", "config": {"type": "edge.vendor"}, "inputs": {"ok": "$call.ok"}}],
	  "edges": [{"from": "call", "to": "save"}]}`})["FlowId"].(string)
	devID := cc.mustCall("CreateDevice", map[string]any{"Name": "cam", "Driver": "replay", "Address": media, "Fps": 5, "EdgeNode": nodeID})["DeviceId"].(string)
	taskID := cc.mustCall("CreateTask", map[string]any{"Name": "vendor", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)

	e := apptest.Start(t, apptest.Options{Args: []string{"--target", "edge", "--cloud", cloud.Endpoint, "--join-token", token, "--edge.heartbeat", "200ms", "--media.root", media}})
	count := func() int {
		var n int
		if err := cloud.P.DB.QueryRow(ctx, "SELECT COUNT(*) FROM records WHERE task_id = ? AND type = 'edge.vendor'", taskID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testenv.EventuallyExplained(t, 90*time.Second, "records of the edge's calls with the secret in the cloud", func() bool { return count() >= 3 },
		func() string {
			return fmt.Sprint(cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"])
		})
	mu.Lock()
	for _, h := range got {
		if h != "Bearer "+key {
			t.Errorf("the vendor got %q", h)
		}
	}
	calls := len(got)
	mu.Unlock()
	if calls < 3 {
		t.Fatalf("the vendor got %d calls", calls)
	}

	// The edge keeps the value sealed and never shows it.
	desc := signedRaw(t, e, apptest.AdminSecretID, apptest.AdminSecretKey, "DescribeAlgorithmVersions", map[string]any{"AlgorithmId": algID})
	if strings.Contains(desc, key) || !strings.Contains(desc, `"Secrets":[{"Name":"VENDOR_KEY","Value":"***"}]`) {
		t.Fatalf("the edge's DescribeAlgorithmVersions: %s", desc)
	}
	var sealed, definition string
	if err := e.P.DB.QueryRow(ctx, "SELECT secrets_enc FROM algorithm_secrets WHERE algorithm_id = ?", algID).Scan(&sealed); err != nil {
		t.Fatalf("the edge's sealed secrets: %v", err)
	}
	if err := e.P.DB.QueryRow(ctx, "SELECT definition FROM algorithm_versions WHERE algorithm_id = ?", algID).Scan(&definition); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, key) || !strings.HasPrefix(sealed, "v") || strings.Contains(definition, key) {
		t.Fatalf("the edge stores the secret in the clear: %q, %q", sealed, definition)
	}
	// Sealed under the edge's own key: the cloud's cannot open it.
	if _, err := cloud.P.Box.Open(sealed); err == nil {
		t.Fatal("the cloud's master key opens the edge's sealed secrets")
	}
	if n := len(cc.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)); n != 0 {
		t.Errorf("the cloud runs %d instances", n)
	}
	tk := cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
	if tk["EdgeError"] != "" || tk["Status"] != "Running" {
		t.Errorf("the cloud's view of the task: %v", tk)
	}
}
