package vlog

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// Key names a partition: a project and a record type.
type Key struct{ Project, Type string }

// Partition is what Parts needs of an engine's partition; Has and Len
// take the partition's own lock.
type Partition interface {
	Dim() int
	Has(id string) bool
	Len() int
}

// Parts is an embedded engine's partitions by Key. Its methods are the
// Engine methods every engine answers the same way (DimOf, Has, Len,
// Reset) and the shared parts of Search, Stats and the snapshot.
type Parts[P Partition] struct {
	mu sync.RWMutex
	m  map[Key]P
}

// NewParts returns an empty set of partitions.
func NewParts[P Partition]() *Parts[P] { return &Parts[P]{m: map[Key]P{}} }

// Get returns the partition of k, if there is one.
func (ps *Parts[P]) Get(k Key) (P, bool) {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	p, ok := ps.m[k]
	return p, ok
}

// GetOrAdd returns the partition of k, made by mk if there is none.
func (ps *Parts[P]) GetOrAdd(k Key, mk func() P) P {
	if p, ok := ps.Get(k); ok {
		return p
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.m[k]
	if !ok {
		p = mk()
		ps.m[k] = p
	}
	return p
}

// Each calls fn for every partition, under the set's read lock (fn may
// lock the partition, not the set).
func (ps *Parts[P]) Each(fn func(Key, P)) {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	for k, p := range ps.m {
		fn(k, p)
	}
}

// Count is the number of partitions.
func (ps *Parts[P]) Count() int {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return len(ps.m)
}

// DimOf is Engine's DimOf.
func (ps *Parts[P]) DimOf(project, typ string) int {
	if p, ok := ps.Get(Key{project, typ}); ok {
		return p.Dim()
	}
	return 0
}

// Has is Engine's Has.
func (ps *Parts[P]) Has(id string) bool {
	found := false
	ps.Each(func(_ Key, p P) { found = found || p.Has(id) })
	return found
}

// Len is Engine's Len.
func (ps *Parts[P]) Len() int {
	n := 0
	ps.Each(func(_ Key, p P) { n += p.Len() })
	return n
}

// Reset is Engine's Reset.
func (ps *Parts[P]) Reset() {
	ps.mu.Lock()
	ps.m = map[Key]P{}
	ps.mu.Unlock()
}

// ForSearch does what every embedded Search does before searching: it
// refuses a closed or rebuilding index and bad arguments, and finds the
// partition f names (ok false: none, no hits) and checks v's dimension.
func (ps *Parts[P]) ForSearch(st *Store, v []float32, k int, f vectors.Filter) (p P, ok bool, err error) {
	if st.Closed() {
		return p, false, vectors.ErrClosed
	}
	if err := vectors.CheckSearch(v, k, f); err != nil {
		return p, false, err
	}
	if err := st.Ready(); err != nil {
		return p, false, err
	}
	if p, ok = ps.Get(Key{f.ProjectID, f.Type}); !ok {
		return p, false, nil
	}
	if p.Dim() != len(v) {
		return p, false, fmt.Errorf("%w: the vector has %d dimensions; partition %s/%s holds %d", vectors.ErrDimension, len(v), f.ProjectID, f.Type, p.Dim())
	}
	return p, true, nil
}

// Stats is vectors.Index's Stats for an engine stored by st.
func (ps *Parts[P]) Stats(st *Store) (vectors.Stats, error) {
	if st.Closed() {
		return vectors.Stats{}, vectors.ErrClosed
	}
	return vectors.Stats{Partitions: ps.Count(), Items: ps.Len(), DiskBytes: st.DiskBytes()}, nil
}

// WriteSnapshot writes the number of partitions, then each, sorted by
// key, with write (which locks the partition).
func (ps *Parts[P]) WriteSnapshot(w *Writer, write func(*Writer, Key, P) error) error {
	ps.mu.RLock()
	keys := make([]Key, 0, len(ps.m))
	for k := range ps.m {
		keys = append(keys, k)
	}
	ps.mu.RUnlock()
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Project != keys[j].Project {
			return keys[i].Project < keys[j].Project
		}
		return keys[i].Type < keys[j].Type
	})
	w.U32(uint32(len(keys)))
	for _, k := range keys {
		p, _ := ps.Get(k)
		if err := write(w, k, p); err != nil {
			return err
		}
	}
	return nil
}

// ReadSnapshot reads what WriteSnapshot wrote, each partition with read,
// and replaces the set's partitions with them.
func (ps *Parts[P]) ReadSnapshot(r *Reader, read func(*Reader) (Key, P, error)) error {
	np := int(r.Next(4).U32())
	m := map[Key]P{}
	for range np {
		k, p, err := read(r)
		if err != nil {
			return err
		}
		m[k] = p
	}
	if r.Err != nil {
		return r.Err
	}
	ps.mu.Lock()
	ps.m = m
	ps.mu.Unlock()
	return nil
}

// Strings interns a partition's device and task strings: each vector
// keeps two uint32s, and a filter compares them.
type Strings struct {
	Strs []string
	Idx  map[string]uint32
}

// NewStrings returns a table holding "" at 0.
func NewStrings() Strings { return Strings{Strs: []string{""}, Idx: map[string]uint32{"": 0}} }

// Intern returns s's index, adding it if needed.
func (t *Strings) Intern(s string) uint32 {
	if i, ok := t.Idx[s]; ok {
		return i
	}
	i := uint32(len(t.Strs))
	t.Strs = append(t.Strs, s)
	t.Idx[s] = i
	return i
}

// Filter turns f's device, task and time filters into a predicate on a
// vector's index into dev, task and tms (Unix milliseconds); nil when f
// has none. The slices must not change while it is used (the
// partition's read lock is held).
func Filter(f *vectors.Filter, t *Strings, dev, task []uint32, tms []int64) func(uint32) bool {
	if len(f.DeviceIDs) == 0 && len(f.TaskIDs) == 0 && f.Start.IsZero() && f.End.IsZero() {
		return nil
	}
	set := func(vals []string) map[uint32]bool {
		if len(vals) == 0 {
			return nil
		}
		m := map[uint32]bool{}
		for _, s := range vals {
			if i, ok := t.Idx[s]; ok {
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
		if devs != nil && !devs[dev[i]] || tasks != nil && !tasks[task[i]] {
			return false
		}
		return tms[i] >= lo && tms[i] < hi
	}
}

// URL is an embedded engine's parsed URL: scheme:///dir?params, or
// scheme:// for <DataDir>/<sub>.
type URL struct {
	Config Config
	query  url.Values
	err    error
}

// ParseURL reads what every embedded engine's URL holds: the directory
// (sub of the data dir when the URL names none), snapshot_bytes, and the
// options' logger, source and registerer. The engine reads its own
// parameters with Int and Float, then Err.
func ParseURL(u *url.URL, o vectors.Options, sub string) *URL {
	p := &URL{query: u.Query()}
	dir := u.Path
	switch {
	case u.Host != "":
		p.err = fmt.Errorf("the URL names a host %q; use %s:///absolute/dir", u.Host, u.Scheme)
	case dir == "" && o.DataDir == "":
		p.err = errors.New("no directory in the URL and no data dir")
	case dir == "":
		dir = filepath.Join(o.DataDir, sub)
	}
	p.Config = Config{Dir: dir, Logger: o.Logger, Source: o.Source, Registerer: o.Registerer}
	p.Int("snapshot_bytes", 1<<10, 1<<62, func(n int) { p.Config.SnapshotBytes = int64(n) })
	return p
}

// Int calls set with the integer parameter name when it is given and in
// lo..hi; otherwise it notes the error.
func (p *URL) Int(name string, lo, hi int, set func(int)) {
	s := p.query.Get(name)
	if s == "" || p.err != nil {
		return
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		p.err = fmt.Errorf("%s=%q: want %d..%d", name, s, lo, hi)
		return
	}
	set(n)
}

// Float is Int for a real parameter.
func (p *URL) Float(name string, lo, hi float64, set func(float64)) {
	s := p.query.Get(name)
	if s == "" || p.err != nil {
		return
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= lo && f <= hi) {
		p.err = fmt.Errorf("%s=%q: want %g..%g", name, s, lo, hi)
		return
	}
	set(f)
}

// Err is the first bad parameter.
func (p *URL) Err() error { return p.err }
