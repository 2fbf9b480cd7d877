package ivf

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

const (
	// defaultFlatMax is the partition size up to which one list is scanned
	// whole: an int8 scan of 20,000 128-d rows is about a millisecond.
	defaultFlatMax = 20_000
	// growth is how much a partition grows between trainings: its lists
	// are then about growth times longer than when they were trained.
	growth = 4
	// samplePerList vectors per centroid train k-means: enough for a
	// centroid's mean, and a training at a million vectors stays seconds.
	samplePerList = 40
	// kmeansIters is how many Lloyd iterations a training runs.
	kmeansIters = 10
	// viaCandidates is how many centroids a sample vector is compared
	// with in k-means iterations after the first: those nearest its last
	// centroid (centroids move little between iterations), 16 dot
	// products instead of one per centroid. Not for moving vectors to a
	// retrain's new lists: tried, the new centroids nearest a vector's old
	// one missed its nearest often (recall@10 0.98 → 0.89 at 200,000),
	// since the old and new lists group the vectors differently.
	viaCandidates = 16
	// migrateChunk slots are assigned to the new lists per write lock.
	migrateChunk = 256
)

// nlistFor is the number of lists a training over n vectors makes:
// factor·√n (the usual IVF rule, √n lists of √n vectors each, times the
// URL's lists factor).
func (ix *Index) nlistFor(n int) int {
	return max(2, int(math.Round(ix.listsFactor*math.Sqrt(float64(n)))))
}

// maybeRetrain starts retraining every partition that has grown past its
// trigger (flatMax vectors the first time, growth times the last
// training's size afterwards) or shrunk to a growth-th of its last
// training's size while it still holds more than flatMax: its lists,
// lists·√N of its size then, would otherwise stay that many (the probe
// compares every query with every centroid, an insert every vector) and
// that short. One that shrank so to flatMax or fewer goes back to one
// list, scanned whole (flatten): the nprobe lists of a training for many
// more vectors would hold a small share of what is left.
func (ix *Index) maybeRetrain(st *vlog.Store) {
	if st.Closed() {
		return
	}
	var due []*part
	ix.parts.Each(func(_ vlog.Key, p *part) {
		p.mu.RLock()
		n := len(p.byID)
		grown := p.trainedAt == 0 && n > ix.flatMax || p.trainedAt > 0 && n >= growth*p.trainedAt
		shrunk := p.trainedAt > 0 && growth*n <= p.trainedAt
		d := !p.retraining && (grown || shrunk)
		p.mu.RUnlock()
		switch {
		case d && shrunk && n <= ix.flatMax:
			p.flatten()
		case d:
			due = append(due, p)
		}
	})
	for _, p := range due {
		p.mu.Lock()
		start := !p.retraining
		p.retraining = true
		p.mu.Unlock()
		if start {
			st.Go(func(ctx context.Context) { ix.retrain(ctx, p) })
		}
	}
}

// retrain trains new centroids on a sample of p, fills new lists with
// every vector while searches read the old ones and writes go to both,
// then swaps them in. Closing stops it; the old lists stay.
func (ix *Index) retrain(ctx context.Context, p *part) {
	start := time.Now()
	defer func() {
		p.mu.Lock()
		p.retraining = false
		p.next = nil
		p.mu.Unlock()
	}()
	// The sample: live slots drawn at random, their vectors copied.
	p.mu.RLock()
	dim, n := p.dim, len(p.byID)
	nlist := ix.nlistFor(n)
	slots := make([]uint32, 0, n)
	for s, l := range p.live {
		if l {
			slots = append(slots, uint32(s))
		}
	}
	r := rand.New(rand.NewPCG(uint64(n), uint64(len(p.ids))))
	r.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	slots = slots[:min(len(slots), samplePerList*nlist)]
	sample := make([]float32, 0, len(slots)*dim)
	for _, s := range slots {
		sample = append(sample, p.vec(s)...)
	}
	p.mu.RUnlock()
	nlist = min(nlist, len(slots))
	cents := kmeans(ctx, sample, dim, nlist, r)
	if cents == nil {
		return
	}
	trained := time.Since(start)

	// Fill the new lists: from now on inserts and removes also go to
	// next; the slots that were there before are moved over chunk by
	// chunk, their centroid found without the lock.
	nx := newLists(cents, dim)
	p.mu.Lock()
	p.next = nx
	upTo := len(p.ids)
	p.mu.Unlock()
	type move struct {
		slot  uint32
		q     []float32
		code  []int8
		scale float32
		c     uint32
	}
	buf := make([]float32, migrateChunk*dim)
	codes := make([]int8, migrateChunk*dim)
	var ms []move
	for lo := 0; lo < upTo; lo += migrateChunk {
		if ctx.Err() != nil {
			return
		}
		ms = ms[:0]
		p.mu.RLock()
		for s := uint32(lo); s < uint32(min(lo+migrateChunk, upTo)); s++ {
			if p.live[s] && !nx.holds(s) {
				i := len(ms)
				q := buf[i*dim : (i+1)*dim]
				copy(q, p.vec(s))
				ms = append(ms, move{slot: s, q: q, code: codes[i*dim : (i+1)*dim]})
			}
		}
		p.mu.RUnlock()
		for i := range ms {
			ms[i].scale = vectors.Quantize(ms[i].code, ms[i].q)
			ms[i].c = nx.nearest(ms[i].q)
		}
		p.mu.Lock()
		for _, m := range ms {
			// A slot removed meanwhile is not live; one removed and
			// reused was added to next by its insert.
			if p.live[m.slot] && !nx.holds(m.slot) {
				nx.add(m.slot, m.c, m.code, m.scale)
			}
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.cur, p.next = nx, nil
	p.trainedAt = n
	p.mu.Unlock()
	ix.retrains.Inc()
	ix.log.Info("vector index partition retrained", "vectors", n, "lists", nlist, "sample", len(slots),
		"training", trained, "duration", time.Since(start))
}

// kmeans returns k unit centroids of the unit vectors in sample (spherical
// k-means: each centroid is its members' normalized mean), or nil when
// ctx ends first. Centroids start at k distinct sample vectors; one left
// without members takes a random sample vector again.
func kmeans(ctx context.Context, sample []float32, dim, k int, r *rand.Rand) []float32 {
	n := len(sample) / dim
	if n == 0 || k < 1 {
		return nil
	}
	cents := make([]float32, k*dim)
	for i, j := range r.Perm(n)[:k] {
		copy(cents[i*dim:], sample[j*dim:(j+1)*dim])
	}
	assign := make([]uint32, n)
	sums := make([]float64, k*dim)
	counts := make([]int, k)
	ls := &lists{cents: cents, ls: make([]list, k)}
	for it := range kmeansIters {
		if ctx.Err() != nil {
			return nil
		}
		// The first pass compares every vector with every centroid; the
		// later ones with the centroids near its last one (centroids move
		// little between iterations).
		ls.via = nil
		if it > 0 && k > viaCandidates {
			ls.via = make([][]uint32, k)
			for c := range k {
				ls.via[c] = ls.probe(cents[c*dim:(c+1)*dim], viaCandidates)
			}
		}
		for i := range n {
			assign[i] = ls.nearestVia(sample[i*dim:(i+1)*dim], assign[i])
		}
		clear(sums)
		clear(counts)
		for i, c := range assign {
			counts[c]++
			s := sums[int(c)*dim : int(c+1)*dim]
			for j, x := range sample[i*dim : (i+1)*dim] {
				s[j] += float64(x)
			}
		}
		for c := range k {
			dst := cents[c*dim : (c+1)*dim]
			if counts[c] == 0 {
				j := r.IntN(n)
				copy(dst, sample[j*dim:(j+1)*dim])
				continue
			}
			var norm float64
			for _, x := range sums[c*dim : (c+1)*dim] {
				norm += x * x
			}
			if norm == 0 {
				continue
			}
			inv := 1 / math.Sqrt(norm)
			for j, x := range sums[c*dim : (c+1)*dim] {
				dst[j] = float32(x * inv)
			}
		}
	}
	return cents
}

// flatten puts every row of p back in one list, scanned whole, as before
// its first training; a retrain running meanwhile leaves it as it is.
// It holds the write lock while it copies the rows (at most flatMax).
func (p *part) flatten() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retraining || p.cur.cents == nil {
		return
	}
	flat := newLists(nil, p.dim)
	for _, l := range p.cur.ls {
		for i, slot := range l.slots {
			flat.add(slot, 0, l.codes[i*p.dim:(i+1)*p.dim], l.scales[i])
		}
	}
	p.cur, p.trainedAt = flat, 0
}
