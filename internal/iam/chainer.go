package iam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Events reach the chain in two steps. A writer stages its event: one row
// of audit_pending, unchained, in the transaction that makes its change
// (WithEvent) or in a transaction of its own (the queue). Staging locks
// nothing but the row it inserts, so audited writes on PostgreSQL and
// MariaDB commit side by side, and it writes one row with no index, so on
// SQLite it adds one page to the commit instead of five. Then the chainer
// (one per process, started with the queue) moves staged events into the
// chain in batches: in one transaction it locks the head, reads the staged
// rows oldest first, appends them hashed and deletes them. It runs once
// chainAt events were staged since its last pass, and every chainInterval:
// each pass is a transaction whose commit the writes beside it wait for
// (one more WAL flush, on PostgreSQL an fsync that takes as long as a
// write's own), so a pass carries many writes' events; visibility does not
// wait for it, since reads chain first. Several chainers (one
// per replica) may run at once: each pass holds the head, so passes take
// turns, and a pass reads what is staged only once it holds the head, when
// the pass before it has committed its deletions.
//
// Reads through an Audit chain what is staged first, so an event is
// visible as soon as its call has answered; Record, truncation and
// retention notes chain what is staged before they append, so the chain's
// order stays the order in which events were staged wherever they come
// from.
const (
	// chainBatch bounds the events one chaining transaction moves.
	chainBatch = 500
	// chainAt is how many events this process stages before it wakes
	// its chainer, and chainInterval how often the chainer looks without
	// a wake (for fewer events, and for events staged by a process that
	// died before its chainer ran).
	chainAt       = 256
	chainInterval = time.Second
	// writerChainEvery is how many events writers commit before one of
	// them chains, where writers chain (chainAfterWrite).
	writerChainEvery = 64
)

// eventColumns are the columns an event has staged and chained.
const eventColumns = "time_ms, project_id, actor, action, resource, result, source_ip, request_id, detail"

// stageInto is where an event is staged: the table and its columns.
const stageInto = "audit_pending (id, " + eventColumns + ")"

const stageQuery = "INSERT INTO " + stageInto + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// stagedEvent is an event with its time and staging id.
type stagedEvent struct {
	id, ms int64
	e      api.AuditEvent
}

// stage returns e normalized, timed now and with a fresh staging id: the
// process's random prefix and a counter, so that ids are unique across
// replicas and, ordered with the time, keep one process's staging order.
func (a *Audit) stage(e api.AuditEvent) stagedEvent {
	return stagedEvent{id: a.idPrefix<<32 | int64(a.idNext.Add(1)), ms: a.now().UnixMilli(), e: normalize(e)}
}

func (s stagedEvent) args() []any {
	e := s.e
	return []any{s.id, s.ms, e.ProjectID, e.Actor, e.Action, e.Resource, e.Result, e.SourceIP, e.RequestID, e.Detail}
}

// stageTx stages s in tx.
func (a *Audit) stageTx(ctx context.Context, tx *store.Tx, s stagedEvent) error {
	if _, err := tx.ExecCached(ctx, stageQuery, s.args()...); err != nil {
		return fmt.Errorf("iam: audit stage: %w", err)
	}
	return nil
}

// stageBatch stages events in order in one transaction, with one
// multi-row INSERT.
func (a *Audit) stageBatch(ctx context.Context, events []api.AuditEvent) error {
	var b strings.Builder
	b.WriteString(stageQuery)
	args := make([]any, 0, 10*len(events))
	staged := make([]stagedEvent, len(events))
	for i, e := range events {
		if i > 0 {
			b.WriteString(", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		}
		staged[i] = a.stage(e)
		args = append(args, staged[i].args()...)
	}
	err := a.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, b.String(), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("iam: audit stage: %w", err)
	}
	a.known.put(staged...)
	a.wake(len(events))
	return nil
}

// wake tells the chainer, if one runs, that n events were staged; it
// wakes it once chainAt were since its last pass. Where writers chain
// (chainInWriter) it lets the chainer sleep until its timer.
func (a *Audit) wake(n int) {
	if a.inWriter || a.sinceChain.Add(int64(n)) < chainAt {
		return
	}
	select {
	case a.staged <- struct{}{}:
	default:
	}
}

// chainAfterWrite chains what is staged once every writerChainEvery
// events committed by writers, where the store's write transactions lock
// the whole database (SQLite): there a chainer's transaction would make
// the next writer wait for it, and SQLite's busy wait sleeps whole
// milliseconds, while the writer that chains waits for no one. It runs
// after the writer's commit, so the write never waits for the chain
// head's lock inside its own transaction, and a failure keeps the write:
// the chainer's timer (which logs the error) or a read chains the events
// later.
func (a *Audit) chainAfterWrite(ctx context.Context) {
	if !a.inWriter || a.unchained.Add(1) < writerChainEvery {
		return
	}
	a.unchained.Store(0)
	if _, err := a.Chain(ctx); err != nil {
		a.metrics.failed("writer")
	}
}

// chainTx moves up to chainBatch staged events, oldest first, into the
// chain after h, the head tx holds locked, and moves the head; it returns
// the new head and how many it moved.
func (a *Audit) chainTx(ctx context.Context, tx *store.Tx, h head) (head, int, error) {
	batch, err := a.readStaged(ctx, tx)
	if err != nil || len(batch) == 0 {
		return h, 0, err
	}
	// Forgotten before the commit: should it fail, the events are read
	// from the table next time.
	a.known.forget(batch)
	if h, err = a.insertBatchTx(ctx, tx, h, batch); err != nil {
		return h, 0, err
	}
	for rest := batch; len(rest) > 0; {
		k := chunk(len(rest))
		args := make([]any, k)
		for i, s := range rest[:k] {
			args[i] = s.id
		}
		res, err := tx.ExecCached(ctx, deleteChunkQuery(k), args...)
		if err != nil {
			return h, 0, fmt.Errorf("iam: audit chain: %w", err)
		}
		// Deleting another staged row than those chained would lose its
		// event: roll back rather than commit that.
		if n, err := res.RowsAffected(); err != nil || n != int64(k) {
			return h, 0, fmt.Errorf("iam: audit chain: %d staged events chained but %d deleted (%v)", k, n, err)
		}
		rest = rest[k:]
	}
	if err := setHead(ctx, tx, h); err != nil {
		return h, 0, err
	}
	a.metrics.moved(len(batch)) // counted before tx commits: a rare rollback counts them twice
	return h, len(batch), nil
}

// readStagedQuery reads the order of what is staged: ids and times only.
// The events themselves are mostly known to the process that staged them
// (stagedCache), so that chaining an event reads its row's key rather than
// its ten columns, which was about a third of chaining's time on SQLite;
// the rest are read by id (readRowsQuery).
const readStagedQuery = "SELECT id, time_ms FROM audit_pending ORDER BY time_ms, id LIMIT ?"

func readRowsQuery(k int) string {
	return "SELECT id, " + eventColumns + " FROM audit_pending WHERE id IN (?" + strings.Repeat(", ?", k-1) + ")"
}

// readStaged returns up to chainBatch staged events, oldest first.
func (a *Audit) readStaged(ctx context.Context, tx *store.Tx) ([]stagedEvent, error) {
	rows, err := tx.QueryCached(ctx, readStagedQuery, chainBatch)
	if err != nil {
		return nil, fmt.Errorf("iam: audit chain: %w", err)
	}
	defer rows.Close()
	var out []stagedEvent
	var unknown []int // indexes in out of the events read by id below
	for rows.Next() {
		var id, ms int64
		if err := rows.Scan(&id, &ms); err != nil {
			return nil, fmt.Errorf("iam: audit chain: %w", err)
		}
		s, ok := a.known.get(id, ms)
		if !ok {
			s = stagedEvent{id: id, ms: ms}
			unknown = append(unknown, len(out))
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("iam: audit chain: %w", err)
	}
	rows.Close()
	if len(unknown) > 0 {
		if err := readRows(ctx, tx, out, unknown); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readRows fills in the events of out at the indexes unknown from their
// staged rows, read by id.
func readRows(ctx context.Context, tx *store.Tx, out []stagedEvent, unknown []int) error {
	for rest := unknown; len(rest) > 0; {
		k := chunk(len(rest))
		args := make([]any, k)
		at := make(map[int64]int, k)
		for i, j := range rest[:k] {
			args[i], at[out[j].id] = out[j].id, j
		}
		rows, err := tx.QueryCached(ctx, readRowsQuery(k), args...)
		if err != nil {
			return fmt.Errorf("iam: audit chain: %w", err)
		}
		found := 0
		for rows.Next() {
			var s stagedEvent
			e := &s.e
			if err := rows.Scan(&s.id, &s.ms, &e.ProjectID, &e.Actor, &e.Action, &e.Resource, &e.Result, &e.SourceIP, &e.RequestID, &e.Detail); err != nil {
				rows.Close()
				return fmt.Errorf("iam: audit chain: %w", err)
			}
			j, ok := at[s.id]
			if !ok || out[j].ms != s.ms {
				rows.Close()
				return fmt.Errorf("iam: audit chain: staged event %d changed while it was chained", s.id)
			}
			out[j] = s
			found++
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("iam: audit chain: %w", err)
		}
		// The head's lock keeps other chainers from deleting them.
		if found != k {
			return fmt.Errorf("iam: audit chain: %d staged events listed but %d read", k, found)
		}
		rest = rest[k:]
	}
	return nil
}

// Chain moves every event staged so far into the chain and returns how
// many it moved. Reads do it themselves; the chainer does it in the
// background.
func (a *Audit) Chain(ctx context.Context) (int, error) {
	total := 0
	for {
		// Look first, outside a transaction: with nothing staged, no
		// transaction and no lock.
		var id int64
		err := a.db.QueryRow(ctx, "SELECT id FROM audit_pending LIMIT 1").Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			// Nothing staged: what this process still knows was chained
			// elsewhere (by another replica's chainer). An event staged
			// since is then read from its row.
			a.known.clear()
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("iam: audit chain: %w", err)
		}
		n := 0
		err = a.db.InTx(ctx, func(tx *store.Tx) error {
			h, err := lockHead(ctx, tx)
			if err != nil {
				return err
			}
			_, n, err = a.chainTx(ctx, tx, h)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < chainBatch {
			return total, nil
		}
	}
}

// Pending counts the events staged and not yet chained.
func (a *Audit) Pending(ctx context.Context) (int64, error) {
	var n int64
	if err := a.db.QueryRow(ctx, "SELECT COUNT(*) FROM audit_pending").Scan(&n); err != nil {
		return 0, fmt.Errorf("iam: audit pending: %w", err)
	}
	return n, nil
}

// chain is the chainer's loop: a pass at once (what a process that died
// left staged), then one after each wake or every chainInterval, and a
// last one once the queue has staged all it had.
func (q *AuditQueue) chain() {
	defer close(q.chained)
	q.a.prepare.Do(func() { q.a.db.PrepareCached(context.Background(), q.a.chainQueries()...) })
	tick := time.NewTicker(chainInterval)
	defer tick.Stop()
	for {
		q.chainPass()
		select {
		case <-q.done:
			q.chainPass()
			return
		case <-q.a.staged:
		case <-tick.C:
		}
	}
}

func (q *AuditQueue) chainPass() {
	q.a.sinceChain.Store(0)
	if _, err := q.a.Chain(context.Background()); err != nil {
		q.a.metrics.failed("chainer")
		q.log.Warn("audit events not chained; retrying", "err", err)
	}
}

// stagedCacheMax bounds the events a stagedCache holds: past it, it starts
// over (what it dropped is read from the table when chained).
const stagedCacheMax = 4 * chainBatch

// A stagedCache holds the events this process staged and saw commit, by
// staging id, until they are chained, so that chaining need not read
// them back. It is only a shortcut: an event it lacks (staged by another
// process, or dropped) is read from its row, and one chained elsewhere
// stays until the table is next seen empty or the cache starts over.
// The event chained is then the one the action committed, as its row
// held it: the store keeps what the row was given (normalize clips to the
// columns and makes text valid UTF-8).
type stagedCache struct {
	mu sync.Mutex
	m  map[int64]stagedEvent
}

func (c *stagedCache) put(events ...stagedEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m)+len(events) > stagedCacheMax {
		c.m = make(map[int64]stagedEvent, stagedCacheMax/4)
	}
	for _, s := range events {
		c.m[s.id] = s
	}
}

// get returns the event staged with id at ms.
func (c *stagedCache) get(id, ms int64) (stagedEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[id]
	return s, ok && s.ms == ms
}

func (c *stagedCache) forget(events []stagedEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range events {
		delete(c.m, s.id)
	}
}

func (c *stagedCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}
