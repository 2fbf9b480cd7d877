package vlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// appendLog writes one entry (length, CRC-32C, payload) and returns once
// it is synced. Concurrent callers share syncs (group commit): the first
// to find no sync running writes and syncs every entry appended so far
// while the others wait for it, so N writers pay about one fsync per
// round instead of N. A failed write or sync fails every later append
// until the index is reopened (the file's tail is then unknown; the open
// cuts a torn entry off).
func (s *Store) appendLog(payload []byte) error {
	if len(payload) > maxLogEntry {
		return fmt.Errorf("%w: a batch of %d bytes; at most %d", vectors.ErrInvalid, len(payload), maxLogEntry)
	}
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(payload, castagnoli))
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.closed.Load() {
		return vectors.ErrClosed
	}
	if s.logErr != nil {
		return s.logErr
	}
	s.pending = append(append(s.pending, hdr[:]...), payload...)
	s.appended++
	seq := s.appended
	for s.synced < seq {
		if s.logErr != nil {
			return s.logErr
		}
		if s.syncing {
			s.logCond.Wait()
			continue
		}
		batch, upto := s.pending, s.appended
		s.pending, s.syncing = s.spare[:0], true
		s.logMu.Unlock()
		_, err := s.logf.Write(batch)
		if err == nil {
			err = s.logf.Sync()
		}
		s.logMu.Lock()
		s.spare, s.syncing = batch[:0], false
		if err != nil {
			s.logErr = fmt.Errorf("vectors: write log: %w", err)
		} else {
			s.synced = upto
			s.logSize += int64(len(batch))
			s.m.logSyncs.Inc()
		}
		s.logCond.Broadcast()
	}
	return nil
}

// replayLog applies the log's entries. A torn last entry (shorter than its
// length says) is a write that never returned: it is cut off. A bad
// checksum before the end is corruption.
func (s *Store) replayLog() error {
	p := filepath.Join(s.dir, logName)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vectors: read log: %w", err)
	}
	off := 0
	for off < len(b) {
		if len(b)-off < 8 {
			break // torn header
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		sum := binary.LittleEndian.Uint32(b[off+4:])
		if n > maxLogEntry {
			return fmt.Errorf("%w: log entry at %d claims %d bytes", ErrCorrupt, off, n)
		}
		if len(b)-off-8 < n {
			break // torn payload
		}
		payload := b[off+8 : off+8+n]
		if crc32.Checksum(payload, castagnoli) != sum {
			if off+8+n == len(b) {
				break // the last entry, torn inside its payload
			}
			return fmt.Errorf("%w: log entry at %d fails its checksum", ErrCorrupt, off)
		}
		if err := s.replayEntry(payload); err != nil {
			return fmt.Errorf("%w: log entry at %d: %v", ErrCorrupt, off, err)
		}
		off += 8 + n
	}
	if off < len(b) {
		s.log.Warn("vector index log: torn last entry cut off", "dir", s.dir, "bytes", len(b)-off)
		if err := os.Truncate(p, int64(off)); err != nil {
			return fmt.Errorf("vectors: truncate log: %w", err)
		}
	}
	return nil
}

func (s *Store) replayEntry(payload []byte) error {
	d := &Dec{B: payload}
	switch op := d.U8(); op {
	case 'U':
		n := int(d.U32())
		var batch []vectors.Item
		for range n {
			it := vectors.Item{ID: d.Str(), ProjectID: d.Str(), Type: d.Str(), DeviceID: d.Str(), TaskID: d.Str()}
			it.Time = time.UnixMilli(d.I64()).UTC()
			dim := int(d.U16())
			if d.Err != nil {
				return d.Err
			}
			it.Vector = make([]float32, dim)
			for j := range it.Vector {
				it.Vector[j] = d.F32()
			}
			if d.Err != nil {
				return d.Err
			}
			batch = append(batch, it)
		}
		if err := vectors.CheckItems(batch, s.eng.DimOf); err != nil {
			return err
		}
		s.eng.Apply(batch)
	case 'D':
		n := int(d.U32())
		ids := make([]string, 0, n)
		for range n {
			id := d.Str()
			if d.Err != nil {
				return d.Err
			}
			ids = append(ids, id)
		}
		s.eng.Remove(ids)
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	if len(d.B) != 0 {
		return errors.New("trailing bytes")
	}
	return d.Err
}

// maybeSnapshot starts a snapshot in the background once the log is large.
func (s *Store) maybeSnapshot() {
	s.logMu.Lock()
	big := s.logSize >= s.snapBytes
	s.logMu.Unlock()
	if !big || s.rebuilding.Load() {
		return
	}
	s.SnapshotIfIdle(true)
}

// SnapshotIfIdle writes a snapshot unless one is being written, in the
// background or (background false) before it returns; engines call it
// after work that shrinks the files (a compaction).
func (s *Store) SnapshotIfIdle(background bool) {
	if !s.snapping.CompareAndSwap(false, true) {
		return
	}
	run := func() {
		defer s.snapping.Store(false)
		if err := s.snapshot(); err != nil {
			s.log.Error("vector index snapshot failed", "dir", s.dir, "err", err)
		}
	}
	if !background {
		run()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		run()
	}()
}

// snapshot writes every partition to a new snapshot file, renames it over
// the old one and empties the log. Writes wait meanwhile; searches go on.
func (s *Store) snapshot() error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	p := filepath.Join(s.dir, snapName)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("vectors: snapshot: %w", err)
	}
	werr := s.writeSnapshot(f)
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
		werr = syncDir(s.dir)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("vectors: snapshot: %w", werr)
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.logf == nil {
		return nil
	}
	if err := s.logf.Truncate(0); err != nil {
		return fmt.Errorf("vectors: empty log: %w", err)
	}
	if err := s.logf.Sync(); err != nil {
		return fmt.Errorf("vectors: empty log: %w", err)
	}
	s.logSize = 0
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

func (s *Store) writeSnapshot(f io.Writer) error {
	w := newWriter(f)
	w.B = append(w.B, s.magic...)
	if err := s.eng.WriteSnapshot(w); err != nil {
		return err
	}
	if err := w.Flush(true); err != nil {
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

// readSnapshot loads the snapshot, if there is one.
func (s *Store) readSnapshot() error {
	f, err := os.Open(filepath.Join(s.dir, snapName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vectors: open snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("vectors: %w", err)
	}
	if st.Size() < int64(len(s.magic))+8 {
		return fmt.Errorf("%w: snapshot of %d bytes", ErrCorrupt, st.Size())
	}
	r := newReader(io.LimitReader(f, st.Size()-4))
	if string(r.Next(len(s.magic)).Take(len(s.magic))) != s.magic {
		return fmt.Errorf("%w: not a snapshot of this engine (magic)", ErrCorrupt)
	}
	if err := s.eng.ReadSnapshot(r); err != nil {
		return err
	}
	if r.Err != nil {
		return r.Err
	}
	if _, err := r.r.Peek(1); err != io.EOF {
		return fmt.Errorf("%w: bytes after the last partition", ErrCorrupt)
	}
	want := r.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(f, sum[:]); err != nil || binary.LittleEndian.Uint32(sum[:]) != want {
		return fmt.Errorf("%w: snapshot fails its checksum", ErrCorrupt)
	}
	return nil
}
