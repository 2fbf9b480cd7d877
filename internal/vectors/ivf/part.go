package ivf

import (
	"math"
	"slices"
	"sync"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// noList marks a slot that a list set does not hold.
const noList = ^uint32(0)

// loc is where a slot's row is in a list set: list and position.
type loc struct{ list, pos uint32 }

// list holds its vectors' int8 rows back to back, so that a probe reads
// one run of memory: codes (len(slots)·dim), their scales, their slots.
type list struct {
	codes  []int8
	scales []float32
	slots  []uint32
}

// lists is one training's inverted file: centroids and a list per
// centroid. cents nil is the untrained state: one list holding every
// vector, scanned whole (an exact scan of int8 rows).
type lists struct {
	cents []float32 // nlist·dim, unit length
	ls    []list
	where []loc // slot → its place here, list noList when not here
	// via, in k-means (train.go), holds for each centroid the centroids
	// nearest it.
	via [][]uint32
}

func newLists(cents []float32, dim int) *lists {
	n := 1
	if cents != nil {
		n = len(cents) / dim
	}
	return &lists{cents: cents, ls: make([]list, n)}
}

// nearest returns the list of the centroid nearest a unit vector q,
// comparing q with every centroid (DotRows, 64 centroids at a time). An
// insert and a retrain's move assign every vector with it, so this is
// most of their CPU: 2,000 dot products at a million vectors, 8 µs with
// DotRows against 16 with a Dot per centroid (DotRows on the float32
// vector is faster than DotQ on its int8 row). A two-level assignment
// through groups of centroids was tried and dropped (docs/benchmarks.md,
// session 15): on the benchmark's data it found the exact nearest list
// for 48–81% of the vectors and cost recall.
func (s *lists) nearest(q []float32) uint32 {
	if s.cents == nil {
		return 0
	}
	dim := len(q)
	var buf [64]float32
	best, bi := float32(math.Inf(-1)), 0
	for lo := 0; lo < len(s.ls); lo += len(buf) {
		out := buf[:min(len(buf), len(s.ls)-lo)]
		vectors.DotRows(out, q, s.cents[lo*dim:])
		for i, d := range out {
			if d > best {
				best, bi = d, lo+i
			}
		}
	}
	return uint32(bi)
}

// nearestVia is nearest, comparing q only with via[from] when there is
// such a list.
func (s *lists) nearestVia(q []float32, from uint32) uint32 {
	if int(from) >= len(s.via) {
		return s.nearest(q)
	}
	dim := len(q)
	best, bi := float32(-2), s.via[from][0]
	for _, c := range s.via[from] {
		if d := vectors.Dot(q, s.cents[int(c)*dim:int(c+1)*dim]); d > best {
			best, bi = d, c
		}
	}
	return bi
}

// holds reports whether slot has a row here.
func (s *lists) holds(slot uint32) bool {
	return int(slot) < len(s.where) && s.where[slot].list != noList
}

// add appends slot's row to list c.
func (s *lists) add(slot, c uint32, code []int8, scale float32) {
	for int(slot) >= len(s.where) {
		s.where = append(s.where, loc{list: noList})
	}
	l := &s.ls[c]
	l.codes = append(l.codes, code...)
	l.scales = append(l.scales, scale)
	l.slots = append(l.slots, slot)
	s.where[slot] = loc{c, uint32(len(l.slots) - 1)}
}

// remove takes slot's row out of its list (the list's last row moves into
// its place); a slot not held is ignored.
func (s *lists) remove(slot uint32, dim int) {
	if !s.holds(slot) {
		return
	}
	w := s.where[slot]
	l := &s.ls[w.list]
	last := len(l.slots) - 1
	if int(w.pos) != last {
		moved := l.slots[last]
		copy(l.codes[int(w.pos)*dim:int(w.pos+1)*dim], l.codes[last*dim:])
		l.scales[w.pos] = l.scales[last]
		l.slots[w.pos] = moved
		s.where[moved].pos = w.pos
	}
	l.codes = l.codes[:last*dim]
	l.scales = l.scales[:last]
	l.slots = l.slots[:last]
	s.where[slot] = loc{list: noList}
}

// part is one partition (project and type). Vectors live in slots; a
// slot's float32 vector (for the re-rank and for training) stays in vecs,
// its int8 row in the list its nearest centroid names.
type part struct {
	mu  sync.RWMutex
	dim int

	vecs []float32 // slots·dim, unit length
	ids  []string
	tms  []int64  // record time, Unix milliseconds
	dev  []uint32 // index into strs
	task []uint32 // index into strs
	live []bool
	free []uint32 // dead slots, reused by inserts

	names vlog.Strings      // device and task strings
	byID  map[string]uint32 // live slots only

	cur *lists
	// next is the retrain's new list set while it is filled (nil
	// otherwise): inserts and removes go to both, searches read cur.
	next *lists
	// trainedAt is the number of live vectors the last training sampled
	// (0: never trained).
	trainedAt  int
	retraining bool
}

func newPart(dim int) *part {
	return &part{dim: dim, names: vlog.NewStrings(), byID: map[string]uint32{}, cur: newLists(nil, dim)}
}

func (p *part) vec(i uint32) []float32 { return p.vecs[int(i)*p.dim : int(i+1)*p.dim] }

// Dim, Has and Len make a part a vlog.Partition.
func (p *part) Dim() int { return p.dim }

// Has reports whether id is live here.
func (p *part) Has(id string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.byID[id]
	return ok
}

// Len is the number of live vectors.
func (p *part) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.byID)
}

// entry is an item ready to go in: unit vector, int8 row and scale.
type entry struct {
	id, dev, task string
	tms           int64
	q             []float32
	code          []int8
	scale         float32
	c, cn         uint32 // its list in cur and in next
}

// insert puts entries in, replacing live slots of the same ids. The
// nearest centroids are found under the read lock (searches go on), the
// rows appended under the write lock.
func (p *part) insert(es []entry) {
	p.mu.RLock()
	cur, next := p.cur, p.next
	p.mu.RUnlock()
	for i := range es {
		es[i].c = cur.nearest(es[i].q)
		if next != nil {
			es[i].cn = next.nearest(es[i].q)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// A retrain that started or ended meanwhile changed the list sets.
	recur, renext := p.cur != cur, p.next != next
	for i := range es {
		e := &es[i]
		if recur {
			e.c = p.cur.nearest(e.q)
		}
		if renext && p.next != nil {
			e.cn = p.next.nearest(e.q)
		}
		if old, ok := p.byID[e.id]; ok {
			p.removeSlot(old)
		}
		var slot uint32
		if n := len(p.free); n > 0 {
			slot = p.free[n-1]
			p.free = p.free[:n-1]
			copy(p.vec(slot), e.q)
			p.ids[slot], p.tms[slot], p.dev[slot], p.task[slot], p.live[slot] = e.id, e.tms, p.names.Intern(e.dev), p.names.Intern(e.task), true
		} else {
			slot = uint32(len(p.ids))
			p.vecs = append(p.vecs, e.q...)
			p.ids = append(p.ids, e.id)
			p.tms = append(p.tms, e.tms)
			p.dev = append(p.dev, p.names.Intern(e.dev))
			p.task = append(p.task, p.names.Intern(e.task))
			p.live = append(p.live, true)
		}
		p.byID[e.id] = slot
		p.cur.add(slot, e.c, e.code, e.scale)
		if p.next != nil {
			p.next.add(slot, e.cn, e.code, e.scale)
		}
	}
}

// removeSlot frees a live slot (write lock held).
func (p *part) removeSlot(slot uint32) {
	p.cur.remove(slot, p.dim)
	if p.next != nil {
		p.next.remove(slot, p.dim)
	}
	delete(p.byID, p.ids[slot])
	p.live[slot] = false
	p.ids[slot] = ""
	p.free = append(p.free, slot)
}

// remove deletes id if it is live here (write lock held).
func (p *part) remove(id string) {
	if slot, ok := p.byID[id]; ok {
		p.removeSlot(slot)
	}
}

// cand is a search candidate: a slot and its approximate similarity.
type cand struct {
	slot uint32
	sim  float32
}

// topN keeps the n candidates of highest sim seen (a min-heap on sim).
type topN struct {
	n int
	h []cand
}

func (t *topN) offer(c cand) {
	if len(t.h) < t.n {
		t.h = append(t.h, c)
		for i := len(t.h) - 1; i > 0; {
			p := (i - 1) / 2
			if t.h[p].sim <= t.h[i].sim {
				break
			}
			t.h[p], t.h[i] = t.h[i], t.h[p]
			i = p
		}
		return
	}
	if c.sim <= t.h[0].sim {
		return
	}
	t.h[0] = c
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(t.h) && t.h[l].sim < t.h[m].sim {
			m = l
		}
		if r < len(t.h) && t.h[r].sim < t.h[m].sim {
			m = r
		}
		if m == i {
			break
		}
		t.h[m], t.h[i] = t.h[i], t.h[m]
		i = m
	}
}

// min is the lowest sim kept, or -inf while fewer than n are.
func (t *topN) min() float32 {
	if len(t.h) < t.n {
		return -3
	}
	return t.h[0].sim
}

// probe returns the nprobe lists of cur nearest to q (all of them when
// cur is untrained or nprobe covers it).
func (s *lists) probe(q []float32, nprobe int) []uint32 {
	n := len(s.ls)
	if s.cents == nil || nprobe >= n {
		out := make([]uint32, n)
		for i := range out {
			out[i] = uint32(i)
		}
		return out
	}
	dim := len(q)
	t := topN{n: nprobe, h: make([]cand, 0, nprobe)}
	var buf [64]float32
	for lo := 0; lo < n; lo += len(buf) {
		out := buf[:min(len(buf), n-lo)]
		vectors.DotRows(out, q, s.cents[lo*dim:])
		for i, d := range out {
			if d > t.min() {
				t.offer(cand{uint32(lo + i), d})
			}
		}
	}
	slices.SortFunc(t.h, func(a, b cand) int {
		if a.sim > b.sim {
			return -1
		}
		if a.sim < b.sim {
			return 1
		}
		return 0
	})
	out := make([]uint32, len(t.h))
	for i, c := range t.h {
		out[i] = c.slot
	}
	return out
}

// scanList offers list l's rows that allow passes to t, by their int8
// similarity; it returns how many passed.
func (p *part) scanList(l *list, q []float32, allow func(uint32) bool, t *topN) int {
	dim, n := p.dim, 0
	for i, slot := range l.slots {
		if allow != nil && !allow(slot) {
			continue
		}
		n++
		if s := vectors.DotQ(q, l.codes[i*dim:(i+1)*dim]) * l.scales[i]; s > t.min() {
			t.offer(cand{slot, s})
		}
	}
	return n
}

// search returns up to k candidates for q ranked by their float32
// similarity: the nprobe nearest lists are scanned on int8 rows, the best
// rerank of them ranked again in float32. When allow leaves fewer than k
// vectors in the probed lists, the other lists are scanned too (a
// filtered search then costs an exact scan of int8 rows, as hnsw's walk
// falls back to a scan). Read lock held.
func (p *part) search(q []float32, k, nprobe, rerank int, allow func(uint32) bool) []cand {
	t := topN{n: max(k, rerank), h: make([]cand, 0, max(k, rerank))}
	probed := p.cur.probe(q, nprobe)
	passed := 0
	for _, c := range probed {
		passed += p.scanList(&p.cur.ls[c], q, allow, &t)
	}
	if allow != nil && passed < k && len(probed) < len(p.cur.ls) {
		seen := make([]bool, len(p.cur.ls))
		for _, c := range probed {
			seen[c] = true
		}
		for c := range p.cur.ls {
			if !seen[c] {
				p.scanList(&p.cur.ls[c], q, allow, &t)
			}
		}
	}
	out := t.h
	for i := range out {
		out[i].sim = vectors.Dot(q, p.vec(out[i].slot))
	}
	slices.SortFunc(out, func(a, b cand) int {
		if a.sim > b.sim {
			return -1
		}
		if a.sim < b.sim {
			return 1
		}
		return 0
	})
	return out[:min(k, len(out))]
}
