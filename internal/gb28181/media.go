package gb28181

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// ErrNoMedia ends a stream that received no RTP (of the right SSRC) for
// Config.NoMediaTimeout: the reader asks again (a new INVITE).
var ErrNoMedia = errors.New("gb28181: no RTP received")

// ErrStreamEnded ends a stream the device ended with a BYE.
var ErrStreamEnded = errors.New("gb28181: the device ended the stream (BYE)")

// ErrInvite wraps a refused or failed INVITE.
var ErrInvite = errors.New("gb28181: INVITE failed")

// MediaDiag is what the server knows about the last live stream of a
// channel: enough to say why there is no video.
type MediaDiag struct {
	DeviceID, Channel string
	// Transport is UDP or TCP (passive: the device connects to us).
	Transport string
	// MediaIP and LocalPort are where we asked for the media (the SDP's
	// c= and m= lines); Remote is where RTP came from.
	MediaIP   string
	LocalPort int
	Remote    string
	// SDPSent and SDPReceived are the INVITE's offer and the device's answer.
	SDPSent, SDPReceived string
	// SSRCExpected is the SSRC packets must carry (the answer's y=, else
	// ours); SSRCSeen the first few others that arrived.
	SSRCExpected string
	SSRCSeen     []string
	// Packets and Bytes count accepted RTP; WrongSSRC, Malformed and Lost
	// the refused, unreadable and missing ones.
	Packets, Bytes, WrongSSRC, Malformed, Lost uint64
	// Codec is what the program stream map says (h264, h265).
	Codec                                      string
	Invited, Answered, FirstPacket, LastPacket time.Time
	Ended                                      time.Time
	Active                                     bool
	LastError                                  string
}

// maxSSRCSeen bounds MediaDiag.SSRCSeen.
const maxSSRCSeen = 4

// Stream is one live stream of a channel: Read returns its program
// stream bytes in order; Close hangs up (BYE) and frees the port.
type Stream struct {
	s      *Server
	key    string
	callID string
	dialog *sipgo.DialogClientSession
	pr     *io.PipeReader
	pw     *io.PipeWriter
	udp    net.PacketConn
	tcp    net.Listener
	ssrc   uint32

	mu   sync.Mutex
	diag MediaDiag
	conn net.Conn // the TCP connection, once accepted

	packets, bytes, wrong, bad, lost atomic.Uint64
	closed                           sync.Once
	done                             chan struct{}
}

// Read implements io.Reader: the program stream, in RTP order.
func (st *Stream) Read(p []byte) (int, error) { return st.pr.Read(p) }

// Close sends BYE (best effort, bounded) and stops receiving.
func (st *Stream) Close() error {
	st.end(nil)
	<-st.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := st.dialog.Bye(ctx)
	st.s.mu.Lock()
	delete(st.s.plays, st.callID)
	st.s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("gb28181: BYE: %w", err)
	}
	return nil
}

// end stops the stream with err (nil: closed by us).
func (st *Stream) end(err error) {
	st.closed.Do(func() {
		if err == nil {
			err = io.ErrClosedPipe
		}
		st.mu.Lock()
		st.diag.Active, st.diag.Ended = false, st.s.now()
		if !errors.Is(err, io.ErrClosedPipe) {
			st.diag.LastError = err.Error()
		}
		if st.conn != nil {
			_ = st.conn.Close()
		}
		st.mu.Unlock()
		if st.udp != nil {
			_ = st.udp.Close()
		}
		if st.tcp != nil {
			_ = st.tcp.Close()
		}
		_ = st.pw.CloseWithError(err) // a blocked Write returns too
	})
}

// Diag returns the stream's diagnosis now.
func (st *Stream) Diag() MediaDiag {
	st.mu.Lock()
	d := st.diag
	d.SSRCSeen = append([]string(nil), st.diag.SSRCSeen...)
	st.mu.Unlock()
	d.Packets, d.Bytes, d.WrongSSRC, d.Malformed, d.Lost = st.packets.Load(), st.bytes.Load(), st.wrong.Load(), st.bad.Load(), st.lost.Load()
	return d
}

// listenMedia opens a receive port: the first free one of the configured
// range (from a rotating start), else any.
func (s *Server) listenMedia(tcp bool, ip string) (net.PacketConn, net.Listener, int, error) {
	lo, hi := s.cfg.MediaPortMin, s.cfg.MediaPortMax
	try := func(port int) (net.PacketConn, net.Listener, int, error) {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		if tcp {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, nil, 0, err
			}
			return nil, l, l.Addr().(*net.TCPAddr).Port, nil
		}
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, 0, err
		}
		if uc, ok := c.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(4 << 20)
		}
		return c, nil, c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	if lo <= 0 {
		return try(0)
	}
	n := hi - lo + 1
	var last error
	for i := 0; i < n; i++ {
		port := lo + int(s.portNext.Add(1)-1)%n
		u, t, p, err := try(port)
		if err == nil {
			return u, t, p, nil
		}
		last = err
	}
	return nil, nil, 0, fmt.Errorf("gb28181: no free media port in %d-%d: %w", lo, hi, last)
}

// nextSSRC returns a live-video SSRC as GB/T 28181 forms it: 0, five
// digits of the SIP domain, a four-digit sequence.
func (s *Server) nextSSRC() string {
	dom := s.cfg.Realm + "0000000000"
	return "0" + dom[3:8] + fmt.Sprintf("%04d", s.ssrcSeq.Add(1)%10000)
}

// mediaIPFor is the address the device must send media to: the
// configured one (the platform's address as the device sees it, behind
// NAT), else our address on the route to the device.
func (s *Server) mediaIPFor(deviceAddr string) string {
	if s.cfg.MediaIP != "" {
		return s.cfg.MediaIP
	}
	if c, err := net.Dial("udp", deviceAddr); err == nil { // no packet is sent
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).IP.String()
	}
	return "127.0.0.1"
}

// Play invites the device id to send channel's live video, over RTP on
// UDP or (tcp) TCP with the device connecting to us, and returns the
// stream once the device answered. The stream fails with ErrNoMedia when
// RTP stops for Config.NoMediaTimeout and with ErrStreamEnded on the
// device's BYE; ask again then.
func (s *Server) Play(ctx context.Context, id, channel string, tcp bool) (*Stream, error) {
	if !ValidID(channel) {
		return nil, fmt.Errorf("gb28181: channel %q is not a 20-digit id", clean(channel))
	}
	ss, ok := s.Session(id)
	if !ok || !ss.Online {
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, id)
	}
	mediaIP := s.mediaIPFor(ss.Addr)
	listenIP := ""
	if s.cfg.MediaIP == "" {
		listenIP = mediaIP
	}
	udp, tl, port, err := s.listenMedia(tcp, listenIP)
	if err != nil {
		return nil, err
	}
	transport := "UDP"
	if tcp {
		transport = "TCP"
	}
	offer := SDP{Origin: s.cfg.ServerID, Session: "Play", IP: mediaIP, Port: port, TCP: tcp, Setup: "passive", Direction: "recvonly", SSRC: s.nextSSRC()}
	pr, pw := io.Pipe()
	st := &Stream{s: s, key: id + "/" + channel, pr: pr, pw: pw, udp: udp, tcp: tl, done: make(chan struct{}),
		diag: MediaDiag{DeviceID: id, Channel: channel, Transport: transport, MediaIP: mediaIP, LocalPort: port,
			SDPSent: string(offer.Marshal()), SSRCExpected: offer.SSRC, Invited: s.now(), Active: true}}
	s.mu.Lock()
	s.media[st.key] = st
	s.mu.Unlock()
	fail := func(err error) (*Stream, error) {
		st.end(err)
		close(st.done)
		s.m.invites.WithLabelValues(inviteResult(err)).Inc()
		return nil, err
	}

	host, portS, err := net.SplitHostPort(ss.Addr)
	if err != nil {
		return fail(fmt.Errorf("gb28181: device %s address %q: %w", id, ss.Addr, err))
	}
	devPort, _ := strconv.Atoi(portS)
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: channel, Host: host, Port: devPort})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: s.cfg.ServerID, Host: s.cfg.Realm}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: channel, Host: s.cfg.Realm}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Subject", channel+":"+offer.SSRC+","+s.cfg.ServerID+":0"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer.Marshal())
	req.SetDestination(ss.Addr)
	la := s.udp.LocalAddr().(*net.UDPAddr)
	sipHost := mediaIP
	if ss.Transport == "TCP" {
		req.SetTransport("TCP")
	} else {
		req.SetTransport("UDP")
		req.Laddr = sip.Addr{IP: la.IP, Port: la.Port}
	}
	dua := &sipgo.DialogUA{Client: s.client, RewriteContact: true,
		ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: s.cfg.ServerID, Host: sipHost, Port: la.Port}}}
	ictx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	dlg, err := dua.WriteInvite(ictx, req)
	if err != nil {
		return fail(fmt.Errorf("%w: %s channel %s: %w", ErrInvite, id, channel, err))
	}
	st.dialog = dlg
	if err := dlg.WaitAnswer(ictx, sipgo.AnswerOptions{}); err != nil {
		_ = dlg.Close()
		return fail(fmt.Errorf("%w: %s channel %s: %w", ErrInvite, id, channel, err))
	}
	body := dlg.InviteResponse.Body()
	st.mu.Lock()
	st.diag.SDPReceived = string(body[:min(len(body), maxSDP)])
	st.diag.Answered = s.now()
	st.mu.Unlock()
	answer, err := ParseSDP(body)
	if err != nil {
		_ = dlg.Ack(ictx)
		_ = dlg.Bye(ictx)
		return fail(fmt.Errorf("%w: %s channel %s: the answer: %w", ErrInvite, id, channel, err))
	}
	if answer.SSRC != "" {
		st.diag.SSRCExpected = answer.SSRC
	}
	st.ssrc = ssrcValue(st.diag.SSRCExpected)
	if err := dlg.Ack(ictx); err != nil {
		return fail(fmt.Errorf("%w: %s channel %s: ACK: %w", ErrInvite, id, channel, err))
	}
	st.callID = req.CallID().Value()
	s.mu.Lock()
	s.plays[st.callID] = st
	s.mu.Unlock()
	s.m.invites.WithLabelValues("ok").Inc()
	s.log.Info("gb28181 stream started", "device", id, "channel", channel, "transport", transport, "port", port, "ssrc", st.diag.SSRCExpected)
	go st.receive()
	return st, nil
}

func inviteResult(err error) string {
	var de sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &de):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

// onBye ends the stream the device hangs up.
func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	id := ""
	if h := req.CallID(); h != nil {
		id = h.Value()
	}
	s.mu.Lock()
	st := s.plays[id]
	delete(s.plays, id)
	s.mu.Unlock()
	if st == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	s.respond(req, tx, 200, "OK")
	s.log.Info("gb28181 stream ended by the device", "device", st.diag.DeviceID, "channel", st.diag.Channel)
	st.end(ErrStreamEnded)
}

// receive reads RTP until the stream ends, hands the payloads on in
// order, and ends the stream when none comes for NoMediaTimeout.
func (st *Stream) receive() {
	defer close(st.done)
	s := st.s
	timeout := s.cfg.NoMediaTimeout
	buf := make([]byte, MaxRTPPacket)
	var ro reorder
	fw := &frameWriter{w: st.pw}
	lastGood := time.Now()
	codecKnown := false
	var read func() ([]byte, net.Addr, error)
	if st.udp != nil {
		read = func() ([]byte, net.Addr, error) {
			_ = st.udp.SetReadDeadline(time.Now().Add(timeout))
			n, from, err := st.udp.ReadFrom(buf)
			return buf[:n], from, err
		}
	} else {
		_ = st.tcp.(*net.TCPListener).SetDeadline(time.Now().Add(timeout))
		c, err := st.tcp.Accept()
		if err != nil {
			st.end(noMedia(err, timeout))
			return
		}
		_ = st.tcp.Close() // one connection per stream
		st.mu.Lock()
		st.conn = c
		st.diag.Remote = c.RemoteAddr().String()
		st.mu.Unlock()
		read = func() ([]byte, net.Addr, error) {
			_ = c.SetReadDeadline(time.Now().Add(timeout))
			b, err := ReadFramed(c, buf)
			return b, nil, err
		}
	}
	for {
		b, from, err := read()
		if err != nil {
			st.end(noMedia(err, timeout))
			return
		}
		p, err := ParseRTP(b)
		if err != nil {
			st.bad.Add(1)
			s.m.rtpMalformed.Inc()
			continue
		}
		if p.SSRC != st.ssrc {
			st.wrong.Add(1)
			s.m.ssrcMismatch.Inc()
			st.sawSSRC(p.SSRC)
			if time.Since(lastGood) > timeout {
				st.end(fmt.Errorf("%w for %v: packets carry SSRC %010d, expected %s", ErrNoMedia, timeout, p.SSRC, st.diag.SSRCExpected))
				return
			}
			continue
		}
		lastGood = time.Now()
		st.packets.Add(1)
		st.bytes.Add(uint64(len(b)))
		s.m.rtpPackets.Inc()
		s.m.rtpBytes.Add(float64(len(b)))
		if !codecKnown || st.packets.Load() == 1 {
			codecKnown = st.firstPacket(p, from)
		}
		if err := ro.push(p, fw.add, &st.lost); err != nil {
			return // the reader closed
		}
	}
}

func (st *Stream) sawSSRC(v uint32) {
	st.mu.Lock()
	defer st.mu.Unlock()
	x := fmt.Sprintf("%010d", v)
	for _, y := range st.diag.SSRCSeen {
		if y == x {
			return
		}
	}
	if len(st.diag.SSRCSeen) < maxSSRCSeen {
		st.diag.SSRCSeen = append(st.diag.SSRCSeen, x)
	}
}

// firstPacket notes the first packet's time and source, and the codec
// from a program stream map; it says whether the codec is known.
func (st *Stream) firstPacket(p RTPPacket, from net.Addr) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.s.now()
	if st.diag.FirstPacket.IsZero() {
		st.diag.FirstPacket = now
		if from != nil {
			st.diag.Remote = from.String()
		}
	}
	st.diag.LastPacket = now
	if in, err := ScanPS(p.Payload); err == nil && in.VideoType != 0 {
		st.diag.Codec = Codec(in.VideoType)
	}
	return st.diag.Codec != ""
}

func noMedia(err error, timeout time.Duration) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w for %v", ErrNoMedia, timeout)
	}
	if errors.Is(err, net.ErrClosed) {
		return io.ErrClosedPipe
	}
	return fmt.Errorf("gb28181: media: %w", err)
}

// reorder puts RTP packets back in sequence order: a packet ahead of the
// next expected waits (up to reorderDepth of them); past that the gap is
// counted lost and skipped.
type reorder struct {
	started bool
	next    uint16
	held    map[uint16]heldPacket
}

type heldPacket struct {
	payload []byte
	marker  bool
}

const reorderDepth = 32

func (r *reorder) push(p RTPPacket, out func(payload []byte, marker bool) error, lost *atomic.Uint64) error {
	if !r.started {
		r.started, r.next = true, p.Seq
	}
	d := int16(p.Seq - r.next)
	switch {
	case d < 0: // late or duplicate
		return nil
	case d == 0:
		if err := out(p.Payload, p.Marker); err != nil {
			return err
		}
		r.next++
	default:
		if r.held == nil {
			r.held = map[uint16]heldPacket{}
		}
		if _, dup := r.held[p.Seq]; !dup {
			r.held[p.Seq] = heldPacket{append([]byte(nil), p.Payload...), p.Marker}
		}
		if len(r.held) <= reorderDepth {
			return nil
		}
		// Give up on the gap: skip to the earliest held packet.
		best := -1
		for seq := range r.held {
			if dd := int(int16(seq - r.next)); best < 0 || dd < best {
				best = dd
			}
		}
		lost.Add(uint64(best))
		r.next += uint16(best)
	}
	for {
		h, ok := r.held[r.next]
		if !ok {
			return nil
		}
		delete(r.held, r.next)
		if err := out(h.payload, h.marker); err != nil {
			return err
		}
		r.next++
	}
}

// frameWriter gathers the payloads of one frame (up to the packet with
// the RTP marker, or maxFrameWrite bytes) and writes them at once: the
// decoder's input then wakes once a frame, not once a packet, and no
// latency is added (a frame decodes only once whole).
type frameWriter struct {
	w   io.Writer
	buf []byte
}

const maxFrameWrite = 256 << 10

func (f *frameWriter) add(payload []byte, marker bool) error {
	f.buf = append(f.buf, payload...)
	if !marker && len(f.buf) < maxFrameWrite {
		return nil
	}
	_, err := f.w.Write(f.buf)
	f.buf = f.buf[:0]
	return err
}

// MediaDiag returns the diagnosis of the channel's last stream.
func (s *Server) MediaDiag(id, channel string) (MediaDiag, bool) {
	s.mu.Lock()
	st := s.media[id+"/"+channel]
	s.mu.Unlock()
	if st == nil {
		return MediaDiag{}, false
	}
	return st.Diag(), true
}
