package device

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

const secretBody = "tianshu_secret_metric 42"

// policyRuntime returns a runtime whose outbound policy refuses loopback
// but for the given host:port addresses, as a real server's does.
func outboundRuntime(t *testing.T, allow ...string) *Runtime {
	t.Helper()
	p, err := netpolicy.New(netpolicy.Config{Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(Options{Outbound: p, FFmpeg: "/nonexistent/ffmpeg", ProbeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

func hostPort(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "tcp://")
	host, _, _ := strings.Cut(u, "/")
	return host
}

func portOf(hp string) string {
	_, port, _ := net.SplitHostPort(hp)
	return port
}

// refusedProbe checks that err is the policy's refusal and carries none of
// the refused server's bytes.
func refusedProbe(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, netpolicy.ErrRefused) || ReasonOf(err) != ReasonPolicy {
		t.Errorf("%s: got %v (reason %s); want the outbound policy's refusal", what, err, ReasonOf(err))
	}
	if err != nil && strings.Contains(err.Error(), secretBody) {
		t.Errorf("%s: the refused server's bytes came back: %v", what, err)
	}
}

func secretServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, secretBody)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestOutboundHTTPSnapshot(t *testing.T) {
	secret, hits := secretServer(t)
	cam := httptest.NewServer(newCamera("basic", "admin", "pw", testJPEG(t, 32, 24, 1)))
	defer cam.Close()
	rt := outboundRuntime(t, hostPort(cam.URL))
	ctx := context.Background()

	for _, addr := range []string{secret.URL + "/metrics", "http://localhost:" + portOf(hostPort(secret.URL)) + "/metrics", "http://169.254.169.254/latest/meta-data/"} {
		_, err := rt.Probe(ctx, Config{ID: "c", Driver: "http-snapshot", Address: addr})
		refusedProbe(t, addr, err)
	}
	if hits.Load() != 0 {
		t.Errorf("the refused server was reached %d times", hits.Load())
	}
	res, err := rt.Probe(ctx, Config{ID: "c", Driver: "http-snapshot", Address: cam.URL + "/snap.jpg", Username: "admin", Password: "pw"})
	if err != nil || !res.Online || len(res.Snapshot) == 0 {
		t.Fatalf("allowed camera: %v %+v", err, res.Info)
	}
}

// TestProbeErrorsDoNotEchoThePeer: an allowed address that answers with
// something other than a JPEG is reported without its bytes.
func TestProbeErrorsDoNotEchoThePeer(t *testing.T) {
	secret, _ := secretServer(t)
	rt := outboundRuntime(t, hostPort(secret.URL))
	_, err := rt.Probe(context.Background(), Config{ID: "c", Driver: "http-snapshot", Address: secret.URL + "/metrics"})
	if ReasonOf(err) != ReasonBadImage {
		t.Fatalf("got %v", err)
	}
	for _, leak := range []string{"tianshu_secret", "version=0.0.4"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("probe error echoes the peer (%q): %v", leak, err)
		}
	}
}

func TestOutboundONVIF(t *testing.T) {
	secret, hits := secretServer(t)
	o, addr := startONVIF(t, "rtsp://127.0.0.1:1/none")
	snap := hostPort(strings.TrimPrefix(o.snapshotURI, "http://"))
	rt := outboundRuntime(t, hostPort(addr), snap)
	ctx := context.Background()
	for _, a := range []string{secret.URL + "/onvif/device_service", "http://localhost:" + portOf(hostPort(secret.URL)) + "/onvif/device_service"} {
		_, err := rt.Probe(ctx, Config{ID: "o", Driver: "onvif", Address: a, Username: "admin", Password: "12345"})
		refusedProbe(t, a, err)
	}
	if hits.Load() != 0 {
		t.Errorf("the refused server was reached %d times", hits.Load())
	}
	res, err := rt.Probe(ctx, Config{ID: "o", Driver: "onvif", Address: addr, Username: "admin", Password: "12345",
		Options: map[string]any{"mode": "snapshot"}})
	if err != nil || !res.Online || len(res.Snapshot) == 0 {
		t.Fatalf("allowed device: %v", err)
	}

	// A device whose snapshot URI points at a refused address: the probe
	// gets the device's information, and no snapshot from there.
	o.snapshotURI = secret.URL + "/metrics"
	res, err = rt.Probe(ctx, Config{ID: "o", Driver: "onvif", Address: addr, Username: "admin", Password: "12345",
		Options: map[string]any{"mode": "snapshot"}})
	if hits.Load() != 0 || len(res.Snapshot) != 0 {
		t.Errorf("snapshot URI on a refused address was fetched: %v", err)
	}
}

// TestOutboundRTSP: the address is checked before ffmpeg starts (the
// runtime's ffmpeg does not exist, so a start would fail differently).
func TestOutboundRTSP(t *testing.T) {
	free := freePort(t)
	rt := outboundRuntime(t, fmt.Sprintf("127.0.0.1:%d", free))
	ctx := context.Background()
	for _, a := range []string{"rtsp://127.0.0.1:554/live", "rtsp://localhost/live", "rtsp://[::1]:8554/x", "rtsp://169.254.169.254/x"} {
		_, err := rt.Probe(ctx, Config{ID: "r", Driver: "rtsp", Address: a})
		refusedProbe(t, a, err)
		src, err := rt.Open(ctx, Config{ID: "r", Driver: "rtsp", Address: a}, nil)
		if err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, src, waitLong, "error", func(s Status) bool { return s.State == StateError })
		if st.Reason != ReasonPolicy || strings.Contains(st.LastError, "nonexistent") {
			t.Errorf("%s: open status %+v", a, st)
		}
		src.Close()
	}

	// Allowed: ffmpeg runs and finds nobody listening.
	testenv.NeedCommand(t, "ffmpeg")
	p, _ := netpolicy.New(netpolicy.Config{Allow: []string{fmt.Sprintf("127.0.0.1:%d", free)}})
	rt2, err := NewRuntime(Options{Outbound: p})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	_, err = rt2.Probe(ctx, Config{ID: "r", Driver: "rtsp", Address: fmt.Sprintf("rtsp://127.0.0.1:%d/none", free)})
	if ReasonOf(err) != ReasonUnreachable {
		t.Fatalf("allowed address: %v (%s)", err, ReasonOf(err))
	}
}

func TestOutboundMQTT(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := portOf(ln.Addr().String())
	broker := mqttBrokerIfAny()
	var allow []string
	if broker != "" {
		allow = append(allow, hostPort(broker))
	}
	rt := outboundRuntime(t, allow...)
	ctx := context.Background()
	for _, a := range []string{"tcp://" + ln.Addr().String(), "tcp://localhost:" + port, "ws://localhost:" + port + "/mqtt"} {
		_, err := rt.Probe(ctx, Config{ID: "m", Driver: "mqtt", Address: a, Options: map[string]any{"topic": "x", "timeout": "2s"}})
		refusedProbe(t, a, err)
	}
	if accepted.Load() != 0 {
		t.Errorf("the refused broker was reached %d times", accepted.Load())
	}
	if broker == "" {
		testenv.Unavailable(t, "no MQTT broker for the allowed case (TIANSHU_TEST_MQTT)")
	}
	if res, err := rt.Probe(ctx, Config{ID: "m", Driver: "mqtt", Address: broker, Options: map[string]any{"topic": "x"}}); err != nil || !res.Online {
		t.Fatalf("allowed broker: %v", err)
	}
}

// mqttBrokerIfAny returns the test broker's URL when one answers.
func mqttBrokerIfAny() string {
	addr := testenv.Getenv("TIANSHU_TEST_MQTT", "127.0.0.1:1883")
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	c.Close()
	return "tcp://" + addr
}

func TestOutboundDiscovery(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var probes atomic.Int32
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			probes.Add(1)
			var p struct {
				MessageID string `xml:"Header>MessageID"`
			}
			if xml.Unmarshal(buf[:n], &p) == nil {
				_, _ = pc.WriteTo([]byte(probeMatch("urn:uuid:cam-1", p.MessageID)), from)
			}
		}
	}()
	deny, _ := netpolicy.New(netpolicy.Config{})
	ctx := context.Background()
	port := portOf(pc.LocalAddr().String())
	for _, target := range []string{pc.LocalAddr().String(), "localhost:" + port, "169.254.169.254:3702", "10.0.0.1:22"} {
		p := deny
		if strings.HasPrefix(target, "10.") {
			p, _ = netpolicy.New(netpolicy.Config{Deny: []string{"10.0.0.0/8:22"}})
		}
		_, err := Discover(ctx, DiscoverOptions{Timeout: 200 * time.Millisecond, Target: target, Outbound: p})
		if !errors.Is(err, netpolicy.ErrRefused) {
			t.Errorf("%s: got %v; want refused", target, err)
		}
	}
	if probes.Load() != 0 {
		t.Errorf("the refused target got %d probes", probes.Load())
	}
	allow, _ := netpolicy.New(netpolicy.Config{Allow: []string{pc.LocalAddr().String()}})
	got, err := Discover(ctx, DiscoverOptions{Timeout: 500 * time.Millisecond, Target: pc.LocalAddr().String(), Outbound: allow})
	if err != nil || len(got) != 1 {
		t.Fatalf("allowed target: %v %v", got, err)
	}
}

// TestOutboundAdapterAddress: an adapter connects by itself, so the address
// it is handed is checked before it starts (the adapter command does not
// exist: a start would fail as a process error).
func TestOutboundAdapterAddress(t *testing.T) {
	// The adapter is a program the exec policy allows that exits at once:
	// a start fails as a process error.
	dir := t.TempDir()
	adapter := filepath.Join(dir, "adapter")
	if err := os.WriteFile(adapter, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := netpolicy.New(netpolicy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := execpolicy.New(execpolicy.Config{Allow: []string{dir}, Limits: execpolicy.Default().Limits})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(Options{Outbound: out, Exec: pol, ProbeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	ctx := context.Background()
	cfg := func(addr string) Config {
		return Config{ID: "a", Driver: "adapter", Address: addr, Options: map[string]any{"command": adapter}}
	}
	for _, a := range []string{"127.0.0.1", "localhost:8000", "http://169.254.169.254/", "rtsp://[::1]/live", "[fe80::1]:80"} {
		_, err := rt.Probe(ctx, cfg(a))
		refusedProbe(t, a, err)
	}
	for _, a := range []string{"10.1.2.3:8000", "rtsp://192.168.1.64/live", "SN-0042", ""} {
		if _, err := rt.Probe(ctx, cfg(a)); ReasonOf(err) != ReasonProcess {
			t.Errorf("%s: got %v; want the adapter started (and failing)", a, err)
		}
	}
}
