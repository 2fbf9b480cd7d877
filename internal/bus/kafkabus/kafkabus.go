// Package kafkabus implements bus.Bus on Apache Kafka (or any server that
// speaks its protocol), through the franz-go client.
//
// Import it for its side effect to make the "kafka" scheme available to
// bus.Open:
//
//	import _ "github.com/tianshu-ai/tianshu/internal/bus/kafkabus"
//
// # URLs
//
//	kafka://host:9092[,host2:9092]            seed brokers (a lone host may omit :9092)
//	kafka://user:pass@host:9092?sasl=plain    SASL PLAIN (or scram-sha-256, scram-sha-512)
//	kafka://host:9093?tls=true                TLS with the system roots (tls_ca=/path/ca.pem for others)
//
// Further query parameters: prefix (what every Kafka topic of the bus
// starts with, default "tianshu."), max_age (Go duration, how long a topic
// keeps messages, default 168h, 0 keeps them until deleted), max_msg_bytes
// (largest Data accepted, default bus.DefaultMaxMessageBytes), replicas
// (replication factor of new topics, default the broker's). They apply when
// a topic is first created; an existing topic keeps its settings.
//
// # Mapping
//
// A bus topic is a Kafka topic of one partition, named prefix + topic with
// '_' written as 'U' (see names.go for why). One partition is what makes
// bus.Message.Seq a position in the topic: Seq is the Kafka offset plus
// one, the same on every delivery, and messages are delivered in publish
// order, which keeps every key's order. The price is that a topic is not
// spread over brokers: its throughput is that of one partition leader.
// Tianshu's topics are many and each modest (per task, per device), which
// suits that better than few wide ones.
//
// The ordering key is the Kafka record key; headers are record headers.
//
// A durable is a consumer group, named prefix + topic + "/" + durable, in
// which each subscription is a member, plus one side group per slot (see
// below), named after the durable's group + "#" + slot number.
//
// # Sharing a durable
//
// Subscriptions sharing a durable share its work although the topic has
// one partition: every record falls into one of 16 slots (by a hash of
// its key, or by its offset when it has none), and the durable's group
// divides the slots among its members with a balancer of this package
// (protocol "tianshu-slots1"; the group leader computes the plan, as
// Kafka's client-side protocol has it). Each member is assigned the
// partition, as Kafka's tools see it, and its slots in the assignment's
// user data. Each slot has its own position, committed as the offset of
// its side group (a group without members): the slot's records before it
// are resolved. A member reads the partition with a second client, not
// the group's, from the lowest position of its slots, and handles only
// its slots' records from each slot's position on. A key's records share
// a slot, so they go to one subscription at a time, and a slot changes
// hands only between records (see below), so a key's order mostly holds
// across subscriptions too; the bus contract promises it only within one,
// and a crash breaks it here (the next holder starts while the dead one's
// handler may still run). At most 16 subscriptions share one durable's
// work; more are standbys.
//
// A subscription takes up to Prefetch records at a time, hands those of
// its slots to up to MaxInFlight handlers (one key to one handler, in
// order, retrying in place with backoff), and once they are resolved
// commits each slot with records in the batch past them. Before handling
// a batch it commits, with each slot's unchanged position, metadata saying
// how far the slot's records were handed out and at which attempt; a
// member that takes the slot over after a crash, or after Stop handed
// messages back, reads it and counts those records' Attempt up. So
// Attempt counts redeliveries per batch, not per message, as bus.Message
// allows. MaxDeliver holds across crashes: a record redelivered past it is
// dead without another call.
//
// A rebalance (a subscription joining or leaving) does not wait for the
// batch in hand: a member gives up at once the slots without a running
// handler, committing their positions and dropping their records still
// waiting in the batch (with every later record of the slot there, to
// keep a key's order), and keeps the slots whose handlers run, which it
// claims in its join metadata; the leader leaves those with it. So a
// message is handled by one subscription, and twice only after a crash.
// A member that is dropped from the group (its session expired) gives up
// everything without committing.
//
// AckWait becomes the group session timeout, raised to six seconds and
// cut to five minutes, the bounds brokers accept by default: a member that
// stops heartbeating is removed after it, and its slots, with their
// uncommitted records, go to the other members. A member keeps
// heartbeating while its handlers run, so a handler may take longer.
//
// Untracked durables commit their slots past a batch before handling it,
// so what they were handed is not delivered again.
//
// In Kafka's tools, a durable's lag is that of its side groups (the
// largest of them is how far the durable is behind); its group shows the
// running subscriptions as members, each assigned partition 0.
//
// # Deduplication
//
// Kafka has no deduplication by a caller-chosen id. The producer is
// idempotent, which drops duplicates of the client's own retries of a
// produce request, and each Bus keeps a window of the ids it published
// recently (the last two minutes, at most 100,000 ids): a Publish with a
// bus.HeaderID seen in that window returns the first message's sequence
// without storing it again. That covers a caller retrying through the same
// process, which is what HeaderID is for, but not two processes publishing
// the same id, nor a retry after the process restarted: those store the
// message twice, and handlers must deduplicate (by the "id" header).
//
// # Deletion
//
// DeleteConsumer deletes the durable's consumer group, then its slots'
// side groups. Subscriptions on it in this process are stopped from
// receiving first; Kafka refuses to delete a group with members in other
// processes, and DeleteConsumer then fails and keeps the side groups.
// DeleteTopic deletes the Kafka topic and the groups of its durables, side
// groups included; a group with members in other processes stays until
// they stop (Kafka has already dropped its offsets of the deleted topic).
package kafkabus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tianshu-ai/tianshu/internal/bus"
)

// Scheme is the URL scheme this package registers with bus.Register.
const Scheme = "kafka"

const (
	defaultPort   = "9092"
	defaultPrefix = "tianshu."
	defaultMaxAge = 7 * 24 * time.Hour
	// headerAllowance is room on top of max_msg_bytes for the key, headers
	// and record overhead in the topic's max.message.bytes and the
	// producer's batch limit.
	headerAllowance = 64 << 10
	// publishTimeout bounds a Publish whose context has no deadline.
	publishTimeout = 30 * time.Second
	// dedupTTL and dedupMax bound the window of recent HeaderIDs; two
	// minutes as NATS's stream window.
	dedupTTL = 2 * time.Minute
	dedupMax = 100_000
)

func init() {
	bus.Register(Scheme, func(ctx context.Context, u *url.URL, opts bus.Options) (bus.Bus, error) {
		return Open(ctx, u, opts)
	})
}

// config is what a URL says.
type config struct {
	brokers     []string
	prefix      string
	maxAge      time.Duration
	maxMsgBytes int
	replicas    int16 // -1: the broker's default
	tls         *tls.Config
	sasl        sasl.Mechanism
}

func parseURL(u *url.URL) (config, error) {
	cfg := config{prefix: defaultPrefix, maxAge: defaultMaxAge, maxMsgBytes: bus.DefaultMaxMessageBytes, replicas: -1}
	if u.Scheme != Scheme {
		return cfg, fmt.Errorf("kafkabus: scheme %q, want %q", u.Scheme, Scheme)
	}
	var useTLS bool
	var caFile, mech string
	for k, v := range u.Query() {
		if len(v) != 1 {
			return cfg, fmt.Errorf("kafkabus: parameter %q given %d times", k, len(v))
		}
		var err error
		switch k {
		case "prefix":
			cfg.prefix = v[0]
			err = checkPrefix(v[0])
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
			var n int
			n, err = strconv.Atoi(v[0])
			if err == nil && (n < 1 || n > 7) {
				err = errors.New("must be between 1 and 7")
			}
			cfg.replicas = int16(n)
		case "tls":
			useTLS, err = strconv.ParseBool(v[0])
		case "tls_ca":
			caFile, useTLS = v[0], true
		case "sasl":
			mech = v[0]
		default:
			return cfg, fmt.Errorf("kafkabus: unknown parameter %q (known: prefix, max_age, max_msg_bytes, replicas, tls, tls_ca, sasl)", k)
		}
		if err != nil {
			return cfg, fmt.Errorf("kafkabus: parameter %s=%q: %v", k, v[0], err)
		}
	}
	if u.Host == "" {
		return cfg, errors.New("kafkabus: URL needs a broker (kafka://host:9092)")
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return cfg, errors.New("kafkabus: empty host in broker list")
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), defaultPort)
		}
		cfg.brokers = append(cfg.brokers, h)
	}
	if useTLS {
		cfg.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return cfg, fmt.Errorf("kafkabus: tls_ca: %w", err)
			}
			cfg.tls.RootCAs = x509.NewCertPool()
			if !cfg.tls.RootCAs.AppendCertsFromPEM(pem) {
				return cfg, fmt.Errorf("kafkabus: tls_ca %s holds no PEM certificate", caFile)
			}
		}
	}
	user := u.User.Username()
	pass, _ := u.User.Password()
	switch mech {
	case "":
		if u.User != nil {
			return cfg, errors.New("kafkabus: credentials in the URL need sasl=plain, scram-sha-256 or scram-sha-512")
		}
	case "plain":
		cfg.sasl = plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "scram-sha-256":
		cfg.sasl = scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "scram-sha-512":
		cfg.sasl = scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	default:
		return cfg, fmt.Errorf("kafkabus: sasl=%q: want plain, scram-sha-256 or scram-sha-512", mech)
	}
	return cfg, nil
}

// Bus is a bus.Bus on Kafka. Its zero value is not usable; Open returns
// one.
type Bus struct {
	cfg   config
	log   *slog.Logger
	met   *bus.Metrics
	conns *conns
	cl    *kgo.Client // produces, and carries the admin requests
	adm   *kadm.Client
	dedup *dedupWindow

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
	topics map[string]bool // topics this Bus created or saw
}

var _ bus.Bus = (*Bus)(nil)

// Open connects to the Kafka cluster that u names; see the package
// documentation for the URL form. It fails when no broker answers, so
// that a misconfiguration shows at start-up.
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
	b := &Bus{
		cfg: cfg, log: log, met: met,
		conns:  &conns{tls: cfg.tls, open: map[net.Conn]struct{}{}},
		dedup:  newDedupWindow(dedupTTL, dedupMax, time.Now),
		subs:   map[*subscription]struct{}{},
		topics: map[string]bool{},
	}
	b.cl, err = kgo.NewClient(b.clientOpts(
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(int32(cfg.maxMsgBytes+headerAllowance)),
		// One Publish waits for its record; lingering only delays it.
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafkabus: client: %w", err)
	}
	if err := b.cl.Ping(ctx); err != nil {
		b.cl.Close()
		return nil, fmt.Errorf("kafkabus: no broker of %v answers: %w", cfg.brokers, err)
	}
	b.adm = kadm.NewClient(b.cl)
	log.Info("bus opened", "brokers", cfg.brokers, "prefix", cfg.prefix)
	return b, nil
}

// clientOpts returns the options every client of b has, producer and
// subscriptions alike, followed by extra.
func (b *Bus) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(b.cfg.brokers...),
		kgo.ClientID("tianshu"),
		kgo.Dialer(b.conns.dial),
		kgo.WithLogger(kgoLogger{b.log}),
	}
	if b.cfg.sasl != nil {
		opts = append(opts, kgo.SASL(b.cfg.sasl))
	}
	return append(opts, extra...)
}

// conns dials the brokers for all of a Bus's clients and keeps the
// connections, so that kill can drop them all at once as a crash would.
type conns struct {
	tls *tls.Config

	mu   sync.Mutex
	dead bool
	open map[net.Conn]struct{}
}

func (c *conns) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if dead {
		return nil, errors.New("kafkabus: bus killed")
	}
	var d interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	} = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if c.tls != nil {
		cfg := c.tls.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(host)
		}
		d = &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	}
	conn, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		conn.Close()
		return nil, errors.New("kafkabus: bus killed")
	}
	c.open[conn] = struct{}{}
	return &trackedConn{Conn: conn, c: c}, nil
}

// killAll closes every connection and refuses new ones.
func (c *conns) killAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = true
	for conn := range c.open {
		conn.Close()
	}
	clear(c.open)
}

type trackedConn struct {
	net.Conn
	c    *conns
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.c.mu.Lock()
		delete(t.c.open, t.Conn)
		t.c.mu.Unlock()
	})
	return t.Conn.Close()
}

// kgoLogger hands franz-go's warnings and errors to slog; its info and
// debug logs are per request and too chatty for the bus's log.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	l.log.Log(context.Background(), lvl, "kafka client: "+msg, keyvals...)
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
	rec := &kgo.Record{Topic: kafkaTopic(b.cfg.prefix, topic), Partition: 0, Value: data}
	if key != "" {
		rec.Key = []byte(key)
	}
	for k, v := range header {
		if err := bus.ValidateHeader(k, v); err != nil {
			return 0, err
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	pub := func() (uint64, error) { return b.produce(ctx, topic, rec) }
	var seq uint64
	var err error
	if id := header[bus.HeaderID]; id != "" {
		seq, err = b.dedup.publish(topic, id, pub)
	} else {
		seq, err = pub()
	}
	if err != nil {
		return 0, err
	}
	return seq, nil
}

func (b *Bus) produce(ctx context.Context, topic string, rec *kgo.Record) (uint64, error) {
	if err := b.ensureTopic(ctx, topic); err != nil {
		return 0, err
	}
	r, err := b.cl.ProduceSync(ctx, rec).First()
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		// The topic was deleted behind our back (DeleteTopic from another
		// client): create it again and retry once.
		b.forgetTopic(topic)
		if err := b.ensureTopic(ctx, topic); err != nil {
			return 0, err
		}
		r, err = b.cl.ProduceSync(ctx, rec).First()
	}
	switch {
	case err == nil:
	case errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge):
		return 0, fmt.Errorf("%w: data, key and headers exceed the topic's max.message.bytes: %v", bus.ErrMessageTooLarge, err)
	case errors.Is(err, kgo.ErrClientClosed) && b.isClosed():
		return 0, bus.ErrClosed
	default:
		return 0, fmt.Errorf("kafkabus: publish to topic %q: %w", topic, err)
	}
	b.met.Published.WithLabelValues(topic).Inc()
	return uint64(r.Offset) + 1, nil
}

// ensureTopic creates the topic's Kafka topic unless this Bus knows it
// exists. Creating one that exists is harmless, so concurrent first
// publishes from several processes are fine.
func (b *Bus) ensureTopic(ctx context.Context, topic string) error {
	b.mu.Lock()
	known := b.topics[topic]
	b.mu.Unlock()
	if known {
		return nil
	}
	retention := "-1"
	if b.cfg.maxAge > 0 {
		retention = strconv.FormatInt(b.cfg.maxAge.Milliseconds(), 10)
	}
	maxBytes := strconv.Itoa(b.cfg.maxMsgBytes + headerAllowance)
	configs := map[string]*string{
		"retention.ms":      &retention,
		"max.message.bytes": &maxBytes,
	}
	_, err := b.adm.CreateTopic(ctx, 1, b.cfg.replicas, configs, kafkaTopic(b.cfg.prefix, topic))
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		if b.isClosed() {
			return bus.ErrClosed
		}
		return fmt.Errorf("kafkabus: create topic %q: %w", topic, err)
	}
	b.mu.Lock()
	b.topics[topic] = true
	b.mu.Unlock()
	return nil
}

func (b *Bus) forgetTopic(topic string) {
	b.mu.Lock()
	delete(b.topics, topic)
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
	detached := b.detach(func(s *subscription) bool { return s.topic == topic && s.durable == durable })
	group := groupID(b.cfg.prefix, topic, durable)
	// The durable's group first: Kafka refuses while members in other
	// processes use it, and then the slots' positions must stay.
	_, err := b.adm.DeleteGroup(ctx, group)
	found := err == nil
	switch {
	case err == nil || errors.Is(err, kerr.GroupIDNotFound):
		// Not found: no subscription is running (Kafka drops a group
		// without members or offsets), but the slots' side groups may
		// hold the durable's positions.
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("kafkabus: delete durable %q on topic %q: subscriptions in other processes still use it; stop them first: %w", durable, topic, err)
	default:
		return fmt.Errorf("kafkabus: delete durable %q on topic %q: %w", durable, topic, err)
	}
	resps, err := b.adm.DeleteGroups(ctx, slotGroups(group)...)
	if err != nil {
		return fmt.Errorf("kafkabus: delete durable %q on topic %q: %w", durable, topic, err)
	}
	var errs []error
	for g, r := range resps {
		switch {
		case r.Err == nil:
			found = true
		case errors.Is(r.Err, kerr.GroupIDNotFound):
		default:
			errs = append(errs, fmt.Errorf("group %s: %w", g, r.Err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("kafkabus: delete durable %q on topic %q: %w", durable, topic, errors.Join(errs...))
	}
	if !found && detached == 0 {
		return fmt.Errorf("%w: durable %q on topic %q", bus.ErrNotFound, durable, topic)
	}
	return nil
}

// detach makes this Bus's subscriptions that match leave their group and
// stop receiving, waits until they have, and returns how many there were.
func (b *Bus) detach(match func(*subscription) bool) int {
	b.mu.Lock()
	var subs []*subscription
	for s := range b.subs {
		if match(s) {
			subs = append(subs, s)
		}
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.detach()
	}
	return len(subs)
}

// Ping implements bus.Bus: a broker of the cluster must answer.
func (b *Bus) Ping(ctx context.Context) error {
	if b.isClosed() {
		return bus.ErrClosed
	}
	if err := b.cl.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", bus.ErrUnavailable, err)
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
	b.detach(func(s *subscription) bool { return s.topic == topic })
	b.forgetTopic(topic)
	b.dedup.forgetTopic(topic)
	_, err := b.adm.DeleteTopic(ctx, kafkaTopic(b.cfg.prefix, topic))
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("%w: topic %q", bus.ErrNotFound, topic)
	}
	if err != nil {
		return fmt.Errorf("kafkabus: delete topic %q: %w", topic, err)
	}
	// The durables' groups outlive the topic in Kafka (only their offsets
	// of it go); delete them so that the durables are gone as on NATS.
	if err := b.deleteGroups(ctx, groupPrefix(b.cfg.prefix, topic)); err != nil {
		return fmt.Errorf("kafkabus: delete durables of topic %q: %w", topic, err)
	}
	return nil
}

func (b *Bus) deleteGroups(ctx context.Context, prefix string) error {
	listed, err := b.adm.ListGroups(ctx)
	if err != nil {
		return err
	}
	var groups []string
	for _, g := range listed.Groups() {
		if strings.HasPrefix(g, prefix) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	resps, err := b.adm.DeleteGroups(ctx, groups...)
	if err != nil {
		return err
	}
	var errs []error
	for g, r := range resps {
		switch {
		case r.Err == nil || errors.Is(r.Err, kerr.GroupIDNotFound):
		case errors.Is(r.Err, kerr.NonEmptyGroup):
			// Subscriptions in another process (or one of ours still
			// leaving) hold it. The topic is gone, and Kafka drops the
			// group's offsets of it, so a new topic of the same name
			// starts afresh; the group goes once they stop.
			b.log.Warn("bus durable still in use, not deleted", "group", g)
		default:
			errs = append(errs, fmt.Errorf("group %s: %w", g, r.Err))
		}
	}
	return errors.Join(errs...)
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

// Close implements bus.Bus: subscriptions stop (committing what they
// handled and leaving their groups), and the producer flushes.
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
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := b.cl.Flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("kafkabus: flush: %w", err))
	}
	b.cl.Close()
	b.log.Info("bus closed")
	return errors.Join(errs...)
}

// kill drops every connection at once, without committing, handing back
// or leaving groups, as a crashed process would. The brokers notice when
// the session timeout passes.
func (b *Bus) kill() {
	subs, ok := b.markClosed()
	if !ok {
		return
	}
	b.conns.killAll()
	for _, s := range subs {
		s.abandon()
	}
	b.cl.Close()
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
	name := kafkaTopic(b.cfg.prefix, topic)
	ends, err := b.adm.ListEndOffsets(ctx, name)
	if err != nil {
		// The request itself failed: no broker answered.
		return 0, fmt.Errorf("%w: topic %q: %w", bus.ErrUnavailable, topic, err)
	}
	o, ok := ends.Lookup(name, 0)
	if !ok || errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
		return 0, nil
	}
	if o.Err != nil {
		return 0, fmt.Errorf("kafkabus: topic %q: %w", topic, o.Err)
	}
	// The end offset is the next record's; its sequence is end+1, so the
	// last one's is end.
	return uint64(max(o.Offset, 0)), nil
}
