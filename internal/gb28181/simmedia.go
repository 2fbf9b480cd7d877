package gb28181

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// maxSimVideo bounds the encoded video the simulator keeps in memory.
const maxSimVideo = 64 << 20

// accessUnit is one encoded frame of the simulator's video.
type accessUnit struct {
	data []byte
	key  bool
}

// simVideo encodes the simulator's video once (a test pattern, or
// SimConfig.Video) with ffmpeg into Annex B and splits it into frames.
func (sm *Simulator) simVideo(ctx context.Context) ([]accessUnit, error) {
	sm.videoOnce.Do(func() {
		sm.video, sm.videoErr = encodeSimVideo(ctx, sm.cfg)
	})
	return sm.video, sm.videoErr
}

func encodeSimVideo(ctx context.Context, cfg SimConfig) ([]accessUnit, error) {
	in := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x240:rate=%d", cfg.FPS), "-t", "4"}
	switch {
	case cfg.lavfi:
		in = []string{"-f", "lavfi", "-i", cfg.Video}
	case cfg.Video != "":
		in = []string{"-i", cfg.Video, "-t", "20", "-r", fmt.Sprint(cfg.FPS)}
	}
	gop := fmt.Sprint(cfg.FPS) // a key frame a second
	var enc []string
	if cfg.Codec == "h265" {
		enc = []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=" + gop + ":min-keyint=" + gop + ":bframes=0:log-level=error",
			"-pix_fmt", "yuv420p", "-bsf:v", "hevc_metadata=aud=insert", "-f", "hevc"}
	} else {
		enc = []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", gop, "-bf", "0",
			"-pix_fmt", "yuv420p", "-bsf:v", "h264_metadata=aud=insert", "-f", "h264"}
	}
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, in...)
	args = append(append(args, "-an"), enc...)
	cmd := exec.CommandContext(ctx, cfg.FFmpeg, append(args, "pipe:1")...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("gb28181 sim: encode video: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	if out.Len() > maxSimVideo {
		return nil, fmt.Errorf("gb28181 sim: encoded video of %d bytes, more than %d", out.Len(), maxSimVideo)
	}
	aus := splitAccessUnits(out.Bytes(), cfg.Codec == "h265")
	if len(aus) == 0 || !aus[0].key {
		return nil, errors.New("gb28181 sim: the encoded video does not start with a key frame")
	}
	return aus, nil
}

// splitAccessUnits cuts an Annex B stream with access unit delimiters
// into frames.
func splitAccessUnits(b []byte, hevc bool) []accessUnit {
	var out []accessUnit
	start := -1
	key := false
	i := 0
	for i+3 < len(b) {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			i++
			continue
		}
		nal := b[i+3]
		var aud, k bool
		if hevc {
			t := (nal >> 1) & 0x3F
			aud, k = t == 35, t >= 16 && t <= 21
		} else {
			t := nal & 0x1F
			aud, k = t == 9, t == 5
		}
		if aud {
			s := i
			if s > 0 && b[s-1] == 0 {
				s--
			}
			if start >= 0 {
				out = append(out, accessUnit{data: b[start:s], key: key})
			}
			start, key = s, false
		}
		key = key || k
		i += 3
	}
	if start >= 0 {
		out = append(out, accessUnit{data: b[start:], key: key})
	}
	return out
}

// simStream is one stream the simulator sends.
type simStream struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// record appends a line to SimConfig.Record (what the device received,
// for tests and people to check).
func (sm *Simulator) record(format string, args ...any) {
	if sm.cfg.Record == "" {
		return
	}
	sm.recMu.Lock()
	defer sm.recMu.Unlock()
	f, err := os.OpenFile(sm.cfg.Record, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, format+"\n", args...)
}

func (sm *Simulator) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	offer, err := ParseSDP(req.Body())
	if err != nil || sm.cfg.noVideo {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	channel := req.Recipient.User
	if sm.cfg.invite != nil {
		sm.passInvite(req, tx, channel, offer)
		return
	}
	if !sm.hasChannel(channel) && channel != sm.cfg.DeviceID {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 404, "Not Found", nil))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	video, err := sm.simVideo(ctx)
	if err != nil {
		cancel()
		sm.cfg.Logger.Warn("gb28181 sim video unavailable", "err", err)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
		return
	}
	ssrc := offer.SSRC
	if sm.cfg.SSRC != "" {
		ssrc = sm.cfg.SSRC
	}
	proto := "udp"
	if offer.TCP {
		proto = "tcp"
	}
	// Connect first, so the answer names the port the media comes from.
	to := net.JoinHostPort(offer.IP, fmt.Sprint(offer.Port))
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, proto, to)
	if err != nil {
		cancel()
		sm.cfg.Logger.Warn("gb28181 sim cannot reach the media address", "to", to, "err", err)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	host, _, _ := net.SplitHostPort(sm.laddrOr())
	lport := 0
	if _, p, err := net.SplitHostPort(conn.LocalAddr().String()); err == nil {
		fmt.Sscan(p, &lport)
	}
	answer := SDP{Origin: channel, Session: "Play", IP: host, Port: lport, TCP: offer.TCP, Setup: "active", Direction: "sendonly", SSRC: offer.SSRC}
	if answer.IP == "" || net.ParseIP(answer.IP) == nil {
		answer.IP = "127.0.0.1"
	}
	res := sip.NewSDPResponseFromRequest(req, answer.Marshal())
	port := 5060
	if sm.laddr != "" {
		_, p, _ := net.SplitHostPort(sm.laddr)
		fmt.Sscan(p, &port)
	}
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: channel, Host: answer.IP, Port: port}})
	if err := tx.Respond(res); err != nil {
		cancel()
		_ = conn.Close()
		return
	}
	callID := req.CallID().Value()
	st := &simStream{cancel: cancel, done: make(chan struct{})}
	sm.mu.Lock()
	if sm.streams == nil {
		sm.streams = map[string]*simStream{}
	}
	sm.streams[callID] = st
	sm.mu.Unlock()
	sm.record("INVITE %s %s %s:%d ssrc=%s", channel, proto, offer.IP, offer.Port, offer.SSRC)
	sm.cfg.Logger.Info("gb28181 sim streaming", "channel", channel, "to", to, "transport", proto)
	go func() {
		defer close(st.done)
		if err := sm.stream(ctx, video, conn, proto == "tcp", ssrcValue(ssrc)); err != nil && ctx.Err() == nil {
			sm.cfg.Logger.Warn("gb28181 sim stream ended", "err", err)
		}
	}()
}

// passInvite hands an INVITE on (the cascade: the channel's camera is
// invited to send to the inviter's media address) and answers with the
// camera's answer; the inviter's BYE hangs the camera up.
func (sm *Simulator) passInvite(req *sip.Request, tx sip.ServerTransaction, channel string, offer SDP) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	answer, hangup, err := sm.cfg.invite(ctx, channel, offer)
	cancel()
	if err != nil {
		sm.cfg.Logger.Warn("gb28181 cascade INVITE not passed on", "channel", channel, "err", err)
		code, reason := 488, "Not Acceptable Here"
		if errors.Is(err, ErrNotRegistered) || errors.Is(err, ErrUnknownDevice) {
			code, reason = 404, "Not Found"
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
		return
	}
	res := sip.NewSDPResponseFromRequest(req, answer.Marshal())
	host, portS, _ := net.SplitHostPort(sm.laddrOr())
	port := 5060
	fmt.Sscan(portS, &port)
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: channel, Host: host, Port: port}})
	if err := tx.Respond(res); err != nil {
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = hangup(hctx)
		cancel()
		return
	}
	// The stream is the camera's: ending it here is hanging the camera up.
	done := make(chan struct{})
	close(done)
	st := &simStream{done: done, cancel: func() {
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hangup(hctx); err != nil {
			sm.cfg.Logger.Warn("gb28181 cascade BYE not passed on", "channel", channel, "err", err)
		}
	}}
	sm.mu.Lock()
	if sm.streams == nil {
		sm.streams = map[string]*simStream{}
	}
	sm.streams[req.CallID().Value()] = st
	sm.mu.Unlock()
	sm.cfg.Logger.Info("gb28181 cascade INVITE passed on", "channel", channel, "media", net.JoinHostPort(offer.IP, fmt.Sprint(offer.Port)))
}

func (sm *Simulator) laddrOr() string {
	if sm.laddr != "" {
		return sm.laddr
	}
	return "127.0.0.1:5060"
}

func (sm *Simulator) hasChannel(id string) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	for _, c := range sm.channels {
		if c.ID == id {
			return true
		}
	}
	return false
}

func (sm *Simulator) onBye(req *sip.Request, tx sip.ServerTransaction) {
	id := req.CallID().Value()
	sm.mu.Lock()
	st := sm.streams[id]
	delete(sm.streams, id)
	sm.mu.Unlock()
	if st == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	st.cancel()
	<-st.done
	sm.record("BYE %s", req.Recipient.User)
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}

// stopStreams ends every stream (the simulator stopping).
func (sm *Simulator) stopStreams() {
	sm.mu.Lock()
	all := sm.streams
	sm.streams = nil
	sm.mu.Unlock()
	for _, st := range all {
		st.cancel()
		<-st.done
	}
}

// rtpPayload bounds the payload of the RTP packets the simulator sends.
const rtpPayload = 1400

// stream sends the video, looped, as PS over RTP on conn at the
// configured rate until ctx ends: UDP datagrams, or RFC 4571 frames over
// the TCP connection the camera opened (TCP active).
func (sm *Simulator) stream(ctx context.Context, video []accessUnit, conn net.Conn, tcp bool, ssrc uint32) error {
	defer conn.Close()
	go func() { <-ctx.Done(); _ = conn.Close() }()
	st := byte(StreamTypeH264)
	if sm.cfg.Codec == "h265" {
		st = StreamTypeH265
	}
	frameDur := time.Second / time.Duration(sm.cfg.FPS)
	tick := time.NewTicker(frameDur)
	defer tick.Stop()
	var seq uint16
	var ps, pkt, out []byte
	for n := 0; ; n++ {
		au := video[n%len(video)]
		pts := uint64(n) * 90000 / uint64(sm.cfg.FPS)
		ps = AppendPS(ps[:0], au.data, st, pts, au.key)
		out = out[:0]
		for off := 0; off < len(ps); off += rtpPayload {
			end := min(off+rtpPayload, len(ps))
			pkt = AppendRTP(pkt[:0], RTPPacket{PayloadType: 96, Marker: end == len(ps), Seq: seq, Timestamp: uint32(pts), SSRC: ssrc, Payload: ps[off:end]})
			seq++
			if !tcp {
				if _, err := conn.Write(pkt); err != nil {
					return err
				}
				continue
			}
			out = AppendFramed(out, pkt)
		}
		if tcp {
			if _, err := conn.Write(out); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
