package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/edge/edgeconfig"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// RecordInserter stores forwarded records, skipping ids it has (the data
// center's Insert).
type RecordInserter interface {
	Insert(ctx context.Context, recs []data.Record) error
}

// EventPublisher puts forwarded events on the cloud's bus (bus.Bus does),
// where the cloud's subscriptions deliver them.
type EventPublisher interface {
	Publish(ctx context.Context, topic, key string, data []byte, header map[string]string) (uint64, error)
}

// ObjectWriter is the cloud's blob store as the hub writes records'
// objects into it (blob.Store is one).
type ObjectWriter interface {
	Stat(ctx context.Context, key string) (blob.Info, error)
	Put(ctx context.Context, key string, r io.Reader, o blob.PutOptions) (blob.Info, error)
}

// HubOptions configure the cloud's hub.
type HubOptions struct {
	// Addr is the leaf listener's host:port; Advertise what edges dial
	// (default: the bound address).
	Addr, Advertise string
	// Dir keeps the hub's certificate when Box is nil; with Box, the
	// certificate is the store's, shared by every replica, its key sealed
	// with Box (one found in Dir, from an earlier version, is copied there).
	Dir     string
	Box     *secrets.Box
	Nodes   *Nodes
	Records RecordInserter
	// Events receives the events edges forward; nil drops them (counted
	// as refused).
	Events EventPublisher
	// Objects keeps the objects (crops, frames) that cross with records
	// (the blob store); nil stores records without them.
	Objects ObjectWriter
	// Artifacts holds the algorithm packages and model files nodes
	// fetch (the blob store); nil serves none.
	Artifacts ArtifactStore
	// Placement serves the tasks placed on nodes; nil answers nodes that
	// this cloud places none.
	Placement Placement
	// WatchlistBytes bounds a project's watchlist set sent to its nodes
	// (default: edgeconfig's); a set over one link message is read in
	// chunks.
	WatchlistBytes int64
	// Sweep is how often the hub cuts links of deleted nodes.
	Sweep      time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	// chunkHook, set by tests, runs before a watchlist chunk is
	// answered: a test changes the set between two chunks with it.
	chunkHook func(node string, offset int64)
}

// HubServer is the cloud end of the links: a NATS server that accepts only
// TLS leaf connections of edge nodes holding a valid credential, each
// allowed only its own subjects.
type HubServer struct {
	o    HubOptions
	srv  *server.Server
	nc   *nats.Conn
	m    *hubMetrics
	log  *slog.Logger
	addr string

	mu    sync.Mutex
	conns map[string]map[uint64]bool // node id → its leaf connections
	// wlSnaps are the watchlist sets serialised for nodes, one per
	// project; wlReaders the project whose set each node may read in
	// chunks, recorded when its exchange announced one.
	wlSnaps   map[string]*watchlistSnapshot
	wlReaders map[string]string
	// forwarded counts records accepted per node since its last
	// heartbeat, which writes them to the store: one commit per batch
	// fewer.
	forwarded map[string]int64
	// artifacts are, per node, the blob keys its last desired state
	// named: the only ones it may read.
	artifacts map[string]map[string]bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type hubMetrics struct {
	links    prometheus.GaugeFunc
	refused  prometheus.Counter
	received *prometheus.CounterVec
	events   *prometheus.CounterVec
	objects  *prometheus.CounterVec
	// watchlists counts watchlist exchanges by outcome, watchlistChunks
	// the chunks of sets read in chunks.
	watchlists      *prometheus.CounterVec
	watchlistChunks *prometheus.CounterVec
}

// StartHub starts the hub and records its address and certificate for
// CreateEdgeNode's tokens.
func StartHub(ctx context.Context, o HubOptions) (*HubServer, error) {
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("edge: leaf address %q: %w", o.Addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("edge: leaf address %q: bad port", o.Addr)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	}
	advHost := host
	if o.Advertise != "" {
		advHost, _, _ = net.SplitHostPort(o.Advertise)
	}
	cert, fp, err := hubCertificate(ctx, o.Nodes.db, o.Box, o.Dir, []string{advHost})
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sweep <= 0 {
		o.Sweep = time.Second
	}
	if o.WatchlistBytes <= 0 {
		o.WatchlistBytes = edgeconfig.Default().WatchlistBytes
	}
	h := &HubServer{o: o, log: o.Logger, conns: map[string]map[uint64]bool{}, forwarded: map[string]int64{}, artifacts: map[string]map[string]bool{},
		wlSnaps: map[string]*watchlistSnapshot{}, wlReaders: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	opts := &server.Options{
		ServerName: "tianshu-edge-hub",
		// Clients are this process's own, in-process; the only port is
		// the leaf listener.
		DontListen: true,
		NoSigs:     true,
		MaxPayload: maxLinkMessage,
		LeafNode: server.LeafNodeOpts{
			Host: host,
			Port: p,
			// Edges dial only the address their join named: without
			// this the server tells them its bound address too, and an
			// edge behind a proxy or NAT would reconnect around it.
			NoAdvertise: true,
			TLSConfig:   &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
			TLSTimeout:  5,
		},
		CustomClientAuthentication: h,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("edge: hub server: %w", err)
	}
	srv.SetLoggerV2(natsbus.ServerLog(o.Logger), false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("edge: hub server not ready")
	}
	h.srv = srv
	// The server writes the port it picked back into opts.
	bound := net.JoinHostPort(host, strconv.Itoa(opts.LeafNode.Port))
	adv := o.Advertise
	if adv == "" {
		adv = bound
	}
	h.nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name("edge-hub"), nats.MaxReconnects(-1))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("edge: hub connection: %w", err)
	}
	h.m = &hubMetrics{
		links: telemetry.MustRegister(o.Registerer, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_edge_hub_links",
			Help: "Edge nodes' leaf connections this cloud process holds."}, func() float64 { return float64(srv.NumLeafNodes()) })),
		refused: telemetry.MustRegister(o.Registerer, prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_edge_hub_refused_total",
			Help: "Leaf connections the hub refused: unknown node, revoked or wrong credential."})),
		received: telemetry.MustRegister(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_edge_records_received_total",
			Help: "Records edge nodes forwarded to this cloud process, by outcome: stored (new or already stored, the store skips ids it has) or refused."}, []string{"outcome"})),
		events: telemetry.MustRegister(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_edge_events_received_total",
			Help: "Events edge nodes forwarded to this cloud process, by outcome: published (on the cloud's bus, which drops an id it has within its window) or refused."}, []string{"outcome"})),
		objects: telemetry.MustRegister(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_edge_objects_received_total",
			Help: "Objects (crops, frames) edge nodes forwarded with their records, by outcome: stored, present (already stored: a batch sent again), refused (a key outside the record's task)."}, []string{"outcome"})),
		watchlists: telemetry.MustRegister(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_edge_watchlists_sync_total",
			Help: "Watchlist exchanges with edge nodes, by outcome: sent (the node's project's set, which differed from the node's, in the reply), chunked (announced, to be read in chunks: over one link message), unchanged, too_large (refused: over --edge.watchlist-bytes)."}, []string{"outcome"})),
		watchlistChunks: telemetry.MustRegister(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_edge_watchlist_chunks_total",
			Help: "Chunk requests of watchlist sets read in chunks by edge nodes, by outcome: sent (up to 4 MiB), moved (the set changed since announced; the node starts over), refused."}, []string{"outcome"})),
	}
	for _, sub := range []struct {
		subject string
		fn      func(node string, m *nats.Msg) any
	}{{"edge.*.beat", h.beat}, {"edge.*.records", h.records}, {"edge.*.sync", h.sync}, {"edge.*.artifact", h.artifact}, {"edge.*.watchlists", h.watchlists}, {"edge.*.watchlistchunk", h.watchlistChunk}} {
		if _, err := h.nc.QueueSubscribe(sub.subject, "hub", h.handle(sub.fn)); err != nil {
			h.close()
			return nil, err
		}
	}
	if err := o.Nodes.setHub(ctx, Hub{LeafURL: "tls://" + adv, Fingerprint: fp}); err != nil {
		h.close()
		return nil, err
	}
	go h.sweep()
	h.addr = bound
	h.log.Info("edge hub listening", "addr", bound, "advertise", adv, "fingerprint", fp)
	return h, nil
}

// Addr is the leaf listener's bound address.
func (h *HubServer) Addr() string { return h.addr }

// Check authenticates a connection (server.Authentication). In-process
// clients are the hub's own; a leaf must name an edge node and its
// credential, and may then use only that node's subjects.
func (h *HubServer) Check(c server.ClientAuthentication) bool {
	switch c.Kind() {
	case server.CLIENT:
		// The hub has no client listener: a client is this process's.
		return true
	case server.LEAF:
	default:
		return false
	}
	o := c.GetOpts()
	node, cred := o.Username, o.Password
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !strings.HasPrefix(node, "edge-") || !h.o.Nodes.Authenticate(ctx, node, cred) {
		h.m.refused.Inc()
		h.log.Warn("edge link refused", "node", node, "remote", c.RemoteAddress().String())
		return false
	}
	own := []string{"edge." + node + ".>", inboxPrefix(node) + ".>"}
	c.RegisterUser(&server.User{Username: node, Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: own},
		Subscribe: &server.SubjectPermission{Allow: own},
	}})
	h.mu.Lock()
	if h.conns[node] == nil {
		h.conns[node] = map[uint64]bool{}
	}
	h.conns[node][c.GetID()] = true
	h.mu.Unlock()
	h.log.Info("edge link accepted", "node", node, "remote", c.RemoteAddress().String())
	return true
}

// inboxPrefix is the prefix of a node's reply subjects: the only inboxes it
// may use.
func inboxPrefix(node string) string { return "_INBOX_" + node }

// handle answers a link request of the node the subject names.
func (h *HubServer) handle(fn func(node string, m *nats.Msg) any) nats.MsgHandler {
	return func(m *nats.Msg) {
		parts := strings.Split(m.Subject, ".")
		if len(parts) != 3 || m.Reply == "" {
			return
		}
		b, _ := json.Marshal(fn(parts[1], m))
		if len(b) > maxLinkMessage {
			h.log.Error("edge reply too large", "node", parts[1], "subject", m.Subject, "bytes", len(b))
			b, _ = json.Marshal(linkReply{Error: fmt.Sprintf("reply of %d bytes exceeds the link's %d", len(b), maxLinkMessage)})
		}
		_ = m.Respond(b)
	}
}

func (h *HubServer) beat(node string, m *nats.Msg) any {
	var b beatMsg
	if err := json.Unmarshal(m.Data, &b); err != nil {
		return linkReply{Error: "heartbeat: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.mu.Lock()
	fwd := h.forwarded[node]
	delete(h.forwarded, node)
	h.mu.Unlock()
	if err := h.o.Nodes.Seen(ctx, node, b.Beat, time.Duration(b.RttUs)*time.Microsecond, fwd); err != nil {
		h.mu.Lock()
		h.forwarded[node] += fwd
		h.mu.Unlock()
		return linkReply{Error: err.Error()}
	}
	return linkReply{}
}

// records stores a batch of the node's outbox: its records under their own
// ids, then its events on the cloud's bus under theirs, in the order the
// edge buffered them. It answers only once both are done, so a batch is
// either wholly taken or sent again; a batch sent twice stores and
// publishes nothing twice (the store skips ids it has, the bus drops ids
// it has within its deduplication window).
func (h *HubServer) records(node string, m *nats.Msg) any {
	var batch []json.RawMessage
	if err := json.Unmarshal(m.Data, &batch); err != nil || len(batch) > maxBatch {
		h.m.received.WithLabelValues("refused").Add(float64(len(batch)))
		return linkReply{Error: fmt.Sprintf("records: not a batch of at most %d records and events", maxBatch)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := h.o.Nodes.Get(ctx, node)
	if err != nil {
		return linkReply{Error: "node: " + err.Error()}
	}
	recs := make([]data.Record, 0, len(batch))
	var evs []wireEvent
	for i, raw := range batch {
		// One decode per item: a record and an event share Id, and Kind
		// tells them apart.
		var item wireItem
		if err := json.Unmarshal(raw, &item); err != nil {
			return h.refuse(len(batch), fmt.Sprintf("item %d: %v", i, err))
		}
		switch item.Kind {
		case "":
			rec := item.wireRecord.record(n.ProjectID)
			if err := h.storeObjects(ctx, node, item.wireRecord, &rec); err != nil {
				h.log.Error("edge objects not stored", "node", node, "record", rec.ID, "err", err)
				return linkReply{Error: "record " + rec.ID + ": " + err.Error()}
			}
			recs = append(recs, rec)
		case kindEvent:
			evs = append(evs, wireEvent{Kind: item.Kind, ID: item.ID, Key: item.Key, Event: item.Event})
		default:
			return h.refuse(len(batch), fmt.Sprintf("item %d: unknown kind %q", i, item.Kind))
		}
	}
	if len(evs) > 0 && h.o.Events == nil {
		// Nowhere to put them; they must not hold back the records.
		h.m.events.WithLabelValues("refused").Add(float64(len(evs)))
		evs = nil
	}
	if err := h.o.Records.Insert(ctx, recs); err != nil {
		h.log.Error("edge records not stored", "node", node, "records", len(recs), "err", err)
		if errors.Is(err, data.ErrInvalidRecord) {
			h.m.received.WithLabelValues("refused").Add(float64(len(recs)))
		}
		return linkReply{Error: err.Error()}
	}
	h.m.received.WithLabelValues("stored").Add(float64(len(recs)))
	for _, w := range evs {
		if err := h.publish(ctx, n.ProjectID, w); err != nil {
			h.log.Error("edge event not published", "node", node, "event", w.ID, "err", err)
			return linkReply{Error: "event " + w.ID + ": " + err.Error()}
		}
	}
	h.mu.Lock()
	h.forwarded[node] += int64(len(recs))
	h.mu.Unlock()
	return linkReply{Accepted: len(batch)}
}

// storeObjects puts the objects that crossed with a record into the
// cloud's blob store, under the record's task in the node's project
// (projects/<project>/tasks/<task>/<the path it had on the edge>), and
// gives rec their keys, in the document too. An object already there is
// left as it is: a batch sent again stores nothing twice, and an edge
// never overwrites an object of the cloud's. Objects go before their
// record, so a stored record's objects are there.
func (h *HubServer) storeObjects(ctx context.Context, node string, w wireRecord, rec *data.Record) error {
	if len(w.Blobs) == 0 {
		return nil
	}
	if h.o.Objects == nil {
		h.m.objects.WithLabelValues("refused").Add(float64(len(w.Blobs)))
		return nil
	}
	for _, b := range w.Blobs {
		path, ok := taskObjectPath(b.Key, w.TaskID)
		key := "projects/" + rec.ProjectID + "/tasks/" + w.TaskID + "/" + path
		if !ok || blob.ValidateKey(key) != nil || len(rec.Objects) >= data.MaxRecordObjects {
			h.m.objects.WithLabelValues("refused").Inc()
			h.log.Warn("edge object refused", "node", node, "record", rec.ID, "key", b.Key)
			continue
		}
		if _, err := h.o.Objects.Stat(ctx, key); err == nil {
			h.m.objects.WithLabelValues("present").Inc()
		} else if !errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("object %s: %w", key, err)
		} else {
			if _, err := h.o.Objects.Put(ctx, key, bytes.NewReader(b.Data), blob.PutOptions{ContentType: b.ContentType, Size: int64(len(b.Data))}); err != nil {
				return fmt.Errorf("object %s: %w", key, err)
			}
			h.m.objects.WithLabelValues("stored").Inc()
		}
		rec.Objects = append(rec.Objects, key)
		if key != b.Key {
			// The document names its objects ({"ObjectKey": key}): a
			// key is a JSON string without escapes.
			rec.Data = bytes.ReplaceAll(rec.Data, []byte(`"`+b.Key+`"`), []byte(`"`+key+`"`))
		}
	}
	return nil
}

// refuse answers a batch that cannot be read; the edge sends it again
// (a newer cloud may read it).
func (h *HubServer) refuse(n int, why string) linkReply {
	h.m.received.WithLabelValues("refused").Add(float64(n))
	return linkReply{Error: "records: " + why}
}

// publish puts an edge's event on the events topic of the node's project,
// as the project's own: its projectid becomes the node's project, its id
// and key stay. An item that is no event is skipped, counted and logged:
// sending it again would not mend it, and it must not hold back the rest.
func (h *HubServer) publish(ctx context.Context, projectID string, w wireEvent) error {
	ev, err := event.Decode(w.Event)
	if err == nil && ev.ID != w.ID {
		err = fmt.Errorf("event id %q differs from the item's %q", ev.ID, w.ID)
	}
	if err != nil {
		h.m.events.WithLabelValues("refused").Inc()
		h.log.Warn("edge event refused", "event", w.ID, "err", err)
		return nil
	}
	ev.ProjectID = projectID
	b, err := ev.Marshal()
	if err != nil {
		return err
	}
	if _, err := h.o.Events.Publish(ctx, event.Topic(projectID), w.Key, b, ev.Headers()); err != nil {
		return err
	}
	h.m.events.WithLabelValues("published").Inc()
	return nil
}

// sweep cuts the links of nodes that were deleted.
func (h *HubServer) sweep() {
	defer close(h.done)
	t := time.NewTicker(h.o.Sweep)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.cut()
	}
}

func (h *HubServer) cut() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	live, err := h.o.Nodes.live(ctx)
	if err != nil {
		h.log.Warn("edge sweep failed", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for node, ids := range h.conns {
		for id := range ids {
			if h.srv.GetLeafNode(id) == nil {
				delete(ids, id) // gone by itself
			} else if !live[node] {
				_ = h.srv.DisconnectClientByID(id)
				delete(ids, id)
				h.log.Info("edge link cut", "node", node, "reason", "node deleted")
			}
		}
		if len(ids) == 0 {
			delete(h.conns, node)
		}
	}
	h.dropIdleSnapshots(live, time.Now())
}

// Close stops the hub; edges keep buffering until it is back.
func (h *HubServer) Close() error {
	var err error
	h.closeOnce.Do(func() {
		close(h.stop)
		<-h.done
		h.close()
		// Counts not yet written with a heartbeat; a crash loses them
		// (the count is a figure for people, the records are stored).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.mu.Lock()
		defer h.mu.Unlock()
		for node, n := range h.forwarded {
			err = errors.Join(err, h.o.Nodes.addForwarded(ctx, node, n))
		}
		clear(h.forwarded)
	})
	return err
}

func (h *HubServer) close() {
	if h.nc != nil {
		h.nc.Close()
	}
	h.srv.Shutdown()
	h.srv.WaitForShutdown()
}

// HubDir is where a cloud keeps its hub's certificate under its data dir.
func HubDir(dataDir string) string { return filepath.Join(dataDir, "edge") }
