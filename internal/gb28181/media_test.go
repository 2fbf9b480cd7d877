package gb28181

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// decodeFirst has ffmpeg decode the stream with the device driver's
// input options until its first frame, and returns the codec ffmpeg
// found, the frame (JPEG) and the program stream it read.
func decodeFirst(t *testing.T, st io.Reader) (string, []byte, []byte) {
	t.Helper()
	ff := testenv.NeedCommand(t, "ffmpeg")
	var ps bytes.Buffer
	cmd := exec.Command(ff, "-hide_banner", "-nostdin", "-loglevel", "info", "-fflags", "nobuffer", "-probesize", "65536", "-analyzeduration", "500000",
		"-f", "mpeg", "-i", "pipe:0", "-frames:v", "1", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(in, io.TeeReader(st, &ps)); _ = in.Close() }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ffmpeg: %v: %s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("no frame in 30s: %s", errb.String())
	}
	codec := ""
	for _, c := range []string{"h264", "hevc"} {
		if strings.Contains(errb.String(), "Video: "+c) {
			codec = c
		}
	}
	return codec, out.Bytes(), ps.Bytes()
}

// TestLiveVideo invites a simulated camera (a separate process) for a
// channel's video over UDP and TCP, in H.264 and H.265: the program
// stream arrives with a PSM naming the codec, ffmpeg decodes it, the
// diagnosis counts packets, and Close sends BYE, which the camera
// records.
func TestLiveVideo(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	for _, tc := range []struct{ transport, codec, want string }{{"udp", "h264", "h264"}, {"tcp", "h264", "h264"}, {"udp", "h265", "hevc"}} {
		t.Run(tc.transport+"-"+tc.codec, func(t *testing.T) {
			if tc.codec == "h265" {
				needEncoder(t, "libx265")
			}
			dir := newTestDir(map[string]string{devID: "s3cret"})
			s := startServer(t, dir, Config{}, nil)
			rec := filepath.Join(t.TempDir(), "received")
			startSim(t, SimConfig{Server: s.Addr(), DeviceID: devID, Password: "s3cret", Codec: tc.codec, Record: rec,
				Channels: []SimChannel{{ID: ch1, Name: "gate"}}})
			waitFor(t, "registration", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return on })
			start := time.Now()
			st, err := s.Play(context.Background(), devID, ch1, tc.transport == "tcp")
			if err != nil {
				t.Fatal(err)
			}
			codec, jpg, ps := decodeFirst(t, st)
			d0, _ := s.MediaDiag(devID, ch1)
			// The answer waits for the simulated camera's first encoding of
			// its video when that has not finished yet.
			t.Logf("INVITE to first decoded frame: %v (answer after %v, first RTP after %v; %s over %s)", time.Since(start).Round(time.Millisecond),
				d0.Answered.Sub(d0.Invited).Round(time.Millisecond), d0.FirstPacket.Sub(d0.Invited).Round(time.Millisecond), tc.codec, tc.transport)
			if codec != tc.want || len(jpg) < 100 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
				t.Fatalf("ffmpeg decoded %q, %d bytes", codec, len(jpg))
			}
			if in, err := ScanPS(ps[:min(len(ps), 4096)]); err != nil || in.Packs == 0 || in.Maps == 0 || Codec(in.VideoType) != tc.codec {
				t.Fatalf("program stream: %+v, %v", in, err)
			}
			d, ok := s.MediaDiag(devID, ch1)
			if !ok || d.Packets == 0 || d.Bytes == 0 || !d.Active || d.Codec != tc.codec || d.WrongSSRC != 0 ||
				!strings.Contains(d.SDPSent, "y="+d.SSRCExpected) || !strings.Contains(d.SDPReceived, "sendonly") || strings.Contains(d.SDPReceived, "m=video 0 ") || d.Remote == "" {
				t.Fatalf("diagnosis: %+v", d)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "BYE recorded", 10*time.Second, func() bool {
				b, _ := os.ReadFile(rec)
				return strings.Contains(string(b), "BYE "+ch1)
			})
			if d, _ := s.MediaDiag(devID, ch1); d.Active || d.Ended.IsZero() {
				t.Fatalf("diagnosis after close: %+v", d)
			}
		})
	}
}

// TestWrongSSRCIsRefused: a camera sending another SSRC than agreed gets
// its packets dropped and counted, and the stream ends for lack of media.
func TestWrongSSRCIsRefused(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	dir := newTestDir(map[string]string{devID: "s3cret"})
	// Long enough that the first wrong packets arrive within it on a
	// loaded machine (the error then names their SSRC).
	s := startServer(t, dir, Config{NoMediaTimeout: 4 * time.Second}, nil)
	startSim(t, SimConfig{Server: s.Addr(), DeviceID: devID, Password: "s3cret", SSRC: "1234567890", Channels: []SimChannel{{ID: ch1, Name: "gate"}}})
	waitFor(t, "registration", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return on })
	st, err := s.Play(context.Background(), devID, ch1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = io.Copy(io.Discard, st)
	if err == nil || !strings.Contains(err.Error(), "1234567890") {
		t.Fatalf("stream ended with %v", err)
	}
	d, _ := s.MediaDiag(devID, ch1)
	if d.WrongSSRC == 0 || d.Packets != 0 || len(d.SSRCSeen) != 1 || d.SSRCSeen[0] != "1234567890" || !strings.Contains(d.LastError, "no RTP") {
		t.Fatalf("diagnosis: %+v", d)
	}
}

// TestPTZ: DeviceControl commands reach the camera with valid PTZCmd
// bytes, as it records them.
func TestPTZ(t *testing.T) {
	dir := newTestDir(map[string]string{devID: "s3cret"})
	s := startServer(t, dir, Config{}, nil)
	rec := filepath.Join(t.TempDir(), "received")
	startSim(t, SimConfig{Server: s.Addr(), DeviceID: devID, Password: "s3cret", Record: rec, Channels: []SimChannel{{ID: ch1, Name: "gate"}}})
	waitFor(t, "registration", 10*time.Second, func() bool { on, _ := dir.isOnline(devID); return on })
	cmds := []PTZ{{Pan: -1, Tilt: 1, Speed: 0x40}, {Zoom: 1, Speed: 0xA0}, {}, {PresetOp: PresetSet, Preset: 3}, {PresetOp: PresetGoto, Preset: 3}, {PresetOp: PresetDelete, Preset: 3}}
	for _, c := range cmds {
		if err := s.ControlPTZ(context.Background(), devID, ch1, c); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	waitFor(t, "commands recorded", 10*time.Second, func() bool {
		b, _ := os.ReadFile(rec)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(lines) == len(cmds)
	})
	for i, l := range lines {
		_, hexCmd, _ := strings.Cut(l, "PTZCmd=")
		got, err := ParsePTZ(hexCmd)
		if err != nil || !strings.HasPrefix(l, "DeviceControl "+ch1) {
			t.Fatalf("line %q: %v", l, err)
		}
		want := cmds[i]
		if got != want {
			t.Errorf("command %d: sent %+v, device got %+v (%s)", i, want, got, hexCmd)
		}
	}
	// Known encodings from GB/T 28181 appendix A.
	if b, _ := (PTZ{Pan: 1, Speed: 0x1F}).Bytes(); strings.ToUpper(string(hexBytes(b[:]))) != "A50F01011F0000D5" {
		t.Errorf("right at speed 1F: %s", hexBytes(b[:]))
	}
	if b, _ := (PTZ{PresetOp: PresetGoto, Preset: 1}).Bytes(); strings.ToUpper(string(hexBytes(b[:]))) != "A50F018200010038" {
		t.Errorf("goto preset 1: %s", hexBytes(b[:]))
	}
	if _, err := (PTZ{PresetOp: PresetSet, Preset: 0}).Bytes(); err == nil {
		t.Error("preset 0 accepted")
	}
}

func hexBytes(b []byte) []byte {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return out
}

// needEncoder skips (fails under TIANSHU_CI=1) when ffmpeg lacks enc.
func needEncoder(t *testing.T, enc string) {
	t.Helper()
	ff := testenv.NeedCommand(t, "ffmpeg")
	out, _ := exec.Command(ff, "-hide_banner", "-encoders").Output()
	if !strings.Contains(string(out), " "+enc+" ") {
		if os.Getenv("TIANSHU_CI") == "1" {
			t.Fatalf("ffmpeg has no %s encoder (TIANSHU_CI=1)", enc)
		}
		t.Skipf("ffmpeg has no %s encoder", enc)
	}
}
