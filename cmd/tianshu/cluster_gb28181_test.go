package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// A GB/T 28181 camera's live video when the platform runs as separate
// processes: the control plane holds the SIP server the camera registers
// to, a worker runs the task. The worker asks the control plane's server
// over the bus to invite the camera to send RTP to the worker's own
// port; frame records arrive, the diagnosis (asked of the control plane)
// names the worker and counts the RTP it reported, and stopping the task
// hangs up (the camera records the BYE). Every party is its own process:
// control plane, worker, and the simulator (tianshu gb28181-sim).
func TestGB28181AcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	testenv.NeedCommand(t, "ffmpeg")
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	dbURL := storetest.URL(t, "postgres")
	env := cleanEnv("TIANSHU_MASTER_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"TIANSHU_ADMIN_SECRET_ID="+clusterSecretID, "TIANSHU_ADMIN_SECRET_KEY="+clusterSecretKey, "TIANSHU_ADMIN_PASSWORD=cluster-pass")
	shared := []string{"--db", dbURL, "--bus", testenv.NATSURL(), "--log.level", "info"}
	sipAddr := freeAddr(t)
	cp := startProc(t, "control", env, append([]string{"--target", "control", "--data-dir", t.TempDir(), "--gb28181.addr", sipAddr,
		"--gb28181.no-media-timeout", "3s"}, shared...)...)
	worker := fmt.Sprintf("gbw%d", rand.IntN(1e6))
	startProc(t, "worker", env, append([]string{"--target", "worker", "--worker.name", worker, "--data-dir", t.TempDir(),
		"--gb28181.no-media-timeout", "3s"}, shared...)...)
	ep := "http://" + cp.addr

	// Ids of this run, so that runs on one database do not meet.
	n := rand.IntN(1e6)
	camID, chID := fmt.Sprintf("34020000001320%06d", n), fmt.Sprintf("34020000001310%06d", n)
	call(t, ep, "CreateDevice", map[string]any{"Name": "gb-cam-" + camID, "Driver": "gb28181", "Address": camID, "Password": "gb-pass"})
	rec := filepath.Join(t.TempDir(), "received")
	sim := exec.Command(binary, "gb28181-sim", "-server", sipAddr, "-device-id", camID, "-channels", chID+"=gate", "-keepalive", "1s", "-record", rec)
	sim.Env = cleanEnv("TIANSHU_GB28181_SIM_PASSWORD=gb-pass")
	simLog := &lockedWriter{w: &bytes.Buffer{}}
	sim.Stderr = simLog
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sim.Process.Kill()
		_ = sim.Wait()
		if t.Failed() {
			t.Logf("simulator logs (tail):\n%s", tail(simLog.String(), 3000))
		}
	})

	var chDev string
	testenv.Eventually(t, 30*time.Second, "the camera's channel online", func() bool {
		d := call(t, ep, "DescribeDevices", map[string]any{"Filters": []any{map[string]any{"Name": "Driver", "Values": []string{"gb28181"}}}, "Limit": 100})
		for _, x := range d["DeviceSet"].([]any) {
			if m := x.(map[string]any); m["Address"] == chID && m["Status"] == "online" {
				chDev = m["DeviceId"].(string)
			}
		}
		return chDev != ""
	})
	flow := `{"name": "gb-frames-` + camID + `", "nodes": [{"id": "save", "kind": "store", "config": {"type": "frame"},
	  "inputs": {"frame": "$input.frame", "device": "$input.device", "width": "$input.width"}}]}`
	flowID := call(t, ep, "CreateFlow", map[string]any{"Document": flow})["FlowId"].(string)
	taskID := call(t, ep, "CreateTask", map[string]any{"Name": "gb-" + camID, "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": chDev}}})["TaskId"].(string)
	testenv.EventuallyExplained(t, 60*time.Second, "5 frame records from the worker", func() bool {
		return call(t, ep, "DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Limit": 1})["TotalCount"].(float64) >= 5
	}, func() string {
		return toJSONString(call(t, ep, "DescribeTaskStats", map[string]any{"TaskId": taskID})) + "\n" +
			toJSONString(call(t, ep, "DescribeDeviceDiagnosis", map[string]any{"DeviceId": chDev}))
	})
	var st map[string]any
	testenv.EventuallyExplained(t, 15*time.Second, "the diagnosis with the worker's RTP counts", func() bool {
		st, _ = call(t, ep, "DescribeDeviceDiagnosis", map[string]any{"DeviceId": chDev})["Stream"].(map[string]any)
		return st != nil && st["RtpPackets"].(float64) > 0
	}, func() string { return toJSONString(st) })
	if st["Receiver"] != worker || st["Active"] != true || st["Codec"] != "h264" || st["WrongSsrcPackets"].(float64) != 0 ||
		!strings.Contains(st["SdpSent"].(string), fmt.Sprintf("m=video %v ", st["LocalPort"])) {
		t.Errorf("diagnosis: %s", toJSONString(st))
	}
	if b, _ := os.ReadFile(rec); !strings.Contains(string(b), fmt.Sprintf("INVITE %s udp 127.0.0.1:%v", chID, st["LocalPort"])) {
		t.Errorf("the camera's INVITE names another media address than the worker's port %v: %s", st["LocalPort"], b)
	}

	call(t, ep, "StopTask", map[string]any{"TaskId": taskID})
	testenv.EventuallyExplained(t, 20*time.Second, "the camera hung up (BYE)", func() bool {
		b, _ := os.ReadFile(rec)
		return strings.Contains(string(b), "BYE "+chID)
	}, func() string { b, _ := os.ReadFile(rec); return string(b) })
}

func toJSONString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
