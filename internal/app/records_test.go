package app_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// tusUpload uploads body in two PATCHes with a tus 1.0 client's requests.
func tusUpload(t *testing.T, endpoint, token, name string, body []byte) string {
	t.Helper()
	return tusUploadType(t, endpoint, token, name, "image/png", body)
}

func tusUploadType(t testing.TB, endpoint, token, name, ctype string, body []byte) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(body)))
	req.Header.Set("Upload-Metadata", "filename "+base64.StdEncoding.EncodeToString([]byte(name))+",filetype "+base64.StdEncoding.EncodeToString([]byte(ctype)))
	req.Header.Set("Upload-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("tus create: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	half := len(body) / 2
	for _, part := range []struct{ off, end int }{{0, half}, {half, len(body)}} {
		req, _ := http.NewRequest(http.MethodPatch, loc, bytes.NewReader(body[part.off:part.end]))
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", strconv.Itoa(part.off))
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Upload-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("tus patch at %d: %s", part.off, resp.Status)
		}
	}
	return path.Base(loc)
}

// runUploadTask runs a task of the flow over one uploaded file until it is
// Completed and returns its id.
func runUploadTask(t *testing.T, c *sdk, name, flowID, uploadID string) string {
	t.Helper()
	taskID := c.mustCall("CreateTask", map[string]any{"Name": name, "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "upload", "Id": uploadID}}})["TaskId"].(string)
	testenv.Eventually(t, 60*time.Second, "task Completed", func() bool {
		r := c.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
		if r["Status"] == "Failed" {
			t.Fatalf("task failed: %v", r["Reason"])
		}
		return r["Status"] == "Completed"
	})
	return taskID
}

// uploadTaskRecord runs a task of the flow over one uploaded file until it
// is Completed and returns the one record it stored.
func uploadTaskRecord(t *testing.T, c *sdk, name, flowID, uploadID string) map[string]any {
	t.Helper()
	taskID := runUploadTask(t, c, name, flowID, uploadID)
	recs := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}})
	if recs["TotalCount"].(float64) != 1 {
		t.Fatalf("DescribeRecords = %v", recs)
	}
	return recs["RecordSet"].([]any)[0].(map[string]any)
}

// A picture uploaded with tus becomes a batch task's source; the store node
// writes a record with the picture as an object; the task ends Completed;
// DescribeRecords returns the record with a signed URL that serves it.
func TestUploadTaskStoresRecords(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	tok := c.mustCall("CreateUploadToken", map[string]any{})
	img := pngImage(40, 30)
	uploadID := tusUpload(t, tok["Endpoint"].(string), tok["Token"].(string), "shot.png", img)

	doc := `{"name": "keep", "nodes": [{"id": "save", "kind": "store", "config": {"type": "picture"},
	  "inputs": {"image": "$input.image", "name": "$input.name"}}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	rec := uploadTaskRecord(t, c, "archive", flowID, uploadID)
	if toJSON(rec["Data"]) == "" || rec["Type"] != "picture" {
		t.Fatalf("record %v", rec)
	}
	urls, _ := rec["ObjectUrls"].([]any)
	if len(urls) != 1 {
		t.Fatalf("record objects: %v", rec)
	}
	resp, err := http.Get(urls[0].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, img) {
		t.Fatalf("object from the signed URL: %d bytes, %s", len(got), resp.Status)
	}
}

// An uploaded video is decoded with ffmpeg and every frame goes through the
// task's flow: stored data loses nothing, and the task ends Completed.
func TestUploadedVideoTask(t *testing.T) {
	ffmpeg := testenv.NeedCommand(t, "ffmpeg")
	video := filepath.Join(t.TempDir(), "clip.mp4")
	if out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=5",
		"-t", "2", "-pix_fmt", "yuv420p", video).CombinedOutput(); err != nil {
		t.Fatalf("make a clip: %v\n%s", err, out)
	}
	clip, err := os.ReadFile(video)
	if err != nil {
		t.Fatal(err)
	}
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	tok := c.mustCall("CreateUploadToken", map[string]any{})
	uploadID := tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), "clip.mp4", "video/mp4", clip)
	doc := `{"name": "frames", "nodes": [{"id": "save", "kind": "store", "config": {"type": "frame"},
	  "inputs": {"frame": "$input.frame", "width": "$input.width"}}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	taskID := runUploadTask(t, c, "clip", flowID, uploadID)
	if n := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}})["TotalCount"].(float64); n != 10 {
		t.Fatalf("%v frame records, want 10 (2 s at 5 fps)", n)
	}
}
