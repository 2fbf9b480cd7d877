package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// The quickstart: `serve --demo` on an empty data dir shows face records
// with crops and quality within 30 s, the same faces arrive on the SSE
// subscription, SIGTERM ends it cleanly, and a second start reuses the demo.
func TestDemoSmoke(t *testing.T) {
	dir := t.TempDir()
	start := func() (*exec.Cmd, *bytes.Buffer, *lockedWriter, string) {
		addr := freeAddr(t)
		var out bytes.Buffer
		logs := &lockedWriter{w: &bytes.Buffer{}}
		cmd := exec.Command(binary, "serve", "--demo", "--data-dir", dir, "--http-addr", addr)
		cmd.Env = cleanEnv()
		cmd.Stdout, cmd.Stderr = &out, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		testenv.Eventually(t, 60*time.Second, "demo instructions", func() bool { return strings.Contains(out.String(), "curl -N") })
		return cmd, &out, logs, addr
	}
	cmd, out, logs, addr := start()
	var d app.Demo
	b, err := os.ReadFile(filepath.Join(dir, app.DemoFile))
	if err != nil || json.Unmarshal(b, &d) != nil || d.SecretKey == "" {
		t.Fatalf("demo credentials: %v %s", err, b)
	}
	endpoint := "http://" + addr

	// SSE: read events while records accumulate.
	sseURL := regexp.MustCompile(`curl -N '([^']+)'`).FindStringSubmatch(out.String())[1]
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sseURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("SSE: %v %v", err, resp)
	}
	events := make(chan map[string]any, 100)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ce map[string]any
				if json.Unmarshal([]byte(line), &ce) == nil {
					events <- ce
				}
			}
		}
	}()
	signer := tc3.Signer{SecretID: d.SecretId, SecretKey: d.SecretKey}
	var rec map[string]any
	testenv.Eventually(t, 30*time.Second, "a face record with a crop and quality", func() bool {
		body, _ := json.Marshal(map[string]any{"ProjectId": "demo", "Types": []string{"face"}, "Limit": 1})
		raw, err := Call(ctx, http.DefaultClient, endpoint, signer, "DescribeRecords", body)
		if err != nil {
			return false
		}
		var r struct {
			Response struct{ RecordSet []map[string]any }
		}
		if json.Unmarshal(raw, &r) != nil || len(r.Response.RecordSet) == 0 {
			return false
		}
		rec = r.Response.RecordSet[0]
		return true
	})
	data := rec["Data"].(map[string]any)
	cropKey, _ := data["Crop"].(map[string]any)["ObjectKey"].(string)
	// The record holds the crop and the frame it was found in (Data.Image).
	var cropURL string
	for _, u := range rec["ObjectUrls"].([]any) {
		if strings.Contains(u.(string), "/objects/"+cropKey+"?") {
			cropURL = u.(string)
		}
	}
	if data["Quality"].(float64) <= 0 || cropKey == "" || data["Image"] == nil || len(rec["ObjectUrls"].([]any)) != 2 || cropURL == "" {
		t.Fatalf("face record %v", rec)
	}
	crop, err := http.Get(cropURL)
	if err != nil || crop.StatusCode != 200 || crop.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("crop: %v %v", err, crop)
	}
	crop.Body.Close()
	select {
	case ce := <-events:
		if ce["type"] != "tianshu.face.captured" || ce["data"].(map[string]any)["RecordId"] == "" {
			t.Fatalf("SSE event %v", ce)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no face event on the SSE subscription")
	}
	cancel()

	stop := func(cmd *exec.Cmd) {
		kids, _ := exec.Command("pgrep", "-P", strconv.Itoa(cmd.Process.Pid)).Output()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, tail(logs.w.String(), 2000))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("still running 10 s after SIGTERM")
		}
		// No child process is left behind (ffmpeg, algorithm processes).
		for _, pid := range strings.Fields(string(kids)) {
			if _, err := os.Stat("/proc/" + pid); err == nil {
				t.Fatalf("child process %s left behind", pid)
			}
		}
	}
	stop(cmd)

	// Again on the same data dir: the demo is reused, nothing duplicated.
	cmd2, out2, _, addr2 := start()
	if !strings.Contains(out2.String(), d.TaskId) {
		t.Fatalf("second start made a new demo:\n%s", out2.String())
	}
	body, _ := json.Marshal(map[string]any{"ProjectId": "demo"})
	raw, err := Call(context.Background(), http.DefaultClient, "http://"+addr2, signer, "DescribeDevices", body)
	if err != nil || !strings.Contains(string(raw), `"TotalCount":1`) {
		t.Fatalf("devices after a second start: %v %s", err, raw)
	}
	stop(cmd2)
}
