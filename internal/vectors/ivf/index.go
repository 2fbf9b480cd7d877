// Package ivf is the second embedded vector index (ivf:///dir): per
// project and record type, an inverted file of int8 rows (IVF, Jégou,
// Douze & Schmid, "Product quantization for nearest neighbor search",
// 2011, without the product quantization), for loads that insert faster
// than an HNSW graph can link (issue #29: 10,000 inserts a second while
// searching).
//
// A partition of up to flat_max vectors (default 20,000) is one list,
// scanned whole. Past it, k-means centroids trained on a sample
// (lists·√N of them, lists a URL factor) split the vectors; each vector's
// int8 row goes into its nearest centroid's list, which is all an insert
// costs. A search scans the nprobe lists nearest to the query on the
// int8 rows, keeps the best rerank candidates and ranks them again on the
// float32 vectors. When a partition has grown 4× since its last training,
// or shrunk to a quarter of it while it holds more than flat_max, it is
// retrained in the background: searches read the old lists, writes go to
// both, and the new lists replace the old ones when full.
//
// Durability is hnsw's, through the same package (vlog): Upsert and
// Delete log and fsync before they return, a snapshot empties the log,
// and missing or corrupt files are rebuilt from Options.Source while
// Search answers vectors.ErrUnavailable.
package ivf

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

func init() { vectors.Register("ivf", open) }

const (
	// snapMagic starts a snapshot; the number is the format's version.
	snapMagic = "TSIVF01\n"
	// defaultNprobe lists are scanned per search: at a million clustered
	// 128-d vectors, whose lists were trained at about a third of that
	// (2·√330,000 ≈ 1,150 lists), recall@10 was 0.94 at 32 and 0.97 at
	// 64 (docs/benchmarks.md, session 15); 48 keeps it ≥ 0.95 for about
	// 0.5 ms of CPU a search.
	defaultNprobe = 48
	// defaultListsFactor: lists = factor·√N at a training. 2 rather than
	// the 4 often quoted: an insert compares with every centroid (most of
	// its CPU), and half as many halves that (docs/search.md).
	defaultListsFactor = 2
	// chunk is how many items an insert prepares and appends under one
	// write lock: short enough that a search waits little for it.
	chunk = 64
)

// Index is the IVF vector index.
type Index struct {
	log         *slog.Logger
	nprobe      atomic.Int32
	rerank      int
	flatMax     int
	listsFactor float64
	st          *vlog.Store
	retrains    prometheus.Counter

	parts *vlog.Parts[*part]
}

// open is the registered factory: ivf:///dir, or ivf:// for
// <DataDir>/vectors-ivf. Query parameters: nprobe (lists scanned per search,
// default 48), rerank (int8 candidates ranked again in float32, default
// 64, at least k), lists (lists per √N at a training, default 2),
// flat_max (vectors a partition holds before its first training, default
// 20,000), snapshot_bytes (log size that triggers a snapshot).
func open(ctx context.Context, u *url.URL, o vectors.Options) (vectors.Index, error) {
	// Not hnsw's <DataDir>/vectors: an operator who switches engines gets
	// this one rebuilt from the store, and hnsw's files stay for
	// switching back (each engine reads the other's snapshot as corrupt
	// and would set it aside).
	p := vlog.ParseURL(u, o, "vectors-ivf")
	ix := &Index{log: o.Logger, rerank: 64, flatMax: defaultFlatMax, listsFactor: defaultListsFactor, parts: vlog.NewParts[*part]()}
	if ix.log == nil {
		ix.log = slog.New(slog.DiscardHandler)
	}
	ix.nprobe.Store(defaultNprobe)
	p.Int("nprobe", 1, 1<<20, func(n int) { ix.nprobe.Store(int32(n)) })
	p.Int("rerank", 1, 2*vectors.MaxK, func(n int) { ix.rerank = n })
	p.Int("flat_max", 2, 1<<30, func(n int) { ix.flatMax = n })
	p.Float("lists", 0.1, 64, func(f float64) { ix.listsFactor = f })
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("ivf: %w", err)
	}
	cfg := p.Config
	cfg.Magic, cfg.Logger = snapMagic, ix.log
	ix.retrains = prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_retrains_total",
		Help: "Trainings of an ivf partition's centroids (its first past flat_max, then each 4x growth or shrink to a quarter)."})
	lists := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_vectors_lists",
		Help: "Inverted lists the ivf index holds, over all partitions (1 for a partition not yet trained)."}, func() float64 {
		return float64(ix.lists())
	})
	cfg.Collectors = []prometheus.Collector{ix.retrains, lists}
	st, err := vlog.Open(cfg, (*engine)(ix))
	if err != nil {
		return nil, fmt.Errorf("ivf: %w", err)
	}
	ix.st = st
	// A replayed log may have grown a partition past its trigger.
	ix.maybeRetrain(st)
	return ix, nil
}

// engine is the Index as its vlog.Store sees it.
type engine Index

func (e *engine) Apply(items []vectors.Item)         { (*Index)(e).apply(items) }
func (e *engine) Remove(ids []string)                { (*Index)(e).remove(ids) }
func (e *engine) Has(id string) bool                 { return e.parts.Has(id) }
func (e *engine) DimOf(project, typ string) int      { return e.parts.DimOf(project, typ) }
func (e *engine) Len() int                           { return e.parts.Len() }
func (e *engine) WriteSnapshot(w *vlog.Writer) error { return (*Index)(e).writeSnapshot(w) }
func (e *engine) ReadSnapshot(r *vlog.Reader) error  { return (*Index)(e).readSnapshot(r) }
func (e *engine) AfterWrite(s *vlog.Store)           { (*Index)(e).maybeRetrain(s) }
func (e *engine) Reset()                             { e.parts.Reset() }

// partition returns (creating) the partition of a project and type.
func (ix *Index) partition(k vlog.Key, dim int) *part {
	return ix.parts.GetOrAdd(k, func() *part { return newPart(dim) })
}

// apply puts checked items into their partitions, in runs of one
// partition at most chunk long, replacing items of the same id wherever
// they are.
func (ix *Index) apply(items []vectors.Item) {
	for lo := 0; lo < len(items); {
		k := vlog.Key{Project: items[lo].ProjectID, Type: items[lo].Type}
		hi := lo + 1
		for hi < len(items) && hi-lo < chunk && items[hi].ProjectID == k.Project && items[hi].Type == k.Type {
			hi++
		}
		ix.applyRun(k, items[lo:hi])
		lo = hi
	}
}

func (ix *Index) applyRun(k vlog.Key, items []vectors.Item) {
	p := ix.partition(k, len(items[0].Vector))
	dim := p.dim
	codes := make([]int8, len(items)*dim)
	es := make([]entry, len(items))
	for i, it := range items {
		q := vectors.Normalize(it.Vector)
		code := codes[i*dim : (i+1)*dim]
		es[i] = entry{id: it.ID, dev: it.DeviceID, task: it.TaskID, tms: it.Time.UnixMilli(), q: q, code: code, scale: vectors.Quantize(code, q)}
	}
	ix.parts.Each(func(ok vlog.Key, op *part) {
		if ok != k {
			op.mu.Lock()
			for _, it := range items {
				op.remove(it.ID)
			}
			op.mu.Unlock()
		}
	})
	p.insert(es)
}

func (ix *Index) remove(ids []string) {
	ix.parts.Each(func(_ vlog.Key, p *part) {
		p.mu.Lock()
		for _, id := range ids {
			p.remove(id)
		}
		p.mu.Unlock()
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
	p, ok, err := ix.parts.ForSearch(ix.st, v, k, f)
	if err != nil || !ok {
		return nil, err
	}
	start := time.Now()
	q := vectors.Normalize(v)
	p.mu.RLock()
	cs := p.search(q, k, int(ix.nprobe.Load()), ix.rerank, vlog.Filter(&f, &p.names, p.dev, p.task, p.tms))
	hits := make([]vectors.Hit, 0, len(cs))
	for _, c := range cs {
		if c.sim < f.MinSimilarity {
			continue
		}
		hits = append(hits, vectors.Hit{ID: p.ids[c.slot], DeviceID: p.names.Strs[p.dev[c.slot]], TaskID: p.names.Strs[p.task[c.slot]],
			Time: time.UnixMilli(p.tms[c.slot]).UTC(), Similarity: c.sim})
	}
	p.mu.RUnlock()
	vectors.SortHits(hits)
	ix.st.ObserveSearch(time.Since(start))
	return hits, ctx.Err()
}

// SetSearchNprobe sets how many lists a search scans (the URL's nprobe):
// benchmarks and operators trade recall for latency with it without
// retraining anything.
func (ix *Index) SetSearchNprobe(n int) { ix.nprobe.Store(int32(max(1, min(n, 1<<20)))) }

// Stats implements vectors.Index.
func (ix *Index) Stats(ctx context.Context) (vectors.Stats, error) {
	return ix.parts.Stats(ix.st)
}

// lists counts the inverted lists searches read.
func (ix *Index) lists() int {
	n := 0
	ix.parts.Each(func(_ vlog.Key, p *part) {
		p.mu.RLock()
		n += len(p.cur.ls)
		p.mu.RUnlock()
	})
	return n
}

// Close implements vectors.Index: it stops a rebuild or retraining,
// writes a snapshot when the log holds changes, and closes the log.
func (ix *Index) Close() error { return ix.st.Close() }
