// Package hnsw is the embedded vector index (hnsw:///dir): one HNSW graph
// (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor
// search using Hierarchical Navigable Small World graphs", 2016) per
// project and record type, in memory, persisted as a snapshot and a log of
// the changes since, both checksummed. Why our own and not a module:
// docs/dependencies.md.
//
// Durability: Upsert and Delete append to the log and fsync before they
// apply and return, so kill -9 loses nothing acknowledged; a torn last
// entry (a write that never returned) is cut off at open. A snapshot that
// fails its checksum, or a log entry that does so before the end, makes
// the index rebuild from Options.Source, as does a missing directory;
// Search answers vectors.ErrUnavailable until the rebuild is done, while
// Upsert and Delete keep working.
package hnsw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/vectors"
)

func init() { vectors.Register("hnsw", open) }

const (
	snapName = "index.snap"
	logName  = "index.log"
	// defaultCompactShare is the share of a partition's nodes that may be
	// tombstones before it is compacted: a quarter more memory and walk
	// for dead nodes, against a copy of the partition each time.
	defaultCompactShare = 0.25
	// defaultSnapshotBytes is the log size at which the index writes a
	// snapshot and empties the log: at 128-d about 200,000 changes, which
	// an open replays in about 20 s.
	defaultSnapshotBytes = 128 << 20
	// maxLogEntry bounds one log entry (MaxBatch items of MaxDim floats
	// fit); a longer length is corruption.
	maxLogEntry = 1 << 28
)

type pkey struct{ project, typ string }

// Index is the embedded vector index.
type Index struct {
	dir       string
	log       *slog.Logger
	src       vectors.Source
	efMin     int
	efCons    int
	snapBytes int64
	// compactShare: see defaultCompactShare; 1 never compacts.
	compactShare float64
	m            *metrics

	// applyMu: writers hold it shared from their log append to the end of
	// their apply; a snapshot holds it exclusively, so it sees every
	// logged change applied and none half-way.
	applyMu sync.RWMutex
	logMu   sync.Mutex
	logf    *os.File
	logSize int64
	// Group commit (appendLog), under logMu: entries appended and not
	// yet written, the buffer the last write used, how many entries were
	// appended and synced, whether a sync runs (logCond: it ended), and
	// the error that ended logging.
	pending, spare   []byte
	appended, synced uint64
	syncing          bool
	logCond          *sync.Cond
	logErr           error
	lock             *os.File // flock on <dir>/LOCK; nil where there is none

	pmu   sync.RWMutex
	parts map[pkey]*graph

	// busy holds the ids of the writes between their log append and the
	// end of their apply (busyCond: one ended). A write naming an id that
	// is busy waits for it first, so the writes of one id are applied in
	// the order the log holds them, which is what a reopen replays;
	// writes of other ids share the log's syncs as before.
	busyMu   sync.Mutex
	busyCond *sync.Cond
	busy     map[string]struct{}

	// While rebuilding, rbMu orders the rebuild's check-and-insert of each
	// stored item with live writes, and deletedDuring keeps the ids
	// deleted meanwhile so the rebuild does not bring them back.
	rebuilding    atomic.Bool
	rbMu          sync.Mutex
	deletedDuring map[string]bool

	snapping   atomic.Bool
	compacting atomic.Bool
	closed     atomic.Bool
	// ctx is cancelled by Close, stopping a rebuild or compaction.
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// open is the registered factory: hnsw:///dir, or hnsw:// for
// <DataDir>/vectors. Query parameters: ef (search breadth floor, default
// 128), ef_construction (insert breadth, default 64; it applies to
// partitions created after the open), snapshot_bytes (log size that
// triggers a snapshot), compact_share (share of a partition's nodes that
// may be tombstones before it is compacted, default 0.25; 1 never
// compacts).
func open(ctx context.Context, u *url.URL, o vectors.Options) (vectors.Index, error) {
	dir := u.Path
	if u.Host != "" {
		return nil, fmt.Errorf("hnsw: the URL names a host %q; use hnsw:///absolute/dir", u.Host)
	}
	if dir == "" {
		if o.DataDir == "" {
			return nil, errors.New("hnsw: no directory in the URL and no data dir")
		}
		dir = filepath.Join(o.DataDir, "vectors")
	}
	ix := &Index{dir: dir, log: o.Logger, src: o.Source, efMin: defaultEfMin, efCons: defaultEfCons, snapBytes: defaultSnapshotBytes,
		compactShare: defaultCompactShare, parts: map[pkey]*graph{}, deletedDuring: map[string]bool{}, busy: map[string]struct{}{}}
	ix.busyCond = sync.NewCond(&ix.busyMu)
	q := u.Query()
	for name, dst := range map[string]*int{"ef": &ix.efMin, "ef_construction": &ix.efCons} {
		if s := q.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 4096 {
				return nil, fmt.Errorf("hnsw: %s=%q: want 1..4096", name, s)
			}
			*dst = n
		}
	}
	if s := q.Get("snapshot_bytes"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1<<10 {
			return nil, fmt.Errorf("hnsw: snapshot_bytes=%q: want at least 1024", s)
		}
		ix.snapBytes = n
	}
	if s := q.Get("compact_share"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f >= 0.01 && f <= 1) {
			return nil, fmt.Errorf("hnsw: compact_share=%q: want 0.01..1", s)
		}
		ix.compactShare = f
	}
	ix.logCond = sync.NewCond(&ix.logMu)
	var err error
	if ix.m, err = newMetrics(o.Registerer, ix); err != nil {
		return nil, err
	}
	if err := ix.load(); err != nil {
		if ix.lock != nil {
			ix.lock.Close()
		}
		ix.m.unregister()
		return nil, err
	}
	return ix, nil
}

// load reads the snapshot and replays the log, or starts a rebuild when
// they are missing or corrupt.
func (ix *Index) load() error {
	if err := os.MkdirAll(ix.dir, 0o700); err != nil {
		return fmt.Errorf("hnsw: %w", err)
	}
	lock, err := lockDir(ix.dir)
	if err != nil {
		return err
	}
	ix.lock = lock
	// No snapshot means the index was never complete here (first start,
	// lost files, or a rebuild cut short): rebuild after the log's replay.
	_, statErr := os.Stat(filepath.Join(ix.dir, snapName))
	noSnap := errors.Is(statErr, os.ErrNotExist)
	corrupt := false
	if !noSnap {
		if err := ix.readSnapshot(); err != nil {
			if !errors.Is(err, errCorrupt) {
				return err
			}
			ix.log.Warn("vector index snapshot corrupt; rebuilding from the store", "dir", ix.dir, "err", err)
			corrupt = true
		}
	}
	if !corrupt {
		if err := ix.replayLog(); err != nil {
			if !errors.Is(err, errCorrupt) {
				return err
			}
			ix.log.Warn("vector index log corrupt; rebuilding from the store", "dir", ix.dir, "err", err)
			corrupt = true
		}
	}
	if corrupt {
		ix.parts = map[pkey]*graph{}
		for _, n := range []string{snapName, logName} {
			p := filepath.Join(ix.dir, n)
			if err := os.Rename(p, p+".corrupt"); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("hnsw: set corrupt file aside: %w", err)
			}
		}
	}
	f, err := os.OpenFile(filepath.Join(ix.dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("hnsw: open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("hnsw: %w", err)
	}
	ix.logf, ix.logSize = f, st.Size()
	ctx, cancel := context.WithCancel(context.Background())
	ix.ctx, ix.stop = ctx, cancel
	if (noSnap || corrupt) && ix.src != nil {
		ix.rebuilding.Store(true)
		ix.wg.Add(1)
		go ix.rebuild(ctx)
	}
	return nil
}

// rebuild inserts every stored item the live writes have not already
// upserted or deleted, then snapshots.
func (ix *Index) rebuild(ctx context.Context) {
	defer ix.wg.Done()
	start := time.Now()
	n := 0
	err := ix.src(ctx, func(it vectors.Item) error {
		if err := vectors.CheckItems([]vectors.Item{it}, ix.dimOf); err != nil {
			ix.log.Warn("stored vector skipped in rebuild", "id", it.ID, "err", err)
			return nil
		}
		ix.rbMu.Lock()
		defer ix.rbMu.Unlock()
		if ix.deletedDuring[it.ID] || ix.has(it.ID) {
			return nil
		}
		ix.apply(it)
		n++
		return ctx.Err()
	})
	if err != nil {
		// The index stays unavailable: a restart rebuilds again.
		ix.log.Error("vector index rebuild failed", "dir", ix.dir, "items", n, "err", err)
		return
	}
	if err := ix.snapshot(); err != nil {
		ix.log.Error("vector index snapshot after rebuild failed", "dir", ix.dir, "err", err)
	}
	ix.rbMu.Lock()
	ix.rebuilding.Store(false)
	clear(ix.deletedDuring)
	ix.rbMu.Unlock()
	ix.m.rebuilds.Inc()
	ix.log.Info("vector index rebuilt", "dir", ix.dir, "items", n, "duration", time.Since(start))
}

func (ix *Index) dimOf(project, typ string) int {
	ix.pmu.RLock()
	defer ix.pmu.RUnlock()
	if g := ix.parts[pkey{project, typ}]; g != nil {
		return g.dim
	}
	return 0
}

func (ix *Index) has(id string) bool {
	ix.pmu.RLock()
	defer ix.pmu.RUnlock()
	for _, g := range ix.parts {
		g.mu.RLock()
		_, ok := g.byID[id]
		g.mu.RUnlock()
		if ok {
			return true
		}
	}
	return false
}

// partition returns (creating) the graph of a project and type.
func (ix *Index) partition(k pkey, dim int) *graph {
	ix.pmu.RLock()
	g := ix.parts[k]
	ix.pmu.RUnlock()
	if g != nil {
		return g
	}
	ix.pmu.Lock()
	defer ix.pmu.Unlock()
	if g = ix.parts[k]; g == nil {
		g = newGraph(dim)
		g.efMin, g.efCons = ix.efMin, ix.efCons
		ix.parts[k] = g
	}
	return g
}

// apply puts one checked item into its graph, replacing any item of the
// same id in any partition.
func (ix *Index) apply(it vectors.Item) { ix.applyBatch([]vectors.Item{it}) }

// chunk is how many items an insert prepares under one read lock and links
// under one write lock. Taking the write lock once per item made inserts
// wait for every search in flight each time (a pending writer holds new
// readers back): measured, inserts while searching ran at a fifth of the
// build rate. 32 keeps a search's wait for one chunk's linking short.
const chunk = 32

// applyBatch puts checked items into their graphs, chunk by chunk: each
// chunk's neighbours are searched under the read lock, then linked under
// the write lock, where the chunk's items are also offered to each other
// (they could not see each other while searching).
func (ix *Index) applyBatch(items []vectors.Item) {
	for lo := 0; lo < len(items); {
		// A run of items of one partition, at most chunk long.
		k := pkey{items[lo].ProjectID, items[lo].Type}
		hi := lo + 1
		for hi < len(items) && hi-lo < chunk && items[hi].ProjectID == k.project && items[hi].Type == k.typ {
			hi++
		}
		ix.applyChunk(k, items[lo:hi])
		lo = hi
	}
}

func (ix *Index) applyChunk(k pkey, items []vectors.Item) {
	g := ix.partition(k, len(items[0].Vector))
	es := make([]entry, len(items))
	for i, it := range items {
		es[i] = entry{id: it.ID, dev: it.DeviceID, task: it.TaskID, tms: it.Time.UnixMilli(), q: vectors.Normalize(it.Vector)}
	}
	ix.pmu.RLock()
	for ok, og := range ix.parts {
		if ok != k {
			og.mu.Lock()
			for _, it := range items {
				og.remove(it.ID)
			}
			og.mu.Unlock()
		}
	}
	ix.pmu.RUnlock()
	g.insert(es)
}

func (ix *Index) applyDelete(id string) {
	ix.pmu.RLock()
	defer ix.pmu.RUnlock()
	for _, g := range ix.parts {
		g.mu.Lock()
		g.remove(id)
		g.mu.Unlock()
	}
}

// claim marks ids busy, once none of them is.
func (ix *Index) claim(ids []string) {
	ix.busyMu.Lock()
	defer ix.busyMu.Unlock()
	for slices.ContainsFunc(ids, func(id string) bool { _, ok := ix.busy[id]; return ok }) {
		ix.busyCond.Wait()
	}
	for _, id := range ids {
		ix.busy[id] = struct{}{}
	}
}

// release ends a write's claim on ids.
func (ix *Index) release(ids []string) {
	ix.busyMu.Lock()
	for _, id := range ids {
		delete(ix.busy, id)
	}
	ix.busyMu.Unlock()
	ix.busyCond.Broadcast()
}

// Upsert implements vectors.Index.
func (ix *Index) Upsert(ctx context.Context, items []vectors.Item) error {
	if ix.closed.Load() {
		return vectors.ErrClosed
	}
	if err := vectors.CheckItems(items, ix.dimOf); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	var e enc
	e.u8('U')
	e.u32(uint32(len(items)))
	for i := range items {
		it := &items[i]
		e.str(it.ID)
		e.str(it.ProjectID)
		e.str(it.Type)
		e.str(it.DeviceID)
		e.str(it.TaskID)
		e.i64(it.Time.UnixMilli())
		e.u16(uint16(len(it.Vector)))
		for _, x := range it.Vector {
			e.f32(x)
		}
	}
	ids := make([]string, len(items))
	for i := range items {
		ids[i] = items[i].ID
	}
	err := ix.write(ids, e.b, func(rebuilding bool) {
		ix.applyBatch(items)
		if rebuilding {
			for _, it := range items {
				delete(ix.deletedDuring, it.ID)
			}
		}
	})
	if err != nil {
		return err
	}
	ix.m.upserts.Add(float64(len(items)))
	return ctx.Err()
}

// write logs entry, a write of ids, and applies it (apply is told whether
// a rebuild runs; rbMu is then held): writes of the same ids wait for one
// another, and a snapshot sees every logged write applied. It then starts
// a snapshot or a compaction when one is due.
func (ix *Index) write(ids []string, entry []byte, apply func(rebuilding bool)) error {
	ix.claim(ids)
	defer ix.release(ids)
	ix.applyMu.RLock()
	defer ix.applyMu.RUnlock()
	if err := ix.appendLog(entry); err != nil {
		return err
	}
	rb := ix.rebuilding.Load()
	if rb {
		ix.rbMu.Lock()
	}
	apply(rb)
	if rb {
		ix.rbMu.Unlock()
	}
	ix.maybeSnapshot()
	ix.maybeCompact()
	return nil
}

// Delete implements vectors.Index.
func (ix *Index) Delete(ctx context.Context, ids []string) error {
	if ix.closed.Load() {
		return vectors.ErrClosed
	}
	if err := vectors.CheckDelete(ids); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	var e enc
	e.u8('D')
	e.u32(uint32(len(ids)))
	for _, id := range ids {
		e.str(id)
	}
	return ix.write(ids, e.b, func(rebuilding bool) {
		for _, id := range ids {
			ix.applyDelete(id)
			if rebuilding {
				ix.deletedDuring[id] = true
			}
		}
	})
}

// Search implements vectors.Index.
func (ix *Index) Search(ctx context.Context, v []float32, k int, f vectors.Filter) ([]vectors.Hit, error) {
	if ix.closed.Load() {
		return nil, vectors.ErrClosed
	}
	if err := vectors.CheckSearch(v, k, f); err != nil {
		return nil, err
	}
	if ix.rebuilding.Load() {
		return nil, fmt.Errorf("%w: the index is being rebuilt from the store", vectors.ErrUnavailable)
	}
	start := time.Now()
	ix.pmu.RLock()
	g := ix.parts[pkey{f.ProjectID, f.Type}]
	ix.pmu.RUnlock()
	if g == nil {
		return nil, nil
	}
	if g.dim != len(v) {
		return nil, fmt.Errorf("%w: the vector has %d dimensions; partition %s/%s holds %d", vectors.ErrDimension, len(v), f.ProjectID, f.Type, g.dim)
	}
	q := vectors.Normalize(v)
	g.mu.RLock()
	allow := g.filter(&f)
	cs := g.search(q, k, 0, allow)
	hits := make([]vectors.Hit, 0, len(cs))
	for _, c := range cs {
		sim := 1 - c.d
		if sim < f.MinSimilarity {
			continue
		}
		hits = append(hits, vectors.Hit{ID: g.ids[c.id], DeviceID: g.strs[g.dev[c.id]], TaskID: g.strs[g.task[c.id]],
			Time: time.UnixMilli(g.tms[c.id]).UTC(), Similarity: sim})
	}
	g.mu.RUnlock()
	vectors.SortHits(hits)
	ix.m.searchSeconds.Observe(time.Since(start).Seconds())
	return hits, ctx.Err()
}

// filter turns f's device, task and time filters into a node predicate
// (nil when f has none); it runs under the graph's read lock.
func (g *graph) filter(f *vectors.Filter) func(uint32) bool {
	if len(f.DeviceIDs) == 0 && len(f.TaskIDs) == 0 && f.Start.IsZero() && f.End.IsZero() {
		return nil
	}
	set := func(vals []string) map[uint32]bool {
		if len(vals) == 0 {
			return nil
		}
		m := map[uint32]bool{}
		for _, s := range vals {
			if i, ok := g.strIdx[s]; ok {
				m[i] = true
			}
		}
		return m
	}
	devs, tasks := set(f.DeviceIDs), set(f.TaskIDs)
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !f.Start.IsZero() {
		lo = f.Start.UnixMilli()
	}
	if !f.End.IsZero() {
		hi = f.End.UnixMilli()
	}
	return func(i uint32) bool {
		if devs != nil && !devs[g.dev[i]] || tasks != nil && !tasks[g.task[i]] {
			return false
		}
		return g.tms[i] >= lo && g.tms[i] < hi
	}
}

// SetSearchEf sets the search breadth floor (the URL's ef) of every
// partition: benchmarks and operators trade recall for latency with it
// without rebuilding anything.
func (ix *Index) SetSearchEf(ef int) {
	ef = max(1, min(ef, 4096))
	ix.pmu.Lock()
	defer ix.pmu.Unlock()
	ix.efMin = ef
	for _, g := range ix.parts {
		g.mu.Lock()
		g.efMin = ef
		g.mu.Unlock()
	}
}

// Stats implements vectors.Index.
func (ix *Index) Stats(ctx context.Context) (vectors.Stats, error) {
	if ix.closed.Load() {
		return vectors.Stats{}, vectors.ErrClosed
	}
	var s vectors.Stats
	ix.pmu.RLock()
	s.Partitions = len(ix.parts)
	for _, g := range ix.parts {
		g.mu.RLock()
		s.Items += len(g.byID)
		g.mu.RUnlock()
	}
	ix.pmu.RUnlock()
	for _, n := range []string{snapName, logName} {
		if st, err := os.Stat(filepath.Join(ix.dir, n)); err == nil {
			s.DiskBytes += st.Size()
		}
	}
	return s, nil
}

// tombstones counts the deleted and replaced nodes the graphs still hold.
func (ix *Index) tombstones() int {
	ix.pmu.RLock()
	defer ix.pmu.RUnlock()
	n := 0
	for _, g := range ix.parts {
		g.mu.RLock()
		n += g.ndead
		g.mu.RUnlock()
	}
	return n
}

// Close implements vectors.Index: it stops a rebuild, writes a snapshot
// when the log holds changes, and closes the log.
func (ix *Index) Close() error {
	if ix.closed.Swap(true) {
		return nil
	}
	ix.stop()
	ix.wg.Wait()
	var err error
	if !ix.rebuilding.Load() && ix.logSize > 0 {
		err = ix.snapshot()
	}
	ix.logMu.Lock()
	defer ix.logMu.Unlock()
	if cerr := ix.logf.Close(); err == nil {
		err = cerr
	}
	if ix.lock != nil {
		ix.lock.Close() // releases the flock
	}
	ix.m.unregister()
	return err
}

type metrics struct {
	reg           prometheus.Registerer
	cs            []prometheus.Collector
	searchSeconds prometheus.Histogram
	upserts       prometheus.Counter
	rebuilds      prometheus.Counter
	compactions   prometheus.Counter
	logSyncs      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, ix *Index) (*metrics, error) {
	m := &metrics{reg: reg,
		searchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tianshu_vectors_search_seconds",
			Help: "Vector index searches, by duration.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		upserts: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_upserted_total",
			Help: "Vectors added to or replaced in the index."}),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_rebuilds_total",
			Help: "Rebuilds of the embedded index from the store (missing or corrupt files)."}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_compactions_total",
			Help: "Partitions of the embedded index copied without their deleted vectors."}),
		logSyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_log_syncs_total",
			Help: "Writes and fsyncs of the embedded index's log; concurrent Upserts and Deletes share one (group commit)."}),
	}
	items := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_vectors_items",
		Help: "Live vectors in the index."}, func() float64 {
		s, _ := ix.Stats(context.Background())
		return float64(s.Items)
	})
	rebuilding := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_vectors_rebuilding",
		Help: "1 while the embedded index is rebuilt from the store (searches answer ResourceUnavailable)."}, func() float64 {
		if ix.rebuilding.Load() {
			return 1
		}
		return 0
	})
	tombstones := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_vectors_tombstones",
		Help: "Deleted or replaced vectors the embedded index still holds until it compacts them."}, func() float64 {
		return float64(ix.tombstones())
	})
	m.cs = []prometheus.Collector{m.searchSeconds, m.upserts, m.rebuilds, m.compactions, m.logSyncs, items, rebuilding, tombstones}
	if reg != nil {
		for i, c := range m.cs {
			if err := reg.Register(c); err != nil {
				for _, d := range m.cs[:i] {
					reg.Unregister(d)
				}
				return nil, fmt.Errorf("hnsw: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg != nil {
		for _, c := range m.cs {
			m.reg.Unregister(c)
		}
	}
}
