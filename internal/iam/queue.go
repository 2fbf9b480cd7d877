package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// queueBatch bounds the events one append transaction carries, and
// queueLinger how long the queue gathers events after the first before it
// appends them: a crash loses at most that much.
const (
	queueBatch  = 256
	queueLinger = 10 * time.Millisecond
)

// AuditQueue is the api.Auditor the gateway uses: Record hands the event
// to a goroutine that appends whatever has queued meanwhile in one
// transaction, so a call waits for neither the append nor its commit.
// A transaction costs as much as a small write action's own (on SQLite,
// every index page touched is written to the WAL at commit), so appending
// each event in a transaction of its own would add several times the
// action's time; a batch costs about one.
//
// The trade: an event is committed a moment after the answer, so a crash
// in between loses the events still queued (a batch at most, usually one
// or none). Record blocks when the queue is full, so a slow store slows
// callers instead of dropping events; Close appends what is queued.
// Reads through the same Audit (Search, List, Check) first wait for the
// events queued before them, so a caller reads its own events.
type AuditQueue struct {
	a    *Audit
	log  *slog.Logger
	ch   chan queued
	done chan struct{}
	stop chan struct{}
}

type queued struct {
	e    api.AuditEvent
	sync chan struct{} // a marker: closed once everything before it is appended
}

// StartQueue starts the audit log's queue; the Audit's reads wait for it
// from now on. Call it once, before serving.
func (a *Audit) StartQueue(log *slog.Logger) *AuditQueue {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &AuditQueue{a: a, log: log, ch: make(chan queued, 4*queueBatch), done: make(chan struct{}), stop: make(chan struct{})}
	a.queue.Store(q)
	go q.run()
	return q
}

// Auditor returns what the gateway should record through: the queue when
// one is started, else the Audit itself.
func (a *Audit) Auditor() api.Auditor {
	if q := a.queue.Load(); q != nil {
		return q
	}
	return a
}

var errQueueClosed = errors.New("iam: audit queue closed")

// Record queues e; it blocks while the queue is full.
func (q *AuditQueue) Record(ctx context.Context, e api.AuditEvent) error {
	select {
	case <-q.stop:
		return errQueueClosed
	default:
	}
	select {
	case q.ch <- queued{e: e}:
		return nil
	case <-q.stop:
		return errQueueClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sync waits until every event queued before it is appended.
func (q *AuditQueue) Sync(ctx context.Context) error {
	m := queued{sync: make(chan struct{})}
	select {
	case q.ch <- m:
	case <-q.done:
		return nil // closed: everything was appended
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-m.sync:
		return nil
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking events and appends the queued ones, or gives up when
// ctx ends.
func (q *AuditQueue) Close(ctx context.Context) error {
	close(q.stop)
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("iam: audit queue: %d events not appended: %w", len(q.ch), ctx.Err())
	}
}

func (q *AuditQueue) run() {
	defer close(q.done)
	batch := make([]api.AuditEvent, 0, queueBatch)
	var markers []chan struct{}
	for {
		var first queued
		select {
		case first = <-q.ch:
		case <-q.stop:
			// Drain: Record no longer adds, so the channel empties.
			for {
				select {
				case first = <-q.ch:
				default:
					q.flush(batch, markers)
					return
				}
				if first.sync != nil {
					markers = append(markers, first.sync)
				} else {
					batch = append(batch, first.e)
				}
				if len(batch) == queueBatch {
					q.flush(batch, markers)
					batch, markers = batch[:0], nil
				}
			}
		}
		take := func(it queued) {
			if it.sync != nil {
				markers = append(markers, it.sync)
			} else {
				batch = append(batch, it.e)
			}
		}
		take(first)
		// Gather for a moment: one transaction of many events costs about
		// what one of a single event does. A reader waiting (a marker) or
		// a stop cuts the wait short.
		linger := time.NewTimer(queueLinger)
	gather:
		for len(batch) < queueBatch && len(markers) == 0 {
			select {
			case it := <-q.ch:
				take(it)
			case <-linger.C:
				break gather
			case <-q.stop:
				break gather
			}
		}
		linger.Stop()
		q.flush(batch, markers)
		batch, markers = batch[:0], nil
	}
}

// flush appends batch, retrying while the store fails (the events are
// the record of changes already made), then releases the markers.
func (q *AuditQueue) flush(batch []api.AuditEvent, markers []chan struct{}) {
	for wait := 100 * time.Millisecond; len(batch) > 0; wait = min(2*wait, 10*time.Second) {
		err := q.a.appendBatch(context.Background(), batch)
		if err == nil {
			break
		}
		q.log.Error("audit append failed; retrying", "events", len(batch), "err", err)
		select {
		case <-time.After(wait):
		case <-q.stop:
			// Stopping: one last try, then the events are lost and said so.
			if err := q.a.appendBatch(context.Background(), batch); err != nil {
				q.log.Error("audit events lost", "events", len(batch), "err", err)
			}
			batch = nil
		}
	}
	for _, m := range markers {
		close(m)
	}
}

// appendBatch appends events in order in one transaction.
func (a *Audit) appendBatch(ctx context.Context, events []api.AuditEvent) error {
	return a.db.InTx(ctx, func(tx *store.Tx) error {
		h, err := lockHead(ctx, tx)
		if err != nil {
			return err
		}
		if h, err = a.insertBatchTx(ctx, tx, h, events); err != nil {
			return err
		}
		return setHead(ctx, tx, h)
	})
}

// insertBatchTx inserts events after h with one multi-row INSERT.
func (a *Audit) insertBatchTx(ctx context.Context, tx *store.Tx, h head, events []api.AuditEvent) (head, error) {
	var b strings.Builder
	b.WriteString("INSERT INTO audit_events (" + auditColumns + ") VALUES ")
	args := make([]any, 0, 12*len(events))
	ms := a.now().UnixMilli()
	for i, e := range events {
		e = normalize(e)
		seq := h.seq + 1
		hash := eventHash(h.hash, seq, ms, e)
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, seq, ms, e.ProjectID, e.Actor, e.Action, e.Resource, e.Result, e.SourceIP, e.RequestID, e.Detail, h.hash, hash)
		h = head{seq, hash}
	}
	if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
		return h, fmt.Errorf("iam: audit insert: %w", err)
	}
	return h, nil
}

// Sync waits until the events this process queued so far are appended.
// Reads through this Audit do it themselves; another replica's reads see
// them once they are (within queueLinger).
func (a *Audit) Sync(ctx context.Context) error { return a.sync(ctx) }

func (a *Audit) sync(ctx context.Context) error {
	if q := a.queue.Load(); q != nil {
		return q.Sync(ctx)
	}
	return nil
}
