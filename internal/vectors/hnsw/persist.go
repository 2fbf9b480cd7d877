package hnsw

import (
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// writeSnapshot encodes every partition, sorted, for the store's
// snapshot.
func (ix *Index) writeSnapshot(w *vlog.Writer) error {
	return ix.parts.WriteSnapshot(w, func(w *vlog.Writer, k vlog.Key, g *graph) error {
		g.mu.RLock()
		defer g.mu.RUnlock()
		return g.write(w, k)
	})
}

func (g *graph) write(w *vlog.Writer, k vlog.Key) error {
	e := &w.Enc
	n := g.n()
	e.Str(k.Project)
	e.Str(k.Type)
	e.U32(uint32(g.dim))
	e.U32(uint32(n))
	e.U16(uint16(g.m))
	e.U16(uint16(g.m0))
	e.U32(g.entry)
	e.U8(uint8(g.maxLevel))
	e.U8(b2u(g.hasEntry))
	e.U32(uint32(len(g.names.Strs)))
	for _, s := range g.names.Strs {
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
	return ix.parts.ReadSnapshot(r, func(r *vlog.Reader) (vlog.Key, *graph, error) {
		k, g, err := readGraph(r)
		if err == nil {
			g.efMin, g.efCons = int(ix.efMin.Load()), ix.efCons
		}
		return k, g, err
	})
}

func readGraph(r *vlog.Reader) (vlog.Key, *graph, error) {
	k := vlog.Key{Project: r.Str()}
	k.Type = r.Str()
	h := r.Next(4 + 4 + 2 + 2 + 4 + 1 + 1 + 4)
	dim, n := int(h.U32()), int(h.U32())
	m, m0 := int(h.U16()), int(h.U16())
	entry, maxLevel, hasEntry := h.U32(), int(h.U8()), h.U8() == 1
	nstrs := int(h.U32())
	if r.Err != nil || h.Err != nil {
		return k, nil, vlog.ErrCorrupt
	}
	if dim < 1 || dim > vectors.MaxDim || m < 2 || m > 255 || m0 < m || m0 > 255 || n > 1<<31 || nstrs > n*2+1 || (hasEntry && int(entry) >= n) {
		return k, nil, fmt.Errorf("%w: partition %s/%s header out of range", vlog.ErrCorrupt, k.Project, k.Type)
	}
	g := newGraph(dim)
	g.m, g.m0 = m, m0
	g.entry, g.maxLevel, g.hasEntry = entry, maxLevel, hasEntry
	g.names = vlog.Strings{Strs: make([]string, 0, nstrs), Idx: make(map[string]uint32, nstrs)}
	for i := range nstrs {
		s := r.Str()
		g.names.Strs = append(g.names.Strs, s)
		g.names.Idx[s] = uint32(i)
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
			return k, nil, fmt.Errorf("%w: partition %s/%s node %d", vlog.ErrCorrupt, k.Project, k.Type, i)
		}
		g.cnt0[i] = uint8(c)
		nd := r.Next(8 * c)
		o := i * m0
		for j := range c {
			g.nbr0[o+j], g.dist0[o+j] = nd.U32(), nd.F32()
			if int(g.nbr0[o+j]) >= n {
				return k, nil, fmt.Errorf("%w: partition %s/%s node %d links out of range", vlog.ErrCorrupt, k.Project, k.Type, i)
			}
		}
		if lv := int(g.level[i]); lv > 0 {
			if lv > maxLevel {
				return k, nil, fmt.Errorf("%w: partition %s/%s node %d above the top level", vlog.ErrCorrupt, k.Project, k.Type, i)
			}
			g.upper[i] = make([][]uint32, lv)
			for l := range lv {
				c := int(r.Next(1).U8())
				if c > m {
					return k, nil, fmt.Errorf("%w: partition %s/%s node %d has %d links", vlog.ErrCorrupt, k.Project, k.Type, i, c)
				}
				ud := r.Next(4 * c)
				nb := make([]uint32, c)
				for j := range nb {
					if nb[j] = ud.U32(); int(nb[j]) >= n {
						return k, nil, fmt.Errorf("%w: partition %s/%s node %d links out of range", vlog.ErrCorrupt, k.Project, k.Type, i)
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
