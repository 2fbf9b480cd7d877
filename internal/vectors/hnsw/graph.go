package hnsw

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// Graph parameters. M neighbours per node above level 0 and M0 = 2·M on
// level 0 are the values of the HNSW paper (Malkov & Yashunin, 2016) and
// of hnswlib's defaults; efConstruction and the search's ef floor are set
// by the benchmark (docs/benchmarks.md, "Vector index") for recall ≥ 0.95
// at a million faces.
const (
	defaultM      = 16
	defaultEfCons = 64
	defaultEfMin  = 128
	// maxVisitFactor bounds a filtered search's graph walk at this many
	// times ef nodes before it switches to an exact scan of the partition:
	// a walk that finds few allowed nodes is slower than scanning.
	maxVisitFactor = 40
)

// node fields live in parallel slices (structure of arrays): a million
// nodes are a few large allocations, not a million small ones, and the
// level-0 walk touches only vecs, nbr0 and cnt0.
type graph struct {
	mu     sync.RWMutex
	dim    int
	m, m0  int
	efCons int
	efMin  int
	ml     float64

	vecs []float32 // n·dim, unit length
	// q8 and scale are vecs quantized (vectors.Quantize), what the walks
	// read: a quarter of the bytes per distance. Final candidates are
	// ranked again with vecs.
	q8    []int8    // n·dim
	scale []float32 // n
	nbr0  []uint32  // n·m0 level-0 neighbours
	dist0 []float32 // n·m0 their distances, to prune without recomputing
	cnt0  []uint8   // n: level-0 neighbours in use
	level []uint8
	upper [][][]uint32 // node → levels 1..level → neighbours; nil on level 0
	dead  []bool
	tms   []int64  // record time, Unix milliseconds
	dev   []uint32 // index into strs
	task  []uint32 // index into strs
	ids   []string

	names vlog.Strings      // device and task strings
	byID  map[string]uint32 // live nodes only

	entry    uint32
	maxLevel int
	hasEntry bool
	ndead    int // tombstones: nodes in the slices that byID no longer names

	// epoch changes when a compaction replaces the slices: an insert
	// that planned its links before must plan them again.
	epoch uint64
	// removed collects the ids removed while a compaction copies the
	// graph (nil otherwise), to remove them from the copy too.
	removed []string

	visited sync.Pool // *visitSet
}

func newGraph(dim int) *graph {
	g := &graph{dim: dim, m: defaultM, m0: 2 * defaultM, efCons: defaultEfCons, efMin: defaultEfMin,
		names: vlog.NewStrings(), byID: map[string]uint32{}}
	g.ml = 1 / math.Log(float64(g.m))
	return g
}

func (g *graph) n() int { return len(g.level) }

func (g *graph) vec(i uint32) []float32 {
	o := int(i) * g.dim
	return g.vecs[o : o+g.dim : o+g.dim]
}

func (g *graph) row(i uint32) []int8 {
	o := int(i) * g.dim
	return g.q8[o : o+g.dim : o+g.dim]
}

// dist is the exact distance of q to node i; distQ the one the walks use,
// against the quantized vector.
func (g *graph) dist(q []float32, i uint32) float32 { return 1 - vectors.Dot(q, g.vec(i)) }

func (g *graph) distQ(q []float32, i uint32) float32 {
	return 1 - g.scale[i]*vectors.DotQ(q, g.row(i))
}

// distQQ is the distance between two nodes by their quantized vectors:
// the candidates a neighbour selection compares were just walked, so
// their quantized rows are in cache where their float32 ones are not.
func (g *graph) distQQ(a, b uint32) float32 {
	return 1 - g.scale[a]*g.scale[b]*float32(vectors.DotQQ(g.row(a), g.row(b)))
}

func (g *graph) neighbours(i uint32, lvl int) []uint32 {
	if lvl == 0 {
		o := int(i) * g.m0
		return g.nbr0[o : o+int(g.cnt0[i])]
	}
	return g.upper[i][lvl-1]
}

func (g *graph) intern(s string) uint32 { return g.names.Intern(s) }

// Dim, Has and Len make a graph a vlog.Partition.
func (g *graph) Dim() int { return g.dim }

// Has reports whether id is live here.
func (g *graph) Has(id string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.byID[id]
	return ok
}

// Len is the number of live nodes.
func (g *graph) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.byID)
}

// cand is a node and its distance to the query.
type cand struct {
	d  float32
	id uint32
}

// minHeap and maxHeap are binary heaps on distance; container/heap's
// interface boxing costs a third of a search.
type minHeap []cand

func (h *minHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].d <= s[i].d {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *minHeap) pop() cand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].d < s[m].d {
			m = l
		}
		if r < len(s) && s[r].d < s[m].d {
			m = r
		}
		if m == i {
			break
		}
		s[m], s[i] = s[i], s[m]
		i = m
	}
	*h = s
	return top
}

type maxHeap []cand

func (h *maxHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].d >= s[i].d {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *maxHeap) pop() cand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].d > s[m].d {
			m = l
		}
		if r < len(s) && s[r].d > s[m].d {
			m = r
		}
		if m == i {
			break
		}
		s[m], s[i] = s[i], s[m]
		i = m
	}
	*h = s
	return top
}

// visitSet marks visited nodes with a generation number, so clearing it
// between searches is one increment.
type visitSet struct {
	gen   uint32
	marks []uint32
	cands minHeap
	res   maxHeap
	ok    maxHeap
	fresh []uint32 // a node's neighbours not visited yet
}

func (g *graph) getVisit() *visitSet {
	v, _ := g.visited.Get().(*visitSet)
	if v == nil {
		v = &visitSet{}
	}
	if len(v.marks) < g.n() {
		v.marks = make([]uint32, g.n()+g.n()/4+64)
		v.gen = 0
	}
	v.gen++
	if v.gen == 0 { // wrapped: marks from 2³² searches ago would look current
		clear(v.marks)
		v.gen = 1
	}
	return v
}

// greedy descends one level from ep towards q with ef 1.
func (g *graph) greedy(q []float32, ep cand, lvl int) cand {
	for changed := true; changed; {
		changed = false
		nbs := g.neighbours(ep.id, lvl)
		vectors.PrefetchRows(g.q8, g.dim, nbs)
		for _, nb := range nbs {
			if d := g.distQ(q, nb); d < ep.d {
				ep, changed = cand{d, nb}, true
			}
		}
	}
	return ep
}

// searchLayer is the HNSW paper's SEARCH-LAYER: the ef nearest nodes to q
// on level lvl reachable from ep, nearest first. allow, when not nil,
// keeps the nodes it refuses out of the result (they still route the
// walk); visitCap > 0 stops the walk after that many nodes and reports
// exhausted.
func (g *graph) searchLayer(v *visitSet, q []float32, ep cand, ef, lvl int, allow func(uint32) bool, visitCap int) (res []cand, exhausted bool) {
	cands, all, ok := v.cands[:0], v.res[:0], v.ok[:0]
	cands.push(ep)
	all.push(ep)
	v.marks[ep.id] = v.gen
	if allow == nil || allow(ep.id) {
		ok.push(ep)
	}
	visits := 1
	fresh := v.fresh[:0]
	for len(cands) > 0 {
		c := cands.pop()
		if c.d > all[0].d && len(all) >= ef {
			break
		}
		// The neighbours not visited yet are prefetched together, then
		// measured: their loads overlap instead of each waiting on memory.
		fresh = fresh[:0]
		for _, nb := range g.neighbours(c.id, lvl) {
			if v.marks[nb] != v.gen {
				v.marks[nb] = v.gen
				fresh = append(fresh, nb)
			}
		}
		vectors.PrefetchRows(g.q8, g.dim, fresh)
		for _, nb := range fresh {
			visits++
			d := g.distQ(q, nb)
			if len(all) < ef || d < all[0].d {
				cands.push(cand{d, nb})
				all.push(cand{d, nb})
				if len(all) > ef {
					all.pop()
				}
			}
			if allow != nil && allow(nb) && (len(ok) < ef || d < ok[0].d) {
				ok.push(cand{d, nb})
				if len(ok) > ef {
					ok.pop()
				}
			}
		}
		if visitCap > 0 && visits > visitCap {
			exhausted = true
			break
		}
	}
	h := all
	if allow != nil {
		h = ok
	}
	res = make([]cand, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		res[i] = h.pop()
	}
	v.cands, v.res, v.ok, v.fresh = cands[:0], all[:0], ok[:0], fresh
	return res, exhausted
}

// selectNeighbours is the paper's heuristic (Algorithm 4, as hnswlib's
// getNeighborsByHeuristic2): walking the candidates nearest first, keep
// one only when it is nearer to the node than to every one kept, so links
// spread in all directions. Keeping only the nearest instead cuts clusters
// (one person's shots) off from each other: measured, a tenth of the
// queries then found none of their true neighbours. cs is sorted nearest
// first.
func (g *graph) selectNeighbours(cs []cand, m int) []cand {
	if len(cs) <= m {
		return cs
	}
	kept := make([]cand, 0, m)
	for _, c := range cs {
		if len(kept) == m {
			break
		}
		if g.diverse(c, kept) {
			kept = append(kept, c)
		}
	}
	return kept
}

// diverse reports whether c is nearer to the node than to every kept one.
func (g *graph) diverse(c cand, kept []cand) bool {
	for _, k := range kept {
		if g.distQQ(c.id, k.id) < c.d {
			return false
		}
	}
	return true
}

// plan is what an insert found under the read lock: the new node's level
// and its neighbours per level.
type plan struct {
	level int
	links [][]cand // levels 0..level
}

// randomLevel draws a level with P(l) = e^(−l/ml), capped where a graph of
// 2³² nodes would not reach.
func (g *graph) randomLevel() int {
	l := int(-math.Log(1-rand.Float64()) * g.ml)
	return min(l, 16)
}

// prepare finds the new vector's neighbours; it runs under the read lock,
// so several inserts and searches prepare at once.
func (g *graph) prepare(q []float32, lvl int) plan {
	p := plan{level: lvl, links: make([][]cand, lvl+1)}
	if !g.hasEntry {
		return p
	}
	v := g.getVisit()
	defer g.visited.Put(v)
	ep := cand{g.distQ(q, g.entry), g.entry}
	for l := g.maxLevel; l > lvl; l-- {
		ep = g.greedy(q, ep, l)
	}
	for l := min(lvl, g.maxLevel); l >= 0; l-- {
		v.gen++
		if v.gen == 0 {
			clear(v.marks)
			v.gen = 1
		}
		cs, _ := g.searchLayer(v, q, ep, g.efCons, l, nil, 0)
		m := g.m
		if l == 0 {
			m = g.m0
		}
		p.links[l] = g.selectNeighbours(cs, m)
		ep = cs[0]
	}
	return p
}

// add links a new node in; it runs under the write lock and does little:
// the searching was done by prepare.
func (g *graph) add(id string, q []float32, dev, task string, tms int64, p plan) uint32 {
	i := uint32(g.n())
	g.vecs = append(g.vecs, q...)
	g.q8 = append(g.q8, make([]int8, g.dim)...)
	g.scale = append(g.scale, vectors.Quantize(g.row(i), q))
	g.nbr0 = append(g.nbr0, make([]uint32, g.m0)...)
	g.dist0 = append(g.dist0, make([]float32, g.m0)...)
	g.cnt0 = append(g.cnt0, 0)
	g.level = append(g.level, uint8(p.level))
	var up [][]uint32
	if p.level > 0 {
		up = make([][]uint32, p.level)
	}
	g.upper = append(g.upper, up)
	g.dead = append(g.dead, false)
	g.tms = append(g.tms, tms)
	g.dev = append(g.dev, g.intern(dev))
	g.task = append(g.task, g.intern(task))
	g.ids = append(g.ids, id)
	g.byID[id] = i

	for l, links := range p.links {
		for _, c := range links {
			g.link(i, c.id, c.d, l)
			g.link(c.id, i, c.d, l)
		}
	}
	if !g.hasEntry || p.level > g.maxLevel {
		g.entry, g.maxLevel, g.hasEntry = i, p.level, true
	}
	return i
}

// link adds to from's neighbours on level l. A full list is pruned with
// the same heuristic as selectNeighbours over its links and the new one;
// level 0 keeps the links' distances so only the candidates' distances to
// each other are computed.
func (g *graph) link(from, to uint32, d float32, l int) {
	if l == 0 {
		o := int(from) * g.m0
		n := int(g.cnt0[from])
		if n < g.m0 {
			g.nbr0[o+n], g.dist0[o+n] = to, d
			g.cnt0[from]++
			return
		}
		cs := make([]cand, 0, n+1)
		for j := range n {
			cs = append(cs, cand{g.dist0[o+j], g.nbr0[o+j]})
		}
		cs = append(cs, cand{d, to})
		slices.SortFunc(cs, func(a, b cand) int { return cmp.Compare(a.d, b.d) })
		kept := g.selectNeighbours(cs, g.m0)
		for j, c := range kept {
			g.nbr0[o+j], g.dist0[o+j] = c.id, c.d
		}
		g.cnt0[from] = uint8(len(kept))
		return
	}
	nb := g.upper[from][l-1]
	if len(nb) < g.m {
		g.upper[from][l-1] = append(nb, to)
		return
	}
	cs := make([]cand, 0, len(nb)+1)
	for _, x := range nb {
		cs = append(cs, cand{g.distQQ(from, x), x})
	}
	cs = append(cs, cand{d, to})
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Compare(a.d, b.d) })
	kept := g.selectNeighbours(cs, g.m)
	out := nb[:0]
	for _, c := range kept {
		out = append(out, c.id)
	}
	g.upper[from][l-1] = out
}

// search returns the k nearest live nodes to q that allow keeps (nil: all),
// nearest first. The walk ranks by the quantized vectors; its ef
// candidates are ranked again by the exact distance.
func (g *graph) search(q []float32, k, ef int, allow func(uint32) bool) []cand {
	if !g.hasEntry {
		return nil
	}
	ef = max(ef, k, g.efMin)
	v := g.getVisit()
	defer g.visited.Put(v)
	ep := cand{g.distQ(q, g.entry), g.entry}
	for l := g.maxLevel; l > 0; l-- {
		ep = g.greedy(q, ep, l)
	}
	live := func(i uint32) bool { return !g.dead[i] && (allow == nil || allow(i)) }
	res, exhausted := g.searchLayer(v, q, ep, ef, 0, live, ef*maxVisitFactor)
	if exhausted && len(res) < k {
		return g.scan(q, k, live)
	}
	for i := range res {
		res[i].d = g.dist(q, res[i].id)
	}
	slices.SortFunc(res, func(a, b cand) int { return cmp.Compare(a.d, b.d) })
	if len(res) > k {
		res = res[:k]
	}
	return res
}

// scan is the exact search: every node, k nearest allowed.
func (g *graph) scan(q []float32, k int, allow func(uint32) bool) []cand {
	var h maxHeap
	for i := range uint32(g.n()) {
		if !allow(i) {
			continue
		}
		d := g.dist(q, i)
		if len(h) < k {
			h.push(cand{d, i})
		} else if d < h[0].d {
			h.pop()
			h.push(cand{d, i})
		}
	}
	res := make([]cand, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		res[i] = h.pop()
	}
	return res
}

// remove tombstones the live node of id: it keeps routing searches but is
// never returned.
func (g *graph) remove(id string) bool {
	i, ok := g.byID[id]
	if !ok {
		return false
	}
	g.dead[i] = true
	g.ndead++
	delete(g.byID, id)
	if g.removed != nil {
		g.removed = append(g.removed, id)
	}
	return true
}

// entry is a vector to insert: its id, filter fields and unit vector.
type entry struct {
	id, dev, task string
	tms           int64
	q             []float32
}

// insert adds entries to g, each replacing a live node of its id. Each
// entry's neighbours are searched under the read lock, one entry at a
// time so that a waiting writer holds searches back for one entry's walk
// at most, then the entries are linked under one write lock, where they
// are also offered to each other (they could not see each other while
// searching). Linking every entry under its own write lock made inserts
// wait for every search in flight each time: measured, inserts while
// searching ran at a fifth of the build rate.
func (g *graph) insert(es []entry) {
	plans := make([]plan, len(es))
	for i := range es {
		plans[i].level = g.randomLevel()
	}
	for {
		g.mu.RLock()
		epoch := g.epoch
		g.mu.RUnlock()
		for i := range es {
			g.mu.RLock()
			if g.epoch == epoch {
				plans[i] = g.prepare(es[i].q, plans[i].level)
			}
			g.mu.RUnlock()
		}
		g.mu.Lock()
		if g.epoch == epoch {
			break // keeps the write lock
		}
		g.mu.Unlock() // a compaction replaced the nodes the plans name
	}
	defer g.mu.Unlock()
	added := make([]uint32, 0, len(es))
	for i := range es {
		e := &es[i]
		g.remove(e.id)
		p := plans[i]
		// The chunk's earlier entries are candidates too, on the levels
		// both reach.
		for j, n := range added {
			if g.dead[n] {
				continue
			}
			d := 1 - vectors.Dot(e.q, es[j].q)
			for l := 0; l <= min(p.level, plans[j].level); l++ {
				p.links[l] = append(p.links[l], cand{d, n})
			}
		}
		if len(added) > 0 {
			for l := range p.links {
				slices.SortFunc(p.links[l], func(a, b cand) int { return cmp.Compare(a.d, b.d) })
				m := g.m
				if l == 0 {
					m = g.m0
				}
				p.links[l] = g.selectNeighbours(p.links[l], m)
			}
		}
		added = append(added, g.add(e.id, e.q, e.dev, e.task, e.tms, p))
	}
}
