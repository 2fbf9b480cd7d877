package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// A graceful stop under load: SIGTERM arrives during a burst of concurrent
// requests, on keep-alive connections and on new ones, to a server whose
// connection cap keeps most of them waiting to be accepted. Every request
// either gets a whole HTTP answer or fails to connect; none is cut off
// (EOF, reset) after its connection was made. The stop is logged at INFO
// and the process exits 0.
func TestSIGTERMAnswersWhatItAccepted(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	// A small connection cap keeps connections queued in the kernel when
	// SIGTERM comes: the case where a stop used to reset them. The
	// keep-alive clients hold at most 20 of its 32 connections, so that
	// the others, each closed after its answer, keep the queue moving.
	cmd := exec.Command(binary, "serve", "--data-dir", dir, "--http-addr", addr, "--api.max-connections", "32", "--shutdown-grace", "60s")
	cmd.Env = cleanEnv()
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	base := "http://" + addr
	waitReady(t, addr)

	const workers, perWorker = 100, 4 // 400 requests
	keepAlive := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: 20}
	fresh := &http.Transport{DisableKeepAlives: true}
	defer keepAlive.CloseIdleConnections()
	var answered, refused atomic.Int64
	var mu sync.Mutex
	var cut []string // requests that lost their connection after it was made
	one := func(client *http.Client, i int) {
		// An unsigned action goes through the gateway and gets its error
		// answer; /healthz is the cheapest request there is.
		var req *http.Request
		if i%2 == 0 {
			req, _ = http.NewRequest(http.MethodPost, base+"/", strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-TC-Action", "DescribeApps")
		} else {
			req, _ = http.NewRequest(http.MethodGet, base+"/healthz", nil)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil {
				answered.Add(1)
				return
			}
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" && errors.Is(err, syscall.ECONNREFUSED) {
			refused.Add(1)
			return
		}
		mu.Lock()
		cut = append(cut, err.Error())
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range workers {
		client := &http.Client{Transport: keepAlive}
		if w%2 == 1 {
			client = &http.Client{Transport: fresh}
		}
		wg.Go(func() {
			for i := range perWorker {
				one(client, w+i)
			}
		})
	}
	testenv.Eventually(t, 60*time.Second, "the first answers of the burst", func() bool { return answered.Load() >= 40 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	exitErr := waitExit(t, cmd)
	out := logs.String()
	if len(cut) > 0 {
		t.Errorf("%d of %d requests lost their connection without an answer (%d answered, %d refused); first: %s",
			len(cut), workers*perWorker, answered.Load(), refused.Load(), cut[0])
	}
	if answered.Load()+refused.Load()+int64(len(cut)) != workers*perWorker {
		t.Errorf("requests unaccounted for: %d answered, %d refused, %d cut", answered.Load(), refused.Load(), len(cut))
	}
	if exitErr != nil {
		t.Errorf("exit after SIGTERM: %v", exitErr)
	}
	checkStopLoggedAtInfo(t, out)
	t.Logf("%d answered, %d refused before being accepted", answered.Load(), refused.Load())
}

// waitReady waits until the server at addr answers /readyz with 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// waitExit waits for cmd, signalled to stop, to exit and returns how.
func waitExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	testenv.Eventually(t, 90*time.Second, "exit after the stop signal", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	return err
}

// checkStopLoggedAtInfo fails t unless logs, a serve process's JSON log,
// show a stop logged at INFO only, from "stopping" to "tianshu stopped".
func checkStopLoggedAtInfo(t *testing.T, logs string) {
	t.Helper()
	stopping, stopped := false, false
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line.Msg == "stopping" {
			stopping = true
		}
		if stopping && line.Level != "INFO" && line.Level != "DEBUG" {
			t.Errorf("a normal stop logged at %s: %s", line.Level, sc.Text())
		}
		if line.Msg == "tianshu stopped" && line.Level == "INFO" {
			stopped = true
		}
	}
	if !stopping || !stopped {
		t.Errorf("stop not logged at INFO (stopping %v, stopped %v):\n%s", stopping, stopped, tail(logs, 3000))
	}
}

// String returns what was written so far.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// The grace period bounds the stop: a request still unfinished when it
// ends (here its body never comes) is closed, and the log says how many
// connections were still open.
func TestSIGTERMGraceBoundsTheStop(t *testing.T) {
	addr := freeAddr(t)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	cmd := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--http-addr", addr, "--shutdown-grace", "1s")
	cmd.Env = cleanEnv()
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitReady(t, addr)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitErr := waitExit(t, cmd)
	out := logs.String()
	if !strings.Contains(out, `"msg":"shutdown grace ended; closing connections still open","open_connections":1`) {
		t.Errorf("no WARN for the connection closed at the end of the grace period:\n%s", tail(out, 3000))
	}
	if exitErr == nil || !strings.Contains(out, `"msg":"stop incomplete"`) {
		t.Errorf("a stop cut short by its grace period exited %v", exitErr)
	}
}
