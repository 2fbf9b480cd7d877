package hnsw

import (
	"fmt"
	"sort"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// writeSnapshot encodes every partition, sorted, for the store's
// snapshot.
func (ix *Index) writeSnapshot(w *vlog.Writer) error {
	ix.pmu.RLock()
	keys := make([]pkey, 0, len(ix.parts))
	for k := range ix.parts {
		keys = append(keys, k)
	}
	ix.pmu.RUnlock()
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].project != keys[j].project {
			return keys[i].project < keys[j].project
		}
		return keys[i].typ < keys[j].typ
	})
	w.U32(uint32(len(keys)))
	for _, k := range keys {
		ix.pmu.RLock()
		g := ix.parts[k]
		ix.pmu.RUnlock()
		g.mu.RLock()
		err := g.write(w, k)
		g.mu.RUnlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (g *graph) write(w *vlog.Writer, k pkey) error {
	e := &w.Enc
	n := g.n()
	e.Str(k.project)
	e.Str(k.typ)
	e.U32(uint32(g.dim))
	e.U32(uint32(n))
	e.U16(uint16(g.m))
	e.U16(uint16(g.m0))
	e.U32(g.entry)
	e.U8(uint8(g.maxLevel))
	e.U8(b2u(g.hasEntry))
	e.U32(uint32(len(g.strs)))
	for _, s := range g.strs {
		e.Str(s)
		if err := w.Flush(false); err != nil {
			return err
		}
	}
	for i := range n {
		e.Str(g.ids[i])
		e.U8(g.level[i])
		e.U8(b2u(g.dead[i]))
		e.I64(g.tms[i])
		e.U32(g.dev[i])
		e.U32(g.task[i])
		for _, x := range g.vec(uint32(i)) {
			e.F32(x)
		}
		e.U8(g.cnt0[i])
		o := i * g.m0
		for j := range int(g.cnt0[i]) {
			e.U32(g.nbr0[o+j])
			e.F32(g.dist0[o+j])
		}
		for _, nb := range g.upper[i] {
			e.U8(uint8(len(nb)))
			for _, x := range nb {
				e.U32(x)
			}
		}
		if err := w.Flush(false); err != nil {
			return err
		}
	}
	return nil
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// readSnapshot loads what writeSnapshot wrote.
func (ix *Index) readSnapshot(r *vlog.Reader) error {
	np := int(r.Next(4).U32())
	parts := map[pkey]*graph{}
	for range np {
		k, g, err := readGraph(r)
		if err != nil {
			return err
		}
		g.efMin, g.efCons = ix.efMin, ix.efCons
		parts[k] = g
	}
	if r.Err != nil {
		return r.Err
	}
	ix.pmu.Lock()
	ix.parts = parts
	ix.pmu.Unlock()
	return nil
}

func readGraph(r *vlog.Reader) (pkey, *graph, error) {
	k := pkey{r.Str(), r.Str()}
	h := r.Next(4 + 4 + 2 + 2 + 4 + 1 + 1 + 4)
	dim, n := int(h.U32()), int(h.U32())
	m, m0 := int(h.U16()), int(h.U16())
	entry, maxLevel, hasEntry := h.U32(), int(h.U8()), h.U8() == 1
	nstrs := int(h.U32())
	if r.Err != nil || h.Err != nil {
		return k, nil, vlog.ErrCorrupt
	}
	if dim < 1 || dim > vectors.MaxDim || m < 2 || m > 255 || m0 < m || m0 > 255 || n > 1<<31 || nstrs > n*2+1 || (hasEntry && int(entry) >= n) {
		return k, nil, fmt.Errorf("%w: partition %s/%s header out of range", vlog.ErrCorrupt, k.project, k.typ)
	}
	g := newGraph(dim)
	g.m, g.m0 = m, m0
	g.entry, g.maxLevel, g.hasEntry = entry, maxLevel, hasEntry
	g.strs = make([]string, 0, nstrs)
	g.strIdx = make(map[string]uint32, nstrs)
	for i := range nstrs {
		s := r.Str()
		g.strs = append(g.strs, s)
		g.strIdx[s] = uint32(i)
	}
	g.vecs = make([]float32, 0, n*dim)
	g.nbr0 = make([]uint32, n*m0)
	g.dist0 = make([]float32, n*m0)
	g.cnt0 = make([]uint8, n)
	g.level = make([]uint8, n)
	g.dead = make([]bool, n)
	g.tms = make([]int64, n)
	g.dev = make([]uint32, n)
	g.task = make([]uint32, n)
	g.ids = make([]string, n)
	g.upper = make([][][]uint32, n)
	g.byID = make(map[string]uint32, n)
	for i := range n {
		g.ids[i] = r.Str()
		d := r.Next(1 + 1 + 8 + 4 + 4 + 4*dim + 1)
		g.level[i] = d.U8()
		g.dead[i] = d.U8() == 1
		g.tms[i] = d.I64()
		g.dev[i], g.task[i] = d.U32(), d.U32()
		for range dim {
			g.vecs = append(g.vecs, d.F32())
		}
		c := int(d.U8())
		if d.Err != nil || r.Err != nil || c > m0 || int(g.dev[i]) >= nstrs || int(g.task[i]) >= nstrs {
			return k, nil, fmt.Errorf("%w: partition %s/%s node %d", vlog.ErrCorrupt, k.project, k.typ, i)
		}
		g.cnt0[i] = uint8(c)
		nd := r.Next(8 * c)
		o := i * m0
		for j := range c {
			g.nbr0[o+j], g.dist0[o+j] = nd.U32(), nd.F32()
			if int(g.nbr0[o+j]) >= n {
				return k, nil, fmt.Errorf("%w: partition %s/%s node %d links out of range", vlog.ErrCorrupt, k.project, k.typ, i)
			}
		}
		if lv := int(g.level[i]); lv > 0 {
			if lv > maxLevel {
				return k, nil, fmt.Errorf("%w: partition %s/%s node %d above the top level", vlog.ErrCorrupt, k.project, k.typ, i)
			}
			g.upper[i] = make([][]uint32, lv)
			for l := range lv {
				c := int(r.Next(1).U8())
				if c > m {
					return k, nil, fmt.Errorf("%w: partition %s/%s node %d has %d links", vlog.ErrCorrupt, k.project, k.typ, i, c)
				}
				ud := r.Next(4 * c)
				nb := make([]uint32, c)
				for j := range nb {
					if nb[j] = ud.U32(); int(nb[j]) >= n {
						return k, nil, fmt.Errorf("%w: partition %s/%s node %d links out of range", vlog.ErrCorrupt, k.project, k.typ, i)
					}
				}
				g.upper[i][l] = nb
			}
		}
		if r.Err != nil {
			return k, nil, r.Err
		}
		if g.dead[i] {
			g.ndead++
		} else {
			g.byID[g.ids[i]] = uint32(i)
		}
	}
	g.q8, g.scale = make([]int8, n*dim), make([]float32, n)
	for i := range uint32(n) {
		g.scale[i] = vectors.Quantize(g.row(i), g.vec(i))
	}
	return k, g, nil
}
