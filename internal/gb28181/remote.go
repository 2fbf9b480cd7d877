package gb28181

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Relay carries messages between the platform's processes that nobody
// stores, to whoever listens at that moment (bus.Ephemeral is one). When
// the platform runs as separate processes the SIP server is in the
// control plane, where devices register, and tasks run on workers: a
// worker asks the server through the relay to invite a device to send
// video straight to the worker's own media port.
type Relay interface {
	Send(subject string, data []byte) error
	Listen(subject string, h func(data []byte)) (stop func(), err error)
}

// The relay's subjects: requests to the SIP servers, each answered on
// its own reply subject; and the receivers' reports of their streams.
const (
	subjectRequests = "gb28181.requests"
	subjectReplies  = "gb28181.replies."
	subjectDiag     = "gb28181.diag"
)

// Relay limits: the largest message read, and requests served at once.
const (
	maxRelayMessage = 64 << 10
	maxRemoteCalls  = 64
)

// Remote request operations.
const (
	opSession = "session" // the device's registration
	opInfo    = "info"    // a DeviceInfo query
	opInvite  = "invite"  // INVITE to a receiver's media address
	opHangup  = "hangup"  // BYE
)

type remoteRequest struct {
	ID       string    `json:"id"`
	Op       string    `json:"op"`
	Device   string    `json:"device"`
	Channel  string    `json:"channel,omitempty"`
	Media    MediaAddr `json:"media"`
	CallID   string    `json:"call_id,omitempty"`
	Receiver string    `json:"receiver,omitempty"`
	// WaitMs is how long the requester waits for the answer: an INVITE
	// answered later is hung up at once, as nobody receives its video.
	WaitMs int64 `json:"wait_ms,omitempty"`
}

type remoteReply struct {
	Error         string   `json:"error,omitempty"`
	NotRegistered bool     `json:"not_registered,omitempty"`
	Session       *Session `json:"session,omitempty"`
	Info          *Message `json:"info,omitempty"`
	Call          *Call    `json:"call,omitempty"`
}

// check refuses a request no process of ours would send.
func (r *remoteRequest) check() error {
	if len(r.ID) != 32 {
		return errors.New("id: want 32 hex digits")
	}
	if _, err := hex.DecodeString(r.ID); err != nil {
		return errors.New("id: want 32 hex digits")
	}
	if !ValidID(r.Device) {
		return errors.New("device: want a 20-digit id")
	}
	switch r.Op {
	case opSession, opInfo:
	case opInvite:
		if !ValidID(r.Channel) {
			return errors.New("channel: want a 20-digit id")
		}
		if net.ParseIP(r.Media.IP) == nil || r.Media.Port < 1 || r.Media.Port > 65535 {
			return errors.New("media: want an IP address and a port")
		}
		if len(r.Receiver) > 128 {
			return errors.New("receiver: at most 128 bytes")
		}
	case opHangup:
		if r.CallID == "" || len(r.CallID) > 256 {
			return errors.New("call_id: want 1-256 bytes")
		}
	default:
		return fmt.Errorf("op %q: want session, info, invite or hangup", clean(r.Op))
	}
	return nil
}

// ServeRemote answers the requests other processes send through r for
// the devices registered here: their registration, device info, INVITE
// to the requester's media address and BYE; and keeps what receivers
// report of those streams for MediaDiag. Requests for devices not
// registered here go unanswered: another server may hold them. stop ends
// serving.
func (s *Server) ServeRemote(r Relay) (stop func(), err error) {
	sem := make(chan struct{}, maxRemoteCalls)
	stopReq, err := r.Listen(subjectRequests, func(data []byte) {
		var req remoteRequest
		if len(data) > maxRelayMessage || json.Unmarshal(data, &req) != nil {
			s.log.Warn("gb28181 relay request unreadable", "bytes", len(data))
			return
		}
		if err := req.check(); err != nil {
			s.log.Warn("gb28181 relay request refused", "err", err)
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			s.reply(r, req.ID, remoteReply{Error: "gb28181: the SIP server is busy with other processes' requests"})
			return
		}
		go func() {
			defer func() { <-sem }()
			if rep, ok := s.serveRemote(req); ok {
				s.reply(r, req.ID, rep)
			}
		}()
	})
	if err != nil {
		return nil, fmt.Errorf("gb28181: relay: %w", err)
	}
	stopDiag, err := r.Listen(subjectDiag, s.remoteDiag)
	if err != nil {
		stopReq()
		return nil, fmt.Errorf("gb28181: relay: %w", err)
	}
	return func() { stopReq(); stopDiag() }, nil
}

func (s *Server) reply(r Relay, id string, rep remoteReply) {
	b, _ := json.Marshal(rep)
	if err := r.Send(subjectReplies+id, b); err != nil {
		s.log.Warn("gb28181 relay reply not sent", "err", err)
	}
}

// serveRemote answers one request; false: not ours to answer.
func (s *Server) serveRemote(req remoteRequest) (remoteReply, bool) {
	if req.Op == opHangup {
		s.mu.Lock()
		_, ours := s.calls[req.CallID]
		s.mu.Unlock()
		if !ours {
			return remoteReply{}, false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Hangup(ctx, req.CallID); err != nil {
			return remoteReply{Error: err.Error()}, true
		}
		return remoteReply{}, true
	}
	ss, ok := s.Session(req.Device)
	if !ok {
		return remoteReply{}, false
	}
	switch req.Op {
	case opSession:
		return remoteReply{Session: &ss}, true
	case opInfo:
		m, err := s.DeviceInfo(context.Background(), req.Device)
		if err != nil {
			return remoteReply{Error: err.Error(), NotRegistered: errors.Is(err, ErrNotRegistered)}, true
		}
		return remoteReply{Info: m}, true
	}
	received := time.Now()
	c, err := s.Invite(context.Background(), req.Device, req.Channel, req.Media)
	if late := req.WaitMs > 0 && time.Since(received) > time.Duration(req.WaitMs)*time.Millisecond; err == nil && late {
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.Hangup(hctx, c.ID)
		cancel()
		err = fmt.Errorf("%w: %s channel %s: answered after the requester stopped waiting", ErrInvite, req.Device, req.Channel)
	}
	transport := "UDP"
	if req.Media.TCP {
		transport = "TCP"
	}
	d := MediaDiag{DeviceID: req.Device, Channel: req.Channel, Transport: transport, MediaIP: req.Media.IP, LocalPort: req.Media.Port,
		SDPSent: c.SDPSent, SDPReceived: c.SDPReceived, SSRCExpected: c.SSRC, Invited: c.Invited, Answered: c.Answered,
		Active: err == nil, Receiver: req.Receiver}
	if err != nil {
		d.LastError, d.Ended = err.Error(), s.now()
	}
	s.mu.Lock()
	s.remote[req.Device+"/"+req.Channel] = d
	s.mu.Unlock()
	if err != nil {
		return remoteReply{Error: err.Error(), NotRegistered: errors.Is(err, ErrNotRegistered)}, true
	}
	s.log.Info("gb28181 stream started for another process", "device", req.Device, "channel", req.Channel, "receiver", req.Receiver,
		"media", net.JoinHostPort(req.Media.IP, fmt.Sprint(req.Media.Port)), "transport", transport, "ssrc", c.SSRC)
	return remoteReply{Call: c}, true
}

// remoteDiag keeps a receiver's report of a stream this server invited
// for it (the same SSRC and port), for MediaDiag.
func (s *Server) remoteDiag(data []byte) {
	var d MediaDiag
	if len(data) > maxRelayMessage || json.Unmarshal(data, &d) != nil {
		return
	}
	key := d.DeviceID + "/" + d.Channel
	s.mu.Lock()
	defer s.mu.Unlock()
	if was, ok := s.remote[key]; ok && was.SSRCExpected == d.SSRCExpected && was.LocalPort == d.LocalPort && was.Receiver == d.Receiver {
		if len(d.SSRCSeen) > maxSSRCSeen {
			d.SSRCSeen = d.SSRCSeen[:maxSSRCSeen]
		}
		d.SDPSent, d.SDPReceived = was.SDPSent, was.SDPReceived
		s.remote[key] = d
	}
}

// RemoteOptions are a Remote's collaborators.
type RemoteOptions struct {
	// Relay reaches the SIP servers of the platform's other processes.
	Relay Relay
	// Name is this process's (the worker's), shown in diagnoses.
	Name   string
	Logger *slog.Logger
	// Registerer receives the tianshu_gb28181_rtp_* metrics; nil none.
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Remote receives live video in a process without the SIP server (a
// worker): it asks the server of another process, through the relay, to
// invite the device to send RTP to a port of its own, and receives it as
// Server.Play does. A device no server answers for is not registered.
type Remote struct {
	relay Relay
	rx    *receiver
	name  string
	log   *slog.Logger
	// wait bounds a request's wait for its answer.
	wait time.Duration
}

// NewRemote returns a Remote receiving on cfg's media address and ports
// (MediaIP, MediaPortMin/Max, NoMediaTimeout; QueryTimeout bounds an
// INVITE's wait for the device, as the server's).
func NewRemote(cfg Config, o RemoteOptions) (*Remote, error) {
	cfg.defaults()
	if o.Relay == nil {
		return nil, errors.New("gb28181: a Relay is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Remote{relay: o.Relay, rx: &receiver{cfg: cfg, m: m, now: o.Now}, name: o.Name, log: o.Logger.With("component", "gb28181"),
		wait: cfg.QueryTimeout + 5*time.Second}, nil
}

// remoteSessionWait bounds the wait for a registration's answer: no
// answer means no server has the device.
const remoteSessionWait = 3 * time.Second

// ask sends req to the servers and waits up to wait for the answer.
func (r *Remote) ask(ctx context.Context, req remoteRequest, wait time.Duration) (remoteReply, error) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	req.ID = hex.EncodeToString(id[:])
	answers := make(chan remoteReply, 1)
	stop, err := r.relay.Listen(subjectReplies+req.ID, func(data []byte) {
		var rep remoteReply
		if len(data) <= maxRelayMessage && json.Unmarshal(data, &rep) == nil {
			select {
			case answers <- rep:
			default:
			}
		}
	})
	if err != nil {
		return remoteReply{}, fmt.Errorf("gb28181: relay: %w", err)
	}
	defer stop()
	b, _ := json.Marshal(req)
	if err := r.relay.Send(subjectRequests, b); err != nil {
		return remoteReply{}, fmt.Errorf("gb28181: relay: %w", err)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case rep := <-answers:
		if rep.NotRegistered {
			return rep, fmt.Errorf("%w: %s", ErrNotRegistered, rep.Error)
		}
		if rep.Error != "" {
			return rep, errors.New(rep.Error)
		}
		return rep, nil
	case <-t.C:
		return remoteReply{}, fmt.Errorf("%w: %s: no SIP server of the platform answered for it in %v (is one running, --gb28181.addr on the control plane?)",
			ErrNotRegistered, req.Device, wait)
	case <-ctx.Done():
		return remoteReply{}, ctx.Err()
	}
}

// Session returns the device's registration as the server holding it
// sees it; ErrNotRegistered when no server answers.
func (r *Remote) Session(ctx context.Context, id string) (Session, error) {
	rep, err := r.ask(ctx, remoteRequest{Op: opSession, Device: id}, remoteSessionWait)
	if err != nil {
		return Session{}, err
	}
	if rep.Session == nil {
		return Session{}, errors.New("gb28181: relay: an answer without the session")
	}
	return *rep.Session, nil
}

// DeviceInfo asks the registered device what it is.
func (r *Remote) DeviceInfo(ctx context.Context, id string) (*Message, error) {
	rep, err := r.ask(ctx, remoteRequest{Op: opInfo, Device: id}, r.wait)
	if err != nil {
		return nil, err
	}
	if rep.Info == nil {
		return nil, errors.New("gb28181: relay: an answer without the device info")
	}
	return rep.Info, nil
}

// remoteDiagEvery is how often a receiver reports a stream's diagnosis.
const remoteDiagEvery = 2 * time.Second

// Play invites, through the server holding the device's registration,
// device id to send channel's live video to a port of this process, and
// returns the stream once the device answered (see Server.Play). A BYE
// from the device is not relayed: the stream then ends for lack of RTP.
func (r *Remote) Play(ctx context.Context, id, channel string, tcp bool) (*Stream, error) {
	if !ValidID(channel) {
		return nil, fmt.Errorf("gb28181: channel %q is not a 20-digit id", clean(channel))
	}
	ss, err := r.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ss.Online {
		return nil, fmt.Errorf("%w: %s stopped sending keepalives", ErrNotRegistered, id)
	}
	st, err := r.rx.open(id, channel, ss.Addr, tcp)
	if err != nil {
		return nil, err
	}
	st.diag.Receiver = r.name
	wait := r.wait
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = time.Until(dl)
	}
	rep, err := r.ask(ctx, remoteRequest{Op: opInvite, Device: id, Channel: channel, Receiver: r.name, WaitMs: wait.Milliseconds(),
		Media: MediaAddr{IP: st.diag.MediaIP, Port: st.diag.LocalPort, TCP: tcp}}, wait)
	if err == nil && rep.Call == nil {
		err = errors.New("gb28181: relay: an answer without the call")
	}
	if err != nil {
		if !errors.Is(err, ErrNotRegistered) {
			err = fmt.Errorf("%w: %s channel %s: %w", ErrInvite, id, channel, err)
		}
		st.fail(err)
		return nil, err
	}
	c := rep.Call
	st.answered(c, func(ctx context.Context) error {
		_, err := r.ask(ctx, remoteRequest{Op: opHangup, Device: id, CallID: c.ID}, 5*time.Second)
		return err
	})
	go r.report(st)
	r.log.Info("gb28181 stream started", "device", id, "channel", channel, "transport", st.diag.Transport, "port", st.diag.LocalPort, "ssrc", c.SSRC, "via", "relay")
	return st, nil
}

// report sends the stream's diagnosis to the servers every
// remoteDiagEvery while it runs, and once when it ends.
func (r *Remote) report(st *Stream) {
	send := func() {
		d := st.Diag()
		d.SDPSent, d.SDPReceived = "", "" // the server has them
		b, _ := json.Marshal(d)
		_ = r.relay.Send(subjectDiag, b)
	}
	t := time.NewTicker(remoteDiagEvery)
	defer t.Stop()
	for {
		select {
		case <-st.done:
			send()
			return
		case <-t.C:
			send()
		}
	}
}
