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
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

func init() { vectors.Register("hnsw", open) }

const (
	// snapMagic starts a snapshot; the number is the format's version.
	snapMagic = "TSVECS1\n"
	// defaultCompactShare is the share of a partition's nodes that may be
	// tombstones before it is compacted: a quarter more memory and walk
	// for dead nodes, against a copy of the partition each time.
	defaultCompactShare = 0.25
)

type pkey struct{ project, typ string }

// Index is the embedded vector index.
type Index struct {
	log    *slog.Logger
	efMin  int
	efCons int
	// compactShare: see defaultCompactShare; 1 never compacts.
	compactShare float64
	// st keeps the graphs durable (log, snapshot, rebuild); it calls the
	// graphs through engine.
	st          *vlog.Store
	compactions prometheus.Counter

	pmu   sync.RWMutex
	parts map[pkey]*graph

	compacting atomic.Bool
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
	ix := &Index{log: o.Logger, efMin: defaultEfMin, efCons: defaultEfCons,
		compactShare: defaultCompactShare, parts: map[pkey]*graph{}}
	cfg := vlog.Config{Dir: dir, Magic: snapMagic, Logger: o.Logger, Source: o.Source, Registerer: o.Registerer}
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
		cfg.SnapshotBytes = n
	}
	if s := q.Get("compact_share"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f >= 0.01 && f <= 1) {
			return nil, fmt.Errorf("hnsw: compact_share=%q: want 0.01..1", s)
		}
		ix.compactShare = f
	}
	ix.compactions = prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_compactions_total",
		Help: "Partitions of the embedded index copied without their deleted vectors."})
	tombstones := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_vectors_tombstones",
		Help: "Deleted or replaced vectors the embedded index still holds until it compacts them."}, func() float64 {
		return float64(ix.tombstones())
	})
	cfg.Collectors = []prometheus.Collector{ix.compactions, tombstones}
	st, err := vlog.Open(cfg, (*engine)(ix))
	if err != nil {
		return nil, fmt.Errorf("hnsw: %w", err)
	}
	ix.st = st
	return ix, nil
}

// engine is the Index as its vlog.Store sees it: the methods the store
// calls with what it logged, replayed or rebuilt.
type engine Index

func (e *engine) Apply(items []vectors.Item) { (*Index)(e).applyBatch(items) }
func (e *engine) Remove(ids []string) {
	for _, id := range ids {
		(*Index)(e).applyDelete(id)
	}
}
func (e *engine) Has(id string) bool                 { return (*Index)(e).has(id) }
func (e *engine) DimOf(project, typ string) int      { return (*Index)(e).dimOf(project, typ) }
func (e *engine) Len() int                           { return (*Index)(e).items() }
func (e *engine) WriteSnapshot(w *vlog.Writer) error { return (*Index)(e).writeSnapshot(w) }
func (e *engine) ReadSnapshot(r *vlog.Reader) error  { return (*Index)(e).readSnapshot(r) }
func (e *engine) AfterWrite(s *vlog.Store)           { (*Index)(e).maybeCompact(s) }
func (e *engine) Reset() {
	e.pmu.Lock()
	e.parts = map[pkey]*graph{}
	e.pmu.Unlock()
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

// Upsert implements vectors.Index.
func (ix *Index) Upsert(ctx context.Context, items []vectors.Item) error {
	return ix.st.Upsert(ctx, items)
}

// Delete implements vectors.Index.
func (ix *Index) Delete(ctx context.Context, ids []string) error { return ix.st.Delete(ctx, ids) }

// Search implements vectors.Index.
func (ix *Index) Search(ctx context.Context, v []float32, k int, f vectors.Filter) ([]vectors.Hit, error) {
	if ix.st.Closed() {
		return nil, vectors.ErrClosed
	}
	if err := vectors.CheckSearch(v, k, f); err != nil {
		return nil, err
	}
	if err := ix.st.Ready(); err != nil {
		return nil, err
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
	ix.st.ObserveSearch(time.Since(start))
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
	if ix.st.Closed() {
		return vectors.Stats{}, vectors.ErrClosed
	}
	ix.pmu.RLock()
	s := vectors.Stats{Partitions: len(ix.parts)}
	ix.pmu.RUnlock()
	s.Items = ix.items()
	s.DiskBytes = ix.st.DiskBytes()
	return s, nil
}

// items counts the live vectors.
func (ix *Index) items() int {
	ix.pmu.RLock()
	defer ix.pmu.RUnlock()
	n := 0
	for _, g := range ix.parts {
		g.mu.RLock()
		n += len(g.byID)
		g.mu.RUnlock()
	}
	return n
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

// Close implements vectors.Index: it stops a rebuild or compaction,
// writes a snapshot when the log holds changes, and closes the log.
func (ix *Index) Close() error { return ix.st.Close() }
