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
	"fmt"
	"log/slog"
	"net/url"
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

// Index is the embedded vector index.
type Index struct {
	log    *slog.Logger
	efMin  atomic.Int32 // SetSearchEf changes it while searches run
	efCons int
	// compactShare: see defaultCompactShare; 1 never compacts.
	compactShare float64
	// st keeps the graphs durable (log, snapshot, rebuild); it calls the
	// graphs through engine.
	st          *vlog.Store
	compactions prometheus.Counter

	parts *vlog.Parts[*graph]

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
	p := vlog.ParseURL(u, o, "vectors")
	ix := &Index{log: o.Logger, efCons: defaultEfCons, compactShare: defaultCompactShare, parts: vlog.NewParts[*graph]()}
	ix.efMin.Store(defaultEfMin)
	p.Int("ef", 1, 4096, func(n int) { ix.efMin.Store(int32(n)) })
	p.Int("ef_construction", 1, 4096, func(n int) { ix.efCons = n })
	p.Float("compact_share", 0.01, 1, func(f float64) { ix.compactShare = f })
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("hnsw: %w", err)
	}
	cfg := p.Config
	cfg.Magic = snapMagic
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
func (e *engine) Has(id string) bool                 { return e.parts.Has(id) }
func (e *engine) DimOf(project, typ string) int      { return e.parts.DimOf(project, typ) }
func (e *engine) Len() int                           { return e.parts.Len() }
func (e *engine) WriteSnapshot(w *vlog.Writer) error { return (*Index)(e).writeSnapshot(w) }
func (e *engine) ReadSnapshot(r *vlog.Reader) error  { return (*Index)(e).readSnapshot(r) }
func (e *engine) AfterWrite(s *vlog.Store)           { (*Index)(e).maybeCompact(s) }
func (e *engine) Reset()                             { e.parts.Reset() }

// partition returns (creating) the graph of a project and type.
func (ix *Index) partition(k vlog.Key, dim int) *graph {
	return ix.parts.GetOrAdd(k, func() *graph {
		g := newGraph(dim)
		g.efMin, g.efCons = int(ix.efMin.Load()), ix.efCons
		return g
	})
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
		k := vlog.Key{Project: items[lo].ProjectID, Type: items[lo].Type}
		hi := lo + 1
		for hi < len(items) && hi-lo < chunk && items[hi].ProjectID == k.Project && items[hi].Type == k.Type {
			hi++
		}
		ix.applyChunk(k, items[lo:hi])
		lo = hi
	}
}

func (ix *Index) applyChunk(k vlog.Key, items []vectors.Item) {
	g := ix.partition(k, len(items[0].Vector))
	es := make([]entry, len(items))
	for i, it := range items {
		es[i] = entry{id: it.ID, dev: it.DeviceID, task: it.TaskID, tms: it.Time.UnixMilli(), q: vectors.Normalize(it.Vector)}
	}
	ix.parts.Each(func(ok vlog.Key, og *graph) {
		if ok != k {
			og.mu.Lock()
			for _, it := range items {
				og.remove(it.ID)
			}
			og.mu.Unlock()
		}
	})
	g.insert(es)
}

func (ix *Index) applyDelete(id string) {
	ix.parts.Each(func(_ vlog.Key, g *graph) {
		g.mu.Lock()
		g.remove(id)
		g.mu.Unlock()
	})
}

// Upsert implements vectors.Index.
func (ix *Index) Upsert(ctx context.Context, items []vectors.Item) error {
	return ix.st.Upsert(ctx, items)
}

// Delete implements vectors.Index.
func (ix *Index) Delete(ctx context.Context, ids []string) error { return ix.st.Delete(ctx, ids) }

// Search implements vectors.Index.
func (ix *Index) Search(ctx context.Context, v []float32, k int, f vectors.Filter) ([]vectors.Hit, error) {
	g, ok, err := ix.parts.ForSearch(ix.st, v, k, f)
	if err != nil || !ok {
		return nil, err
	}
	start := time.Now()
	q := vectors.Normalize(v)
	g.mu.RLock()
	allow := vlog.Filter(&f, &g.names, g.dev, g.task, g.tms)
	cs := g.search(q, k, 0, allow)
	hits := make([]vectors.Hit, 0, len(cs))
	for _, c := range cs {
		sim := 1 - c.d
		if sim < f.MinSimilarity {
			continue
		}
		hits = append(hits, vectors.Hit{ID: g.ids[c.id], DeviceID: g.names.Strs[g.dev[c.id]], TaskID: g.names.Strs[g.task[c.id]],
			Time: time.UnixMilli(g.tms[c.id]).UTC(), Similarity: sim})
	}
	g.mu.RUnlock()
	vectors.SortHits(hits)
	ix.st.ObserveSearch(time.Since(start))
	return hits, ctx.Err()
}

// SetSearchEf sets the search breadth floor (the URL's ef) of every
// partition: benchmarks and operators trade recall for latency with it
// without rebuilding anything.
func (ix *Index) SetSearchEf(ef int) {
	ef = max(1, min(ef, 4096))
	ix.efMin.Store(int32(ef))
	ix.parts.Each(func(_ vlog.Key, g *graph) {
		g.mu.Lock()
		g.efMin = ef
		g.mu.Unlock()
	})
}

// Stats implements vectors.Index.
func (ix *Index) Stats(ctx context.Context) (vectors.Stats, error) {
	return ix.parts.Stats(ix.st)
}

// tombstones counts the deleted and replaced nodes the graphs still hold.
func (ix *Index) tombstones() int {
	n := 0
	ix.parts.Each(func(_ vlog.Key, g *graph) {
		g.mu.RLock()
		n += g.ndead
		g.mu.RUnlock()
	})
	return n
}

// Close implements vectors.Index: it stops a rebuild or compaction,
// writes a snapshot when the log holds changes, and closes the log.
func (ix *Index) Close() error { return ix.st.Close() }
