package app_test

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func jpegImage(t *testing.T, w, h int, shade uint8) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = shade + uint8(i%7)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A camera's HTTP snapshot URL behind Basic auth, as many vendors serve it.
func cameraEmulator(t *testing.T, user, pass string, pic []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="camera"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(pic)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDeviceCenter(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	pic := jpegImage(t, 64, 48, 40)
	cam := cameraEmulator(t, "admin", "s3cret-pass", pic)

	if _, code := c.call("CreateDevice", map[string]any{"Name": "nvr", "Driver": "gb28181", "Address": "sip:x"}); code != "InvalidParameterValue" {
		t.Errorf("gb28181: %q", code)
	}
	// Probe before saving: a wrong password is a clear authentication status.
	p := c.mustCall("ProbeDevice", map[string]any{"Device": map[string]any{"Driver": "http-snapshot", "Address": cam.URL + "/snap.jpg",
		"Username": "admin", "Password": "wrong"}})
	if p["Online"] != false || p["Reason"] != "auth_failed" {
		t.Fatalf("probe with a wrong password: %v", p)
	}
	id := c.mustCall("CreateDevice", map[string]any{"Name": "gate-1", "Driver": "http-snapshot", "Address": cam.URL + "/snap.jpg",
		"Username": "admin", "Password": "s3cret-pass", "Fps": 2, "Group": "gates"})["DeviceId"].(string)
	if p := c.mustCall("ProbeDevice", map[string]any{"DeviceId": id}); p["Online"] != true {
		t.Fatalf("probe: %v", p)
	}
	d := c.mustCall("DescribeDevices", map[string]any{"Filters": []any{map[string]any{"Name": "Group", "Values": []string{"gates"}}}})
	set := d["DeviceSet"].([]any)
	if len(set) != 1 || set[0].(map[string]any)["Status"] != "online" || set[0].(map[string]any)["HasPassword"] != true {
		t.Fatalf("DescribeDevices = %v", d)
	}
	if strings.Contains(toJSON(d), "s3cret-pass") {
		t.Fatal("DescribeDevices returns the password")
	}
	var sealed string
	if err := e.P.DB.QueryRow(context.Background(), "SELECT password_enc FROM devices WHERE id = ?", id).Scan(&sealed); err != nil || strings.Contains(sealed, "s3cret") {
		t.Fatalf("password at rest: %q %v", sealed, err)
	}
	snap := c.mustCall("DescribeDeviceSnapshot", map[string]any{"DeviceId": id})
	resp, err := http.Get(snap["Url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, pic) {
		t.Fatalf("snapshot: %d bytes", len(got))
	}
	if _, code := c.call("DescribeDevices", map[string]any{"Filters": []any{map[string]any{"Name": "Stat", "Values": []string{"x"}}}}); code != "InvalidParameterValue" {
		t.Errorf("unknown filter: %q", code)
	}
}

// A replay camera over a folder of pictures feeds a task whose records
// carry each frame; the device reports online while the task runs and
// cannot be deleted meanwhile.
func TestReplayDeviceTask(t *testing.T) {
	dir := t.TempDir()
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", dir}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	for i := 0; i < 3; i++ {
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".jpg"), jpegImage(t, 32, 24, uint8(60*i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	devID := c.mustCall("CreateDevice", map[string]any{"Name": "replay-1", "Driver": "replay", "Address": dir, "Fps": 10})["DeviceId"].(string)
	doc := `{"name": "frames", "nodes": [{"id": "save", "kind": "store", "config": {"type": "frame"},
	  "inputs": {"frame": "$input.frame", "device": "$input.device", "width": "$input.width"}}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "watch", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)
	testenv.Eventually(t, 60*time.Second, "10 frame records", func() bool {
		r := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "DeviceIds": []string{devID}, "Limit": 1})
		return r["TotalCount"].(float64) >= 10
	})
	rec := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Limit": 1})["RecordSet"].([]any)[0].(map[string]any)
	if !strings.Contains(toJSON(rec["Data"]), `"width":32`) {
		t.Errorf("record data %v", rec["Data"])
	}
	testenv.Eventually(t, 30*time.Second, "device online", func() bool {
		d := c.mustCall("DescribeDevices", map[string]any{"DeviceIds": []string{devID}})["DeviceSet"].([]any)[0].(map[string]any)
		return d["Status"] == "online" && d["LastFrameTime"] != ""
	})
	if _, code := c.call("DeleteDevice", map[string]any{"DeviceId": devID}); code != "ResourceInUse" {
		t.Errorf("DeleteDevice while a task reads it: %q", code)
	}
	testenv.Eventually(t, 30*time.Second, "task stats", func() bool {
		s := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID})
		return s["Completed"].(float64) >= 10 && len(s["NodeLatency"].([]any)) == 1
	})
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
	testenv.Eventually(t, 30*time.Second, "task Stopped", func() bool {
		r := c.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
		return r["Status"] == "Stopped"
	})
	online := `tianshu_device_online{device="` + devID + `"}`
	if v, ok := scrape(t, e, online); !ok || v != 1 {
		t.Errorf("%s = %v (present %v), want 1", online, v, ok)
	}
	c.mustCall("DeleteTask", map[string]any{"TaskId": taskID})
	c.mustCall("DeleteDevice", map[string]any{"DeviceId": devID})
	if _, ok := scrape(t, e, online); ok {
		t.Errorf("%s still exported after DeleteDevice", online)
	}
}
