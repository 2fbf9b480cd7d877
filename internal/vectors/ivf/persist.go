package ivf

import (
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// writeSnapshot encodes every partition, sorted: its strings, centroids
// and live vectors, each with its list. The int8 rows are not written:
// they are quantized again at open.
func (ix *Index) writeSnapshot(w *vlog.Writer) error {
	return ix.parts.WriteSnapshot(w, func(w *vlog.Writer, k vlog.Key, p *part) error {
		p.mu.RLock()
		defer p.mu.RUnlock()
		return p.write(w, k)
	})
}

func (p *part) write(w *vlog.Writer, k vlog.Key) error {
	w.Str(k.Project)
	w.Str(k.Type)
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
	w.U32(uint32(len(p.names.Strs)))
	for _, s := range p.names.Strs {
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
	return ix.parts.ReadSnapshot(r, ix.readPart)
}

// readPart reads one partition.
func (ix *Index) readPart(r *vlog.Reader) (vlog.Key, *part, error) {
	k := vlog.Key{Project: r.Str()}
	k.Type = r.Str()
	h := r.Next(4 * 4)
	dim, n, trainedAt, nlist := int(h.U32()), int(h.U32()), int(h.U32()), int(h.U32())
	if r.Err != nil || h.Err != nil {
		return k, nil, vlog.ErrCorrupt
	}
	if dim < 1 || dim > vectors.MaxDim || n > 1<<31 || nlist > 1<<24 {
		return k, nil, fmt.Errorf("%w: partition %s/%s header out of range", vlog.ErrCorrupt, k.Project, k.Type)
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
		return k, nil, fmt.Errorf("%w: partition %s/%s strings", vlog.ErrCorrupt, k.Project, k.Type)
	}
	p.names = vlog.Strings{Strs: make([]string, 0, nstrs), Idx: make(map[string]uint32, nstrs)}
	for i := range nstrs {
		s := r.Str()
		p.names.Strs = append(p.names.Strs, s)
		p.names.Idx[s] = uint32(i)
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
			return k, nil, fmt.Errorf("%w: partition %s/%s vector %d", vlog.ErrCorrupt, k.Project, k.Type, i)
		}
		if _, dup := p.byID[p.ids[i]]; dup {
			return k, nil, fmt.Errorf("%w: partition %s/%s holds %q twice", vlog.ErrCorrupt, k.Project, k.Type, p.ids[i])
		}
		p.live[i] = true
		p.byID[p.ids[i]] = uint32(i)
		p.cur.add(uint32(i), c, code, vectors.Quantize(code, v))
	}
	return k, p, nil
}
