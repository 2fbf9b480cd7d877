package hnsw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// snapMagic starts a snapshot; the number is the format's version.
const snapMagic = "TSVECS1\n"

// appendLog writes one entry (length, CRC-32C, payload) and returns once
// it is synced. Concurrent callers share syncs (group commit): the first
// to find no sync running writes and syncs every entry appended so far
// while the others wait for it, so N writers pay about one fsync per
// round instead of N. A failed write or sync fails every later append
// until the index is reopened (the file's tail is then unknown; the open
// cuts a torn entry off).
func (ix *Index) appendLog(payload []byte) error {
	if len(payload) > maxLogEntry {
		return fmt.Errorf("%w: a batch of %d bytes; at most %d", vectors.ErrInvalid, len(payload), maxLogEntry)
	}
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(payload, castagnoli))
	ix.logMu.Lock()
	defer ix.logMu.Unlock()
	if ix.closed.Load() {
		return vectors.ErrClosed
	}
	if ix.logErr != nil {
		return ix.logErr
	}
	ix.pending = append(append(ix.pending, hdr[:]...), payload...)
	ix.appended++
	seq := ix.appended
	for ix.synced < seq {
		if ix.logErr != nil {
			return ix.logErr
		}
		if ix.syncing {
			ix.logCond.Wait()
			continue
		}
		batch, upto := ix.pending, ix.appended
		ix.pending, ix.syncing = ix.spare[:0], true
		ix.logMu.Unlock()
		_, err := ix.logf.Write(batch)
		if err == nil {
			err = ix.logf.Sync()
		}
		ix.logMu.Lock()
		ix.spare, ix.syncing = batch[:0], false
		if err != nil {
			ix.logErr = fmt.Errorf("hnsw: write log: %w", err)
		} else {
			ix.synced = upto
			ix.logSize += int64(len(batch))
			ix.m.logSyncs.Inc()
		}
		ix.logCond.Broadcast()
	}
	return nil
}

// replayLog applies the log's entries. A torn last entry (shorter than its
// length says) is a write that never returned: it is cut off. A bad
// checksum before the end is corruption.
func (ix *Index) replayLog() error {
	p := filepath.Join(ix.dir, logName)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hnsw: read log: %w", err)
	}
	off := 0
	for off < len(b) {
		if len(b)-off < 8 {
			break // torn header
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		sum := binary.LittleEndian.Uint32(b[off+4:])
		if n > maxLogEntry {
			return fmt.Errorf("%w: log entry at %d claims %d bytes", errCorrupt, off, n)
		}
		if len(b)-off-8 < n {
			break // torn payload
		}
		payload := b[off+8 : off+8+n]
		if crc32.Checksum(payload, castagnoli) != sum {
			if off+8+n == len(b) {
				break // the last entry, torn inside its payload
			}
			return fmt.Errorf("%w: log entry at %d fails its checksum", errCorrupt, off)
		}
		if err := ix.replayEntry(payload); err != nil {
			return fmt.Errorf("%w: log entry at %d: %v", errCorrupt, off, err)
		}
		off += 8 + n
	}
	if off < len(b) {
		ix.log.Warn("vector index log: torn last entry cut off", "dir", ix.dir, "bytes", len(b)-off)
		if err := os.Truncate(p, int64(off)); err != nil {
			return fmt.Errorf("hnsw: truncate log: %w", err)
		}
	}
	return nil
}

func (ix *Index) replayEntry(payload []byte) error {
	d := &dec{b: payload}
	switch op := d.u8(); op {
	case 'U':
		n := int(d.u32())
		var batch []vectors.Item
		for range n {
			it := vectors.Item{ID: d.str(), ProjectID: d.str(), Type: d.str(), DeviceID: d.str(), TaskID: d.str()}
			it.Time = time.UnixMilli(d.i64()).UTC()
			dim := int(d.u16())
			if d.err != nil {
				return d.err
			}
			it.Vector = make([]float32, dim)
			for j := range it.Vector {
				it.Vector[j] = d.f32()
			}
			if d.err != nil {
				return d.err
			}
			batch = append(batch, it)
		}
		if err := vectors.CheckItems(batch, ix.dimOf); err != nil {
			return err
		}
		ix.applyBatch(batch)
	case 'D':
		n := int(d.u32())
		for range n {
			id := d.str()
			if d.err != nil {
				return d.err
			}
			ix.applyDelete(id)
		}
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	if len(d.b) != 0 {
		return errors.New("trailing bytes")
	}
	return d.err
}

// maybeSnapshot starts a snapshot in the background once the log is large.
func (ix *Index) maybeSnapshot() {
	ix.logMu.Lock()
	big := ix.logSize >= ix.snapBytes
	ix.logMu.Unlock()
	if !big || ix.rebuilding.Load() || !ix.snapping.CompareAndSwap(false, true) {
		return
	}
	ix.wg.Add(1)
	go func() {
		defer ix.wg.Done()
		defer ix.snapping.Store(false)
		if err := ix.snapshot(); err != nil {
			ix.log.Error("vector index snapshot failed", "dir", ix.dir, "err", err)
		}
	}()
}

// snapshot writes every partition to a new snapshot file, renames it over
// the old one and empties the log. Writes wait meanwhile; searches go on.
func (ix *Index) snapshot() error {
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	p := filepath.Join(ix.dir, snapName)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("hnsw: snapshot: %w", err)
	}
	werr := ix.writeSnapshot(f)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, p)
	}
	if werr == nil {
		werr = syncDir(ix.dir)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("hnsw: snapshot: %w", werr)
	}
	ix.logMu.Lock()
	defer ix.logMu.Unlock()
	if ix.logf == nil {
		return nil
	}
	if err := ix.logf.Truncate(0); err != nil {
		return fmt.Errorf("hnsw: empty log: %w", err)
	}
	if err := ix.logf.Sync(); err != nil {
		return fmt.Errorf("hnsw: empty log: %w", err)
	}
	ix.logSize = 0
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (ix *Index) writeSnapshot(f io.Writer) error {
	w := newSWriter(f)
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
	w.e.b = append(w.e.b, snapMagic...)
	w.e.u32(uint32(len(keys)))
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
	if err := w.flush(true); err != nil {
		return err
	}
	if err := w.w.Flush(); err != nil {
		return err
	}
	// The checksum covers everything before it and is written past the CRC.
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], w.crc.Sum32())
	_, err := f.Write(sum[:])
	return err
}

func (g *graph) write(w *swriter, k pkey) error {
	e := &w.e
	n := g.n()
	e.str(k.project)
	e.str(k.typ)
	e.u32(uint32(g.dim))
	e.u32(uint32(n))
	e.u16(uint16(g.m))
	e.u16(uint16(g.m0))
	e.u32(g.entry)
	e.u8(uint8(g.maxLevel))
	e.u8(b2u(g.hasEntry))
	e.u32(uint32(len(g.strs)))
	for _, s := range g.strs {
		e.str(s)
		if err := w.flush(false); err != nil {
			return err
		}
	}
	for i := range n {
		e.str(g.ids[i])
		e.u8(g.level[i])
		e.u8(b2u(g.dead[i]))
		e.i64(g.tms[i])
		e.u32(g.dev[i])
		e.u32(g.task[i])
		for _, x := range g.vec(uint32(i)) {
			e.f32(x)
		}
		e.u8(g.cnt0[i])
		o := i * g.m0
		for j := range int(g.cnt0[i]) {
			e.u32(g.nbr0[o+j])
			e.f32(g.dist0[o+j])
		}
		for _, nb := range g.upper[i] {
			e.u8(uint8(len(nb)))
			for _, x := range nb {
				e.u32(x)
			}
		}
		if err := w.flush(false); err != nil {
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

// readSnapshot loads the snapshot, if there is one.
func (ix *Index) readSnapshot() error {
	f, err := os.Open(filepath.Join(ix.dir, snapName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hnsw: open snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("hnsw: %w", err)
	}
	if st.Size() < int64(len(snapMagic))+8 {
		return fmt.Errorf("%w: snapshot of %d bytes", errCorrupt, st.Size())
	}
	r := newSReader(io.LimitReader(f, st.Size()-4))
	if string(r.next(len(snapMagic)).take(len(snapMagic))) != snapMagic {
		return fmt.Errorf("%w: not a snapshot (magic)", errCorrupt)
	}
	np := int(r.next(4).u32())
	parts := map[pkey]*graph{}
	for range np {
		k, g, err := readGraph(r)
		if err != nil {
			return err
		}
		g.efMin, g.efCons = ix.efMin, ix.efCons
		parts[k] = g
	}
	if r.err != nil {
		return r.err
	}
	if _, err := r.r.Peek(1); err != io.EOF {
		return fmt.Errorf("%w: bytes after the last partition", errCorrupt)
	}
	want := r.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(f, sum[:]); err != nil || binary.LittleEndian.Uint32(sum[:]) != want {
		return fmt.Errorf("%w: snapshot fails its checksum", errCorrupt)
	}
	ix.parts = parts
	return nil
}

func readGraph(r *sreader) (pkey, *graph, error) {
	str := func() string { l := int(r.next(2).u16()); return string(r.next(l).take(l)) }
	k := pkey{str(), str()}
	h := r.next(4 + 4 + 2 + 2 + 4 + 1 + 1 + 4)
	dim, n := int(h.u32()), int(h.u32())
	m, m0 := int(h.u16()), int(h.u16())
	entry, maxLevel, hasEntry := h.u32(), int(h.u8()), h.u8() == 1
	nstrs := int(h.u32())
	if r.err != nil || h.err != nil {
		return k, nil, errCorrupt
	}
	if dim < 1 || dim > vectors.MaxDim || m < 2 || m > 255 || m0 < m || m0 > 255 || n > 1<<31 || nstrs > n*2+1 || (hasEntry && int(entry) >= n) {
		return k, nil, fmt.Errorf("%w: partition %s/%s header out of range", errCorrupt, k.project, k.typ)
	}
	g := newGraph(dim)
	g.m, g.m0 = m, m0
	g.entry, g.maxLevel, g.hasEntry = entry, maxLevel, hasEntry
	g.strs = make([]string, 0, nstrs)
	g.strIdx = make(map[string]uint32, nstrs)
	for i := range nstrs {
		s := str()
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
		g.ids[i] = str()
		d := r.next(1 + 1 + 8 + 4 + 4 + 4*dim + 1)
		g.level[i] = d.u8()
		g.dead[i] = d.u8() == 1
		g.tms[i] = d.i64()
		g.dev[i], g.task[i] = d.u32(), d.u32()
		for range dim {
			g.vecs = append(g.vecs, d.f32())
		}
		c := int(d.u8())
		if d.err != nil || r.err != nil || c > m0 || int(g.dev[i]) >= nstrs || int(g.task[i]) >= nstrs {
			return k, nil, fmt.Errorf("%w: partition %s/%s node %d", errCorrupt, k.project, k.typ, i)
		}
		g.cnt0[i] = uint8(c)
		nd := r.next(8 * c)
		o := i * m0
		for j := range c {
			g.nbr0[o+j], g.dist0[o+j] = nd.u32(), nd.f32()
			if int(g.nbr0[o+j]) >= n {
				return k, nil, fmt.Errorf("%w: partition %s/%s node %d links out of range", errCorrupt, k.project, k.typ, i)
			}
		}
		if lv := int(g.level[i]); lv > 0 {
			if lv > maxLevel {
				return k, nil, fmt.Errorf("%w: partition %s/%s node %d above the top level", errCorrupt, k.project, k.typ, i)
			}
			g.upper[i] = make([][]uint32, lv)
			for l := range lv {
				c := int(r.next(1).u8())
				if c > m {
					return k, nil, fmt.Errorf("%w: partition %s/%s node %d has %d links", errCorrupt, k.project, k.typ, i, c)
				}
				ud := r.next(4 * c)
				nb := make([]uint32, c)
				for j := range nb {
					if nb[j] = ud.u32(); int(nb[j]) >= n {
						return k, nil, fmt.Errorf("%w: partition %s/%s node %d links out of range", errCorrupt, k.project, k.typ, i)
					}
				}
				g.upper[i][l] = nb
			}
		}
		if r.err != nil {
			return k, nil, r.err
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
