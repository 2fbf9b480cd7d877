package app_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/gb28181"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// faceVideo writes the bundled demo photos, each held 2 s at 10 fps and
// letterboxed to 640×480, as one H.264 file: a camera looking at faces.
func faceVideo(t *testing.T) string {
	t.Helper()
	photos, err := filepath.Glob("../../examples/demo/photos/*.jpg")
	if err != nil || len(photos) == 0 {
		t.Fatalf("demo photos: %v %v", photos, err)
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}
	var graph, cat strings.Builder
	for i, p := range photos {
		args = append(args, "-loop", "1", "-framerate", "10", "-t", "2", "-i", p)
		fmt.Fprintf(&graph, "[%d:v]scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[p%d];", i, i)
		fmt.Fprintf(&cat, "[p%d]", i)
	}
	fmt.Fprintf(&cat, "concat=n=%d:v=1:a=0[v]", len(photos))
	out := filepath.Join(t.TempDir(), "faces.mp4")
	args = append(args, "-filter_complex", graph.String()+cat.String(), "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

// TestGB28181FaceStructuring is issue 21's "done when", all through the
// API: a simulated GB/T 28181 camera (a separate process) registers, its
// channel shows up as a device, a task made from the face-structuring
// template reads the channel's live video (INVITE, PS over RTP, ffmpeg)
// and stores face records of that device, and PTZ actions steer the
// camera: the simulator records each DeviceControl it received.
func TestGB28181FaceStructuring(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	e := apptest.Start(t, apptest.Options{Args: []string{"--gb28181.addr", "127.0.0.1:0"}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	const camID, chID = "34020000001320000021", "34020000001310000021"
	c.mustCall("CreateDevice", map[string]any{"Name": "lobby-cam", "Driver": "gb28181", "Address": camID, "Password": "gb-pass"})
	rec := filepath.Join(t.TempDir(), "received")
	startGBSim(t, gb28181.SimConfig{Server: e.P.GB28181.Addr(), DeviceID: camID, Password: "gb-pass", Keepalive: time.Second, Record: rec,
		Video: faceVideo(t), Channels: []gb28181.SimChannel{{ID: chID, Name: "大堂"}}})

	var chDev string
	testenv.Eventually(t, 30*time.Second, "the camera's channel online", func() bool {
		d := c.mustCall("DescribeDevices", map[string]any{"Filters": []any{map[string]any{"Name": "Driver", "Values": []string{"gb28181"}}}, "Limit": 100})
		for _, x := range d["DeviceSet"].([]any) {
			if m := x.(map[string]any); m["Address"] == chID && m["Status"] == "online" && m["Name"] == "大堂" {
				chDev = m["DeviceId"].(string)
			}
		}
		return chDev != ""
	})

	flowID := c.mustCall("CreateFlow", map[string]any{"Name": "gb-faces", "TemplateName": "face-structuring"})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "gb-faces", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": chDev}}})["TaskId"].(string)
	var faces []any
	testenv.EventuallyExplained(t, 120*time.Second, "face records from the GB28181 channel", func() bool {
		faces = c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Types": []string{"face"}, "Limit": 100})["RecordSet"].([]any)
		return len(faces) > 0
	}, func() string {
		return toJSON(c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID})) + "\n" + toJSON(c.mustCall("DescribeDeviceDiagnosis", map[string]any{"DeviceId": chDev}))
	})
	for _, f := range faces {
		r := f.(map[string]any)
		d := r["Data"].(map[string]any)
		if d["Device"] != chDev || r["DeviceId"] != chDev {
			t.Errorf("face record of device %v/%v, want %s: %s", d["Device"], r["DeviceId"], chDev, toJSON(r))
		}
		if box, _ := d["Box"].([]any); len(box) != 4 {
			t.Errorf("face record without a box: %s", toJSON(d))
		}
	}
	st := c.mustCall("DescribeDeviceDiagnosis", map[string]any{"DeviceId": chDev})["Stream"].(map[string]any)
	if st["Active"] != true || st["Codec"] != "h264" {
		t.Errorf("stream diagnosis: %s", toJSON(st))
	}

	// Steer the camera as the console's pad does: a move, a zoom, a stop.
	for _, req := range []map[string]any{{"Direction": "upright", "Speed": 200}, {"Zoom": "out", "Speed": 32}, {"Direction": "stop"}} {
		req["DeviceId"] = chDev
		c.mustCall("ControlDevicePTZ", req)
	}
	var got []gb28181.PTZ
	testenv.EventuallyExplained(t, 15*time.Second, "three PTZ commands at the camera", func() bool {
		got = got[:0]
		for _, l := range strings.Split(readFile(t, rec), "\n") {
			if _, h, ok := strings.Cut(l, "DeviceControl "+chID+" PTZCmd="); ok {
				p, err := gb28181.ParsePTZ(h)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p)
			}
		}
		return len(got) == 3
	}, func() string { return readFile(t, rec) })
	want := []gb28181.PTZ{{Pan: 1, Tilt: 1, Speed: 200}, {Zoom: -1, Speed: 32}, {}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("PTZ %d: the camera got %+v, want %+v", i, got[i], want[i])
		}
	}
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
}
