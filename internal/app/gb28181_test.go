package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/gb28181"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestMain doubles as a GB/T 28181 camera: with GB28181_SIM set to a JSON
// gb28181.SimConfig the test binary runs the simulator until killed, so
// the platform talks to a device in another process.
func TestMain(m *testing.M) {
	if cfg := os.Getenv("GB28181_SIM"); cfg != "" {
		var c gb28181.SimConfig
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		sm, err := gb28181.NewSimulator(c)
		if err == nil {
			err = sm.Run(context.Background())
		}
		fmt.Fprintln(os.Stderr, "gb28181 sim:", err)
		if errors.Is(err, gb28181.ErrRegisterRefused) {
			os.Exit(3)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func startGBSim(t *testing.T, c gb28181.SimConfig) (*exec.Cmd, func()) {
	t.Helper()
	b, _ := json.Marshal(c)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GB28181_SIM="+string(b))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	kill := func() { _ = cmd.Process.Kill(); <-done }
	t.Cleanup(kill)
	return cmd, kill
}

// TestGB28181Devices: a simulated GB/T 28181 NVR (a separate process)
// registers with its device password, its catalog's channels appear as
// devices with their GBK names decoded and their parent kept, a wrong
// password and an unknown id are refused and audited, keepalive loss
// takes the NVR and its channels offline, and a restarted simulator comes
// back without duplicating channels, its catalog change notification is
// applied (DEL deletes a channel's device, UPDATE renames, OFF and ADD),
// and deleting the NVR deletes its channels. (Live video: TestGB28181LiveVideo.)
func TestGB28181Devices(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Args: []string{"--gb28181.addr", "127.0.0.1:0", "--gb28181.keepalive-timeout", "3s"}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	sipAddr := e.P.GB28181.Addr()
	const nvrID = "34020000001320000001"
	nvr := c.mustCall("CreateDevice", map[string]any{"Name": "nvr-1", "Driver": "gb28181", "Address": nvrID, "Password": "gb-s3cret", "Group": "lobby"})["DeviceId"].(string)
	sim := gb28181.SimConfig{Server: sipAddr, DeviceID: nvrID, Password: "gb-s3cret", Keepalive: 300 * time.Millisecond,
		Channels: []gb28181.SimChannel{{ID: "34020000001310000001", Name: "大门入口"}, {ID: "34020000001310000002", Name: "停车场"}, {ID: "34020000002150000001", Name: "a business group, not a channel"}, {ID: "34020000001310000003", Name: "大门入口"}, {ID: "34020000001310000004", Name: "备用", Off: true}}}

	// Refused: a wrong password, and an id no device has.
	for i, bad := range []gb28181.SimConfig{{Server: sipAddr, DeviceID: nvrID, Password: "wrong"}, {Server: sipAddr, DeviceID: "34020000001320000077", Password: "gb-s3cret", Transport: "tcp"}} {
		cmd, _ := startGBSim(t, bad)
		waitUntil(t, 15*time.Second, func() bool { return cmd.ProcessState != nil })
		if code := cmd.ProcessState.ExitCode(); code != 3 {
			t.Fatalf("refused simulator %d exited %d, want 3", i, code)
		}
	}
	var refused int
	if err := e.P.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM audit_events WHERE action = 'GB28181Register' AND result LIKE 'AuthFailure.%'").Scan(&refused); err != nil || refused != 2 {
		t.Fatalf("audited refusals: %d, %v", refused, err)
	}

	_, kill := startGBSim(t, sim)
	devices := func() map[string]map[string]any {
		out := map[string]map[string]any{}
		d := c.mustCall("DescribeDevices", map[string]any{"Filters": []any{map[string]any{"Name": "Driver", "Values": []string{"gb28181"}}}, "Limit": 100})
		for _, x := range d["DeviceSet"].([]any) {
			m := x.(map[string]any)
			out[m["Address"].(string)] = m
		}
		return out
	}
	waitUntil(t, 20*time.Second, func() bool {
		ds := devices()
		return len(ds) == 5 && ds[nvrID]["Status"] == "online" && ds["34020000001310000003"]["Status"] == "online" && ds["34020000001310000004"]["Status"] == "offline"
	})
	ds := devices()
	ch1, ch3 := ds["34020000001310000001"], ds["34020000001310000003"]
	// Two channels share a name: whichever the device's documents bring
	// second gets its id appended (the documents arrive concurrently).
	names := map[any]bool{ch1["Name"]: true, ch3["Name"]: true}
	if !names["大门入口"] || !(names["大门入口 (34020000001310000001)"] || names["大门入口 (34020000001310000003)"]) || ds["34020000001310000002"]["Name"] != "停车场" {
		t.Fatalf("channel names: %q %q", ch1["Name"], ch3["Name"])
	}
	if opts := ch1["Options"].(map[string]any); opts["parent"] != nvrID || ch1["Group"] != "lobby" {
		t.Fatalf("channel: %v", ch1)
	}
	if strings.Contains(toJSON(ds), "gb-s3cret") || ds[nvrID]["HasPassword"] != true {
		t.Fatal("the device password shows")
	}
	p := c.mustCall("ProbeDevice", map[string]any{"DeviceId": nvr})
	if p["Online"] != true || p["Info"].(map[string]any)["manufacturer"] != "Tianshu" {
		t.Fatalf("probe: %v", p)
	}
	if p := c.mustCall("ProbeDevice", map[string]any{"DeviceId": ch1["DeviceId"]}); p["Online"] != true {
		t.Fatalf("probe of a channel: %v", p)
	}
	if p := c.mustCall("ProbeDevice", map[string]any{"DeviceId": ds["34020000001310000004"]["DeviceId"]}); p["Online"] != false || !strings.Contains(p["Message"].(string), "off") {
		t.Fatalf("probe of a channel the catalog says is off: %v", p)
	}

	kill()
	waitUntil(t, 20*time.Second, func() bool {
		ds := devices()
		return ds[nvrID]["Status"] == "offline" && ds["34020000001310000001"]["Status"] == "offline"
	})
	if r := devices()[nvrID]["Reason"]; r != "timeout" {
		t.Fatalf("offline reason %v", r)
	}
	// The restarted NVR answers the same catalog, then notifies changes
	// (a NOTIFY with an Event per item): one channel deleted, one renamed,
	// one switched off, one added.
	sim.Changes = []gb28181.SimChange{{Event: "DEL", SimChannel: gb28181.SimChannel{ID: "34020000001310000002"}},
		{Event: "UPDATE", SimChannel: gb28181.SimChannel{ID: "34020000001310000004", Name: "后门"}},
		{Event: "OFF", SimChannel: gb28181.SimChannel{ID: "34020000001310000001"}},
		{Event: "ADD", SimChannel: gb28181.SimChannel{ID: "34020000001310000005", Name: "新通道"}}}
	// Well after the catalog answer's documents are handled: one handled
	// after the DEL would bring the channel back.
	sim.ChangesAfter = 2 * time.Second
	startGBSim(t, sim)
	waitUntil(t, 30*time.Second, func() bool {
		ds := devices()
		return ds[nvrID]["Status"] == "online" && ds["34020000001310000005"] != nil && ds["34020000001310000002"] == nil &&
			ds["34020000001310000004"]["Name"] == "后门" && ds["34020000001310000001"]["Status"] == "offline"
	})
	ds = devices()
	// Not duplicated by the second catalog: four channels kept, one added.
	if len(ds) != 5 || ds["34020000001310000005"]["Name"] != "新通道" || ds["34020000001310000005"]["Status"] != "online" ||
		ds["34020000001310000005"]["Options"].(map[string]any)["parent"] != nvrID || ds["34020000001310000003"]["Status"] != "online" {
		t.Fatalf("after the catalog change: %s", toJSON(ds))
	}
	if p := c.mustCall("ProbeDevice", map[string]any{"DeviceId": ds["34020000001310000001"]["DeviceId"]}); p["Online"] != false {
		t.Fatalf("probe of a channel switched off: %v", p)
	}

	// Deleting the NVR deletes its channels, and only them: another
	// gb28181 device stays.
	const otherID = "34020000001320000009"
	c.mustCall("CreateDevice", map[string]any{"Name": "nvr-2", "Driver": "gb28181", "Address": otherID})
	// While a task reads from a channel, nothing is deleted.
	doc := `{"name": "frames", "nodes": [{"id": "save", "kind": "store", "config": {"type": "frame"},
	  "inputs": {"frame": "$input.frame", "device": "$input.device"}}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "watch-channel", "FlowId": flowID,
		"Sources": []any{map[string]any{"Type": "device", "Id": ds["34020000001310000003"]["DeviceId"]}}})["TaskId"].(string)
	if _, code := c.call("DeleteDevice", map[string]any{"DeviceId": nvr}); code != "ResourceInUse" {
		t.Fatalf("DeleteDevice while a task reads a channel: %q", code)
	}
	if n := len(devices()); n != 6 {
		t.Fatalf("%d gb28181 devices after a refused delete, want 6", n)
	}
	c.mustCall("DeleteTask", map[string]any{"TaskId": taskID})
	c.mustCall("DeleteDevice", map[string]any{"DeviceId": nvr})
	if ds := devices(); len(ds) != 1 || ds[otherID] == nil {
		t.Fatalf("gb28181 devices after deleting the NVR: %s", toJSON(ds))
	}
}

func waitUntil(t *testing.T, d time.Duration, f func() bool) {
	t.Helper()
	testenv.Eventually(t, d, "the condition", f)
}
