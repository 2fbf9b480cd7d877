package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/gb28181"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestGB28181LiveVideo: a simulated camera (a separate process) registers,
// its channel becomes a device, a task reads the channel and frame
// records arrive (INVITE, PS over RTP, ffmpeg); the diagnosis shows the
// stream; the camera killed and restarted mid-stream is invited again
// and frames resume; PTZ and preset commands reach the camera, bad ones
// are refused naming the field; stopping the task hangs up (BYE).
func TestGB28181LiveVideo(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	e := apptest.Start(t, apptest.Options{Args: []string{"--gb28181.addr", "127.0.0.1:0", "--gb28181.keepalive-timeout", "3s", "--gb28181.no-media-timeout", "2s"}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	const camID, chID = "34020000001320000011", "34020000001310000011"
	c.mustCall("CreateDevice", map[string]any{"Name": "cam-1", "Driver": "gb28181", "Address": camID, "Password": "gb-pass"})
	rec := filepath.Join(t.TempDir(), "received")
	sim := gb28181.SimConfig{Server: e.P.GB28181.Addr(), DeviceID: camID, Password: "gb-pass", Keepalive: 500 * time.Millisecond, Record: rec,
		Channels: []gb28181.SimChannel{{ID: chID, Name: "gate"}}}
	_, kill := startGBSim(t, sim)
	var chDev string
	waitUntil(t, 20*time.Second, func() bool {
		d := c.mustCall("DescribeDevices", map[string]any{"Filters": []any{map[string]any{"Name": "Driver", "Values": []string{"gb28181"}}}, "Limit": 100})
		for _, x := range d["DeviceSet"].([]any) {
			if m := x.(map[string]any); m["Address"] == chID && m["Status"] == "online" {
				chDev = m["DeviceId"].(string)
			}
		}
		return chDev != ""
	})
	diag := c.mustCall("DescribeDeviceDiagnosis", map[string]any{"DeviceId": chDev})
	if diag["Registered"] != true || diag["InCatalog"] != true || diag["Stream"] != nil || diag["RegisteredAs"] != camID {
		t.Fatalf("diagnosis before video: %s", toJSON(diag))
	}

	doc := `{"name": "frames", "nodes": [{"id": "save", "kind": "store", "config": {"type": "frame"},
	  "inputs": {"frame": "$input.frame", "device": "$input.device", "width": "$input.width"}}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "watch-gate", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": chDev}}})["TaskId"].(string)
	records := func() float64 {
		r := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Limit": 1})
		return r["TotalCount"].(float64)
	}
	testenv.Eventually(t, 60*time.Second, "5 frame records", func() bool { return records() >= 5 })
	r := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Limit": 1})["RecordSet"].([]any)[0].(map[string]any)
	if !strings.Contains(toJSON(r["Data"]), `"width":320`) {
		t.Errorf("record data %v", r["Data"])
	}
	diag = c.mustCall("DescribeDeviceDiagnosis", map[string]any{"DeviceId": chDev})
	st, _ := diag["Stream"].(map[string]any)
	if st == nil || st["Active"] != true || st["RtpPackets"].(float64) == 0 || st["Codec"] != "h264" || st["WrongSsrcPackets"].(float64) != 0 ||
		!strings.Contains(st["SdpSent"].(string), "y="+st["SsrcExpected"].(string)) || st["LocalPort"].(float64) == 0 {
		t.Fatalf("diagnosis while streaming: %s", toJSON(diag))
	}
	if first, invite := st["FirstPacketTime"].(string), st["InviteTime"].(string); first == "" || invite == "" {
		t.Fatalf("diagnosis times: %s", toJSON(st))
	}

	// PTZ: a move, a stop, a preset; bad requests name the field.
	for _, req := range []map[string]any{{"Direction": "left", "Speed": 64}, {"Direction": "stop"}, {"Zoom": "in"}, {"PresetAction": "goto", "PresetIndex": 7}} {
		req["DeviceId"] = chDev
		if got := c.mustCall("ControlDevicePTZ", req)["PTZCmd"].(string); len(got) != 16 {
			t.Fatalf("PTZCmd %q", got)
		}
	}
	for field, req := range map[string]map[string]any{"Direction": {"Direction": "sideways"}, "PresetIndex": {"PresetAction": "set"}, "Zoom": {"Zoom": "far"}, "PresetAction": {"PresetAction": "save", "PresetIndex": 1}} {
		req["DeviceId"] = chDev
		if code, msg := c.callError("ControlDevicePTZ", req); code != "InvalidParameterValue" || !strings.HasPrefix(msg, field+":") {
			t.Errorf("%v: %s %s", req, code, msg)
		}
	}
	waitUntil(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(rec)
		return strings.Count(string(b), "DeviceControl "+chID) == 4
	})
	b, _ := os.ReadFile(rec)
	var got []gb28181.PTZ
	for _, l := range strings.Split(string(b), "\n") {
		if _, h, ok := strings.Cut(l, "PTZCmd="); ok {
			p, err := gb28181.ParsePTZ(h)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p)
		}
	}
	want := []gb28181.PTZ{{Pan: -1, Speed: 64}, {}, {Zoom: 1, Speed: 128}, {PresetOp: gb28181.PresetGoto, Preset: 7}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("PTZ %d: device got %+v, want %+v", i, got[i], want[i])
		}
	}

	// The camera dies mid-stream and comes back: the platform invites
	// again and frames resume.
	kill()
	before := records()
	_, _ = startGBSim(t, sim)
	testenv.Eventually(t, 60*time.Second, "frames after the camera's restart", func() bool { return records() >= before+5 })
	if n := strings.Count(readFile(t, rec), "INVITE "+chID); n < 2 {
		t.Fatalf("%d INVITEs after the restart", n)
	}

	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
	waitUntil(t, 20*time.Second, func() bool { return strings.Contains(readFile(t, rec), "BYE "+chID) })
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
