package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// A running task's store node cannot pass its project's storage quota: the
// record is refused before anything is stored, counted, and the task's
// LastError says why (issue #26, part 6).
func TestStorageQuotaRefusesTaskRecords(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	tok := c.mustCall("CreateUploadToken", map[string]any{})
	img := pngImage(40, 30)
	uploadID := tusUpload(t, tok["Endpoint"].(string), tok["Token"].(string), "shot.png", img)
	// The upload holds len(img) bytes, the whole quota: storing the
	// picture again with a record would pass it.
	c.mustCall("ModifyProjectQuota", map[string]any{"ProjectId": "default", "MaxStorageBytes": len(img)})
	if q := c.mustCall("DescribeProjects", map[string]any{})["ProjectSet"].([]any)[0].(map[string]any)["Quota"].(map[string]any); q["MaxStorageBytes"] != float64(len(img)) {
		t.Fatalf("DescribeProjects quota %v", q)
	}
	doc := `{"name": "keep", "nodes": [{"id": "save", "kind": "store", "config": {"type": "picture"},
	  "inputs": {"image": "$input.image", "name": "$input.name"}}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "archive", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "upload", "Id": uploadID}}})["TaskId"].(string)
	var lastError string
	testenv.Eventually(t, 60*time.Second, "the task's LastError names the storage quota", func() bool {
		st := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID})
		lastError, _ = st["LastError"].(string)
		if st["Status"] == "Completed" || st["Status"] == "Failed" {
			t.Fatalf("task ended over the quota: %v", st)
		}
		return strings.Contains(lastError, "storage quota")
	})
	if !strings.Contains(lastError, "project default holds") {
		t.Errorf("LastError %q", lastError)
	}
	if n := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}})["TotalCount"].(float64); n != 0 {
		t.Fatalf("%v records stored over the quota", n)
	}
	resp, err := http.Get(e.Endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `tianshu_data_records_refused_total{reason="storage_quota"}`) {
		t.Fatal("no refused records in /metrics")
	}
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
}
