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
	// Receiver names the process that receives the stream when it is not
	// the SIP server's (a worker, through Remote); empty: the server's.
	Receiver string
}

// maxSSRCSeen bounds MediaDiag.SSRCSeen.
const maxSSRCSeen = 4

// Stream is one live stream of a channel: Read returns its program
// stream bytes in order; Close hangs up (BYE) and frees the port.
type Stream struct {
	rx   *receiver
	key  string
	pr   *io.PipeReader
	pw   *io.PipeWriter
	udp  net.PacketConn
	tcp  net.Listener
	ssrc uint32
	// hangup ends the dialog (BYE), here or through the process whose
	// SIP server holds it; nil: nothing to hang up.
	hangup func(context.Context) error

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
	if st.hangup == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := st.hangup(ctx); err != nil {
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
		st.diag.Active, st.diag.Ended = false, st.rx.now()
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

// receiver opens media ports and receives live streams on them: the SIP
// server's own, or those of a worker whose streams another process's
// SIP server invites (Remote).
type receiver struct {
	cfg      Config // MediaIP, MediaPortMin/Max, NoMediaTimeout
	m        *metrics
	now      func() time.Time
	portNext atomic.Int64
}

// listen opens a receive port: the first free one of the configured
// range (from a rotating start), else any.
func (rx *receiver) listen(tcp bool, ip string) (net.PacketConn, net.Listener, int, error) {
	lo, hi := rx.cfg.MediaPortMin, rx.cfg.MediaPortMax
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
		port := lo + int(rx.portNext.Add(1)-1)%n
		u, t, p, err := try(port)
		if err == nil {
			return u, t, p, nil
		}
		last = err
	}
	return nil, nil, 0, fmt.Errorf("gb28181: no free media port in %d-%d: %w", lo, hi, last)
}

// mediaIPFor is the address the device must send media to: the
// configured one (the receiver's address as the device sees it, behind
// NAT), else our address on the route to the device.
func (rx *receiver) mediaIPFor(deviceAddr string) string {
	if rx.cfg.MediaIP != "" {
		return rx.cfg.MediaIP
	}
	if c, err := net.Dial("udp", deviceAddr); err == nil { // no packet is sent
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).IP.String()
	}
	return "127.0.0.1"
}

// open listens for a stream of channel of device id whose device is at
// deviceAddr; start begins receiving once the SSRC is agreed.
func (rx *receiver) open(id, channel, deviceAddr string, tcp bool) (*Stream, error) {
	mediaIP := rx.mediaIPFor(deviceAddr)
	listenIP := ""
	if rx.cfg.MediaIP == "" {
		listenIP = mediaIP
	}
	udp, tl, port, err := rx.listen(tcp, listenIP)
	if err != nil {
		return nil, err
	}
	transport := "UDP"
	if tcp {
		transport = "TCP"
	}
	pr, pw := io.Pipe()
	return &Stream{rx: rx, key: id + "/" + channel, pr: pr, pw: pw, udp: udp, tcp: tl, done: make(chan struct{}),
		diag: MediaDiag{DeviceID: id, Channel: channel, Transport: transport, MediaIP: mediaIP, LocalPort: port, Invited: rx.now(), Active: true}}, nil
}

// fail ends a stream that never started receiving.
func (st *Stream) fail(err error) {
	st.end(err)
	close(st.done)
}

// answered notes the agreed call on the stream and starts receiving.
func (st *Stream) answered(c *Call, hangup func(context.Context) error) {
	st.mu.Lock()
	st.diag.SDPSent, st.diag.SDPReceived, st.diag.Answered, st.diag.SSRCExpected = c.SDPSent, c.SDPReceived, c.Answered, c.SSRC
	st.mu.Unlock()
	st.ssrc = ssrcValue(c.SSRC)
	st.hangup = hangup
	go st.receive()
}

// MediaAddr is where a device is to send a stream's RTP: the receiver's
// address as the device sees it.
type MediaAddr struct {
	IP   string
	Port int
	// TCP asks for RTP over TCP, the device connecting (passive).
	TCP bool
}

// Call is a live-video dialog with a device, as offered and answered.
type Call struct {
	// ID is the dialog's Call-ID, by which Hangup ends it.
	ID string
	// SSRC is the one the stream's packets must carry (the answer's y=,
	// else the offer's).
	SSRC                 string
	SDPSent, SDPReceived string
	Invited, Answered    time.Time
}

// call is a dialog the server holds, and its stream when received here.
type call struct {
	dialog *sipgo.DialogClientSession
	stream *Stream
	// key is device id + "/" + channel.
	key string
}

// nextSSRC returns a live-video SSRC as GB/T 28181 forms it: 0, five
// digits of the SIP domain, a four-digit sequence.
func (s *Server) nextSSRC() string {
	dom := s.cfg.Realm + "0000000000"
	return "0" + dom[3:8] + fmt.Sprintf("%04d", s.ssrcSeq.Add(1)%10000)
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
	st, err := s.rx.open(id, channel, ss.Addr, tcp)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.media[st.key] = st
	s.mu.Unlock()
	c, err := s.invite(ctx, id, channel, MediaAddr{IP: st.diag.MediaIP, Port: st.diag.LocalPort, TCP: tcp}, st)
	if err != nil {
		st.mu.Lock()
		st.diag.SDPSent, st.diag.SDPReceived = c.SDPSent, c.SDPReceived
		st.mu.Unlock()
		st.fail(err)
		return nil, err
	}
	st.answered(c, func(ctx context.Context) error { return s.Hangup(ctx, c.ID) })
	s.log.Info("gb28181 stream started", "device", id, "channel", channel, "transport", st.diag.Transport, "port", st.diag.LocalPort, "ssrc", c.SSRC)
	return st, nil
}

// Invite asks the registered device id to send channel's live video to
// media, a receiver that may be in another process (a worker), and
// returns the answered call; Hangup ends it. A failed INVITE returns the
// call as far as it went (the SDP sent) with the error.
func (s *Server) Invite(ctx context.Context, id, channel string, media MediaAddr) (*Call, error) {
	if !ValidID(channel) {
		return &Call{}, fmt.Errorf("gb28181: channel %q is not a 20-digit id", clean(channel))
	}
	return s.invite(ctx, id, channel, media, nil)
}

// invite runs the INVITE dialog; st, when set, is the stream receiving
// here, which the device's BYE ends.
func (s *Server) invite(ctx context.Context, id, channel string, media MediaAddr, st *Stream) (*Call, error) {
	c := &Call{Invited: s.now()}
	ss, ok := s.Session(id)
	if !ok || !ss.Online {
		return c, fmt.Errorf("%w: %s", ErrNotRegistered, id)
	}
	offer := SDP{Origin: s.cfg.ServerID, Session: "Play", IP: media.IP, Port: media.Port, TCP: media.TCP, Setup: "passive", Direction: "recvonly", SSRC: s.nextSSRC()}
	c.SDPSent, c.SSRC = string(offer.Marshal()), offer.SSRC
	fail := func(err error) (*Call, error) {
		s.m.invites.WithLabelValues(inviteResult(err)).Inc()
		return c, err
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
	sipHost := s.rx.mediaIPFor(ss.Addr)
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
	if err := dlg.WaitAnswer(ictx, sipgo.AnswerOptions{}); err != nil {
		_ = dlg.Close()
		return fail(fmt.Errorf("%w: %s channel %s: %w", ErrInvite, id, channel, err))
	}
	body := dlg.InviteResponse.Body()
	c.SDPReceived, c.Answered = string(body[:min(len(body), maxSDP)]), s.now()
	answer, err := ParseSDP(body)
	if err != nil {
		_ = dlg.Ack(ictx)
		_ = dlg.Bye(ictx)
		return fail(fmt.Errorf("%w: %s channel %s: the answer: %w", ErrInvite, id, channel, err))
	}
	if answer.SSRC != "" {
		c.SSRC = answer.SSRC
	}
	if err := dlg.Ack(ictx); err != nil {
		return fail(fmt.Errorf("%w: %s channel %s: ACK: %w", ErrInvite, id, channel, err))
	}
	c.ID = req.CallID().Value()
	s.mu.Lock()
	s.calls[c.ID] = &call{dialog: dlg, stream: st, key: id + "/" + channel}
	s.mu.Unlock()
	s.m.invites.WithLabelValues("ok").Inc()
	return c, nil
}

// Hangup ends the call (BYE); an unknown call is already over.
func (s *Server) Hangup(ctx context.Context, callID string) error {
	s.mu.Lock()
	c := s.calls[callID]
	delete(s.calls, callID)
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.dialog.Bye(ctx)
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
	c := s.calls[id]
	delete(s.calls, id)
	s.mu.Unlock()
	if c == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	s.respond(req, tx, 200, "OK")
	s.log.Info("gb28181 stream ended by the device", "stream", c.key)
	if c.stream != nil {
		c.stream.end(ErrStreamEnded)
	}
}

// receive reads RTP until the stream ends, hands the payloads on in
// order, and ends the stream when none comes for NoMediaTimeout.
func (st *Stream) receive() {
	defer close(st.done)
	rx := st.rx
	timeout := rx.cfg.NoMediaTimeout
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
			rx.m.rtpMalformed.Inc()
			continue
		}
		if p.SSRC != st.ssrc {
			st.wrong.Add(1)
			rx.m.ssrcMismatch.Inc()
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
		rx.m.rtpPackets.Inc()
		rx.m.rtpBytes.Add(float64(len(b)))
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
	now := st.rx.now()
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

// MediaDiag returns the diagnosis of the channel's last stream, received
// here or, invited for another process, as that process last reported it.
func (s *Server) MediaDiag(id, channel string) (MediaDiag, bool) {
	key := id + "/" + channel
	s.mu.Lock()
	st := s.media[key]
	rd, remote := s.remote[key]
	s.mu.Unlock()
	if st != nil {
		if d := st.Diag(); !remote || !rd.Invited.After(d.Invited) {
			return d, true
		}
	}
	return rd, remote
}
