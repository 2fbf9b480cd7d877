package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// queueBatch bounds the events one staging transaction carries, and
// queueTries how often a batch is tried before its callers get the error.
const (
	queueBatch = 256
	queueTries = 3
)

// AuditQueue is the api.Auditor the gateway uses for the events it records
// after a call (creations, failures, denials): a group commit. Record
// hands the event to one goroutine and waits until it is committed; that
// goroutine stages (chainer.go), in one transaction, every event that
// queued while the previous transaction ran, so under concurrency many
// callers share one commit, and an answered call's event is never lost in
// a crash: the gateway answers after Record returns.
//
// The queue also runs the process's chainer, which moves staged events
// into the chain. Record blocks when the queue is full, so a slow store
// slows callers instead of dropping events; Close stages what is queued
// and chains what is staged. Reads through the same Audit (Search, List,
// Check) first wait for the events queued before them and chain what is
// staged, so a caller reads its own events.
type AuditQueue struct {
	a       *Audit
	log     *slog.Logger
	ch      chan queued
	done    chan struct{} // closed once the queue has staged all it will
	stop    chan struct{}
	chained chan struct{} // closed once the chainer has made its last pass
}

type queued struct {
	e    api.AuditEvent
	done chan error    // an event's: receives the outcome of its staging
	sync chan struct{} // a marker: closed once everything before it is staged
}

// StartQueue starts the audit log's queue and the process's chainer; the
// Audit's reads wait for the queue from now on. Call it once, before
// serving.
func (a *Audit) StartQueue(log *slog.Logger) *AuditQueue {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &AuditQueue{a: a, log: log, ch: make(chan queued, 4*queueBatch), done: make(chan struct{}), stop: make(chan struct{}),
		chained: make(chan struct{})}
	a.queue.Store(q)
	go q.run()
	go q.chain()
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

// Record queues e and returns once it is staged, or with the error that
// kept its batch from being staged; it blocks while the queue is full.
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

// Sync waits until every event queued before it is staged.
func (q *AuditQueue) Sync(ctx context.Context) error {
	m := queued{sync: make(chan struct{})}
	select {
	case q.ch <- m:
	case <-q.done:
		return nil // closed: everything was staged
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

// Close stops taking events, stages the queued ones and chains what is
// staged, or gives up when ctx ends (what is staged is chained by the next
// chainer or read).
func (q *AuditQueue) Close(ctx context.Context) error {
	close(q.stop)
	select {
	case <-q.done:
	case <-ctx.Done():
		return fmt.Errorf("iam: audit queue: %d events not staged: %w", len(q.ch), ctx.Err())
	}
	select {
	case <-q.chained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("iam: audit chainer: %w", ctx.Err())
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

// flush stages the batch's events, trying a few times, tells each event's
// caller the outcome and then releases the markers (which readers wait on
// whatever the outcome: a failed staging is reported to its callers).
func (q *AuditQueue) flush(batch []queued) {
	events := make([]api.AuditEvent, 0, len(batch))
	for _, it := range batch {
		if it.sync == nil {
			events = append(events, it.e)
		}
	}
	var err error
	for try, wait := 1, 50*time.Millisecond; len(events) > 0; try, wait = try+1, 2*wait {
		if err = q.a.stageBatch(context.Background(), events); err == nil || try == queueTries {
			break
		}
		q.log.Warn("audit staging failed; retrying", "events", len(events), "try", try, "err", err)
		time.Sleep(wait)
	}
	if err != nil {
		q.log.Error("audit events not staged", "events", len(events), "err", err)
	}
	for _, it := range batch {
		if it.sync != nil {
			close(it.sync)
		} else {
			it.done <- err
		}
	}
}

// Sync waits until the events this process queued so far are staged, and
// chains everything staged. Reads through this Audit do it themselves;
// another replica's reads chain what is staged too, and events are staged
// before the call that recorded them answers.
func (a *Audit) Sync(ctx context.Context) error { return a.sync(ctx) }

func (a *Audit) sync(ctx context.Context) error {
	if q := a.queue.Load(); q != nil {
		if err := q.Sync(ctx); err != nil {
			return err
		}
	}
	_, err := a.Chain(ctx)
	return err
}
