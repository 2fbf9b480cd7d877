package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/edge/edgeconfig"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// LinkOptions configure an edge's end of the link.
type LinkOptions struct {
	Config edgeconfig.Config
	// Dir keeps the credential and the buffer (<data dir>/edge).
	Dir string
	// Box seals the credential at rest.
	Box *secrets.Box
	// Versions are reported in every heartbeat.
	Versions map[string]string
	// Site applies the tasks the cloud places here; nil runs none.
	Site Site
	// Events is the edge's bus: the events its tasks publish on the
	// default project's events topic are buffered and forwarded with the
	// records, for the cloud's subscriptions. Nil forwards records only.
	Events EventSource
	// Objects is the edge's blob store: the objects (crops, frames) of
	// its tasks' records are read from it into the buffer with their
	// records. Nil forwards records without their objects.
	Objects    ObjectReader
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// EventSource is the edge's bus as the link reads it (bus.Bus is one).
type EventSource interface {
	Subscribe(ctx context.Context, topic, durable string, opts bus.SubscribeOptions, h bus.Handler) (bus.Subscription, error)
}

// ObjectReader is the edge's blob store as the link reads it (blob.Store is
// one).
type ObjectReader interface {
	Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
}

// eventsDurable is the link's durable consumer of the edge's events topic:
// its position is what has been buffered.
const eventsDurable = "edge-link"

// edgeProject is the edge's project that the cloud's tasks run in: its
// events are the ones forwarded.
const edgeProject = "default"

// Link is an edge node's end: its NATS server (JetStream domain
// edge-<node>) with the leaf connection to the cloud's hub, the outbox
// stream that buffers records on disk, and the forwarder that empties it
// in order.
type Link struct {
	o      LinkOptions
	cred   credential
	opts   *server.Options
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	outbox jetstream.Stream
	log    *slog.Logger
	m      *linkMetrics

	events  bus.Subscription // nil without Events
	wake    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	up      atomic.Bool
	revoked atomic.Bool
	idle    atomic.Bool // the leaf remote is disabled

	deployedMu sync.Mutex
	deployed   map[string]string // what runs here of the cloud's (setDeployed)
	rttUs      atomic.Int64
	lastSeq    atomic.Uint64 // the last record the cloud acknowledged
}

type linkMetrics struct {
	forwarded prometheus.Counter
	events    prometheus.Counter
	dropped   *prometheus.CounterVec
	objects   *prometheus.CounterVec
}

// NodeID is the node this edge joined as.
func (l *Link) NodeID() string { return l.cred.NodeID }

// StartLink joins (once) and starts the link. Without the cloud it still
// starts: records buffer until the hub is reachable.
func StartLink(ctx context.Context, o LinkOptions) (*Link, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Config.WatchlistBytes <= 0 {
		o.Config.WatchlistBytes = edgeconfig.Default().WatchlistBytes
	}
	cred, err := loadOrJoin(ctx, o.Dir, o.Config.Cloud, o.Config.JoinToken, o.Box, joinClient())
	if err != nil {
		return nil, err
	}
	leaf, err := url.Parse(cred.LeafURL)
	if err != nil {
		return nil, fmt.Errorf("edge: leaf URL %q: %w", cred.LeafURL, err)
	}
	leaf.User = url.UserPassword(cred.NodeID, cred.secret)
	l := &Link{o: o, cred: cred, log: o.Logger.With("node", cred.NodeID), wake: make(chan struct{}, 1)}
	opts := &server.Options{
		ServerName: cred.NodeID,
		DontListen: true,
		NoSigs:     true,
		JetStream:  true,
		// A domain per site keeps the site's JetStream API its own on
		// the link.
		JetStreamDomain: strings.ReplaceAll(cred.NodeID, "-", "_"),
		StoreDir:        filepath.Join(o.Dir, "nats"),
		MaxPayload:      maxLinkMessage,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: time.Second,
			Remotes: []*server.RemoteLeafOpts{{
				URLs: []*url.URL{leaf}, TLS: true, TLSConfig: pinnedTLS(cred.Fingerprint), TLSTimeout: 5,
				// Only replies and the node's own subjects cross; the
				// hub enforces the same from its side.
				DenyImports: []string{"edge.outbox", "$JS.>"},
				DenyExports: []string{"edge.outbox", "$JS.>"},
			}},
		},
	}
	l.opts = opts
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("edge: link server: %w", err)
	}
	srv.SetLoggerV2(natsbus.ServerLog(o.Logger), false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(60 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("edge: link server not ready")
	}
	l.srv = srv
	// Replies come to the node's own inboxes: the hub lets a node
	// subscribe to no other, so no node can read another's answers (its
	// desired state carries device credentials and algorithm secrets).
	if l.nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name("edge-link"), nats.MaxReconnects(-1),
		nats.CustomInboxPrefix(inboxPrefix(cred.NodeID))); err != nil {
		l.shutdown()
		return nil, err
	}
	if err := l.openOutbox(ctx); err != nil {
		l.shutdown()
		return nil, err
	}
	l.metrics()
	if o.Events != nil {
		// One handler: the buffer keeps the order the events were
		// published in, which per key is the order a subscriber sees.
		l.events, err = o.Events.Subscribe(ctx, event.Topic(edgeProject), eventsDurable,
			bus.SubscribeOptions{MaxInFlight: 1, Prefetch: maxBatch, MaxDeliver: -1}, l.bufferEvent)
		if err != nil {
			l.shutdown()
			return nil, fmt.Errorf("edge: events subscription: %w", err)
		}
	}
	run, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Add(2)
	go func() { defer l.wg.Done(); l.forward(run) }()
	go func() { defer l.wg.Done(); l.heartbeat(run) }()
	if o.Site != nil {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.deploy(run) }()
	}
	l.log.Info("edge link started", "cloud", cred.LeafURL, "buffer_bytes", o.Config.BufferBytes, "policy", o.Config.BufferPolicy)
	return l, nil
}

func (l *Link) openOutbox(ctx context.Context) error {
	var err error
	if l.js, err = jetstream.New(l.nc); err != nil {
		return err
	}
	discard := jetstream.DiscardOld
	if l.o.Config.BufferPolicy == edgeconfig.PolicyStopIngesting {
		discard = jetstream.DiscardNew
	}
	l.outbox, err = l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: outboxStream, Subjects: []string{outboxSubject}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, MaxBytes: l.o.Config.BufferBytes, Discard: discard,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("edge: outbox stream: %w", err)
	}
	return nil
}

func (l *Link) metrics() {
	r := l.o.Registerer
	state := func() jetstream.StreamState {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := l.outbox.Info(ctx)
		if err != nil {
			return jetstream.StreamState{}
		}
		return info.State
	}
	telemetry.MustRegister(r, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_edge_buffer_records",
		Help: "Records this edge node holds in its disk buffer that the cloud has not acknowledged."}, func() float64 { return float64(state().Msgs) }))
	telemetry.MustRegister(r, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_edge_buffer_bytes",
		Help: "Bytes of this edge node's disk buffer in use."}, func() float64 { return float64(state().Bytes) }))
	telemetry.MustRegister(r, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_edge_buffer_oldest_age_seconds",
		Help: "Age of the oldest record in this edge node's buffer (0: empty)."}, func() float64 {
		s := state()
		if s.Msgs == 0 {
			return 0
		}
		return l.o.Now().Sub(s.FirstTime).Seconds()
	}))
	telemetry.MustRegister(r, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_edge_link_up",
		Help: "1 while this edge node's last heartbeat reached the cloud, else 0."}, func() float64 {
		if l.up.Load() {
			return 1
		}
		return 0
	}))
	l.m = &linkMetrics{
		forwarded: telemetry.MustRegister(r, prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_edge_records_forwarded_total",
			Help: "Records this edge node forwarded and the cloud acknowledged."})),
		events: telemetry.MustRegister(r, prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_edge_events_forwarded_total",
			Help: "Events of this edge node's tasks forwarded to the cloud and acknowledged by it."})),
		dropped: telemetry.MustRegister(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_edge_records_dropped_total",
			Help: "Records this edge node stored locally but will not forward, by reason: buffer_full (stop-ingesting refused them), oldest_dropped (drop-oldest made room), too_large (over the link's item bound)."}, []string{"reason"})),
		objects: telemetry.MustRegister(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_edge_objects_buffered_total",
			Help: "Objects (crops, frames) of this edge node's records, by outcome: buffered (with their record, for the cloud), too_large (past the record's object bound), unreadable (not in the edge's blob store), not_task_object (not the record's task's own, an upload say): the last three cross without the object."}, []string{"outcome"})),
	}
}

// outboxItem is one message for the outbox: its id deduplicates a
// repeated enqueue within the stream's window.
type outboxItem struct {
	id   string
	body []byte
}

// Enqueue puts records (committed to the edge's store) in the outbox, in
// order. Under stop-ingesting a full buffer refuses them: they stay in the
// edge's store only, counted in tianshu_edge_records_dropped_total.
//
// A record's objects (its task's crops and frames) are read from the
// edge's blob store into the same message, within maxRecordObjects bytes;
// the ones past that, or that cannot be read, are left on the edge
// (counted in tianshu_edge_objects_buffered_total).
//
// Records are buffered in groups of at most enqueueBytes, so that a batch
// of records with large objects is never all in memory at once.
func (l *Link) Enqueue(ctx context.Context, recs []data.Record) error {
	var items []outboxItem
	var size int
	for _, r := range recs {
		w := toWire(r)
		w.Blobs = l.recordObjects(ctx, r)
		b, _ := json.Marshal(w)
		items = append(items, outboxItem{id: r.ID, body: b})
		if size += len(b); size >= enqueueBytes {
			if err := l.enqueue(ctx, items); err != nil {
				return err
			}
			items, size = items[:0], 0
		}
	}
	if len(items) == 0 {
		return nil
	}
	return l.enqueue(ctx, items)
}

// enqueueBytes bounds the records Enqueue holds in memory at once.
const enqueueBytes = 16 << 20

// recordObjects reads the objects of r that its own task stored.
func (l *Link) recordObjects(ctx context.Context, r data.Record) []wireBlob {
	if l.o.Objects == nil || len(r.Objects) == 0 {
		return nil
	}
	var out []wireBlob
	budget := int64(maxRecordObjects)
	for _, key := range r.Objects {
		if _, ok := taskObjectPath(key, r.TaskID); !ok {
			l.m.objects.WithLabelValues("not_task_object").Inc()
			continue
		}
		b, ctype, err := readObject(ctx, l.o.Objects, key, budget)
		switch {
		case errors.Is(err, errObjectTooLarge):
			l.m.objects.WithLabelValues("too_large").Inc()
			continue
		case err != nil:
			l.m.objects.WithLabelValues("unreadable").Inc()
			l.log.Warn("edge object not buffered", "record", r.ID, "key", key, "err", err)
			continue
		}
		budget -= int64(len(b))
		out = append(out, wireBlob{Key: key, ContentType: ctype, Data: b})
		l.m.objects.WithLabelValues("buffered").Inc()
	}
	return out
}

var errObjectTooLarge = errors.New("object over the record's bound")

// readObject reads an object of at most limit bytes.
func readObject(ctx context.Context, s ObjectReader, key string, limit int64) ([]byte, string, error) {
	rc, info, err := s.Get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	if info.Size > limit {
		return nil, "", errObjectTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, "", err
	}
	if int64(len(b)) > limit {
		return nil, "", errObjectTooLarge
	}
	return b, info.ContentType, nil
}

// taskObjectPath returns the part of key after its task's prefix when key
// is an object taskID stored (projects/<project>/tasks/<task>/<path>, what
// data.PutObject makes): only those cross the link, under the same path in
// the node's project.
func taskObjectPath(key, taskID string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "projects/")
	if !ok || taskID == "" || strings.Contains(taskID, "/") {
		return "", false
	}
	project, rest, ok := strings.Cut(rest, "/")
	if !ok || project == "" {
		return "", false
	}
	path, ok := strings.CutPrefix(rest, "tasks/"+taskID+"/")
	if !ok || path == "" || blob.ValidateKey(key) != nil {
		return "", false
	}
	return path, true
}

// bufferEvent puts one event of the edge's tasks in the outbox. An event
// the full buffer refuses (stop-ingesting) is counted and let go, as a
// record is: the edge's own subscriptions still have it.
func (l *Link) bufferEvent(ctx context.Context, m bus.Message) error {
	id := m.Header[event.HeaderID]
	if id == "" {
		id = fmt.Sprintf("%s#%d", m.Topic, m.Seq)
	}
	b, _ := json.Marshal(wireEvent{Kind: kindEvent, ID: id, Key: m.Key, Event: m.Data})
	if err := l.enqueue(ctx, []outboxItem{{id: id, body: b}}); err != nil {
		if ctx.Err() != nil {
			return err
		}
		l.log.Warn("edge event not buffered", "event", id, "err", err)
	}
	return nil
}

func (l *Link) enqueue(ctx context.Context, items []outboxItem) error {
	futures := make([]jetstream.PubAckFuture, 0, len(items))
	for i, it := range items {
		if len(it.body) > maxItemBytes {
			// It would never fit a batch; it stays on the edge only.
			l.m.dropped.WithLabelValues("too_large").Inc()
			l.log.Warn("edge item too large for the link", "id", it.id, "bytes", len(it.body))
			continue
		}
		f, err := l.js.PublishAsync(outboxSubject, it.body, jetstream.WithMsgID(it.id))
		if err != nil {
			l.m.dropped.WithLabelValues("buffer_full").Add(float64(len(items) - i))
			return fmt.Errorf("edge: buffer: %w", err)
		}
		futures = append(futures, f)
	}
	var refused int
	for _, f := range futures {
		select {
		case <-f.Ok():
		case <-f.Err():
			refused++
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	if refused > 0 {
		l.m.dropped.WithLabelValues("buffer_full").Add(float64(refused))
		return fmt.Errorf("edge: buffer full: %d of %d items not buffered", refused, len(items))
	}
	return nil
}

// OnFlush is a data.WriterOptions.OnFlush that buffers each committed
// batch for the cloud.
func (l *Link) OnFlush(batch []data.Record, err error) {
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Enqueue(ctx, batch); err != nil {
		l.log.Warn("edge records not buffered", "records", len(batch), "err", err)
	}
}

// forward sends the outbox to the cloud in order, a batch at a time, and
// removes a batch once the cloud acknowledged it. A batch that fails is
// sent again, unchanged, until it succeeds: the cloud skips the ids it
// already has, so a batch whose answer was lost is stored once.
func (l *Link) forward(ctx context.Context) {
	subject := fmt.Sprintf(subjectRecords, l.cred.NodeID)
	var cons jetstream.Consumer
	var next uint64 // the sequence the batch after this one should start at
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if l.srv.NumLeafNodes() == 0 {
			// No link: the buffer keeps the records, and its policy
			// decides alone what an outage drops (a batch read now
			// would be held until the link is back).
			l.pause(ctx, backoff)
			continue
		}
		if cons == nil {
			info, err := l.outbox.Info(ctx)
			if err != nil {
				l.pause(ctx, backoff)
				continue
			}
			next = max(info.State.FirstSeq, l.lastSeq.Load()+1)
			cons, err = l.outbox.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
				DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: next})
			if err != nil {
				cons = nil
				l.pause(ctx, backoff)
				continue
			}
		}
		// Bounded by bytes too: a batch is one link message, and records
		// carry their objects.
		msgs, err := cons.Fetch(maxBatch, jetstream.FetchMaxBytes(maxBatchBytes), jetstream.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			cons = nil
			l.pause(ctx, backoff)
			continue
		}
		var batch []json.RawMessage
		var last uint64
		events := 0
		for m := range msgs.Messages() {
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > next && next > 0 {
				// drop-oldest removed these before they were sent.
				l.m.dropped.WithLabelValues("oldest_dropped").Add(float64(md.Sequence.Stream - next))
			}
			next = md.Sequence.Stream + 1
			last = md.Sequence.Stream
			batch = append(batch, json.RawMessage(m.Data()))
			if bytes.Contains(m.Data(), eventMark) {
				events++
			}
		}
		if len(batch) == 0 {
			l.pause(ctx, time.Second)
			continue
		}
		body, _ := json.Marshal(batch)
		for ctx.Err() == nil {
			err := l.send(ctx, subject, body, len(batch))
			if err == nil {
				break
			}
			l.log.Debug("edge batch not forwarded", "records", len(batch), "err", err)
			l.pause(ctx, backoff)
		}
		if ctx.Err() != nil {
			return
		}
		l.lastSeq.Store(last)
		l.m.forwarded.Add(float64(len(batch) - events))
		l.m.events.Add(float64(events))
		if err := l.outbox.Purge(ctx, jetstream.WithPurgeSequence(last+1)); err != nil {
			l.log.Warn("edge buffer not purged", "err", err)
		}
	}
}

// eventMark starts every event in the outbox (wireEvent's first field);
// no record holds it, whose first field is Id.
var eventMark = []byte(`{"Kind":"event"`)

// send forwards one batch and waits for the cloud's answer.
func (l *Link) send(ctx context.Context, subject string, body []byte, n int) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := l.nc.RequestWithContext(rctx, subject, body)
	if err != nil {
		return err
	}
	var r linkReply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return err
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	if r.Accepted != n {
		return fmt.Errorf("cloud accepted %d of %d records", r.Accepted, n)
	}
	return nil
}

// pause waits d, or less when records arrive or the link stops.
func (l *Link) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-l.wake:
	}
}

// heartbeat tells the cloud the node is alive, with its buffer and
// versions, every Heartbeat.
func (l *Link) heartbeat(ctx context.Context) {
	subject := fmt.Sprintf(subjectBeat, l.cred.NodeID)
	t := time.NewTicker(l.o.Config.Heartbeat)
	defer t.Stop()
	down := 0 // heartbeats missed in a row
	for {
		b := beatMsg{Beat: Beat{Versions: l.versions()}, RttUs: l.rttUs.Load()}
		if info, err := l.outbox.Info(ctx); err == nil {
			b.BufferDepth, b.BufferBytes = int64(info.State.Msgs), int64(info.State.Bytes)
			if info.State.Msgs > 0 {
				b.BufferOldestMs = info.State.FirstTime.UnixMilli()
			}
		}
		body, _ := json.Marshal(b)
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, l.o.Config.Heartbeat)
		resp, err := l.nc.RequestWithContext(rctx, subject, body)
		cancel()
		var r linkReply
		if err == nil {
			err = json.Unmarshal(resp.Data, &r)
		}
		if err == nil && r.Error == "" {
			l.rttUs.Store(time.Since(start).Microseconds())
			if !l.up.Swap(true) {
				l.log.Info("edge link up")
			}
			down = 0
		} else {
			if l.up.Swap(false) {
				l.log.Warn("edge link down", "err", err, "reply", r.Error)
			}
			// A link refused for a while may be a revoked one: ask the
			// cloud over HTTP, which answers without the link.
			if down++; down%revocationCheckBeats == 0 && !l.revoked.Load() {
				l.checkRevoked(ctx)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// revocationCheckBeats is how many heartbeats in a row must fail before
// the edge asks the cloud whether its credential still holds (and again
// after as many more).
const revocationCheckBeats = 5

// checkRevoked asks the cloud whether the node's credential holds; when
// the cloud refuses it, the node was deleted: the edge forgets the
// credential (link.json) and stops dialling, and keeps buffering. Joining
// again takes a new node's token and a restart.
func (l *Link) checkRevoked(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := checkCredential(cctx, l.o.Config.Cloud, l.cred, joinClient())
	if !errors.Is(err, errRevoked) {
		if err != nil {
			l.log.Debug("edge credential not checked", "err", err)
		}
		return
	}
	l.revoked.Store(true)
	l.log.Warn("edge credential revoked", "cloud", l.o.Config.Cloud)
	if err := os.Remove(credentialFile(l.o.Dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Error("edge credential not removed", "err", err)
	}
	opts := l.opts.Clone()
	// Clone shares the remotes; the server compares the old ones with
	// these.
	opts.LeafNode.Remotes = make([]*server.RemoteLeafOpts, len(l.opts.LeafNode.Remotes))
	for i, r := range l.opts.LeafNode.Remotes {
		c := *r
		c.Disabled = true
		opts.LeafNode.Remotes[i] = &c
	}
	if err := l.srv.ReloadOptions(opts); err != nil {
		l.log.Error("edge link not stopped", "err", err)
		return
	}
	l.opts = opts
	l.idle.Store(true)
}

// Revoked reports whether the cloud refused the node's credential: the
// node was deleted there, and the edge no longer dials it.
func (l *Link) Revoked() bool { return l.revoked.Load() }

// Dialling reports whether the link server keeps a leaf connection to the
// cloud (or tries to).
func (l *Link) Dialling() bool { return !l.idle.Load() }

// Up reports whether the last heartbeat reached the cloud.
func (l *Link) Up() bool { return l.up.Load() }

// Buffered returns the records waiting in the outbox.
func (l *Link) Buffered(ctx context.Context) (uint64, error) {
	info, err := l.outbox.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// Close stops forwarding; what is buffered stays on disk for the next
// start.
func (l *Link) Close() error {
	if l.events != nil {
		_ = l.events.Stop()
	}
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	l.shutdown()
	return nil
}

func (l *Link) shutdown() {
	if l.nc != nil {
		l.nc.Close()
	}
	l.srv.Shutdown()
	l.srv.WaitForShutdown()
}
