package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// readyz returns /readyz's status and body.
func readyz(t *testing.T, e *apptest.Env) (int, string) {
	t.Helper()
	resp, err := http.Get(e.Endpoint + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readyzLine returns the line of /readyz's body that starts with check+":".
func readyzLine(body, check string) string {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, check+":") {
			return l
		}
	}
	return ""
}

// metricValue sums the samples of the family name whose labels include
// every label in want.
func metricValue(t *testing.T, e *apptest.Env, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := e.P.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// flowDoc is a flow document whose description makes a row of about size
// bytes, so that a few writes fill a small disk.
func flowDoc(name string, size int) string {
	return fmt.Sprintf(`{"name": %q, "description": %q, "nodes": [{"id": "n", "kind": "noop"}]}`,
		name, strings.Repeat("x", size))
}

func randName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// assertFlowsKept checks that every flow an action acknowledged is in the
// store: a fault may refuse a write, never lose one that was answered.
func assertFlowsKept(t *testing.T, e *apptest.Env, acked []string) {
	t.Helper()
	for _, id := range acked {
		var n int
		if err := e.P.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM flows WHERE id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("acknowledged flow %s is not in the store", id)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and
// unmounts it when the test ends. It needs root; elsewhere the test is
// skipped (failed in CI).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Unavailable(t, fmt.Sprintf("mount tmpfs: %v: %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("fill %s: %v", path, err)
		}
	}
}

// TestDiskFull: with the SQLite store on a small tmpfs that fills up, a
// write answers ResourceInsufficient.StorageFull (not InternalError), the
// fault is counted and flagged in metrics, /readyz answers 503 naming the
// disk, and once space is freed the platform is ready again by itself and
// writes succeed; no acknowledged write is lost.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	e := apptest.Start(t, apptest.Options{Args: []string{"--db", "sqlite://" + filepath.Join(dir, "tianshu.db"),
		"--store.min-free-bytes", "1048576"}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	if code, body := readyz(t, e); code != http.StatusOK {
		t.Fatalf("readyz before the disk fills: %d %s", code, body)
	}
	var acked []string
	acked = append(acked, c.mustCall("CreateFlow", map[string]any{"Document": flowDoc("before-"+randName(), 1000)})["FlowId"].(string))

	fill := filepath.Join(dir, "fill")
	fillDisk(t, fill)
	full := false
	for i := 0; i < 200 && !full; i++ {
		r, code := c.call("CreateFlow", map[string]any{"Document": flowDoc(fmt.Sprintf("full-%d-%s", i, randName()), 20000)})
		switch code {
		case "":
			acked = append(acked, r["FlowId"].(string))
		case "ResourceInsufficient.StorageFull":
			full = true
		default:
			t.Fatalf("write on a full disk answered %s, want ResourceInsufficient.StorageFull", code)
		}
	}
	if !full {
		t.Fatal("200 writes on a full disk all succeeded")
	}
	if v := metricValue(t, e, "tianshu_store_faults_total", map[string]string{"kind": "storage_full"}); v < 1 {
		t.Errorf("tianshu_store_faults_total{kind=storage_full} = %v, want >= 1", v)
	}
	if v := metricValue(t, e, "tianshu_store_storage_full", nil); v != 1 {
		t.Errorf("tianshu_store_storage_full = %v, want 1", v)
	}
	testenv.Eventually(t, 10*time.Second, "/readyz 503 naming the disk", func() bool {
		code, body := readyz(t, e)
		l := readyzLine(body, "disk")
		return code == http.StatusServiceUnavailable && l != "" && !strings.HasPrefix(l, "disk: ok")
	})
	_, body := readyz(t, e)
	t.Logf("/readyz on a full disk:\n%s", body)
	// Readiness's small write probe may still fit on the full disk; the
	// flag stays up until there is room again.
	if v := metricValue(t, e, "tianshu_store_storage_full", nil); v != 1 {
		t.Errorf("tianshu_store_storage_full after readiness probes on a full disk = %v, want 1", v)
	}

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "/readyz 200 after space is freed", func() bool {
		code, body := readyz(t, e)
		return code == http.StatusOK && strings.HasPrefix(readyzLine(body, "disk"), "disk: ok") &&
			strings.HasPrefix(readyzLine(body, "store_write"), "store_write: ok")
	})
	_, body = readyz(t, e)
	t.Logf("/readyz after space is freed:\n%s", body)
	acked = append(acked, c.mustCall("CreateFlow", map[string]any{"Document": flowDoc("after-"+randName(), 1000)})["FlowId"].(string))
	if v := metricValue(t, e, "tianshu_store_storage_full", nil); v != 0 {
		t.Errorf("tianshu_store_storage_full after a write succeeded = %v, want 0", v)
	}
	assertFlowsKept(t, e, acked)
}

// TestStoreConnectionsTerminated: while the server terminates the
// platform's connections, reads succeed (retried once on a fresh
// connection), writes either succeed or answer ResourceUnavailable naming
// the store (never InternalError), and every acknowledged write is kept.
func TestStoreConnectionsTerminated(t *testing.T) {
	for _, dialect := range []string{"postgres", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			dbURL, kill := storetest.Terminating(t, dialect)
			e := apptest.Start(t, apptest.Options{Args: []string{"--db", dbURL}})
			c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
			var acked []string
			unavailable := 0
			for i := 0; i < 20; i++ {
				kill(t)
				if _, code := c.call("DescribeFlows", map[string]any{"Limit": 10}); code != "" {
					t.Fatalf("round %d: read after the connections were terminated answered %s", i, code)
				}
				kill(t)
				r, code := c.call("CreateFlow", map[string]any{"Document": flowDoc(fmt.Sprintf("conn-%d-%s", i, randName()), 10)})
				switch code {
				case "":
					acked = append(acked, r["FlowId"].(string))
				case "ResourceUnavailable":
					unavailable++
				default:
					t.Fatalf("round %d: write after the connections were terminated answered %s, want success or ResourceUnavailable", i, code)
				}
			}
			// Then while the server keeps terminating connections, calls
			// in flight lose theirs: each answers success or
			// ResourceUnavailable.
			var mu sync.Mutex
			var wg sync.WaitGroup
			done := make(chan struct{})
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
					for j := 0; j < 10; j++ {
						_, rcode := c.call("DescribeFlows", map[string]any{"Limit": 10, "Offset": w*1000 + j})
						r, wcode := c.call("CreateFlow", map[string]any{"Document": flowDoc(fmt.Sprintf("busy-%d-%d-%s", w, j, randName()), 10)})
						mu.Lock()
						for _, code := range []string{rcode, wcode} {
							switch code {
							case "":
							case "ResourceUnavailable":
								unavailable++
							default:
								t.Errorf("call while connections are terminated answered %s, want success or ResourceUnavailable", code)
							}
						}
						if wcode == "" {
							acked = append(acked, r["FlowId"].(string))
						}
						mu.Unlock()
					}
				}()
			}
			go func() { wg.Wait(); close(done) }()
			for stop := false; !stop; {
				select {
				case <-done:
					stop = true
				default:
					kill(t)
				}
			}
			t.Logf("%d writes acknowledged, %d answered ResourceUnavailable", len(acked), unavailable)
			if unavailable > 0 {
				if v := metricValue(t, e, "tianshu_store_faults_total", map[string]string{"kind": "unavailable"}); v < 1 {
					t.Errorf("tianshu_store_faults_total{kind=unavailable} = %v after ResourceUnavailable answers", v)
				}
			}
			assertFlowsKept(t, e, acked)
		})
	}
}

// startNATS starts a NATS server with JetStream on port (-1: a free one)
// and dir, the way an external bus runs; the test owns it.
func startNATS(t *testing.T, port int, dir string) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return s
}

// TestBusDownReadiness: /readyz names the bus as failing while the NATS
// server is down, an action that needs the bus answers ResourceUnavailable
// meanwhile, and the platform is ready again by itself once it is back.
func TestBusDownReadiness(t *testing.T) {
	dir := t.TempDir()
	srv := startNATS(t, natsserver.RANDOM_PORT, dir)
	port := srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { srv.Shutdown() })
	e := apptest.Start(t, apptest.Options{Args: []string{"--bus", fmt.Sprintf("nats://127.0.0.1:%d", port)}})
	testenv.Eventually(t, 10*time.Second, "/readyz 200 with bus ok", func() bool {
		code, body := readyz(t, e)
		return code == http.StatusOK && strings.HasPrefix(readyzLine(body, "bus"), "bus: ok")
	})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	sub := c.mustCall("CreateSubscription", map[string]any{"Name": "browser", "Channel": map[string]any{"Type": "sse"}})["SubscriptionId"].(string)

	srv.Shutdown()
	srv.WaitForShutdown()
	testenv.Eventually(t, 20*time.Second, "/readyz 503 naming the bus", func() bool {
		code, body := readyz(t, e)
		l := readyzLine(body, "bus")
		return code == http.StatusServiceUnavailable && l != "" && !strings.HasPrefix(l, "bus: ok")
	})

	_, body := readyz(t, e)
	t.Logf("/readyz with the bus down:\n%s", body)
	// An action that needs the bus answers the retryable code naming it.
	_, code := c.call("ReplaySubscription", map[string]any{"SubscriptionId": sub, "StartSeq": 1})
	if code != "ResourceUnavailable" {
		t.Errorf("ReplaySubscription with the bus down answered %q, want ResourceUnavailable", code)
	}
	srv = startNATS(t, port, dir)
	testenv.Eventually(t, 30*time.Second, "/readyz 200 once the bus is back", func() bool {
		code, body := readyz(t, e)
		return code == http.StatusOK && strings.HasPrefix(readyzLine(body, "bus"), "bus: ok")
	})
}
