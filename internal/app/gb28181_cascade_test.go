package app_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/gb28181"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestGB28181Cascade: one platform registers to another as a lower
// platform (--gb28181.upper). The upper one knows it as a gb28181 device
// with its own password; its catalog is the lower platform's channels: a
// camera (a simulator process) registering to the lower platform later
// appears at the upper one through a catalog change notification, under
// the lower platform; a PTZ action on the upper platform reaches the
// camera through the lower one, and a task on the upper platform gets
// the camera's live video (the INVITE passed on, the media direct).
func TestGB28181Cascade(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	const lowerID = "34020000002000000002"
	upper := apptest.Start(t, apptest.Options{Args: []string{"--gb28181.addr", "127.0.0.1:0"}})
	up := newSDK(t, upper.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	up.mustCall("CreateDevice", map[string]any{"Name": "city-branch", "Driver": "gb28181", "Address": lowerID, "Password": "cascade-pass"})
	lower := apptest.Start(t, apptest.Options{Args: []string{"--gb28181.addr", "127.0.0.1:0", "--gb28181.server-id", lowerID,
		"--gb28181.upper", upper.P.GB28181.Addr(), "--gb28181.upper-id", "34020000002000000001", "--gb28181.upper-password", "cascade-pass",
		"--gb28181.upper-keepalive", "1s"}})
	low := newSDK(t, lower.Host, apptest.AdminSecretID, apptest.AdminSecretKey)

	gbDevices := func(c *sdk) map[string]map[string]any {
		out := map[string]map[string]any{}
		d := c.mustCall("DescribeDevices", map[string]any{"Filters": []any{map[string]any{"Name": "Driver", "Values": []string{"gb28181"}}}, "Limit": 100})
		for _, x := range d["DeviceSet"].([]any) {
			m := x.(map[string]any)
			out[m["Address"].(string)] = m
		}
		return out
	}
	testenv.EventuallyExplained(t, 30*time.Second, "the lower platform registered to the upper one", func() bool {
		return gbDevices(up)[lowerID]["Status"] == "online"
	}, func() string { return toJSON(gbDevices(up)) })

	const camID, chID = "34020000001320000041", "34020000001310000041"
	low.mustCall("CreateDevice", map[string]any{"Name": "branch-cam", "Driver": "gb28181", "Address": camID, "Password": "cam-pass"})
	rec := filepath.Join(t.TempDir(), "received")
	startGBSim(t, gb28181.SimConfig{Server: lower.P.GB28181.Addr(), ServerID: lowerID, DeviceID: camID, Password: "cam-pass", Keepalive: time.Second,
		Record: rec, Channels: []gb28181.SimChannel{{ID: chID, Name: "分局门口"}}})
	var upCh map[string]any
	testenv.EventuallyExplained(t, 30*time.Second, "the camera's channel at the upper platform", func() bool {
		upCh = gbDevices(up)[chID]
		return upCh != nil && upCh["Status"] == "online"
	}, func() string { return toJSON(gbDevices(up)) + "\nlower: " + toJSON(gbDevices(low)) })
	if upCh["Name"] != "分局门口" || !strings.Contains(toJSON(upCh["Options"]), `"parent":"`+lowerID+`"`) {
		t.Errorf("the channel at the upper platform: %s", toJSON(upCh))
	}

	up.mustCall("ControlDevicePTZ", map[string]any{"DeviceId": upCh["DeviceId"], "Direction": "left", "Speed": 90})
	testenv.EventuallyExplained(t, 15*time.Second, "the PTZ command at the camera", func() bool {
		return strings.Contains(readFile(t, rec), "DeviceControl "+chID+" PTZCmd=")
	}, func() string { return readFile(t, rec) })
	_, h, _ := strings.Cut(readFile(t, rec), "PTZCmd=")
	if p, err := gb28181.ParsePTZ(strings.TrimSpace(strings.SplitN(h, "\n", 2)[0])); err != nil || p != (gb28181.PTZ{Pan: -1, Speed: 90}) {
		t.Errorf("the camera got %+v (%v), want left at 90", p, err)
	}

	// Live video at the upper platform: its INVITE is passed on to the
	// camera with the upper platform's media address; stopping the task
	// hangs the camera up through the lower platform.
	doc := `{"name": "frames", "nodes": [{"id": "save", "kind": "store", "config": {"type": "frame"},
	  "inputs": {"frame": "$input.frame", "device": "$input.device", "width": "$input.width"}}]}`
	flowID := up.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	taskID := up.mustCall("CreateTask", map[string]any{"Name": "branch-gate", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": upCh["DeviceId"]}}})["TaskId"].(string)
	testenv.EventuallyExplained(t, 60*time.Second, "frame records at the upper platform", func() bool {
		return up.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Limit": 1})["TotalCount"].(float64) >= 3
	}, func() string {
		return toJSON(up.mustCall("DescribeDeviceDiagnosis", map[string]any{"DeviceId": upCh["DeviceId"]})) + "\ncamera: " + readFile(t, rec)
	})
	st := up.mustCall("DescribeDeviceDiagnosis", map[string]any{"DeviceId": upCh["DeviceId"]})["Stream"].(map[string]any)
	if !strings.Contains(readFile(t, rec), fmt.Sprintf("INVITE %s udp 127.0.0.1:%v", chID, st["LocalPort"])) || st["WrongSsrcPackets"].(float64) != 0 {
		t.Errorf("the camera was not invited to the upper platform's port %v: %s\n%s", st["LocalPort"], readFile(t, rec), toJSON(st))
	}
	up.mustCall("StopTask", map[string]any{"TaskId": taskID})
	testenv.EventuallyExplained(t, 20*time.Second, "the camera hung up through the lower platform", func() bool {
		return strings.Contains(readFile(t, rec), "BYE "+chID)
	}, func() string { return readFile(t, rec) })
}
