package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestEdgeMatchNodeSaysNoWatchlists: watchlists are not synced to edge
// sites, so a task with a match node placed on an edge box does not run
// there matching nothing: it fails to start, and the cloud's view of the
// task says watchlists are not available where it runs (docs/search.md).
func TestEdgeMatchNodeSaysNoWatchlists(t *testing.T) {
	cloud, cc, media, nodeID, token := cloudWithEdgeNode(t, "site-watch")
	flowID := cc.mustCall("CreateFlow", map[string]any{"Document": `{"name": "edge-match", "nodes": [
	  {"id": "m", "kind": "match", "inputs": {"embedding": [0.6, 0.8]}}]}`})["FlowId"].(string)
	devID := cc.mustCall("CreateDevice", map[string]any{"Name": "cam", "Driver": "replay", "Address": media, "Fps": 5, "EdgeNode": nodeID})["DeviceId"].(string)
	taskID := cc.mustCall("CreateTask", map[string]any{"Name": "watch", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)
	apptest.Start(t, apptest.Options{Args: []string{"--target", "edge", "--cloud", cloud.Endpoint, "--join-token", token, "--edge.heartbeat", "200ms", "--media.root", media}})
	var last map[string]any
	testenv.EventuallyExplained(t, 90*time.Second, "the cloud's view of the task naming the missing watchlists", func() bool {
		last = cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
		return strings.Contains(toJSON(last), "watchlists are not available where this flow runs")
	}, func() string { return toJSON(last) })
	t.Logf("the task as the cloud sees it: status %v, edge error %q", last["Status"], last["EdgeError"])
}
