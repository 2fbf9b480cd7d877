package gb28181

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestMain doubles as the simulator process: with GB28181_SIM set to a
// JSON SimConfig the test binary runs one simulated device until killed,
// so the tests talk to a device in another process, as in the field.
func TestMain(m *testing.M) {
	if cfg := os.Getenv("GB28181_SIM"); cfg != "" {
		var c SimConfig
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		sm, err := NewSimulator(c)
		if err == nil {
			err = sm.Run(context.Background())
		}
		fmt.Fprintln(os.Stderr, "sim:", err)
		if errors.Is(err, ErrRegisterRefused) {
			os.Exit(3)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// startSim runs a simulator in a child process; the returned func kills it.
func startSim(t testing.TB, c SimConfig) (*exec.Cmd, func()) {
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
	kill := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(kill)
	return cmd, kill
}

type testDir struct {
	mu        sync.Mutex
	passwords map[string]string
	online    map[string]bool
	reasons   map[string][]string
	items     map[string]map[string]CatalogItem
}

func newTestDir(pw map[string]string) *testDir {
	return &testDir{passwords: pw, online: map[string]bool{}, reasons: map[string][]string{}, items: map[string]map[string]CatalogItem{}}
}

func (d *testDir) Password(_ context.Context, id string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.passwords[id]
	if !ok {
		return "", ErrUnknownDevice
	}
	return p, nil
}

func (d *testDir) Status(_ context.Context, id string, online bool, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.online[id] = online
	d.reasons[id] = append(d.reasons[id], reason)
}

func (d *testDir) Catalog(_ context.Context, id string, _ int, items []CatalogItem) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.items[id] == nil {
		d.items[id] = map[string]CatalogItem{}
	}
	for _, it := range items {
		d.items[id][it.DeviceID] = it
	}
}

func (d *testDir) isOnline(id string) (bool, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	on, ok := d.online[id]
	return on, ok
}

type recAudit struct {
	mu sync.Mutex
	ev []api.AuditEvent
}

func (a *recAudit) Record(_ context.Context, e api.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ev = append(a.ev, e)
	return nil
}

func (a *recAudit) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ev)
}

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	testenv.Eventually(t, d, what, f)
}

const (
	devID = "34020000001320000001"
	ch1   = "34020000001310000001"
	ch2   = "34020000001310000002"
	ch3   = "34020000001310000003"
)

func startServer(t *testing.T, dir Directory, cfg Config, audit api.Auditor) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, Options{Directory: dir, Auditor: audit})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestSimulatorRegistersKeepsAliveAndAnswersCatalog runs the simulator as
// a separate process over UDP and TCP: registration with digest, the
// catalog with GBK names decoded, device info, keepalive loss after the
// process is killed, and a restart.
func TestSimulatorRegistersKeepsAliveAndAnswersCatalog(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			dir := newTestDir(map[string]string{devID: "s3cret"})
			// Ten keepalives may go missing before the device is offline:
			// a loaded machine may starve the simulator for a second.
			s := startServer(t, dir, Config{KeepaliveTimeout: 3 * time.Second}, nil)
			sim := SimConfig{Server: s.Addr(), Transport: transport, DeviceID: devID, Password: "s3cret", Keepalive: 300 * time.Millisecond,
				Channels: []SimChannel{{ID: ch1, Name: "大门入口"}, {ID: ch2, Name: "停车场 东"}, {ID: ch3, Name: "Lobby"}}}
			_, kill := startSim(t, sim)
			waitFor(t, "registration", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return on })
			waitFor(t, "catalog", 10*time.Second, func() bool {
				dir.mu.Lock()
				defer dir.mu.Unlock()
				return len(dir.items[devID]) == 3
			})
			dir.mu.Lock()
			got := dir.items[devID][ch1]
			name2 := dir.items[devID][ch2].Name
			dir.mu.Unlock()
			if got.Name != "大门入口" || name2 != "停车场 东" || got.ParentID != devID || !got.Online() || !got.Channel() {
				t.Fatalf("catalog item: %+v, %q", got, name2)
			}
			ss, ok := s.Session(devID)
			if !ok || ss.Transport != map[string]string{"udp": "UDP", "tcp": "TCP"}[transport] {
				t.Fatalf("session: %+v", ss)
			}
			info, err := s.DeviceInfo(context.Background(), devID)
			if err != nil || info.Manufacturer != "Tianshu" || info.Channel != 3 {
				t.Fatalf("device info: %+v, %v", info, err)
			}
			kill()
			waitFor(t, "offline after keepalive loss", 10*time.Second, func() bool { on, ok := dir.isOnline(devID); return ok && !on })
			dir.mu.Lock()
			last := dir.reasons[devID][len(dir.reasons[devID])-1]
			dir.mu.Unlock()
			if last != ReasonKeepaliveTimeout {
				t.Fatalf("offline reason %q", last)
			}
			// The restarted device notifies catalog changes in a NOTIFY.
			const ch4 = "34020000001310000004"
			sim.Changes = []SimChange{{Event: "DEL", SimChannel: SimChannel{ID: ch2}}, {Event: "OFF", SimChannel: SimChannel{ID: ch1}},
				{Event: "ADD", SimChannel: SimChannel{ID: ch4, Name: "新通道"}}}
			sim.ChangesAfter = 200 * time.Millisecond
			startSim(t, sim)
			waitFor(t, "online after restart", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return on })
			waitFor(t, "catalog change", 10*time.Second, func() bool {
				dir.mu.Lock()
				defer dir.mu.Unlock()
				return dir.items[devID][ch4].Event == EventAdd
			})
			dir.mu.Lock()
			del, off, add := dir.items[devID][ch2], dir.items[devID][ch1], dir.items[devID][ch4]
			dir.mu.Unlock()
			if !del.Deleted() || off.Online() || !add.Online() || add.Name != "新通道" {
				t.Fatalf("changes: %+v %+v %+v", del, off, add)
			}
			ss, _ = s.Session(devID)
			if _, ok := ss.Channels[ch2]; ok || ss.Channels[ch1] || !ss.Channels[ch4] {
				t.Fatalf("session channels after the change: %v", ss.Channels)
			}
		})
	}
}

// TestWrongPasswordAndUnknownDeviceRefused: both are answered 403, audited
// and rate limited per source; the simulator process exits refused.
func TestWrongPasswordAndUnknownDeviceRefused(t *testing.T) {
	dir := newTestDir(map[string]string{devID: "right"})
	audit := &recAudit{}
	s := startServer(t, dir, Config{RefusedRate: 0.001, RefusedBurst: 2}, audit)
	for i, c := range []SimConfig{
		{Server: s.Addr(), DeviceID: devID, Password: "wrong"},
		{Server: s.Addr(), DeviceID: "34020000001320000099", Password: "right", Transport: "tcp"},
	} {
		cmd, _ := startSim(t, c)
		waitFor(t, "simulator exit", 15*time.Second, func() bool { return cmd.ProcessState != nil })
		if code := cmd.ProcessState.ExitCode(); code != 3 {
			t.Fatalf("simulator %d exit code %d, want 3 (refused)", i, code)
		}
	}
	if on, ok := dir.isOnline(devID); ok || on {
		t.Fatal("a refused device went online")
	}
	if n := audit.count(); n != 2 {
		t.Fatalf("audit events %d, want 2", n)
	}
	audit.mu.Lock()
	e := audit.ev[0]
	audit.mu.Unlock()
	if e.Action != "GB28181Register" || e.Result != "AuthFailure.wrong_password" || e.SourceIP != "127.0.0.1" {
		t.Fatalf("audit event %+v", e)
	}
	// Over the burst, refusals are dropped: the device gets no answer and
	// nothing more is audited.
	sm, err := NewSimulator(SimConfig{Server: s.Addr(), DeviceID: "34020000001320000098", Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := sm.Run(ctx); err == nil || errors.Is(err, ErrRegisterRefused) {
		t.Fatalf("flooding device: %v, want no answer", err)
	}
	if n := audit.count(); n != 2 {
		t.Fatalf("audit events after the limit %d, want 2", n)
	}
}

// TestGarbageDoesNotHurt sends malformed and oversized SIP over UDP and
// TCP, a MESSAGE with a broken body, and a keepalive from an unregistered
// id: the server answers what it can, stays up, and a device registers
// afterwards as usual.
func TestGarbageDoesNotHurt(t *testing.T) {
	dir := newTestDir(map[string]string{devID: "pw"})
	s := startServer(t, dir, Config{}, nil)
	u, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	big := strings.Repeat("A", 70000)
	for _, g := range []string{"", "\x00\x01\x02", "REGISTER\r\n\r\n", "REGISTER sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n",
		"MESSAGE sip:34020000002000000001@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1\r\nFrom: <sip:" + devID + "@x>;tag=1\r\nTo: <sip:y@x>\r\nCall-ID: 1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 5\r\n\r\n<Noti",
		"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1\r\n" + big[:60000] + "\r\n\r\n"} {
		_, _ = u.Write([]byte(g))
	}
	tc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tc.Write([]byte("REGISTER sip:x SIP/2.0\r\nX: " + big + "\r\n\r\n"))
	_, _ = tc.Write([]byte("garbage\r\n\r\n" + big))
	tc.Close()
	// A simulator in this process sends a broken document after registering.
	sm, err := NewSimulator(SimConfig{Server: s.Addr(), DeviceID: devID, Password: "pw", Keepalive: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sm.Run(ctx) }()
	waitFor(t, "registration after garbage", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return on })
	if err := sm.send(context.Background(), []byte("<Notify><CmdType>Keepalive</CmdType><SN>1</SN>")); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("broken document: %v, want 400", err)
	}
	if err := sm.send(context.Background(), []byte(strings.Repeat("<a>", MaxBodyBytes/3+10))); err == nil {
		t.Fatal("oversized document accepted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The server applies the unregistration after answering it: poll.
	waitFor(t, "offline after unregistering", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return !on })
}

// TestReplayedRegisterIsChallenged: a REGISTER captured with its digest
// and sent again is challenged, not accepted.
func TestReplayedRegisterIsChallenged(t *testing.T) {
	dir := newTestDir(map[string]string{devID: "pw"})
	s := startServer(t, dir, Config{}, nil)
	ua, _ := sipgo.NewUA()
	defer ua.Close()
	c, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := benchRegister(s.Addr(), devID, "")
	res, err := c.Do(ctx, req)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("first REGISTER: %v %v", res, err)
	}
	auth, err := authorize(res, req, devID, "pw")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 401} {
		res, err := c.Do(ctx, benchRegister(s.Addr(), devID, auth))
		if err != nil || res.StatusCode != want {
			t.Fatalf("REGISTER %d with the same digest: %v %v, want %d", i, res, err, want)
		}
	}
}

// TestRegistrationExpires: a registration not renewed ends at its expiry
// (the device goes offline with that reason), and one shorter than
// MinExpires is answered 423.
func TestRegistrationExpires(t *testing.T) {
	dir := newTestDir(map[string]string{devID: "pw"})
	s := startServer(t, dir, Config{MinExpires: time.Second, KeepaliveTimeout: time.Hour}, nil)
	_, kill := startSim(t, SimConfig{Server: s.Addr(), DeviceID: devID, Password: "pw", Expires: 2 * time.Second, Keepalive: time.Hour})
	waitFor(t, "registration", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return on })
	kill() // killed: no unregistration, no renewal
	waitFor(t, "expiry", 10*time.Second, func() bool { on, ok := dir.isOnline(devID); return ok && !on })
	dir.mu.Lock()
	last := dir.reasons[devID][len(dir.reasons[devID])-1]
	dir.mu.Unlock()
	if last != ReasonExpired {
		t.Fatalf("reason %q, want %q", last, ReasonExpired)
	}
	if _, ok := s.Session(devID); ok {
		t.Fatal("an expired session is kept")
	}
	strict := startServer(t, dir, Config{}, nil) // MinExpires 60s
	sm, _ := NewSimulator(SimConfig{Server: strict.Addr(), DeviceID: devID, Password: "pw", Expires: 10 * time.Second})
	// The refusal ends Run at once; the bound is for a machine under load.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sm.Run(ctx); !errors.Is(err, ErrRegisterRefused) || !strings.Contains(err.Error(), "423") {
		t.Fatalf("too brief: %v", err)
	}
}

// TestPlatformPassword: a device without a password of its own proves the
// platform's; without either it is refused.
func TestPlatformPassword(t *testing.T) {
	dir := newTestDir(map[string]string{devID: ""})
	s := startServer(t, dir, Config{Password: "platform-pw"}, nil)
	_, kill := startSim(t, SimConfig{Server: s.Addr(), DeviceID: devID, Password: "platform-pw"})
	waitFor(t, "registration with the platform password", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return on })
	kill()
	none := startServer(t, newTestDir(map[string]string{devID: ""}), Config{}, nil)
	cmd, _ := startSim(t, SimConfig{Server: none.Addr(), DeviceID: devID, Password: ""})
	waitFor(t, "refusal", 10*time.Second, func() bool { return cmd.ProcessState != nil })
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("no password anywhere: exit %d, want 3 (refused)", code)
	}
}
