package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// Zones drawn on a device are stored in normalized coordinates, validated
// field by field, returned by DescribeDevices, replaced whole by
// ModifyDevice; a viewer may read the driver schema.
func TestDeviceZones(t *testing.T) {
	dir := t.TempDir()
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", dir}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	if err := os.WriteFile(filepath.Join(dir, "a.jpg"), jpegImage(t, 32, 24, 60), 0o644); err != nil {
		t.Fatal(err)
	}
	door := map[string]any{"Name": "door", "Kind": "polygon", "Points": [][2]float64{{0, 0}, {0.5, 0}, {0.5, 1}}}
	wire := map[string]any{"Name": "wire", "Kind": "line", "Points": [][2]float64{{0.5, 0}, {0.5, 1}}}
	id := c.mustCall("CreateDevice", map[string]any{"Name": "zoned", "Driver": "replay", "Address": dir,
		"Zones": []any{door, wire}})["DeviceId"].(string)
	zones := func() string {
		d := c.mustCall("DescribeDevices", map[string]any{"DeviceIds": []string{id}})["DeviceSet"].([]any)[0].(map[string]any)
		return toJSON(d["Zones"])
	}
	if got := zones(); !strings.Contains(got, `"Name":"door"`) || !strings.Contains(got, `"Kind":"line"`) || !strings.Contains(got, `[0.5,1]`) {
		t.Fatalf("zones after create: %s", got)
	}
	for _, tc := range []struct {
		zones []any
		field string
	}{
		{[]any{door, door}, "Zones[1].Name"},
		{[]any{map[string]any{"Name": "x", "Kind": "polygon", "Points": [][2]float64{{0, 0}, {1, 1}}}}, "Zones[0].Points"},
		{[]any{map[string]any{"Name": "x", "Kind": "line", "Points": [][2]float64{{0, 0}, {1, 1}, {0, 1}}}}, "Zones[0].Points"},
		{[]any{map[string]any{"Name": "x", "Kind": "line", "Points": [][2]float64{{0, 0}, {1.5, 1}}}}, "Zones[0].Points[1]"},
		{[]any{map[string]any{"Name": "x", "Kind": "circle", "Points": [][2]float64{{0, 0}, {1, 1}}}}, "Zones[0].Kind"},
		{[]any{map[string]any{"Kind": "line", "Points": [][2]float64{{0, 0}, {1, 1}}}}, "Zones[0].Name"},
		{[]any{map[string]any{"Name": strings.Repeat("n", 65), "Kind": "line", "Points": [][2]float64{{0, 0}, {1, 1}}}}, "Zones[0].Name"},
	} {
		body := signedRaw(t, e, apptest.AdminSecretID, apptest.AdminSecretKey, "ModifyDevice", map[string]any{"DeviceId": id, "Zones": tc.zones})
		if !strings.Contains(body, `Parameter`) || !strings.Contains(body, `"Message":"`+tc.field+":") {
			t.Errorf("zones %s: %s, want an error naming %s", toJSON(tc.zones), body, tc.field)
		}
	}
	var many []any
	for i := range 33 {
		many = append(many, map[string]any{"Name": strings.Repeat("z", i+1), "Kind": "line", "Points": [][2]float64{{0, 0}, {1, 1}}})
	}
	if body := signedRaw(t, e, apptest.AdminSecretID, apptest.AdminSecretKey, "ModifyDevice", map[string]any{"DeviceId": id, "Zones": many}); !strings.Contains(body, "Zones:") {
		t.Errorf("33 zones: %s", body)
	}
	if got := zones(); !strings.Contains(got, `"door"`) {
		t.Fatalf("a refused change lost the zones: %s", got)
	}
	// A change without Zones keeps them; an empty list removes them.
	c.mustCall("ModifyDevice", map[string]any{"DeviceId": id, "Description": "front"})
	if got := zones(); !strings.Contains(got, `"door"`) {
		t.Fatalf("zones after an unrelated change: %s", got)
	}
	c.mustCall("ModifyDevice", map[string]any{"DeviceId": id, "Zones": []any{}})
	if got := zones(); got != "[]" {
		t.Fatalf("zones after removing them: %s", got)
	}

	// Thumbnails: within MaxAgeMs the last snapshot URL is answered again, without asking the device.
	first := c.mustCall("DescribeDeviceSnapshot", map[string]any{"DeviceId": id, "MaxAgeMs": 60000})["Url"]
	if again := c.mustCall("DescribeDeviceSnapshot", map[string]any{"DeviceId": id, "MaxAgeMs": 60000})["Url"]; again != first {
		t.Errorf("a snapshot within MaxAgeMs was taken again: %v then %v", first, again)
	}
	if fresh := c.mustCall("DescribeDeviceSnapshot", map[string]any{"DeviceId": id})["Url"]; fresh == first {
		t.Errorf("a snapshot without MaxAgeMs came from the cache")
	}

	vid := c.mustCall("CreateApp", map[string]any{"Name": "wall", "Role": "viewer"})["AppId"].(string)
	vk := c.mustCall("CreateAppKey", map[string]any{"AppId": vid})
	drivers := signedRaw(t, e, vk["SecretId"].(string), vk["SecretKey"].(string), "DescribeDeviceDrivers", map[string]any{})
	for _, want := range []string{`"Name":"replay"`, `"Name":"loop","Type":"boolean"`, `"Name":"Password","Type":"string","Required":false,`, `"Secret":true`, `"Enum":["tcp","udp"]`} {
		if !strings.Contains(drivers, want) {
			t.Errorf("DescribeDeviceDrivers as a viewer lacks %s: %.600s", want, drivers)
		}
	}
	if body := signedRaw(t, e, vk["SecretId"].(string), vk["SecretKey"].(string), "ModifyDevice", map[string]any{"DeviceId": id, "Zones": []any{wire}}); !strings.Contains(body, "AuthFailure") {
		t.Errorf("a viewer changed zones: %s", body)
	}
}

// TestTaskZoneFromDevice: a task over a replay device whose flow's zone node
// names a zone drawn on the device keeps only the objects inside it, scaled
// to the frame; redrawing the zone changes what passes.
func TestTaskZoneFromDevice(t *testing.T) {
	dir := t.TempDir()
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", dir}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".jpg"), jpegImage(t, 320, 240, uint8(60*i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	left := map[string]any{"Name": "entrance", "Kind": "polygon", "Points": [][2]float64{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}}
	devID := c.mustCall("CreateDevice", map[string]any{"Name": "gate", "Driver": "replay", "Address": dir, "Fps": 10,
		"Zones": []any{left}})["DeviceId"].(string)
	// Two objects per frame: one in the left quarter, one in the right quarter.
	doc := `{"name": "in-zone", "nodes": [
	  {"id": "objs", "kind": "function", "inputs": {"w": "$input.width"},
	   "config": {"script": "def main(input, params):\n  w = input['w']\n  return {'objects': [{'label': 'left', 'box': [w/4, 10, 4, 4]}, {'label': 'right', 'box': [3*w/4, 10, 4, 4]}]}\n"}, "next": ["zone"]},
	  {"id": "zone", "kind": "zone", "inputs": {"objects": "$objs.objects"}, "config": {"zone": "entrance"}, "next": ["save"]},
	  {"id": "save", "kind": "store", "config": {"type": "zoned"}, "inputs": {"labels": "$zone.objects"}}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "zone-watch", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)
	latest := func() string {
		r := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Limit": 1})
		if r["TotalCount"].(float64) == 0 {
			return ""
		}
		return toJSON(r["RecordSet"].([]any)[0].(map[string]any)["Data"])
	}
	testenv.Eventually(t, 60*time.Second, "a record of the left object only", func() bool {
		got := latest()
		return strings.Contains(got, `"label":"left"`) && !strings.Contains(got, `"label":"right"`)
	})
	// Redraw the zone over the right half: the task follows within the zones' cache time.
	right := map[string]any{"Name": "entrance", "Kind": "polygon", "Points": [][2]float64{{0.5, 0}, {1, 0}, {1, 1}, {0.5, 1}}}
	c.mustCall("ModifyDevice", map[string]any{"DeviceId": devID, "Zones": []any{right}})
	testenv.Eventually(t, 60*time.Second, "a record of the right object only", func() bool {
		got := latest()
		return strings.Contains(got, `"label":"right"`) && !strings.Contains(got, `"label":"left"`)
	})
	if s := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID}); s["Failed"].(float64) != 0 {
		t.Errorf("messages failed: %v", toJSON(s))
	}
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
}
