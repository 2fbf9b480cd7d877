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
// queueTries how often a batch is tried before its callers get the error.
const (
	queueBatch = 256
	queueTries = 3
)

// AuditQueue is the api.Auditor the gateway uses: a group commit. Record
// hands the event to one goroutine and waits until it is committed; that
// goroutine appends, in one transaction, every event that queued while the
// previous transaction ran. A transaction costs about as much as a small
// write action's own (on SQLite, every index page touched is written to
// the WAL at commit), so under concurrency many callers share one, and
// an answered call's event is never lost in a crash: the gateway answers
// after Record returns.
//
// Record blocks when the queue is full, so a slow store slows callers
// instead of dropping events; Close appends what is queued. Reads through
// the same Audit (Search, List, Check) first wait for the events queued
// before them, so a caller reads its own events.
type AuditQueue struct {
	a    *Audit
	log  *slog.Logger
	ch   chan queued
	done chan struct{}
	stop chan struct{}
}

type queued struct {
	e    api.AuditEvent
	done chan error    // an event's: receives the outcome of its append
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

// Record queues e and returns once it is committed, or with the error
// that kept its batch from being appended; it blocks while the queue is
// full.
func (q *AuditQueue) Record(ctx context.Context, e api.AuditEvent) error {
	select {
	case <-q.stop:
		return errQueueClosed
	default:
	}
	done := make(chan error, 1)
	select {
	case q.ch <- queued{e: e, done: done}:
	case <-q.stop:
		return errQueueClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
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
	var batch []queued
	for {
		var first queued
		select {
		case first = <-q.ch:
		case <-q.stop:
			// Drain: Record no longer adds, so the channel empties.
			for {
				select {
				case it := <-q.ch:
					batch = append(batch, it)
					if len(batch) == queueBatch {
						q.flush(batch)
						batch = batch[:0]
					}
					continue
				default:
				}
				q.flush(batch)
				return
			}
		}
		// A group commit: take what queued while the last transaction
		// ran, without waiting for more. One transaction of many events
		// costs about what one of a single event does.
		batch = append(batch[:0], first)
	gather:
		for len(batch) < queueBatch {
			select {
			case it := <-q.ch:
				batch = append(batch, it)
			default:
				break gather
			}
		}
		q.flush(batch)
		batch = batch[:0]
	}
}

// flush appends the batch's events, trying a few times, tells each event's
// caller the outcome and then releases the markers (which readers wait on
// whatever the outcome: a failed append is reported to its callers).
func (q *AuditQueue) flush(batch []queued) {
	events := make([]api.AuditEvent, 0, len(batch))
	for _, it := range batch {
		if it.sync == nil {
			events = append(events, it.e)
		}
	}
	var err error
	for try, wait := 1, 50*time.Millisecond; len(events) > 0; try, wait = try+1, 2*wait {
		if err = q.a.appendBatch(context.Background(), events); err == nil || try == queueTries {
			break
		}
		q.log.Warn("audit append failed; retrying", "events", len(events), "try", try, "err", err)
		time.Sleep(wait)
	}
	if err != nil {
		q.log.Error("audit events not appended", "events", len(events), "err", err)
	}
	for _, it := range batch {
		if it.sync != nil {
			close(it.sync)
		} else {
			it.done <- err
		}
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
// them once they are, which is before the call that recorded them answers.
func (a *Audit) Sync(ctx context.Context) error { return a.sync(ctx) }

func (a *Audit) sync(ctx context.Context) error {
	if q := a.queue.Load(); q != nil {
		return q.Sync(ctx)
	}
	return nil
}
