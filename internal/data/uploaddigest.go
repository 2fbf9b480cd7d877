package data

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/blob"
)

// An upload's SHA-256 is computed while its PATCH bodies are written, by a
// goroutine beside the one writing (the hash reads each 1 MiB buffer after
// it reached the file, while the next one is read from the network), and
// stored with the upload's completion. The running hash lives in the
// process's memory (see runningHashes): an upload resumed in another
// process, or after a restart, is hashed after its last PATCH instead, read
// back from the blob store by RunDigests, and until then its SHA256 is
// empty. Clients that want each chunk checked before it is accepted send
// Upload-Checksum.

// digestQueue bounds the uploads waiting for their digest in one process;
// those that do not fit (and those a crash interrupted) are found by the
// retention round.
const digestQueue = 1024

// RunDigests computes the SHA-256 of completed uploads, one at a time, until
// ctx ends. The platform runs it beside the retention loop on every replica
// that serves uploads.
func (s *Service) RunDigests(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-s.digests:
			if err := s.digest(ctx, id); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "upload digest failed", "upload", id, "err", err)
			}
		}
	}
}

// queueDigest asks RunDigests for an upload's SHA-256; a full queue leaves
// it to the next retention round.
func (s *Service) queueDigest(id string) {
	select {
	case s.digests <- id:
	default:
	}
}

// queueMissingDigests queues completed uploads that still lack their digest
// (the queue was full, or the process stopped before it got to them).
func (s *Service) queueMissingDigests(ctx context.Context) error {
	rows, err := s.db.Query(ctx, "SELECT id FROM uploads WHERE state = ? AND sha256 = '' ORDER BY created_at LIMIT ?", UploadCompleted, digestQueue/4)
	if err != nil {
		return fmt.Errorf("data: list uploads to digest: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		s.queueDigest(id)
	}
	return rows.Err()
}

// digest stores a completed upload's SHA-256, read back from the blob store.
func (s *Service) digest(ctx context.Context, id string) error {
	up, err := s.upload(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // deleted meanwhile
	}
	if err != nil || up.State != UploadCompleted || up.SHA256 != "" {
		return err
	}
	start := time.Now()
	sum, err := s.objectSHA256(ctx, up.BlobKey)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, "UPDATE uploads SET sha256 = ? WHERE id = ? AND sha256 = ''", sum, id); err != nil {
		return fmt.Errorf("data: store upload %s digest: %w", id, err)
	}
	s.m.uploads.WithLabelValues("digested").Inc()
	s.log.InfoContext(ctx, "upload digested", "upload", id, "size", up.Size, "sha256", sum, "duration", time.Since(start))
	return nil
}

// objectSHA256 hashes a stored object.
func (s *Service) objectSHA256(ctx context.Context, key string) (string, error) {
	rc, _, err := s.blobs.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	if _, err := io.CopyBuffer(h, blob.ContextReader(ctx, rc), *buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyBuffers holds the 1 MiB buffers that PATCH bodies and digests are
// copied through: fewer, larger reads and writes than io.Copy's 32 KiB.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// bodyReader passes a PATCH body to the staging store. Its WriteTo, which
// the staging store's io.Copy into the file uses, copies through 1 MiB
// buffers and starts the disk writing every writebackEvery bytes. With h
// set it also hashes what it wrote, beside the writing; hashed counts the
// bytes h got.
type bodyReader struct {
	io.Reader
	h      hash.Hash
	hashed *int64
}

const writebackEvery = 8 << 20

// fillAtLeast is how much a PATCH body's copy gathers before each write.
const fillAtLeast = 256 << 10

// WriteTo implements io.WriterTo.
func (r bodyReader) WriteTo(w io.Writer) (int64, error) {
	if r.h == nil {
		bp := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(bp)
		return r.copy(w, func() []byte { return *bp }, func([]byte) {})
	}
	// Two buffers: one is hashed while the other is filled and written.
	free := make(chan *[]byte, 2)
	for range 2 {
		free <- copyBuffers.Get().(*[]byte)
	}
	type chunk struct {
		bp *[]byte
		n  int
	}
	written := make(chan chunk, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range written {
			r.h.Write((*c.bp)[:c.n])
			*r.hashed += int64(c.n)
			free <- c.bp
		}
	}()
	var cur *[]byte
	n, err := r.copy(w, func() []byte { cur = <-free; return *cur }, func(b []byte) { written <- chunk{cur, len(b)} })
	close(written)
	<-done
	for range 2 {
		copyBuffers.Put(<-free)
	}
	return n, err
}

// copy reads into the buffers next gives and writes them to w, passing
// what was written of each to wrote (every buffer, written or not, goes to
// wrote exactly once, possibly empty).
func (r bodyReader) copy(w io.Writer, next func() []byte, wrote func([]byte)) (int64, error) {
	var total, unsynced int64
	for {
		buf := next()
		// Gather at least fillAtLeast bytes (a network read gives tens of
		// KiB): fewer writes, and fewer hand-overs to the hash.
		n, rerr := 0, error(nil)
		for n < min(fillAtLeast, len(buf)) && rerr == nil {
			var m int
			m, rerr = r.Read(buf[n:])
			n += m
		}
		k := 0
		var werr error
		if n > 0 {
			k, werr = w.Write(buf[:n])
			total += int64(k)
		}
		wrote(buf[:k])
		if werr != nil {
			return total, werr
		}
		if unsynced += int64(k); unsynced >= writebackEvery {
			startWriteback(w)
			unsynced = 0
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}
