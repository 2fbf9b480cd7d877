package gb28181

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// relayBus is the embedded NATS bus, whose ephemeral messages are the
// relay between the server and a Remote, as in the platform.
func relayBus(t *testing.T) Relay {
	t.Helper()
	b, err := bus.Open(t.Context(), "nats://embedded", bus.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	eph, ok := b.(bus.Ephemeral)
	if !ok {
		t.Fatal("the embedded bus carries no ephemeral messages")
	}
	return eph
}

// TestRemotePlay: a Remote (a worker's side, no SIP server) has the
// server invite a simulated camera (another process) to send video to
// the Remote's own port, decodes it, and hangs up through the server;
// the server's diagnosis names the receiver and counts what it reported.
// A device no server has is not registered; garbage on the relay's
// subjects hurts nobody.
func TestRemotePlay(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	relay := relayBus(t)
	dir := newTestDir(map[string]string{devID: "s3cret"})
	s := startServer(t, dir, Config{}, nil)
	stop, err := s.ServeRemote(relay)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, junk := range [][]byte{[]byte("{"), []byte(`{"id":"x","op":"invite"}`), []byte(strings.Repeat("a", maxRelayMessage+1)),
		[]byte(`{"id":"0123456789abcdef0123456789abcdef","op":"invite","device":"` + devID + `","channel":"` + ch1 + `","media":{"IP":"no","Port":1}}`)} {
		for _, subj := range []string{subjectRequests, subjectDiag} {
			if err := relay.Send(subj, junk); err != nil {
				t.Fatal(err)
			}
		}
	}
	r, err := NewRemote(Config{NoMediaTimeout: 3 * time.Second}, RemoteOptions{Relay: relay, Name: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Play(t.Context(), "34020000001320000099", ch1, false); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("an unknown device: %v", err)
	}

	rec := filepath.Join(t.TempDir(), "received")
	startSim(t, SimConfig{Server: s.Addr(), DeviceID: devID, Password: "s3cret", Record: rec, Channels: []SimChannel{{ID: ch1, Name: "gate"}}})
	waitFor(t, "registration", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return on })
	ss, err := r.Session(t.Context(), devID)
	if err != nil || !ss.Online || ss.Addr == "" {
		t.Fatalf("session through the relay: %+v %v", ss, err)
	}
	st, err := r.Play(t.Context(), devID, ch1, false)
	if err != nil {
		t.Fatal(err)
	}
	codec, jpg, _ := decodeFirst(t, st)
	if codec != "h264" || len(jpg) < 100 {
		t.Fatalf("decoded %q, %d bytes", codec, len(jpg))
	}
	local := st.Diag()
	if local.Receiver != "w1" || local.Packets == 0 || local.LocalPort == 0 {
		t.Fatalf("the receiver's diagnosis: %+v", local)
	}
	var d MediaDiag
	waitFor(t, "the receiver's report at the server", 10*time.Second, func() bool {
		d, _ = s.MediaDiag(devID, ch1)
		return d.Packets > 0
	})
	if d.Receiver != "w1" || d.LocalPort != local.LocalPort || d.SSRCExpected != local.SSRCExpected || !strings.Contains(d.SDPSent, "y="+d.SSRCExpected) || d.SDPReceived == "" {
		t.Fatalf("the server's diagnosis: %+v", d)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "BYE recorded", 10*time.Second, func() bool {
		b, _ := os.ReadFile(rec)
		return strings.Contains(string(b), "BYE "+ch1)
	})
	if b, _ := os.ReadFile(rec); strings.Count(string(b), "INVITE ") != 1 {
		t.Fatalf("the camera was invited otherwise than once: %s", b)
	}
}
