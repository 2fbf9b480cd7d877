package bench

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Node-RED runs the InvokeFlow rows' flows (bench/testdata/nodered-flows.json:
// http in → function → switch → http response, and http in → split →
// function → join → http response) for the comparison the issue asks for.
// It is found at $BENCH_NODE_RED (its node-red command or red.js) or as
// node-red on PATH; without it the rows are skipped, saying so. Install:
//
//	npm install --prefix /tmp/nodered --ignore-scripts node-red
//	BENCH_NODE_RED=/tmp/nodered/node_modules/.bin/node-red go test ./bench -run '^$' -bench NodeRED -benchtime 1x
const (
	nodeREDFlows    = "testdata/nodered-flows.json"
	nodeREDSettings = "testdata/nodered-settings.js"
)

// nodeRED starts Node-RED on a free loopback port with the bench's flows
// and returns its base URL and a reader of its process's CPU time; the
// process stops at cleanup.
func nodeRED(b *testing.B) (string, func() time.Duration) {
	bin := os.Getenv("BENCH_NODE_RED")
	if bin == "" {
		p, err := exec.LookPath("node-red")
		if err != nil {
			b.Skip("node-red not found: set BENCH_NODE_RED to its node-red command (npm install --prefix /tmp/nodered --ignore-scripts node-red)")
		}
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		b.Skipf("BENCH_NODE_RED=%s: %v", bin, err)
	}
	dir := b.TempDir()
	flows, err := os.ReadFile(nodeREDFlows)
	if err != nil {
		b.Fatal(err)
	}
	flowFile := filepath.Join(dir, "flows.json")
	if err := os.WriteFile(flowFile, flows, 0o600); err != nil {
		b.Fatal(err)
	}
	settings, err := filepath.Abs(nodeREDSettings)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	args := []string{"-p", strconv.Itoa(port), "-u", dir, "-s", settings, flowFile}
	var cmd *exec.Cmd
	if strings.HasSuffix(bin, ".js") {
		cmd = exec.Command("node", append([]string{bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Env = append(os.Environ(), "NODE_ENV=production")
	if err := cmd.Start(); err != nil {
		b.Skipf("start node-red (%s): %v", bin, err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, url+"/face-route", strings.NewReader(`{"FlowId":"x","Input":{"faces":[]}}`))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("node-red did not answer within 60 s; its log:\n%s", log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return url, func() time.Duration { return procCPU(b, cmd.Process.Pid) }
}

// procCPU returns the user and system CPU time of process pid so far.
func procCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis: state is field 3,
	// utime 14 and stime 15 (proc(5)), in clock ticks of 1/100 s.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// BenchmarkNodeRED runs the two InvokeFlow flows in Node-RED under the
// load of the gateway rows, each against the same hand-written Go handler
// as its InvokeFlow row, so that the three can be compared on one machine:
// Tianshu ÷ Go (BenchmarkInvokeFlowGateway, BenchmarkInvokeFlowSplit) and
// Node-RED ÷ Go (here). CPU per call counts Node-RED's process too.
func BenchmarkNodeRED(b *testing.B) {
	url, cpu := nodeRED(b)
	faces := benchFaces()
	for _, c := range []struct {
		path, metric string
		bare         http.Handler
	}{
		{"/face-route", "Node-RED http in → function → switch → http response, 5 faces", routeHandler()},
		{"/face-split", "Node-RED http in → split → function → join → http response, 5 faces", splitHandler()},
	} {
		b.Run(strings.TrimPrefix(c.path, "/"), func(b *testing.B) {
			body := facesBody("flow-node-red", faces)
			compareSides(b, plainWire(url+c.path, body), cpu, body, c.bare, c.metric, "the same logic as a Go handler", "report")
		})
	}
}
