// Package vlog is what the embedded vector engines (hnsw://, ivf://) share
// to keep their in-memory index durable: a directory they lock, a log of
// changes appended and fsynced before a write returns (concurrent writes
// share one fsync), a checksummed snapshot that empties the log, and a
// rebuild from the store (vectors.Source) when the files are missing or
// corrupt, while Search answers vectors.ErrUnavailable.
//
// An engine keeps its partitions in memory and implements Engine; the
// Store calls it to apply what Upsert and Delete logged, to replay the log
// at open, and to write and read its snapshot. Everything about files,
// ordering and rebuilding is here, once.
package vlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/vectors"
)

const (
	snapName = "index.snap"
	logName  = "index.log"
	// DefaultSnapshotBytes is the log size at which the index writes a
	// snapshot and empties the log: at 128-d about 200,000 changes, which
	// an open replays in about 20 s.
	DefaultSnapshotBytes = 128 << 20
	// maxLogEntry bounds one log entry (MaxBatch items of MaxDim floats
	// fit); a longer length is corruption.
	maxLogEntry = 1 << 28
)

// Engine is an embedded index's in-memory state. The Store calls Apply
// and Remove with writes already logged (or replayed), never two of the
// same id at once; WriteSnapshot while no write is being applied.
type Engine interface {
	// Apply puts checked items in, replacing those of the same id in
	// whatever partition they are.
	Apply(items []vectors.Item)
	// Remove deletes ids; unknown ones are ignored.
	Remove(ids []string)
	// Has reports whether id is live.
	Has(id string) bool
	// DimOf returns a partition's dimension, 0 when it has none yet.
	DimOf(project, typ string) int
	// Len is the number of live items.
	Len() int
	// WriteSnapshot encodes every partition into w (the Store adds the
	// magic before and the checksum after).
	WriteSnapshot(w *Writer) error
	// ReadSnapshot replaces the state by what w wrote; errors that mean
	// the file is bad wrap ErrCorrupt.
	ReadSnapshot(r *Reader) error
	// Reset empties the state (a corrupt file was read part-way).
	Reset()
	// AfterWrite is called after each applied write and after a rebuild,
	// to start background work that has become due (compaction,
	// retraining) with s.Go.
	AfterWrite(s *Store)
}

// Config is what a Store is opened with.
type Config struct {
	// Dir holds the files: index.snap, index.log, LOCK.
	Dir string
	// Magic starts the snapshot file; it names the engine and the
	// format's version (a file of another engine is corrupt here).
	Magic string
	// SnapshotBytes is the log size that triggers a snapshot
	// (DefaultSnapshotBytes when 0).
	SnapshotBytes int64
	// Logger, Source and Registerer are the platform's (vectors.Options).
	Logger     *slog.Logger
	Source     vectors.Source
	Registerer prometheus.Registerer
	// Collectors are the engine's own metrics, registered and
	// unregistered with the Store's.
	Collectors []prometheus.Collector
}

// Store is the durable side of an embedded index.
type Store struct {
	dir       string
	magic     string
	log       *slog.Logger
	src       vectors.Source
	snapBytes int64
	eng       Engine
	m         *metrics

	// applyMu: writers hold it shared from their log append to the end of
	// their apply; a snapshot holds it exclusively, so it sees every
	// logged change applied and none half-way.
	applyMu sync.RWMutex
	logMu   sync.Mutex
	logf    *os.File
	logSize int64
	// Group commit (appendLog), under logMu: entries appended and not
	// yet written, the buffer the last write used, how many entries were
	// appended and synced, whether a sync runs (logCond: it ended), and
	// the error that ended logging.
	pending, spare   []byte
	appended, synced uint64
	syncing          bool
	logCond          *sync.Cond
	logErr           error
	lock             *os.File // flock on <dir>/LOCK; nil where there is none

	// busy holds the ids of the writes between their log append and the
	// end of their apply (busyCond: one ended). A write naming an id that
	// is busy waits for it first, so the writes of one id are applied in
	// the order the log holds them, which is what a reopen replays;
	// writes of other ids share the log's syncs as before.
	busyMu   sync.Mutex
	busyCond *sync.Cond
	busy     map[string]struct{}

	// While rebuilding, rbMu orders the rebuild's check-and-insert of each
	// stored item with live writes, and deletedDuring keeps the ids
	// deleted meanwhile so the rebuild does not bring them back.
	rebuilding    atomic.Bool
	rbMu          sync.Mutex
	deletedDuring map[string]bool

	snapping atomic.Bool
	closed   atomic.Bool
	// ctx is cancelled by Close, stopping a rebuild and the engine's
	// background work.
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Open locks cfg.Dir, loads the snapshot into eng and replays the log, or
// starts a rebuild from cfg.Source when they are missing or corrupt.
func Open(cfg Config, eng Engine) (*Store, error) {
	s := &Store{dir: cfg.Dir, magic: cfg.Magic, log: cfg.Logger, src: cfg.Source, snapBytes: cfg.SnapshotBytes, eng: eng,
		deletedDuring: map[string]bool{}, busy: map[string]struct{}{}}
	if s.snapBytes <= 0 {
		s.snapBytes = DefaultSnapshotBytes
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.busyCond = sync.NewCond(&s.busyMu)
	s.logCond = sync.NewCond(&s.logMu)
	var err error
	if s.m, err = newMetrics(cfg.Registerer, s, cfg.Collectors); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		if s.lock != nil {
			s.lock.Close()
		}
		s.m.unregister()
		return nil, err
	}
	return s, nil
}

// load reads the snapshot and replays the log, or starts a rebuild when
// they are missing or corrupt.
func (s *Store) load() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("vectors: %w", err)
	}
	lock, err := lockDir(s.dir)
	if err != nil {
		return err
	}
	s.lock = lock
	// No snapshot means the index was never complete here (first start,
	// lost files, or a rebuild cut short): rebuild after the log's replay.
	_, statErr := os.Stat(filepath.Join(s.dir, snapName))
	noSnap := errors.Is(statErr, os.ErrNotExist)
	corrupt := false
	if !noSnap {
		if err := s.readSnapshot(); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return err
			}
			s.log.Warn("vector index snapshot corrupt; rebuilding from the store", "dir", s.dir, "err", err)
			corrupt = true
		}
	}
	if !corrupt {
		if err := s.replayLog(); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return err
			}
			s.log.Warn("vector index log corrupt; rebuilding from the store", "dir", s.dir, "err", err)
			corrupt = true
		}
	}
	if corrupt {
		s.eng.Reset()
		for _, n := range []string{snapName, logName} {
			p := filepath.Join(s.dir, n)
			if err := os.Rename(p, p+".corrupt"); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("vectors: set corrupt file aside: %w", err)
			}
		}
	}
	f, err := os.OpenFile(filepath.Join(s.dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("vectors: open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("vectors: %w", err)
	}
	s.logf, s.logSize = f, st.Size()
	ctx, cancel := context.WithCancel(context.Background())
	s.ctx, s.stop = ctx, cancel
	if (noSnap || corrupt) && s.src != nil {
		s.rebuilding.Store(true)
		s.wg.Add(1)
		go s.rebuild(ctx)
	}
	return nil
}

// rebuild inserts every stored item the live writes have not already
// upserted or deleted, then snapshots.
func (s *Store) rebuild(ctx context.Context) {
	defer s.wg.Done()
	start := time.Now()
	n := 0
	err := s.src(ctx, func(it vectors.Item) error {
		if err := vectors.CheckItems([]vectors.Item{it}, s.eng.DimOf); err != nil {
			s.log.Warn("stored vector skipped in rebuild", "id", it.ID, "err", err)
			return nil
		}
		s.rbMu.Lock()
		defer s.rbMu.Unlock()
		if s.deletedDuring[it.ID] || s.eng.Has(it.ID) {
			return nil
		}
		s.eng.Apply([]vectors.Item{it})
		n++
		return ctx.Err()
	})
	if err != nil {
		// The index stays unavailable: a restart rebuilds again.
		s.log.Error("vector index rebuild failed", "dir", s.dir, "items", n, "err", err)
		return
	}
	if err := s.snapshot(); err != nil {
		s.log.Error("vector index snapshot after rebuild failed", "dir", s.dir, "err", err)
	}
	s.rbMu.Lock()
	s.rebuilding.Store(false)
	clear(s.deletedDuring)
	s.rbMu.Unlock()
	s.m.rebuilds.Inc()
	s.log.Info("vector index rebuilt", "dir", s.dir, "items", n, "duration", time.Since(start))
	s.eng.AfterWrite(s)
}

// claim marks ids busy, once none of them is.
func (s *Store) claim(ids []string) {
	s.busyMu.Lock()
	defer s.busyMu.Unlock()
	for slices.ContainsFunc(ids, func(id string) bool { _, ok := s.busy[id]; return ok }) {
		s.busyCond.Wait()
	}
	for _, id := range ids {
		s.busy[id] = struct{}{}
	}
}

// release ends a write's claim on ids.
func (s *Store) release(ids []string) {
	s.busyMu.Lock()
	for _, id := range ids {
		delete(s.busy, id)
	}
	s.busyMu.Unlock()
	s.busyCond.Broadcast()
}

// Upsert is vectors.Index's Upsert: it checks the batch, logs it and
// applies it.
func (s *Store) Upsert(ctx context.Context, items []vectors.Item) error {
	if s.closed.Load() {
		return vectors.ErrClosed
	}
	if err := vectors.CheckItems(items, s.eng.DimOf); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	var e Enc
	e.U8('U')
	e.U32(uint32(len(items)))
	for i := range items {
		it := &items[i]
		e.Str(it.ID)
		e.Str(it.ProjectID)
		e.Str(it.Type)
		e.Str(it.DeviceID)
		e.Str(it.TaskID)
		e.I64(it.Time.UnixMilli())
		e.U16(uint16(len(it.Vector)))
		for _, x := range it.Vector {
			e.F32(x)
		}
	}
	ids := make([]string, len(items))
	for i := range items {
		ids[i] = items[i].ID
	}
	err := s.write(ids, e.B, func(rebuilding bool) {
		s.eng.Apply(items)
		if rebuilding {
			for _, it := range items {
				delete(s.deletedDuring, it.ID)
			}
		}
	})
	if err != nil {
		return err
	}
	s.m.upserts.Add(float64(len(items)))
	return ctx.Err()
}

// Delete is vectors.Index's Delete.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	if s.closed.Load() {
		return vectors.ErrClosed
	}
	if err := vectors.CheckDelete(ids); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	var e Enc
	e.U8('D')
	e.U32(uint32(len(ids)))
	for _, id := range ids {
		e.Str(id)
	}
	return s.write(ids, e.B, func(rebuilding bool) {
		s.eng.Remove(ids)
		if rebuilding {
			for _, id := range ids {
				s.deletedDuring[id] = true
			}
		}
	})
}

// write logs entry, a write of ids, and applies it (apply is told whether
// a rebuild runs; rbMu is then held): writes of the same ids wait for one
// another, and a snapshot sees every logged write applied. It then starts
// a snapshot, and whatever the engine finds due, in the background.
func (s *Store) write(ids []string, entry []byte, apply func(rebuilding bool)) error {
	s.claim(ids)
	defer s.release(ids)
	s.applyMu.RLock()
	defer s.applyMu.RUnlock()
	if err := s.appendLog(entry); err != nil {
		return err
	}
	rb := s.rebuilding.Load()
	if rb {
		s.rbMu.Lock()
	}
	apply(rb)
	if rb {
		s.rbMu.Unlock()
	}
	s.maybeSnapshot()
	s.eng.AfterWrite(s)
	return nil
}

// Ready is what Search asks first: ErrClosed after Close, ErrUnavailable
// while a rebuild runs.
func (s *Store) Ready() error {
	if s.closed.Load() {
		return vectors.ErrClosed
	}
	if s.rebuilding.Load() {
		return fmt.Errorf("%w: the index is being rebuilt from the store", vectors.ErrUnavailable)
	}
	return nil
}

// Closed reports whether Close was called.
func (s *Store) Closed() bool { return s.closed.Load() }

// Rebuilding reports whether a rebuild from the store runs.
func (s *Store) Rebuilding() bool { return s.rebuilding.Load() }

// Go runs fn in the background until it returns; ctx is cancelled by
// Close, which waits for fn.
func (s *Store) Go(fn func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

// ObserveSearch records one search's duration.
func (s *Store) ObserveSearch(d time.Duration) { s.m.searchSeconds.Observe(d.Seconds()) }

// DiskBytes is the size of the snapshot and the log.
func (s *Store) DiskBytes() int64 {
	var n int64
	for _, name := range []string{snapName, logName} {
		if st, err := os.Stat(filepath.Join(s.dir, name)); err == nil {
			n += st.Size()
		}
	}
	return n
}

// Close stops a rebuild and the background work, writes a snapshot when
// the log holds changes, and closes the log.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stop()
	s.wg.Wait()
	var err error
	if !s.rebuilding.Load() && s.logSize > 0 {
		err = s.snapshot()
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if cerr := s.logf.Close(); err == nil {
		err = cerr
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
	}
	s.m.unregister()
	return err
}

type metrics struct {
	reg           prometheus.Registerer
	cs            []prometheus.Collector
	searchSeconds prometheus.Histogram
	upserts       prometheus.Counter
	rebuilds      prometheus.Counter
	logSyncs      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Store, extra []prometheus.Collector) (*metrics, error) {
	m := &metrics{reg: reg,
		searchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tianshu_vectors_search_seconds",
			Help: "Vector index searches, by duration.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		upserts: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_upserted_total",
			Help: "Vectors added to or replaced in the index."}),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_rebuilds_total",
			Help: "Rebuilds of the embedded index from the store (missing or corrupt files)."}),
		logSyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_vectors_log_syncs_total",
			Help: "Writes and fsyncs of the embedded index's log; concurrent Upserts and Deletes share one (group commit)."}),
	}
	items := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_vectors_items",
		Help: "Live vectors in the index."}, func() float64 { return float64(s.eng.Len()) })
	rebuilding := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_vectors_rebuilding",
		Help: "1 while the embedded index is rebuilt from the store (searches answer ResourceUnavailable)."}, func() float64 {
		if s.rebuilding.Load() {
			return 1
		}
		return 0
	})
	m.cs = append([]prometheus.Collector{m.searchSeconds, m.upserts, m.rebuilds, m.logSyncs, items, rebuilding}, extra...)
	if reg != nil {
		for i, c := range m.cs {
			if err := reg.Register(c); err != nil {
				for _, d := range m.cs[:i] {
					reg.Unregister(d)
				}
				return nil, fmt.Errorf("vectors: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg != nil {
		for _, c := range m.cs {
			m.reg.Unregister(c)
		}
	}
}
