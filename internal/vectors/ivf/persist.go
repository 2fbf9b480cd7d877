package ivf

import (
	"fmt"
	"sort"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// writeSnapshot encodes every partition, sorted: its strings, centroids
// and live vectors, each with its list. The int8 rows are not written:
// they are quantized again at open.
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
		p := ix.parts[k]
		ix.pmu.RUnlock()
		p.mu.RLock()
		err := p.write(w, k)
		p.mu.RUnlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *part) write(w *vlog.Writer, k pkey) error {
	w.Str(k.project)
	w.Str(k.typ)
	w.U32(uint32(p.dim))
	w.U32(uint32(len(p.byID)))
	w.U32(uint32(p.trainedAt))
	nlist := 0
	if p.cur.cents != nil {
		nlist = len(p.cur.ls)
	}
	w.U32(uint32(nlist))
	for _, x := range p.cur.cents {
		w.F32(x)
	}
	w.U32(uint32(len(p.strs)))
	for _, s := range p.strs {
		w.Str(s)
		if err := w.Flush(false); err != nil {
			return err
		}
	}
	for slot, live := range p.live {
		if !live {
			continue
		}
		w.Str(p.ids[slot])
		w.I64(p.tms[slot])
		w.U32(p.dev[slot])
		w.U32(p.task[slot])
		w.U32(p.cur.where[slot].list)
		for _, x := range p.vec(uint32(slot)) {
			w.F32(x)
		}
		if err := w.Flush(false); err != nil {
			return err
		}
	}
	return nil
}

// readSnapshot loads what writeSnapshot wrote.
func (ix *Index) readSnapshot(r *vlog.Reader) error {
	np := int(r.Next(4).U32())
	parts := map[pkey]*part{}
	for range np {
		k, p, err := readPart(r)
		if err != nil {
			return err
		}
		parts[k] = p
	}
	if r.Err != nil {
		return r.Err
	}
	ix.pmu.Lock()
	ix.parts = parts
	ix.pmu.Unlock()
	return nil
}

func readPart(r *vlog.Reader) (pkey, *part, error) {
	k := pkey{r.Str(), r.Str()}
	h := r.Next(4 * 4)
	dim, n, trainedAt, nlist := int(h.U32()), int(h.U32()), int(h.U32()), int(h.U32())
	if r.Err != nil || h.Err != nil {
		return k, nil, vlog.ErrCorrupt
	}
	if dim < 1 || dim > vectors.MaxDim || n > 1<<31 || nlist > 1<<24 {
		return k, nil, fmt.Errorf("%w: partition %s/%s header out of range", vlog.ErrCorrupt, k.project, k.typ)
	}
	p := newPart(dim)
	p.trainedAt = trainedAt
	if nlist > 0 {
		cd := r.Next(4 * dim * nlist)
		cents := make([]float32, dim*nlist)
		for i := range cents {
			cents[i] = cd.F32()
		}
		p.cur = newLists(cents, dim)
	}
	nstrs := int(r.Next(4).U32())
	if r.Err != nil || nstrs < 1 || nstrs > 2*n+1 {
		return k, nil, fmt.Errorf("%w: partition %s/%s strings", vlog.ErrCorrupt, k.project, k.typ)
	}
	p.strs = make([]string, 0, nstrs)
	p.strIdx = make(map[string]uint32, nstrs)
	for i := range nstrs {
		s := r.Str()
		p.strs = append(p.strs, s)
		p.strIdx[s] = uint32(i)
	}
	p.vecs = make([]float32, n*dim)
	p.ids, p.tms, p.dev, p.task, p.live = make([]string, n), make([]int64, n), make([]uint32, n), make([]uint32, n), make([]bool, n)
	p.byID = make(map[string]uint32, n)
	code := make([]int8, dim)
	for i := range n {
		p.ids[i] = r.Str()
		d := r.Next(8 + 4 + 4 + 4 + 4*dim)
		p.tms[i], p.dev[i], p.task[i] = d.I64(), d.U32(), d.U32()
		c := d.U32()
		v := p.vec(uint32(i))
		for j := range v {
			v[j] = d.F32()
		}
		if d.Err != nil || r.Err != nil || int(p.dev[i]) >= nstrs || int(p.task[i]) >= nstrs || int(c) >= len(p.cur.ls) {
			return k, nil, fmt.Errorf("%w: partition %s/%s vector %d", vlog.ErrCorrupt, k.project, k.typ, i)
		}
		if _, dup := p.byID[p.ids[i]]; dup {
			return k, nil, fmt.Errorf("%w: partition %s/%s holds %q twice", vlog.ErrCorrupt, k.project, k.typ, p.ids[i])
		}
		p.live[i] = true
		p.byID[p.ids[i]] = uint32(i)
		p.cur.add(uint32(i), c, code, vectors.Quantize(code, v))
	}
	return k, p, nil
}
