package gb28181

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// SimChannel is one camera channel of a simulated device.
type SimChannel struct {
	ID, Name string
	// Off makes the catalog say the channel is off.
	Off bool
}

// SimChange is one change to a simulated device's catalog.
type SimChange struct {
	// Event is ADD, DEL, UPDATE, ON or OFF.
	Event string
	SimChannel
}

// SimConfig describes a simulated GB/T 28181 device.
type SimConfig struct {
	// Server is the platform's SIP address (host:port); ServerID its id.
	Server, ServerID string
	// Transport is udp (default) or tcp.
	Transport string
	// DeviceID and Password are the device's credentials.
	DeviceID, Password string
	// Local is the address to bind (default 127.0.0.1:0).
	Local string
	// Expires is the registration asked for (default 3600s); Keepalive
	// the interval between keepalives (default 60s).
	Expires, Keepalive time.Duration
	// Channels are answered to catalog queries, names sent in GBK.
	Channels []SimChannel
	// Changes are notified in one catalog NOTIFY (an Event per item),
	// ChangesAfter (default 1s) after the first catalog answer; later
	// catalog answers have them applied.
	Changes      []SimChange
	ChangesAfter time.Duration
	// Name, Manufacturer and Model answer DeviceInfo.
	Name, Manufacturer, Model string
	// Codec is the live video's codec: h264 (default) or h265.
	Codec string
	// Video is a file ffmpeg reads for the live video (its first 20s,
	// looped); empty: a 4-second test pattern.
	Video string
	// FFmpeg is the ffmpeg that encodes it (default: ffmpeg on PATH).
	FFmpeg string
	// FPS is the video's frame rate (default 10).
	FPS int
	// SSRC, when set, is the SSRC sent instead of the one the INVITE asks
	// for (a misconfigured camera).
	SSRC string
	// Record is a file each INVITE, BYE and DeviceControl received is
	// appended to, one line each.
	Record string
	Logger *slog.Logger
	// lavfi makes Video a lavfi graph (benchmarks).
	lavfi bool
	// The cascade (Cascade) is this user agent with its catalog, its
	// PTZ and its video from the platform: list gives the channels
	// (instead of Channels), control forwards a DeviceControl, invite
	// passes an INVITE on (hangup ends what it started), and noVideo
	// refuses INVITE.
	list    func(context.Context) ([]SimChannel, error)
	control func(ctx context.Context, channel string, cmd PTZ) error
	invite  func(ctx context.Context, channel string, offer SDP) (answer SDP, hangup func(context.Context) error, err error)
	noVideo bool
}

// ErrRegisterRefused is returned by Run when the platform refuses the
// registration (wrong password, unknown device).
var ErrRegisterRefused = errors.New("gb28181 sim: registration refused")

// Simulator is a GB/T 28181 device: it registers with digest
// authentication, sends keepalives, and answers catalog and device info
// queries. It is a real SIP user agent (sipgo) for tests and for people
// trying the platform without a camera (tianshu gb28181-sim).
type Simulator struct {
	cfg    SimConfig
	ua     *sipgo.UserAgent
	client *sipgo.Client
	conn   net.PacketConn
	laddr  string

	mu       sync.Mutex
	sn       int
	channels []SimChannel
	changes  sync.Once
	streams  map[string]*simStream // Call-ID → stream being sent

	// announced is, for the cascade, the catalog the upper platform last
	// learnt (answered or notified); nil until it asked.
	announced map[string]SimChannel

	videoOnce sync.Once
	video     []accessUnit
	videoErr  error
	recMu     sync.Mutex
}

// NewSimulator returns a simulator; Run starts it.
func NewSimulator(cfg SimConfig) (*Simulator, error) {
	if cfg.Transport == "" {
		cfg.Transport = "udp"
	}
	cfg.Transport = strings.ToLower(cfg.Transport)
	if cfg.Transport != "udp" && cfg.Transport != "tcp" {
		return nil, fmt.Errorf("gb28181 sim: transport %q: want udp or tcp", cfg.Transport)
	}
	if !ValidID(cfg.DeviceID) {
		return nil, fmt.Errorf("gb28181 sim: device id %q must be 20 digits", cfg.DeviceID)
	}
	if cfg.ServerID == "" {
		cfg.ServerID = "34020000002000000001"
	}
	if cfg.Local == "" {
		cfg.Local = "127.0.0.1:0"
	}
	if cfg.Expires <= 0 {
		cfg.Expires = time.Hour
	}
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = time.Minute
	}
	if cfg.ChangesAfter <= 0 {
		cfg.ChangesAfter = time.Second
	}
	for _, c := range cfg.Changes {
		switch strings.ToUpper(c.Event) {
		case EventAdd, EventDel, EventUpdate, EventOn, EventOff:
		default:
			return nil, fmt.Errorf("gb28181 sim: change event %q: want ADD, DEL, UPDATE, ON or OFF", c.Event)
		}
		if !ValidID(c.ID) {
			return nil, fmt.Errorf("gb28181 sim: change of channel %q: not a 20-digit id", c.ID)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Name == "" {
		cfg.Name = "Tianshu GB28181 simulator"
	}
	if cfg.Manufacturer == "" {
		cfg.Manufacturer = "Tianshu"
	}
	if cfg.Model == "" {
		cfg.Model = "gb28181-sim"
	}
	switch cfg.Codec {
	case "":
		cfg.Codec = "h264"
	case "h264", "h265":
	default:
		return nil, fmt.Errorf("gb28181 sim: codec %q: want h264 or h265", cfg.Codec)
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.FPS == 0 {
		cfg.FPS = 10
	}
	if cfg.FPS < 1 || cfg.FPS > 60 {
		return nil, fmt.Errorf("gb28181 sim: fps %d: want 1-60", cfg.FPS)
	}
	if cfg.SSRC != "" {
		if _, err := strconv.ParseUint(cfg.SSRC, 10, 32); err != nil || len(cfg.SSRC) > 10 {
			return nil, fmt.Errorf("gb28181 sim: ssrc %q: want at most 10 digits", cfg.SSRC)
		}
	}
	return &Simulator{cfg: cfg, channels: append([]SimChannel(nil), cfg.Channels...)}, nil
}

// Run registers, keeps alive and answers queries until ctx ends, then
// unregisters. A refused registration returns ErrRegisterRefused.
func (sm *Simulator) Run(ctx context.Context) error {
	ua, quiet, err := newUA(sm.cfg.Logger, sm.cfg.DeviceID, sm.cfg.ServerID[:10])
	if err != nil {
		return err
	}
	defer ua.Close()
	sm.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		return err
	}
	srv.OnMessage(sm.onMessage)
	srv.OnInvite(sm.onInvite)
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(sm.onBye)
	defer sm.stopStreams()
	var opts []sipgo.ClientOption
	if sm.cfg.Transport == "udp" {
		// Send and receive on one socket, as cameras do, so the platform's
		// queries reach the address it saw the REGISTER come from.
		conn, err := net.ListenPacket("udp", sm.cfg.Local)
		if err != nil {
			return fmt.Errorf("gb28181 sim: %w", err)
		}
		sm.conn, sm.laddr = conn, conn.LocalAddr().String()
		go func() { _ = srv.ServeUDP(conn) }()
		// Requests go out through the listening socket once the transport
		// layer has it.
		for i := 0; i < 200; i++ {
			if _, err := srv.TransportLayer().GetConnection("udp", sm.laddr); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		opts = append(opts, sipgo.WithClientConnectionAddr(sm.laddr))
	}
	sm.client, err = sipgo.NewClient(ua, append(opts, sipgo.WithClientLogger(quiet))...)
	if err != nil {
		return err
	}
	if !sm.cfg.noVideo && sm.cfg.invite == nil {
		// Encode the video now, as a camera has it ready before anyone asks.
		go func() { _, _ = sm.simVideo(context.WithoutCancel(ctx)) }()
	}
	if err := sm.register(ctx, sm.cfg.Expires); err != nil {
		return err
	}
	sm.cfg.Logger.Info("gb28181 sim registered", "device", sm.cfg.DeviceID, "server", sm.cfg.Server, "transport", sm.cfg.Transport)
	t := time.NewTicker(sm.cfg.Keepalive)
	defer t.Stop()
	reregister := time.NewTimer(sm.cfg.Expires * 3 / 4)
	defer reregister.Stop()
	for {
		select {
		case <-ctx.Done():
			uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = sm.register(uctx, 0)
			cancel()
			return nil
		case <-t.C:
			if sm.cfg.list != nil {
				sm.notifyCatalog(ctx)
			}
			if err := sm.keepalive(ctx); err != nil {
				sm.cfg.Logger.Warn("gb28181 sim keepalive failed", "err", err)
				if errors.Is(err, ErrRegisterRefused) {
					// The platform forgot us (restarted): register again.
					if err := sm.register(ctx, sm.cfg.Expires); err != nil && ctx.Err() == nil {
						sm.cfg.Logger.Warn("gb28181 sim register failed", "err", err)
					}
				}
			}
		case <-reregister.C:
			if err := sm.register(ctx, sm.cfg.Expires); err != nil && ctx.Err() == nil {
				sm.cfg.Logger.Warn("gb28181 sim register failed", "err", err)
			}
			reregister.Reset(sm.cfg.Expires * 3 / 4)
		}
	}
}

func (sm *Simulator) uri() sip.Uri {
	host, portS, _ := net.SplitHostPort(sm.cfg.Server)
	port, _ := strconv.Atoi(portS)
	u := sip.Uri{Scheme: "sip", User: sm.cfg.ServerID, Host: host, Port: port}
	if sm.cfg.Transport == "tcp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	}
	return u
}

func (sm *Simulator) newRequest(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, sm.uri())
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: sm.cfg.DeviceID, Host: sm.cfg.ServerID[:10]}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	if method == sip.REGISTER {
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: sm.cfg.DeviceID, Host: sm.cfg.ServerID[:10]}})
	} else {
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: sm.cfg.ServerID, Host: sm.cfg.ServerID[:10]}})
	}
	req.SetTransport(strings.ToUpper(sm.cfg.Transport))
	return req
}

// register sends REGISTER (expires 0 unregisters), answering the digest
// challenge.
func (sm *Simulator) register(ctx context.Context, expires time.Duration) error {
	req := sm.newRequest(sip.REGISTER)
	host := "127.0.0.1"
	port := 5060
	if sm.laddr != "" {
		h, p, _ := net.SplitHostPort(sm.laddr)
		host = h
		port, _ = strconv.Atoi(p)
	}
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: sm.cfg.DeviceID, Host: host, Port: port}})
	exp := sip.ExpiresHeader(uint32(expires / time.Second))
	req.AppendHeader(&exp)
	res, err := sm.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("gb28181 sim: register: %w", err)
	}
	if res.StatusCode == 401 {
		res, err = sm.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: sm.cfg.DeviceID, Password: sm.cfg.Password})
		if err != nil {
			return fmt.Errorf("gb28181 sim: register: %w", err)
		}
	}
	if !res.IsSuccess() {
		return fmt.Errorf("%w: %d %s", ErrRegisterRefused, res.StatusCode, res.Reason)
	}
	return nil
}

func (sm *Simulator) nextSN() int {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.sn++
	return sm.sn
}

// send delivers one MANSCDP document to the platform.
func (sm *Simulator) send(ctx context.Context, body []byte) error {
	return sm.sendAs(ctx, sip.MESSAGE, body)
}

// sendAs delivers one MANSCDP document in a MESSAGE or a NOTIFY.
func (sm *Simulator) sendAs(ctx context.Context, method sip.RequestMethod, body []byte) error {
	req := sm.newRequest(method)
	if method == sip.NOTIFY {
		req.AppendHeader(sip.NewHeader("Event", "Catalog"))
		req.AppendHeader(sip.NewHeader("Subscription-State", "active"))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	res, err := sm.client.Do(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode == 403 {
		return fmt.Errorf("%w: %d %s", ErrRegisterRefused, res.StatusCode, res.Reason)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("gb28181 sim: message answered %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

func (sm *Simulator) keepalive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body := fmt.Sprintf("<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>%d</SN>\r\n<DeviceID>%s</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n",
		sm.nextSN(), sm.cfg.DeviceID)
	return sm.send(ctx, []byte(body))
}

func (sm *Simulator) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	m, err := Parse(req.Body())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var docs [][]byte
		switch m.CmdType {
		case "Catalog":
			docs = sm.catalog(ctx, m.SN)
		case "DeviceInfo":
			docs = [][]byte{sm.deviceInfo(ctx, m.SN)}
		case "DeviceControl":
			sm.record("DeviceControl %s PTZCmd=%s", m.DeviceID, m.PTZCmd)
			if sm.cfg.control != nil {
				sm.forward(ctx, m)
			}
			return
		default:
			return
		}
		for _, d := range docs {
			if err := sm.send(ctx, d); err != nil {
				sm.cfg.Logger.Warn("gb28181 sim answer not sent", "cmd", m.CmdType, "err", err)
				return
			}
		}
		if m.CmdType == "Catalog" && len(sm.cfg.Changes) > 0 {
			sm.changes.Do(func() { go sm.notifyChanges() })
		}
	}()
}

// notifyChanges sends the configured catalog changes in NOTIFYs (two
// items each, as catalogs are split to fit a UDP datagram) and applies
// them to the catalog.
func (sm *Simulator) notifyChanges() {
	time.Sleep(sm.cfg.ChangesAfter)
	chans := make([]SimChannel, len(sm.cfg.Changes))
	events := make([]string, len(sm.cfg.Changes))
	for i, c := range sm.cfg.Changes {
		events[i] = strings.ToUpper(c.Event)
		chans[i] = c.SimChannel
		chans[i].Off = events[i] == EventOff || (events[i] != EventOn && c.Off)
		sm.apply(events[i], c.SimChannel)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, doc := range sm.catalogDocs("Notify", sm.nextSN(), chans, events) {
		if err := sm.sendAs(ctx, sip.NOTIFY, doc); err != nil {
			sm.cfg.Logger.Warn("gb28181 sim catalog change not sent", "err", err)
			return
		}
	}
	sm.cfg.Logger.Info("gb28181 sim catalog change sent", "items", len(chans))
}

// apply changes the catalog as event ev on channel c says.
func (sm *Simulator) apply(ev string, c SimChannel) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	for i := range sm.channels {
		if sm.channels[i].ID != c.ID {
			continue
		}
		switch ev {
		case EventDel:
			sm.channels = append(sm.channels[:i], sm.channels[i+1:]...)
		case EventOn, EventOff:
			sm.channels[i].Off = ev == EventOff
		default:
			if c.Name != "" {
				sm.channels[i].Name = c.Name
			}
			sm.channels[i].Off = c.Off
		}
		return
	}
	if ev == EventAdd || ev == EventUpdate {
		sm.channels = append(sm.channels, c)
	}
}

// forward hands a DeviceControl on (the cascade: to the channel's device).
func (sm *Simulator) forward(ctx context.Context, m *Message) {
	cmd, err := ParsePTZ(m.PTZCmd)
	if err == nil {
		err = sm.cfg.control(ctx, m.DeviceID, cmd)
	}
	if err != nil {
		sm.cfg.Logger.Warn("gb28181 cascade control not forwarded", "channel", m.DeviceID, "err", err)
	}
}

func (sm *Simulator) deviceInfo(ctx context.Context, sn int) []byte {
	doc := fmt.Sprintf("<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Response>\r\n<CmdType>DeviceInfo</CmdType>\r\n<SN>%d</SN>\r\n<DeviceID>%s</DeviceID>\r\n<Result>OK</Result>\r\n<DeviceName>%s</DeviceName>\r\n<Manufacturer>%s</Manufacturer>\r\n<Model>%s</Model>\r\n<Firmware>1.0</Firmware>\r\n<Channel>%d</Channel>\r\n</Response>\r\n",
		sn, sm.cfg.DeviceID, xmlText(sm.cfg.Name), xmlText(sm.cfg.Manufacturer), xmlText(sm.cfg.Model), len(sm.currentChannels(ctx)))
	b, err := EncodeGBK(doc)
	if err != nil {
		return []byte(doc)
	}
	return b
}

// currentChannels are the channels now: the cascade's list, else the
// configured ones with their changes applied.
func (sm *Simulator) currentChannels(ctx context.Context) []SimChannel {
	if sm.cfg.list != nil {
		chans, err := sm.cfg.list(ctx)
		if err != nil {
			sm.cfg.Logger.Warn("gb28181 cascade catalog unavailable", "err", err)
		}
		return chans
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return append([]SimChannel(nil), sm.channels...)
}

// catalog answers a catalog query.
func (sm *Simulator) catalog(ctx context.Context, sn int) [][]byte {
	chans := sm.currentChannels(ctx)
	if sm.cfg.list != nil {
		sm.mu.Lock()
		sm.announced = map[string]SimChannel{}
		for _, c := range chans {
			sm.announced[c.ID] = c
		}
		sm.mu.Unlock()
	}
	return sm.catalogDocs("Response", sn, chans, nil)
}

// notifyCatalog tells the upper platform (the cascade) how the channels
// changed since it last learnt them: a NOTIFY with an ADD, DEL, UPDATE,
// ON or OFF per changed channel.
func (sm *Simulator) notifyCatalog(ctx context.Context) {
	cur := sm.currentChannels(ctx)
	sm.mu.Lock()
	if sm.announced == nil {
		sm.mu.Unlock()
		return
	}
	var chans []SimChannel
	var events []string
	seen := map[string]bool{}
	for _, c := range cur {
		seen[c.ID] = true
		was, ok := sm.announced[c.ID]
		switch {
		case !ok:
			chans, events = append(chans, c), append(events, EventAdd)
		case was.Name != c.Name:
			chans, events = append(chans, c), append(events, EventUpdate)
		case was.Off != c.Off && c.Off:
			chans, events = append(chans, c), append(events, EventOff)
		case was.Off != c.Off:
			chans, events = append(chans, c), append(events, EventOn)
		}
	}
	for id, was := range sm.announced {
		if !seen[id] {
			chans, events = append(chans, was), append(events, EventDel)
		}
	}
	sm.mu.Unlock()
	if len(chans) == 0 {
		return
	}
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, doc := range sm.catalogDocs("Notify", sm.nextSN(), chans, events) {
		if err := sm.sendAs(nctx, sip.NOTIFY, doc); err != nil {
			sm.cfg.Logger.Warn("gb28181 cascade catalog change not sent", "err", err)
			return
		}
	}
	sm.mu.Lock()
	for i, c := range chans {
		if events[i] == EventDel {
			delete(sm.announced, c.ID)
		} else {
			sm.announced[c.ID] = c
		}
	}
	sm.mu.Unlock()
	sm.cfg.Logger.Info("gb28181 cascade catalog change sent", "items", len(chans))
}

// catalogDocs writes chans (with events[i] as their Event, when given) in
// documents of at most 2 items, as devices split long catalogs, with
// names in GBK.
func (sm *Simulator) catalogDocs(root string, sn int, chans []SimChannel, events []string) [][]byte {
	var out [][]byte
	for start := 0; start < len(chans) || start == 0; start += 2 {
		end := min(start+2, len(chans))
		var b strings.Builder
		fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<%s>\r\n<CmdType>Catalog</CmdType>\r\n<SN>%d</SN>\r\n<DeviceID>%s</DeviceID>\r\n<SumNum>%d</SumNum>\r\n<DeviceList Num=\"%d\">\r\n",
			root, sn, sm.cfg.DeviceID, len(chans), end-start)
		for i := start; i < end; i++ {
			ev := ""
			if events != nil {
				ev = events[i]
			}
			sm.writeItem(&b, chans[i], chans[i].Off, ev)
		}
		fmt.Fprintf(&b, "</DeviceList>\r\n</%s>\r\n", root)
		doc, err := EncodeGBK(b.String())
		if err != nil {
			doc = []byte(b.String())
		}
		out = append(out, doc)
		if len(chans) == 0 {
			break
		}
	}
	return out
}

// writeItem writes one catalog item, with an Event unless ev is "".
func (sm *Simulator) writeItem(b *strings.Builder, c SimChannel, off bool, ev string) {
	fmt.Fprintf(b, "<Item>\r\n<DeviceID>%s</DeviceID>\r\n<Name>%s</Name>\r\n<Manufacturer>%s</Manufacturer>\r\n<Model>%s</Model>\r\n<CivilCode>%s</CivilCode>\r\n<Parental>0</Parental>\r\n<ParentID>%s</ParentID>\r\n<Status>%s</Status>\r\n",
		xmlText(c.ID), xmlText(c.Name), xmlText(sm.cfg.Manufacturer), xmlText(sm.cfg.Model), sm.cfg.DeviceID[:10], sm.cfg.DeviceID, onOff(off))
	if ev != "" {
		fmt.Fprintf(b, "<Event>%s</Event>\r\n", xmlText(ev))
	}
	b.WriteString("</Item>\r\n")
}

func onOff(off bool) string {
	if off {
		return "OFF"
	}
	return "ON"
}
