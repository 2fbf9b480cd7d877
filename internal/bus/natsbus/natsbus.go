// Package natsbus implements bus.Bus on NATS JetStream, either on a server
// embedded in the process (the default, nats://embedded) or on an external
// server or cluster (nats://host:4222,host2:4222).
//
// Import it for its side effect to make the "nats" scheme available to
// bus.Open:
//
//	import _ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
//
// # URLs
//
//	nats://embedded                         in-process server, no TCP port, data in <DataDir>/nats
//	nats://embedded?listen=127.0.0.1:4223   same, also listening for other processes (port 0: any)
//	nats://host:4222[,host2:4222]           external server or cluster (a lone host may omit :4222)
//	nats://user:pass@host:4222              credentials in the userinfo (or a token as user)
//	nats://host:4222?creds=/path/x.creds    credentials from a NATS creds file
//
// Query parameters valid for both forms: max_age (Go duration, how long a
// topic keeps messages, default 168h, 0 keeps them until deleted),
// max_msg_bytes (largest Data accepted, default bus.DefaultMaxMessageBytes),
// replicas (stream replicas on a cluster, default 1). They apply when a
// topic is first created; an existing topic keeps its settings.
//
// # Mapping
//
// Each topic is its own JetStream stream ("tianshu_" + topic with '.'
// replaced by '~', which topics cannot contain, so the mapping is one to
// one) capturing the single subject "tianshu." + topic. One stream per topic
// rather than one stream for all topics because a topic is then the unit of
// retention, of deletion and of placement in a cluster (a busy topic does
// not make one stream leader the bottleneck for all), and its stream
// sequence is the topic's own offset (bus.Message.Seq). A durable is a pull
// consumer of that stream named as the durable. The ordering key travels in
// the Tianshu-Key header; bus.HeaderID is also sent as Nats-Msg-Id so that
// the stream deduplicates within its window (two minutes).
//
// Durability: a Publish returns once the stream has written the message,
// which survives the process dying. JetStream syncs files to disk every two
// minutes, so a machine losing power can lose recent messages unless the
// topic is replicated on a cluster (replicas=3).
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tianshu-ai/tianshu/internal/bus"
)

// Scheme is the URL scheme this package registers with bus.Register.
const Scheme = "nats"

const (
	subjectPrefix = "tianshu."
	streamPrefix  = "tianshu_"
	headerKey     = "Tianshu-Key"
	// headerAllowance is room on top of max_msg_bytes for headers, so that
	// a message of exactly max_msg_bytes fits the embedded server's
	// max_payload.
	headerAllowance = 64 << 10
	defaultMaxAge   = 7 * 24 * time.Hour
	// closeTimeout bounds how long Close waits for the connection to
	// drain and the embedded server to stop.
	closeTimeout = 30 * time.Second
)

func init() {
	bus.Register(Scheme, func(ctx context.Context, u *url.URL, opts bus.Options) (bus.Bus, error) {
		return Open(ctx, u, opts)
	})
}

// config is what a URL says.
type config struct {
	embedded    bool
	listen      string   // embedded: host:port to also listen on
	servers     []string // external: server URLs with credentials
	creds       string   // external: creds file
	maxAge      time.Duration
	maxMsgBytes int
	replicas    int
}

func parseURL(u *url.URL) (config, error) {
	cfg := config{maxAge: defaultMaxAge, maxMsgBytes: bus.DefaultMaxMessageBytes, replicas: 1}
	if u.Scheme != Scheme {
		return cfg, fmt.Errorf("natsbus: scheme %q, want %q", u.Scheme, Scheme)
	}
	q := u.Query()
	for k, v := range q {
		if len(v) != 1 {
			return cfg, fmt.Errorf("natsbus: parameter %q given %d times", k, len(v))
		}
		var err error
		switch k {
		case "listen":
			cfg.listen = v[0]
		case "creds":
			cfg.creds = v[0]
		case "max_age":
			cfg.maxAge, err = time.ParseDuration(v[0])
			if err == nil && cfg.maxAge < 0 {
				err = errors.New("negative")
			}
		case "max_msg_bytes":
			cfg.maxMsgBytes, err = strconv.Atoi(v[0])
			if err == nil && (cfg.maxMsgBytes < 1 || cfg.maxMsgBytes > 64<<20) {
				err = errors.New("must be between 1 and 64 MiB")
			}
		case "replicas":
			cfg.replicas, err = strconv.Atoi(v[0])
			if err == nil && (cfg.replicas < 1 || cfg.replicas > 5) {
				err = errors.New("must be between 1 and 5")
			}
		default:
			return cfg, fmt.Errorf("natsbus: unknown parameter %q (known: listen, creds, max_age, max_msg_bytes, replicas)", k)
		}
		if err != nil {
			return cfg, fmt.Errorf("natsbus: parameter %s=%q: %v", k, v[0], err)
		}
	}
	if u.Host == "embedded" {
		cfg.embedded = true
		if u.User != nil || cfg.creds != "" {
			return cfg, errors.New("natsbus: nats://embedded takes no credentials")
		}
		if cfg.replicas != 1 {
			return cfg, errors.New("natsbus: nats://embedded is one server; replicas must be 1")
		}
		return cfg, nil
	}
	if cfg.listen != "" {
		return cfg, errors.New("natsbus: listen applies only to nats://embedded")
	}
	if u.Host == "" {
		return cfg, errors.New("natsbus: URL needs a host (nats://host:4222) or nats://embedded")
	}
	userinfo := ""
	if u.User != nil {
		userinfo = u.User.String() + "@"
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return cfg, errors.New("natsbus: empty host in server list")
		}
		if !strings.Contains(h, ":") || strings.HasSuffix(h, "]") {
			h += ":4222"
		}
		cfg.servers = append(cfg.servers, "nats://"+userinfo+h)
	}
	return cfg, nil
}

// Bus is a bus.Bus on NATS JetStream. Its zero value is not usable; Open
// returns one.
type Bus struct {
	cfg config
	log *slog.Logger
	met *bus.Metrics

	srv       *server.Server // the embedded server, nil for an external one
	ownServer bool           // Close stops srv
	nc        *nats.Conn
	js        jetstream.JetStream
	connGone  chan struct{} // closed when nc is closed

	mu      sync.Mutex
	closed  bool
	subs    map[*subscription]struct{}
	streams map[string]bool // topics whose stream this Bus created or saw
}

var _ bus.Bus = (*Bus)(nil)

var _ bus.Ephemeral = (*Bus)(nil)

// ephemeralPrefix keeps ephemeral subjects apart from the topics' stream
// subjects ("tianshu.<topic>"): no stream captures them, nothing stores them.
const ephemeralPrefix = "tianshu-ephemeral."

// Send implements bus.Ephemeral with a NATS core publish.
func (b *Bus) Send(subject string, data []byte) error {
	if b.isClosed() {
		return bus.ErrClosed
	}
	if len(data) > b.cfg.maxMsgBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", bus.ErrMessageTooLarge, len(data), b.cfg.maxMsgBytes)
	}
	return b.nc.Publish(ephemeralPrefix+subject, data)
}

// Listen implements bus.Ephemeral with a NATS core subscription.
func (b *Bus) Listen(subject string, h func(data []byte)) (func(), error) {
	if b.isClosed() {
		return nil, bus.ErrClosed
	}
	sub, err := b.nc.Subscribe(ephemeralPrefix+subject, func(m *nats.Msg) { h(m.Data) })
	if err != nil {
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Open connects to (or, for nats://embedded, starts) the NATS server that u
// names; see the package documentation for the URL forms. It fails when
// the server cannot be reached or has no JetStream, so that a
// misconfiguration shows at start-up.
func Open(ctx context.Context, u *url.URL, opts bus.Options) (*Bus, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "bus")
	met, err := bus.NewMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, log: log, met: met}
	var nopts []nats.Option
	connURL := strings.Join(cfg.servers, ",")
	if cfg.embedded {
		b.srv, err = startEmbedded(cfg, opts.DataDir, log)
		if err != nil {
			return nil, err
		}
		b.ownServer = true
		nopts = append(nopts, nats.InProcessServer(b.srv))
	} else if cfg.creds != "" {
		nopts = append(nopts, nats.UserCredentials(cfg.creds))
	}
	if err := b.connect(ctx, connURL, nopts...); err != nil {
		if b.srv != nil {
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
		}
		return nil, err
	}
	log.Info("bus opened", "embedded", cfg.embedded, "servers", redactedServers(cfg.servers))
	return b, nil
}

// newClient returns another Bus on b's embedded server with a connection
// of its own, as a second process would have. Tests use it to run several
// clients (and crash one) against one embedded server.
func (b *Bus) newClient(ctx context.Context) (*Bus, error) {
	if b.srv == nil {
		return nil, errors.New("natsbus: newClient needs an embedded server")
	}
	c := &Bus{cfg: b.cfg, log: b.log, met: b.met, srv: b.srv}
	if err := c.connect(ctx, "", nats.InProcessServer(b.srv)); err != nil {
		return nil, err
	}
	return c, nil
}

func (b *Bus) connect(ctx context.Context, connURL string, extra ...nats.Option) error {
	b.subs = map[*subscription]struct{}{}
	b.streams = map[string]bool{}
	b.connGone = make(chan struct{})
	log := b.log
	opts := append([]nats.Option{
		nats.Name("tianshu"),
		// Roles outlive network trouble: keep reconnecting, and buffer
		// publishes meanwhile (JetStream publishes still wait for their
		// acknowledgement, so nothing is reported stored that is not).
		nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(b.connGone) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("bus disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("bus reconnected", "server", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("bus connection error", "err", err)
		}),
	}, extra...)
	nc, err := nats.Connect(connURL, opts...)
	if err != nil {
		return fmt.Errorf("natsbus: connect to %v: %w", redactedServers(b.cfg.servers), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("natsbus: jetstream: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		return fmt.Errorf("natsbus: JetStream not available on %v (is the server started with -js?): %w", redactedServers(b.cfg.servers), err)
	}
	b.nc, b.js = nc, js
	return nil
}

func redactedServers(servers []string) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		if u, err := url.Parse(s); err == nil {
			out[i] = u.Redacted()
		}
	}
	return out
}

// Publish implements bus.Bus.
func (b *Bus) Publish(ctx context.Context, topic, key string, data []byte, header map[string]string) (uint64, error) {
	if b.isClosed() {
		return 0, bus.ErrClosed
	}
	if err := bus.ValidateTopic(topic); err != nil {
		return 0, err
	}
	if err := bus.ValidateKey(key); err != nil {
		return 0, err
	}
	if len(data) > b.cfg.maxMsgBytes {
		return 0, fmt.Errorf("%w: %d bytes, limit %d; store the payload in the blob store and publish a reference",
			bus.ErrMessageTooLarge, len(data), b.cfg.maxMsgBytes)
	}
	msg := &nats.Msg{Subject: subjectPrefix + topic, Data: data, Header: nats.Header{}}
	if key != "" {
		msg.Header.Set(headerKey, key)
	}
	for k, v := range header {
		if err := validateHeader(k, v); err != nil {
			return 0, err
		}
		msg.Header.Set(k, v)
	}
	// ExpectStream makes a message whose subject some other stream captures
	// (a misconfigured shared cluster) fail instead of landing there.
	popts := []jetstream.PublishOpt{jetstream.WithExpectStream(streamName(topic))}
	if id := header[bus.HeaderID]; id != "" {
		popts = append(popts, jetstream.WithMsgID(id))
	}
	if err := b.ensureStream(ctx, topic); err != nil {
		return 0, err
	}
	ack, err := b.publish(ctx, msg, popts...)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		// The stream was deleted behind our back (DeleteTopic from another
		// client): create it again and retry once.
		b.forgetStream(topic)
		if err := b.ensureStream(ctx, topic); err != nil {
			return 0, err
		}
		ack, err = b.publish(ctx, msg, popts...)
	}
	if err != nil {
		return 0, b.publishError(topic, err)
	}
	b.met.Published.WithLabelValues(topic).Inc()
	return ack.Sequence, nil
}

func (b *Bus) publishError(topic string, err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: data and headers exceed the server's max_payload of %d bytes: %v",
			bus.ErrMessageTooLarge, b.nc.MaxPayload(), err)
	case b.isClosed() && (errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining)):
		return bus.ErrClosed
	case b.nc.Status() != nats.CONNECTED:
		return fmt.Errorf("%w: publish to topic %q while the connection is %s: %w", bus.ErrUnavailable, topic, b.nc.Status(), err)
	}
	return fmt.Errorf("natsbus: publish to topic %q: %w", topic, err)
}

// Ping implements bus.Bus: the connection must be up and JetStream must
// answer a request for the account's information.
func (b *Bus) Ping(ctx context.Context) error {
	if b.isClosed() {
		return bus.ErrClosed
	}
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: connection %s", bus.ErrUnavailable, st)
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("%w: JetStream: %w", bus.ErrUnavailable, err)
	}
	return nil
}

// validateHeader adds to bus.ValidateHeader the two names nats.go reads as
// status lines on a message without payload.
func validateHeader(name, value string) error {
	if name == "Status" || name == "Description" {
		return fmt.Errorf("%w %q: reserved by NATS", bus.ErrInvalidHeader, name)
	}
	return bus.ValidateHeader(name, value)
}

func streamName(topic string) string {
	return streamPrefix + strings.ReplaceAll(topic, ".", "~")
}

func (b *Bus) streamConfig(topic string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        streamName(topic),
		Description: "tianshu bus topic " + topic,
		Subjects:    []string{subjectPrefix + topic},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.cfg.maxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.replicas,
		Duplicates:  2 * time.Minute,
	}
}

// ensureStream creates the topic's stream unless this Bus knows it exists.
// Creating is idempotent on the server, so concurrent first publishes from
// several processes are fine.
func (b *Bus) ensureStream(ctx context.Context, topic string) error {
	b.mu.Lock()
	known := b.streams[topic]
	b.mu.Unlock()
	if known {
		return nil
	}
	_, err := b.js.CreateStream(ctx, b.streamConfig(topic))
	// "Already in use" means it exists with other settings (created with
	// other URL parameters); it is still the topic's stream.
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		if b.isClosed() {
			return bus.ErrClosed
		}
		return fmt.Errorf("natsbus: create stream for topic %q: %w", topic, err)
	}
	b.mu.Lock()
	b.streams[topic] = true
	b.mu.Unlock()
	return nil
}

func (b *Bus) forgetStream(topic string) {
	b.mu.Lock()
	delete(b.streams, topic)
	b.mu.Unlock()
}

// DeleteConsumer implements bus.Bus.
func (b *Bus) DeleteConsumer(ctx context.Context, topic, durable string) error {
	if b.isClosed() {
		return bus.ErrClosed
	}
	if err := bus.ValidateTopic(topic); err != nil {
		return err
	}
	if err := bus.ValidateDurable(durable); err != nil {
		return err
	}
	err := b.js.DeleteConsumer(ctx, streamName(topic), durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: durable %q on topic %q", bus.ErrNotFound, durable, topic)
	}
	if err != nil {
		return fmt.Errorf("natsbus: delete durable %q on topic %q: %w", durable, topic, err)
	}
	return nil
}

// DeleteTopic implements bus.Bus.
func (b *Bus) DeleteTopic(ctx context.Context, topic string) error {
	if b.isClosed() {
		return bus.ErrClosed
	}
	if err := bus.ValidateTopic(topic); err != nil {
		return err
	}
	b.forgetStream(topic)
	err := b.js.DeleteStream(ctx, streamName(topic))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: topic %q", bus.ErrNotFound, topic)
	}
	if err != nil {
		return fmt.Errorf("natsbus: delete topic %q: %w", topic, err)
	}
	return nil
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// markClosed flags b closed and returns its running subscriptions, or
// false when it was closed already.
func (b *Bus) markClosed() ([]*subscription, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, false
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	return subs, true
}

// Close implements bus.Bus: subscriptions stop (handing unacknowledged
// messages back), the connection drains, and an embedded server shuts
// down, which writes its streams and consumer positions to disk.
func (b *Bus) Close() error {
	subs, ok := b.markClosed()
	if !ok {
		return bus.ErrClosed
	}
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() { errs[i] = s.Stop() })
	}
	wg.Wait()
	if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("natsbus: drain: %w", err))
		b.nc.Close()
	}
	select {
	case <-b.connGone:
	case <-time.After(closeTimeout):
		errs = append(errs, errors.New("natsbus: connection did not drain in time"))
		b.nc.Close()
	}
	if b.ownServer {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	b.log.Info("bus closed")
	return errors.Join(errs...)
}

// kill drops the connection at once, without stopping subscriptions
// gracefully or acknowledging anything, as a crashed process would.
// Messages its subscriptions held are redelivered after AckWait.
func (b *Bus) kill() {
	subs, ok := b.markClosed()
	if !ok {
		return
	}
	b.nc.Close()
	for _, s := range subs {
		s.abandon()
	}
	if b.ownServer {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// LastSeq returns the sequence of the newest message on a topic (0 when
// the topic is empty or does not exist yet); subscribers' lag is measured
// against it.
func (b *Bus) LastSeq(ctx context.Context, topic string) (uint64, error) {
	if b.isClosed() {
		return 0, bus.ErrClosed
	}
	if err := bus.ValidateTopic(topic); err != nil {
		return 0, err
	}
	s, err := b.js.Stream(ctx, streamName(topic))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, b.requestError(topic, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, b.requestError(topic, err)
	}
	return info.State.LastSeq, nil
}

// requestError is a failed JetStream request about topic: one made while
// the connection is not up, or that no server answered, wraps
// bus.ErrUnavailable, so callers answer a retryable fault.
func (b *Bus) requestError(topic string, err error) error {
	if st := b.nc.Status(); st != nats.CONNECTED || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("%w: topic %q while the connection is %s: %w", bus.ErrUnavailable, topic, st, err)
	}
	return fmt.Errorf("natsbus: topic %q: %w", topic, err)
}

// publishTimeout bounds a Publish whose context has no deadline, as
// jetstream.PublishMsg's default does.
const publishTimeout = 5 * time.Second

// publish sends msg and waits for the stream's acknowledgement. It goes
// through JetStream's asynchronous publisher, whose one reply subscription
// and table of pending acknowledgements cost less per message than a
// request each; concurrent Publish calls share it and the connection's
// writes.
func (b *Bus) publish(ctx context.Context, msg *nats.Msg, popts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	f, err := b.js.PublishMsgAsync(msg, popts...)
	if err != nil {
		return nil, err
	}
	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(publishTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeout:
		return nil, fmt.Errorf("no acknowledgement from the stream within %s: %w", publishTimeout, context.DeadlineExceeded)
	}
}
