package gb28181

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// ErrUnknownDevice is what a Directory returns for an id no device has:
// the registration is refused.
var ErrUnknownDevice = errors.New("gb28181: unknown device")

// ErrNotRegistered is returned by queries to a device that is not
// registered now.
var ErrNotRegistered = errors.New("gb28181: device not registered")

// Directory is what the server asks about devices and tells about them:
// the device center implements it. Calls come from the server's
// goroutines and must not block for long.
type Directory interface {
	// Password returns the password the device registering as id must
	// prove; "" means the platform password. ErrUnknownDevice refuses it.
	Password(ctx context.Context, id string) (string, error)
	// Status reports a device going online (registered, keepalive after
	// a loss) or offline (unregistered, registration expired, keepalives
	// missing), with one of the Reason* strings.
	Status(ctx context.Context, id string, online bool, reason string)
	// Catalog hands over the catalog items one document of the device's
	// catalog carried, or one change notification (items with Event
	// set); sum is how many the device says it has in all.
	Catalog(ctx context.Context, id string, sum int, items []CatalogItem)
}

// Reasons passed to Directory.Status.
const (
	ReasonRegistered       = "registered"
	ReasonKeepalive        = "keepalive"
	ReasonUnregistered     = "unregistered"
	ReasonExpired          = "registration_expired"
	ReasonKeepaliveTimeout = "keepalive_timeout"
)

// Config is the SIP server's configuration.
type Config struct {
	// Addr is where the server listens, UDP and TCP on the same port
	// (host:port; port 0 picks one, the same for both where it can).
	Addr string
	// ServerID is the platform's 20-digit SIP id.
	ServerID string
	// Realm is the digest realm (default: the first 10 digits of ServerID,
	// the SIP domain by convention).
	Realm string
	// Password is the platform password, for devices that have none of
	// their own; "" refuses those.
	Password string
	// KeepaliveTimeout is how long a device may stay silent before it is
	// offline (default 3m: three missed keepalives at the usual 60s).
	KeepaliveTimeout time.Duration
	// MinExpires and MaxExpires bound the registration a device asks for
	// (defaults 60s and 24h).
	MinExpires, MaxExpires time.Duration
	// QueryTimeout bounds a query's wait for the device's answer (default 10s).
	QueryTimeout time.Duration
	// RefusedRate and RefusedBurst limit, per source address, how many
	// refused registrations are answered and audited (default 1/s, burst
	// 10); past that they are dropped unanswered.
	RefusedRate  float64
	RefusedBurst int
	// MediaIP is the address devices send live video to, as they see the
	// platform (its public address behind NAT); empty: our address on the
	// route to each device.
	MediaIP string
	// MediaPortMin and MediaPortMax bound the RTP receive ports (one per
	// stream); 0: any free port.
	MediaPortMin, MediaPortMax int
	// NoMediaTimeout ends a stream that receives no RTP this long (default
	// 10s); its reader then invites again.
	NoMediaTimeout time.Duration
}

func (c *Config) defaults() {
	if c.ServerID == "" {
		c.ServerID = "34020000002000000001"
	}
	if c.Realm == "" && len(c.ServerID) >= 10 {
		c.Realm = c.ServerID[:10]
	}
	if c.KeepaliveTimeout <= 0 {
		c.KeepaliveTimeout = 3 * time.Minute
	}
	if c.MinExpires <= 0 {
		c.MinExpires = 60 * time.Second
	}
	if c.MaxExpires < c.MinExpires {
		c.MaxExpires = max(24*time.Hour, c.MinExpires)
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = 10 * time.Second
	}
	if c.RefusedRate <= 0 {
		c.RefusedRate = 1
	}
	if c.RefusedBurst <= 0 {
		c.RefusedBurst = 10
	}
	if c.NoMediaTimeout <= 0 {
		c.NoMediaTimeout = 10 * time.Second
	}
	if c.MediaPortMax < c.MediaPortMin {
		c.MediaPortMax = c.MediaPortMin
	}
}

// Options are the server's collaborators.
type Options struct {
	Directory Directory
	Logger    *slog.Logger
	// Registerer receives the tianshu_gb28181_* metrics; nil registers none.
	Registerer prometheus.Registerer
	// Auditor records refused registrations; nil records none.
	Auditor api.Auditor
	// Limiter limits refused registrations per source; nil: in memory.
	Limiter ratelimit.Limiter
	Now     func() time.Time
}

// Session is a registered device as the server sees it.
type Session struct {
	DeviceID string
	// Transport is UDP or TCP; Addr the device's address (host:port).
	Transport, Addr string
	Registered      time.Time
	// LastRegister is the last successful REGISTER (a refresh, or the first).
	LastRegister  time.Time
	Expires       time.Time
	LastKeepalive time.Time
	Online        bool
	// Channels are the catalog's channels and whether each is on.
	Channels map[string]bool
}

// maxChannels bounds the channels remembered per device.
const maxChannels = 4096

// Server is the GB/T 28181 SIP server.
type Server struct {
	cfg   Config
	dir   Directory
	log   *slog.Logger
	audit api.Auditor
	lim   ratelimit.Limiter
	now   func() time.Time
	m     *metrics
	key   []byte // signs nonces

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	udp    net.PacketConn
	tcp    net.Listener

	mu       sync.Mutex
	sessions map[string]*Session
	used     map[string]nonceUse      // device id → the last nonce it proved
	waiters  map[string]chan *Message // device id + "/" + SN → answer
	sn       atomic.Int64
	media    map[string]*Stream   // device id + "/" + channel → its last stream
	calls    map[string]*call     // Call-ID → live-video dialog
	remote   map[string]MediaDiag // device id + "/" + channel → its last stream received elsewhere
	rx       *receiver
	ssrcSeq  atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a server; Start listens.
func New(cfg Config, o Options) (*Server, error) {
	cfg.defaults()
	if !ValidID(cfg.ServerID) {
		return nil, fmt.Errorf("gb28181: ServerID %q must be 20 digits", cfg.ServerID)
	}
	if o.Directory == nil {
		return nil, errors.New("gb28181: a Directory is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Limiter == nil {
		o.Limiter = ratelimit.NewMemory(o.Now)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &Server{cfg: cfg, dir: o.Directory, log: o.Logger.With("component", "gb28181"), audit: o.Auditor, lim: o.Limiter, now: o.Now, m: m, key: key,
		sessions: map[string]*Session{}, waiters: map[string]chan *Message{}, used: map[string]nonceUse{},
		media: map[string]*Stream{}, calls: map[string]*call{}, remote: map[string]MediaDiag{}}
	s.rx = &receiver{cfg: cfg, m: m, now: o.Now}
	s.sn.Store(time.Now().Unix() % 100000)
	return s, nil
}

// Start listens on Config.Addr, UDP and TCP, and serves until Close.
func (s *Server) Start(ctx context.Context) error {
	ua, quiet, err := newUA(s.log, s.cfg.ServerID, s.cfg.Realm)
	if err != nil {
		return fmt.Errorf("gb28181: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		return fmt.Errorf("gb28181: %w", err)
	}
	tcp, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		_ = ua.Close()
		return fmt.Errorf("gb28181: listen tcp %s: %w", s.cfg.Addr, err)
	}
	udpAddr := tcp.Addr().String() // the same port for both, so devices need one
	udp, err := net.ListenPacket("udp", udpAddr)
	if err != nil {
		_ = tcp.Close()
		_ = ua.Close()
		return fmt.Errorf("gb28181: listen udp %s: %w", udpAddr, err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet))
	if err != nil {
		return fmt.Errorf("gb28181: %w", err)
	}
	s.ua, s.srv, s.client, s.udp, s.tcp = ua, srv, client, udp, tcp
	srv.OnRegister(s.onRegister)
	srv.OnMessage(s.onMessage)
	srv.OnNotify(s.onMessage)
	srv.OnBye(s.onBye)
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.wg.Add(3)
	go func() { defer s.wg.Done(); _ = srv.ServeUDP(udp) }()
	go func() { defer s.wg.Done(); _ = srv.ServeTCP(tcp) }()
	go func() { defer s.wg.Done(); s.sweep(ctx) }()
	s.log.Info("gb28181 sip server listening", "udp", udp.LocalAddr().String(), "tcp", tcp.Addr().String(), "server_id", s.cfg.ServerID)
	return nil
}

// Addr returns the address the server listens on (UDP and TCP).
func (s *Server) Addr() string { return s.tcp.Addr().String() }

// Close stops listening; registered devices stay as they are in the
// directory (a restarted server sees them again on their next REGISTER).
func (s *Server) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.mu.Lock()
	plays := make([]*Stream, 0, len(s.calls))
	for _, c := range s.calls {
		if c.stream != nil {
			plays = append(plays, c.stream)
		}
	}
	s.mu.Unlock()
	for _, st := range plays {
		st.end(errors.New("gb28181: the SIP server stopped"))
	}
	_ = s.udp.Close()
	_ = s.tcp.Close()
	err := s.ua.Close()
	s.wg.Wait()
	return err
}

// Sessions returns the registered devices.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss.copy())
	}
	return out
}

// Session returns the device's registration, if any.
func (s *Server) Session(id string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return Session{}, false
	}
	return ss.copy(), true
}

func (ss *Session) copy() Session {
	c := *ss
	c.Channels = make(map[string]bool, len(ss.Channels))
	for k, v := range ss.Channels {
		c.Channels[k] = v
	}
	return c
}

func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("gb28181 response not sent", "err", err)
	}
}

// nonceUse is the last nonce a device proved and its count: a nonce is
// good once per count, so a captured REGISTER cannot be replayed (it is
// challenged again), while a device that counts up with qop=auth keeps
// its nonce.
type nonceUse struct {
	nonce string
	nc    int
	at    time.Time
}

// nonce is a timestamp and a random part signed with the server's key:
// stateless, so a flood of REGISTERs costs no memory, and unique, so that
// each challenge's answer is good once.
func (s *Server) nonce() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	body := strconv.FormatInt(s.now().Unix(), 16) + "." + hex.EncodeToString(r[:])
	return body + "." + s.sign(body)
}

func (s *Server) sign(body string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil)[:12])
}

func (s *Server) nonceValid(n string) bool {
	i := strings.LastIndexByte(n, '.')
	if i < 0 {
		return false
	}
	body, sig := n[:i], n[i+1:]
	if subtle.ConstantTimeCompare([]byte(sig), []byte(s.sign(body))) != 1 {
		return false
	}
	ts, _, _ := strings.Cut(body, ".")
	t, err := strconv.ParseInt(ts, 16, 64)
	if err != nil {
		return false
	}
	age := s.now().Unix() - t
	return age >= -5 && age <= 300
}

func md5hex(parts ...string) string {
	h := md5.Sum([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(h[:])
}

// digestOK checks an Authorization header against password (RFC 2617
// MD5, with or without qop=auth).
func digestOK(cr *digest.Credentials, method, password string) bool {
	if a := strings.ToUpper(cr.Algorithm); a != "" && a != "MD5" {
		return false
	}
	ha1 := md5hex(cr.Username, cr.Realm, password)
	ha2 := md5hex(method, cr.URI)
	var want string
	if cr.QOP == "" {
		want = md5hex(ha1, cr.Nonce, ha2)
	} else {
		want = md5hex(ha1, cr.Nonce, fmt.Sprintf("%08x", cr.Nc), cr.Cnonce, cr.QOP, ha2)
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(cr.Response))) == 1
}

// deviceIDOf returns the device id a request comes from: the From user.
func deviceIDOf(req *sip.Request) string {
	if f := req.From(); f != nil {
		return f.Address.User
	}
	return ""
}

func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id := deviceIDOf(req)
	src := req.Source()
	host, _, _ := net.SplitHostPort(src)
	if !ValidID(id) {
		s.refuse(ctx, req, tx, id, host, "bad_id", 400, "Bad Request")
		return
	}
	pass, err := s.dir.Password(ctx, id)
	if errors.Is(err, ErrUnknownDevice) {
		s.refuse(ctx, req, tx, id, host, "unknown_device", 403, "Forbidden")
		return
	}
	if err != nil {
		s.log.Warn("gb28181 device lookup failed", "device", id, "err", err)
		s.m.registers.WithLabelValues("error").Inc()
		s.respond(req, tx, 500, "Server Internal Error")
		return
	}
	if pass == "" {
		pass = s.cfg.Password
	}
	if pass == "" {
		s.refuse(ctx, req, tx, id, host, "no_password", 403, "Forbidden")
		return
	}
	auth := req.GetHeader("Authorization")
	if auth == nil {
		s.challenge(req, tx)
		return
	}
	cr, err := digest.ParseCredentials(auth.Value())
	if err != nil || cr.Username != id || cr.Realm != s.cfg.Realm {
		s.refuse(ctx, req, tx, id, host, "bad_credentials", 403, "Forbidden")
		return
	}
	if !s.nonceValid(cr.Nonce) {
		s.challenge(req, tx) // stale: ask again
		return
	}
	if !digestOK(cr, req.Method.String(), pass) {
		s.refuse(ctx, req, tx, id, host, "wrong_password", 403, "Forbidden")
		return
	}
	s.mu.Lock()
	u, seen := s.used[id]
	replay := seen && u.nonce == cr.Nonce && cr.Nc <= u.nc
	if !replay {
		s.used[id] = nonceUse{nonce: cr.Nonce, nc: cr.Nc, at: s.now()}
	}
	s.mu.Unlock()
	if replay {
		s.challenge(req, tx) // used before: a replay, or a device reusing it
		return
	}
	expires := s.expiresOf(req)
	if expires == 0 {
		s.mu.Lock()
		_, was := s.sessions[id]
		delete(s.sessions, id)
		s.mu.Unlock()
		s.m.registers.WithLabelValues("unregistered").Inc()
		s.respond(req, tx, 200, "OK", dateHeader(s.now()))
		if was {
			s.log.Info("gb28181 device unregistered", "device", id)
			s.dir.Status(ctx, id, false, ReasonUnregistered)
		}
		return
	}
	if expires < s.cfg.MinExpires {
		s.m.registers.WithLabelValues("interval_too_brief").Inc()
		h := sip.NewHeader("Min-Expires", strconv.Itoa(int(s.cfg.MinExpires/time.Second)))
		s.respond(req, tx, 423, "Interval Too Brief", h)
		return
	}
	expires = min(expires, s.cfg.MaxExpires)
	now := s.now()
	s.mu.Lock()
	ss := s.sessions[id]
	wasOnline := ss != nil && ss.Online
	if ss == nil {
		ss = &Session{DeviceID: id, Registered: now}
		s.sessions[id] = ss
	}
	ss.Transport, ss.Addr = strings.ToUpper(req.Transport()), src
	ss.Expires, ss.LastKeepalive, ss.LastRegister, ss.Online = now.Add(expires), now, now, true
	s.mu.Unlock()
	s.m.registers.WithLabelValues("ok").Inc()
	exp := sip.ExpiresHeader(uint32(expires / time.Second))
	s.respond(req, tx, 200, "OK", &exp, dateHeader(now))
	if !wasOnline {
		s.log.Info("gb28181 device registered", "device", id, "transport", ss.Transport, "addr", src)
		s.dir.Status(ctx, id, true, ReasonRegistered)
		// Ask what the device has; answers arrive as MESSAGEs.
		go func() {
			qctx, cancel := context.WithTimeout(context.Background(), s.cfg.QueryTimeout)
			defer cancel()
			if err := s.QueryCatalog(qctx, id); err != nil {
				s.log.Warn("gb28181 catalog query failed", "device", id, "err", err)
			}
		}()
	}
}

func dateHeader(t time.Time) sip.Header {
	// GB/T 28181 devices set their clock from the Date of the 200 OK.
	return sip.NewHeader("Date", t.Format("2006-01-02T15:04:05.000"))
}

// expiresOf reads the Expires header, else the Contact's expires, else 3600s.
func (s *Server) expiresOf(req *sip.Request) time.Duration {
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
	}
	if c := req.Contact(); c != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return time.Hour
}

func (s *Server) challenge(req *sip.Request, tx sip.ServerTransaction) {
	s.m.registers.WithLabelValues("challenged").Inc()
	chal := &digest.Challenge{Realm: s.cfg.Realm, Nonce: s.nonce(), Algorithm: "MD5"}
	s.respond(req, tx, 401, "Unauthorized", sip.NewHeader("WWW-Authenticate", chal.String()))
}

// refuse answers a registration that cannot succeed, audits it, and
// rate-limits both per source address: past the limit the request is
// dropped unanswered, so a flood costs neither bandwidth nor audit rows.
func (s *Server) refuse(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, id, host, why string, code int, reason string) {
	ok, _, err := s.lim.Allow(ctx, "gb28181-refused:"+host, s.cfg.RefusedRate, s.cfg.RefusedBurst)
	if err == nil && !ok {
		s.m.registers.WithLabelValues("dropped").Inc()
		return
	}
	s.m.registers.WithLabelValues(why).Inc()
	s.log.Warn("gb28181 registration refused", "device", clean(id), "source", host, "why", why)
	if s.audit != nil {
		e := api.AuditEvent{ProjectID: "", Actor: "gb28181:" + clean(id), Action: "GB28181Register", Resource: clean(id),
			Result: "AuthFailure." + why, SourceIP: host, Detail: fmt.Sprintf(`{"Transport":%q}`, req.Transport())}
		if err := s.audit.Record(ctx, e); err != nil {
			s.log.Warn("gb28181 refusal not audited", "err", err)
		}
	}
	s.respond(req, tx, code, reason)
}

func (s *Server) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	id := deviceIDOf(req)
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil || !sameHost(ss.Addr, req.Source()) {
		// Not registered (or the server restarted): 403 makes devices
		// register again. A message in a registered device's name from
		// another host is refused too: keepalives prove nothing unless
		// they come from where the device authenticated.
		s.m.messages.WithLabelValues("unregistered").Inc()
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	m, err := Parse(req.Body())
	if err != nil {
		s.m.messages.WithLabelValues("malformed").Inc()
		s.log.Warn("gb28181 message not understood", "device", id, "err", err)
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	s.respond(req, tx, 200, "OK")
	s.m.messages.WithLabelValues(metricCmd(m.CmdType)).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch {
	case m.CmdType == "Keepalive":
		s.keepalive(ctx, id)
	case m.Root == "Response" || m.CmdType == "Catalog":
		s.keepalive(ctx, id) // any message proves the device is there
		if m.CmdType == "Catalog" {
			s.mu.Lock()
			if ss := s.sessions[id]; ss != nil {
				if ss.Channels == nil {
					ss.Channels = map[string]bool{}
				}
				for _, it := range m.Items {
					if it.Deleted() {
						delete(ss.Channels, it.DeviceID)
						continue
					}
					if _, ok := ss.Channels[it.DeviceID]; ok || len(ss.Channels) < maxChannels {
						ss.Channels[it.DeviceID] = it.Online()
					}
				}
			}
			s.mu.Unlock()
			s.dir.Catalog(ctx, id, m.SumNum, m.Items)
		}
		s.mu.Lock()
		ch := s.waiters[waitKey(id, m.CmdType, m.SN)]
		s.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	}
}

func sameHost(a, b string) bool {
	ha, _, _ := net.SplitHostPort(a)
	hb, _, _ := net.SplitHostPort(b)
	return ha != "" && ha == hb
}

func metricCmd(c string) string {
	switch c {
	case "Keepalive", "Catalog", "DeviceInfo", "DeviceStatus", "Alarm", "MediaStatus":
		return c
	}
	return "other"
}

func waitKey(id, cmd string, sn int) string { return id + "/" + cmd + "/" + strconv.Itoa(sn) }

func (s *Server) keepalive(ctx context.Context, id string) {
	s.mu.Lock()
	ss := s.sessions[id]
	back := false
	if ss != nil {
		ss.LastKeepalive = s.now()
		back = !ss.Online
		ss.Online = true
	}
	s.mu.Unlock()
	if back {
		s.log.Info("gb28181 device back online", "device", id)
		s.dir.Status(ctx, id, true, ReasonKeepalive)
	}
}

// sweep marks devices offline whose keepalives stopped or whose
// registration expired.
func (s *Server) sweep(ctx context.Context) {
	tick := min(time.Second, s.cfg.KeepaliveTimeout/4)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.now()
		type change struct{ id, reason string }
		var offline []change
		online := 0
		s.mu.Lock()
		for id, u := range s.used {
			if now.Sub(u.at) > 10*time.Minute { // the nonce has expired anyway
				delete(s.used, id)
			}
		}
		for id, ss := range s.sessions {
			switch {
			case now.After(ss.Expires):
				delete(s.sessions, id)
				if ss.Online {
					offline = append(offline, change{id, ReasonExpired})
				}
			case ss.Online && now.Sub(ss.LastKeepalive) > s.cfg.KeepaliveTimeout:
				ss.Online = false
				offline = append(offline, change{id, ReasonKeepaliveTimeout})
			case ss.Online:
				online++
			}
		}
		s.mu.Unlock()
		s.m.online.Set(float64(online))
		for _, c := range offline {
			s.log.Info("gb28181 device offline", "device", c.id, "reason", c.reason)
			s.dir.Status(ctx, c.id, false, c.reason)
		}
	}
}

// request sends a MANSCDP query to a registered device and returns the
// device's 2xx; its answer arrives later as a MESSAGE.
func (s *Server) request(ctx context.Context, id string, body []byte) error {
	ss, ok := s.Session(id)
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotRegistered, id)
	}
	host, portS, err := net.SplitHostPort(ss.Addr)
	if err != nil {
		return fmt.Errorf("gb28181: device %s address %q: %w", id, ss.Addr, err)
	}
	port, _ := strconv.Atoi(portS)
	to := sip.Uri{Scheme: "sip", User: id, Host: host, Port: port}
	req := sip.NewRequest(sip.MESSAGE, to)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: s.cfg.ServerID, Host: s.cfg.Realm}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: id, Host: s.cfg.Realm}})
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	req.SetDestination(ss.Addr)
	if ss.Transport == "TCP" {
		req.SetTransport("TCP")
	} else {
		req.SetTransport("UDP")
		la := s.udp.LocalAddr().(*net.UDPAddr)
		req.Laddr = sip.Addr{IP: la.IP, Port: la.Port}
	}
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("gb28181: query %s: %w", id, err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("gb28181: query %s: device answered %d %s", id, res.StatusCode, res.Reason)
	}
	return nil
}

// QueryCatalog asks a device for its catalog; the items reach the
// Directory as the device sends them.
func (s *Server) QueryCatalog(ctx context.Context, id string) error {
	return s.request(ctx, id, Query("Catalog", int(s.sn.Add(1)), id))
}

// DeviceInfo asks a device what it is (name, manufacturer, model,
// firmware, channels) and waits for the answer, bounded by ctx and
// Config.QueryTimeout.
func (s *Server) DeviceInfo(ctx context.Context, id string) (*Message, error) {
	return s.ask(ctx, id, "DeviceInfo")
}

func (s *Server) ask(ctx context.Context, id, cmd string) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	sn := int(s.sn.Add(1))
	key := waitKey(id, cmd, sn)
	ch := make(chan *Message, 1)
	s.mu.Lock()
	s.waiters[key] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, key)
		s.mu.Unlock()
	}()
	if err := s.request(ctx, id, Query(cmd, sn, id)); err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("gb28181: %s of %s: no answer: %w", cmd, id, ctx.Err())
	}
}

type metrics struct {
	registers    *prometheus.CounterVec
	messages     *prometheus.CounterVec
	online       prometheus.Gauge
	invites      *prometheus.CounterVec
	rtpPackets   prometheus.Counter
	rtpBytes     prometheus.Counter
	ssrcMismatch prometheus.Counter
	rtpMalformed prometheus.Counter
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		registers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_gb28181_registers_total",
			Help: "REGISTER requests by outcome (ok, challenged, unregistered, unknown_device, wrong_password, dropped, ...)."}, []string{"result"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_gb28181_messages_total",
			Help: "MESSAGE requests from devices by command type (malformed, unregistered for refused ones)."}, []string{"type"}),
		online: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tianshu_gb28181_devices_online", Help: "Registered devices whose keepalives arrive."}),
		invites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_gb28181_invites_total",
			Help: "Live video INVITEs by outcome (ok, refused, timeout, error)."}, []string{"result"}),
		rtpPackets:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_gb28181_rtp_packets_total", Help: "RTP packets of live video accepted."}),
		rtpBytes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_gb28181_rtp_bytes_total", Help: "Bytes of accepted RTP packets of live video."}),
		ssrcMismatch: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_gb28181_rtp_ssrc_mismatch_total", Help: "RTP packets dropped for carrying another SSRC than the stream's."}),
		rtpMalformed: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_gb28181_rtp_malformed_total", Help: "Datagrams or frames on a media port that are not RTP."}),
	}
	var err error
	if m.registers, err = telemetry.Register(r, m.registers); err != nil {
		return nil, fmt.Errorf("gb28181: register metrics: %w", err)
	}
	if m.messages, err = telemetry.Register(r, m.messages); err != nil {
		return nil, fmt.Errorf("gb28181: register metrics: %w", err)
	}
	if m.online, err = telemetry.Register(r, m.online); err != nil {
		return nil, fmt.Errorf("gb28181: register metrics: %w", err)
	}
	if m.invites, err = telemetry.Register(r, m.invites); err != nil {
		return nil, fmt.Errorf("gb28181: register metrics: %w", err)
	}
	for _, c := range []*prometheus.Counter{&m.rtpPackets, &m.rtpBytes, &m.ssrcMismatch, &m.rtpMalformed} {
		if *c, err = telemetry.Register(r, *c); err != nil {
			return nil, fmt.Errorf("gb28181: register metrics: %w", err)
		}
	}
	return m, nil
}
