package data

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrWriterClosed is returned by Write after Close: the record was not
// queued, and the caller must not acknowledge its source.
var ErrWriterClosed = errors.New("data: record writer closed")

// WriterOptions tune a Writer; zero fields take the defaults.
type WriterOptions struct {
	// BatchSize flushes as soon as this many records wait (default 1000).
	BatchSize int
	// FlushInterval flushes records that have waited this long, however
	// few (default 100 ms).
	FlushInterval time.Duration
	// QueueSize bounds the records queued but not yet written (default
	// 4×BatchSize); Write blocks while it is full.
	QueueSize int
	// OnFlush, when set, is called from the writer's goroutine after each
	// batch with its records and the outcome: nil once they are committed.
	// The tasks layer acknowledges bus messages here, so a message is acked
	// only after its record is durable. It must not call Write (it would
	// deadlock on a full queue).
	OnFlush func(recs []Record, err error)
}

// Writer batches records: it buffers them and writes each batch with
// multi-row INSERTs in one transaction, when BatchSize records wait, when
// the oldest has waited FlushInterval, on Flush and on Close.
//
// Crash safety: a record is durable only once its batch commits. Write
// returns when the record is queued (not yet durable); WriteSync, Flush and
// OnFlush report commits. A batch that fails is not retried: its records
// are reported failed (to WriteSync, Flush and OnFlush) so that the caller,
// which has not acknowledged their sources, can redeliver them.
type Writer struct {
	s   *Service
	o   WriterOptions
	in  chan item
	mu  sync.RWMutex // held for reading while sending on in; Close takes it to close in
	off bool
	out chan struct{} // closed when the goroutine has flushed everything and exited
}

// item is a queued record, or a flush request when flush is set.
type item struct {
	rec   Record
	done  chan error // non-nil for WriteSync and Flush
	flush bool
}

// NewWriter starts a batching writer. Close it to flush and stop.
func (s *Service) NewWriter(o WriterOptions) *Writer {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4 * o.BatchSize
	}
	w := &Writer{s: s, o: o, in: make(chan item, o.QueueSize), out: make(chan struct{})}
	go w.run()
	return w
}

// Write queues rec, filling in its ID (returned) and defaults, and returns
// once it is queued, blocking while the queue is full (back-pressure). It
// fails at once for an invalid record (ErrInvalidRecord), after Close
// (ErrWriterClosed) and when ctx ends.
func (w *Writer) Write(ctx context.Context, rec Record) (string, error) {
	if err := w.s.prepare(&rec); err != nil {
		return "", err
	}
	return rec.ID, w.send(ctx, item{rec: rec})
}

// WriteSync is Write that returns only once the record's batch has
// committed (nil) or failed. It waits for the batch, not for a transaction
// of its own, so many concurrent WriteSync calls still share batches.
func (w *Writer) WriteSync(ctx context.Context, rec Record) (string, error) {
	if err := w.s.prepare(&rec); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	if err := w.send(ctx, item{rec: rec, done: done}); err != nil {
		return "", err
	}
	select {
	case err := <-done:
		return rec.ID, err
	case <-ctx.Done():
		return rec.ID, ctx.Err() // it may still commit
	}
}

// Flush writes every record queued before it and returns the outcome of
// the last batch it wrote (earlier failures went to their own waiters).
func (w *Writer) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	if err := w.send(ctx, item{flush: true, done: done}); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) send(ctx context.Context, it item) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.off {
		return ErrWriterClosed
	}
	select {
	case w.in <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting records, writes every queued one and returns when
// done or when ctx ends (the goroutine then still finishes its writes).
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.off {
		w.off = true
		close(w.in)
	}
	w.mu.Unlock()
	select {
	case <-w.out:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) run() {
	defer close(w.out)
	batch := make([]Record, 0, w.o.BatchSize)
	var waiters []chan error
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	flush := func() error {
		if armed {
			timer.Stop()
			armed = false
		}
		var err error
		if len(batch) > 0 {
			// The writer outlives any one caller's context; a batch is
			// bounded by the store's own timeouts.
			err = w.s.insert(context.Background(), batch)
			if err != nil {
				w.s.log.Error("record batch failed", "records", len(batch), "err", err)
			}
			if w.o.OnFlush != nil {
				w.o.OnFlush(batch, err)
			}
		}
		for _, d := range waiters {
			d <- err
		}
		waiters = waiters[:0]
		// A fresh slice: OnFlush may keep the old one.
		batch = make([]Record, 0, w.o.BatchSize)
		return err
	}
	for {
		select {
		case it, ok := <-w.in:
			if !ok {
				flush()
				return
			}
			if it.flush {
				err := flush()
				it.done <- err
				continue
			}
			batch = append(batch, it.rec)
			if it.done != nil {
				waiters = append(waiters, it.done)
			}
			if len(batch) >= w.o.BatchSize {
				flush()
			} else if !armed {
				timer.Reset(w.o.FlushInterval)
				armed = true
			}
		case <-timer.C:
			armed = false
			flush()
		}
	}
}
