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
// float32 vectors. When a partition has grown 4× since its last training
// it is retrained in the background: searches read the old lists, writes
// go to both, and the new lists replace the old ones when full.
//
// Durability is hnsw's, through the same package (vlog): Upsert and
// Delete log and fsync before they return, a snapshot empties the log,
// and missing or corrupt files are rebuilt from Options.Source while
// Search answers vectors.ErrUnavailable.
package ivf

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

func init() { vectors.Register("ivf", open) }

const (
	// snapMagic starts a snapshot; the number is the format's version.
	snapMagic = "TSIVF01\n"
	// defaultNprobe lists are scanned per search: recall@10 ≥ 0.95 at a
	// million clustered 128-d vectors (docs/benchmarks.md).
	defaultNprobe = 16
	// defaultListsFactor: lists = factor·√N at a training. 2 rather than
	// the 4 often quoted: an insert compares with every centroid, and
	// half as many keeps it within its budget (docs/search.md).
	defaultListsFactor = 2
	// chunk is how many items an insert prepares and appends under one
	// write lock: short enough that a search waits little for it.
	chunk = 64
)

type pkey struct{ project, typ string }

// Index is the IVF vector index.
type Index struct {
	log         *slog.Logger
	nprobe      atomic.Int32
	rerank      int
	flatMax     int
	listsFactor float64
	st          *vlog.Store
	retrains    prometheus.Counter

	pmu   sync.RWMutex
	parts map[pkey]*part
}

// open is the registered factory: ivf:///dir, or ivf:// for
// <DataDir>/vectors-ivf. Query parameters: nprobe (lists scanned per search,
// default 16), rerank (int8 candidates ranked again in float32, default
// 64, at least k), lists (lists per √N at a training, default 2),
// flat_max (vectors a partition holds before its first training, default
// 20,000), snapshot_bytes (log size that triggers a snapshot).
func open(ctx context.Context, u *url.URL, o vectors.Options) (vectors.Index, error) {
	dir := u.Path
	if u.Host != "" {
		return nil, fmt.Errorf("ivf: the URL names a host %q; use ivf:///absolute/dir", u.Host)
	}
	if dir == "" {
		if o.DataDir == "" {
			return nil, errors.New("ivf: no directory in the URL and no data dir")
		}
		// Not hnsw's <DataDir>/vectors: an operator who switches engines
		// gets this one rebuilt from the store, and hnsw's files stay
		// for switching back (each engine reads the other's snapshot as
		// corrupt and would set it aside).
		dir = filepath.Join(o.DataDir, "vectors-ivf")
	}
	ix := &Index{log: o.Logger, rerank: 64, flatMax: defaultFlatMax, listsFactor: defaultListsFactor, parts: map[pkey]*part{}}
	if ix.log == nil {
		ix.log = slog.New(slog.DiscardHandler)
	}
	ix.nprobe.Store(defaultNprobe)
	cfg := vlog.Config{Dir: dir, Magic: snapMagic, Logger: ix.log, Source: o.Source, Registerer: o.Registerer}
	q := u.Query()
	for _, p := range []struct {
		name   string
		lo, hi int
		set    func(int)
	}{
		{"nprobe", 1, 1 << 20, func(n int) { ix.nprobe.Store(int32(n)) }},
		{"rerank", 1, 2 * vectors.MaxK, func(n int) { ix.rerank = n }},
		{"flat_max", 2, 1 << 30, func(n int) { ix.flatMax = n }},
	} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < p.lo || n > p.hi {
				return nil, fmt.Errorf("ivf: %s=%q: want %d..%d", p.name, s, p.lo, p.hi)
			}
			p.set(n)
		}
	}
	if s := q.Get("lists"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f >= 0.1 && f <= 64) {
			return nil, fmt.Errorf("ivf: lists=%q: want 0.1..64", s)
		}
		ix.listsFactor = f
	}
	if s := q.Get("snapshot_bytes"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1<<10 {
			return nil, fmt.Errorf("ivf: snapshot_bytes=%q: want at least 1024", s)
		}
		cfg.SnapshotBytes = n
	}
	ix.retrains = prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_retrains_total",
		Help: "Trainings of an ivf partition's centroids (its first past flat_max, then each 4x growth)."})
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
func (e *engine) Has(id string) bool                 { return (*Index)(e).has(id) }
func (e *engine) DimOf(project, typ string) int      { return (*Index)(e).dimOf(project, typ) }
func (e *engine) Len() int                           { return (*Index)(e).items() }
func (e *engine) WriteSnapshot(w *vlog.Writer) error { return (*Index)(e).writeSnapshot(w) }
func (e *engine) ReadSnapshot(r *vlog.Reader) error  { return (*Index)(e).readSnapshot(r) }
func (e *engine) AfterWrite(s *vlog.Store)           { (*Index)(e).maybeRetrain(s) }
func (e *engine) Reset() {
	e.pmu.Lock()
	e.parts = map[pkey]*part{}
	e.pmu.Unlock()
}

func (ix *Index) dimOf(project, typ string) int {
	ix.pmu.RLock()
	defer ix.pmu.RUnlock()
	if p := ix.parts[pkey{project, typ}]; p != nil {
		return p.dim
	}
	return 0
}

func (ix *Index) has(id string) bool {
	ix.pmu.RLock()
	defer ix.pmu.RUnlock()
	for _, p := range ix.parts {
		p.mu.RLock()
		_, ok := p.byID[id]
		p.mu.RUnlock()
		if ok {
			return true
		}
	}
	return false
}

// partition returns (creating) the partition of a project and type.
func (ix *Index) partition(k pkey, dim int) *part {
	ix.pmu.RLock()
	p := ix.parts[k]
	ix.pmu.RUnlock()
	if p != nil {
		return p
	}
	ix.pmu.Lock()
	defer ix.pmu.Unlock()
	if p = ix.parts[k]; p == nil {
		p = newPart(dim)
		ix.parts[k] = p
	}
	return p
}

// apply puts checked items into their partitions, in runs of one
// partition at most chunk long, replacing items of the same id wherever
// they are.
func (ix *Index) apply(items []vectors.Item) {
	for lo := 0; lo < len(items); {
		k := pkey{items[lo].ProjectID, items[lo].Type}
		hi := lo + 1
		for hi < len(items) && hi-lo < chunk && items[hi].ProjectID == k.project && items[hi].Type == k.typ {
			hi++
		}
		ix.applyRun(k, items[lo:hi])
		lo = hi
	}
}

func (ix *Index) applyRun(k pkey, items []vectors.Item) {
	p := ix.partition(k, len(items[0].Vector))
	dim := p.dim
	codes := make([]int8, len(items)*dim)
	es := make([]entry, len(items))
	for i, it := range items {
		q := vectors.Normalize(it.Vector)
		code := codes[i*dim : (i+1)*dim]
		es[i] = entry{id: it.ID, dev: it.DeviceID, task: it.TaskID, tms: it.Time.UnixMilli(), q: q, code: code, scale: vectors.Quantize(code, q)}
	}
	ix.pmu.RLock()
	for ok, op := range ix.parts {
		if ok != k {
			op.mu.Lock()
			for _, it := range items {
				op.remove(it.ID)
			}
			op.mu.Unlock()
		}
	}
	ix.pmu.RUnlock()
	p.insert(es)
}

func (ix *Index) remove(ids []string) {
	ix.pmu.RLock()
	defer ix.pmu.RUnlock()
	for _, p := range ix.parts {
		p.mu.Lock()
		for _, id := range ids {
			p.remove(id)
		}
		p.mu.Unlock()
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
	p := ix.parts[pkey{f.ProjectID, f.Type}]
	ix.pmu.RUnlock()
	if p == nil {
		return nil, nil
	}
	if p.dim != len(v) {
		return nil, fmt.Errorf("%w: the vector has %d dimensions; partition %s/%s holds %d", vectors.ErrDimension, len(v), f.ProjectID, f.Type, p.dim)
	}
	q := vectors.Normalize(v)
	p.mu.RLock()
	cs := p.search(q, k, int(ix.nprobe.Load()), ix.rerank, p.filter(&f))
	hits := make([]vectors.Hit, 0, len(cs))
	for _, c := range cs {
		if c.sim < f.MinSimilarity {
			continue
		}
		hits = append(hits, vectors.Hit{ID: p.ids[c.slot], DeviceID: p.strs[p.dev[c.slot]], TaskID: p.strs[p.task[c.slot]],
			Time: time.UnixMilli(p.tms[c.slot]).UTC(), Similarity: c.sim})
	}
	p.mu.RUnlock()
	vectors.SortHits(hits)
	ix.st.ObserveSearch(time.Since(start))
	return hits, ctx.Err()
}

// filter turns f's device, task and time filters into a slot predicate
// (nil when f has none); it runs under the partition's read lock.
func (p *part) filter(f *vectors.Filter) func(uint32) bool {
	if len(f.DeviceIDs) == 0 && len(f.TaskIDs) == 0 && f.Start.IsZero() && f.End.IsZero() {
		return nil
	}
	set := func(vals []string) map[uint32]bool {
		if len(vals) == 0 {
			return nil
		}
		m := map[uint32]bool{}
		for _, s := range vals {
			if i, ok := p.strIdx[s]; ok {
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
		if devs != nil && !devs[p.dev[i]] || tasks != nil && !tasks[p.task[i]] {
			return false
		}
		return p.tms[i] >= lo && p.tms[i] < hi
	}
}

// SetSearchNprobe sets how many lists a search scans (the URL's nprobe):
// benchmarks and operators trade recall for latency with it without
// retraining anything.
func (ix *Index) SetSearchNprobe(n int) { ix.nprobe.Store(int32(max(1, min(n, 1<<20)))) }

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
	for _, p := range ix.parts {
		p.mu.RLock()
		n += len(p.byID)
		p.mu.RUnlock()
	}
	return n
}

// lists counts the inverted lists searches read.
func (ix *Index) lists() int {
	ix.pmu.RLock()
	defer ix.pmu.RUnlock()
	n := 0
	for _, p := range ix.parts {
		p.mu.RLock()
		n += len(p.cur.ls)
		p.mu.RUnlock()
	}
	return n
}

// Close implements vectors.Index: it stops a rebuild or retraining,
// writes a snapshot when the log holds changes, and closes the log.
func (ix *Index) Close() error { return ix.st.Close() }
