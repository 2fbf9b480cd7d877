package iam

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Audit is the append-only audit log. Each event's hash covers the previous
// event's hash and its own fields, so editing or removing a row breaks the
// chain, which Verify detects. Retention removes a prefix of the chain and
// leaves a checkpoint signed with a key derived from the master key, from
// which the rest still verifies.
type Audit struct {
	db   *store.DB
	now  func() time.Time
	keys [][]byte // checkpoint keys: the first signs, every one verifies
	// queue, once started, is what reads wait for (StartQueue).
	queue   atomic.Pointer[AuditQueue]
	prepare sync.Once
	// idPrefix and idNext make staging ids (Audit.stage); staged wakes
	// the chainer once sinceChain events were staged (chainAt).
	idPrefix   int64
	idNext     atomic.Uint32
	staged     chan struct{}
	sinceChain atomic.Int64
	// inWriter: the store's write transactions lock the whole database
	// (SQLite), so writers chain in their own transactions (chainer.go);
	// unchained counts the events staged since one last did.
	inWriter  bool
	unchained atomic.Int64
	// known holds the events this process staged until they are chained.
	known   stagedCache
	metrics auditMetrics
}

// AuditOption configures an Audit.
type AuditOption func(*Audit)

// WithCheckpointKey sets the key that signs retention checkpoints
// (secrets.Box.DeriveKey("audit-checkpoint")); previous keys still verify
// a checkpoint signed before a master key rotation. Without a key the log
// cannot be truncated, and a checkpoint in the store makes Verify fail.
func WithCheckpointKey(key []byte, previous ...[]byte) AuditOption {
	return func(a *Audit) { a.keys = append([][]byte{key}, previous...) }
}

// NewAudit returns the audit log over db.
func NewAudit(db *store.DB, now func() time.Time, opts ...AuditOption) *Audit {
	if now == nil {
		now = time.Now
	}
	a := &Audit{db: db, now: now, idPrefix: int64(rand.Uint32() >> 1), staged: make(chan struct{}, 1),
		inWriter: db.Dialect().ForUpdate() == ""}
	for _, o := range opts {
		o(a)
	}
	return a
}

// AuditRecord is a stored audit event.
type AuditRecord struct {
	Seq  int64
	Time time.Time
	api.AuditEvent
	PrevHash, Hash string
}

// eventHash is the hash of an event after prev: SHA-256 over its fields,
// each written as its length, ':' and itself, so that no two events'
// fields run together alike. The fields are laid out in one buffer and
// hashed at once (a stack buffer for all but long details), which is what
// every chained event and every verified one pays.
func eventHash(prev string, seq, ms int64, e api.AuditEvent) string {
	var stack [1024]byte
	b := stack[:0]
	field := func(f string) {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
	}
	field(prev)
	var num [20]byte
	field(string(strconv.AppendInt(num[:0], seq, 10)))
	field(string(strconv.AppendInt(num[:0], ms, 10)))
	for _, f := range [...]string{e.ProjectID, e.Actor, e.Action, e.Resource, e.Result, e.SourceIP, e.RequestID, e.Detail} {
		field(f)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// head is the chain's last event: the audit_head row.
type head struct {
	seq  int64
	hash string
}

// The statements of an append.
const (
	insertQuery  = "INSERT INTO audit_events (" + auditColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	setHeadQuery = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"
)

func headQuery(d store.Dialect) string {
	return "SELECT seq, hash FROM audit_head WHERE id = 1" + d.ForUpdate()
}

// lockHead reads the chain head and locks it for the transaction, so that
// appends and truncations from several replicas serialize.
func lockHead(ctx context.Context, tx *store.Tx) (head, error) {
	var h head
	if err := tx.QueryRowCached(ctx, headQuery(tx.Dialect())).Scan(&h.seq, &h.hash); err != nil {
		return h, fmt.Errorf("iam: audit head: %w", err)
	}
	return h, nil
}

// Record appends an event to the chain, after what is staged; it
// implements api.Auditor.
func (a *Audit) Record(ctx context.Context, e api.AuditEvent) error {
	return a.db.InTx(ctx, func(tx *store.Tx) error {
		h, err := a.lockAndChain(ctx, tx)
		if err != nil {
			return err
		}
		_, err = a.appendTx(ctx, tx, h, e)
		return err
	})
}

// lockAndChain locks the head and chains a batch of what is staged, so
// that an event appended next comes after the events staged before it.
func (a *Audit) lockAndChain(ctx context.Context, tx *store.Tx) (head, error) {
	h, err := lockHead(ctx, tx)
	if err != nil {
		return h, err
	}
	h, _, err = a.chainTx(ctx, tx, h)
	return h, err
}

// WithEvent implements api.TxAuditor: the first transaction of the store
// that commits a change under the returned context stages event() in it
// (see chainer.go). The change and its event then commit together or not
// at all; the event costs one row in the change's commit and takes no
// lock that another write waits for. The returned func, once the event
// has committed, wakes the chainer (or, where writers chain, chains).
func (a *Audit) WithEvent(ctx context.Context, event func() (api.AuditEvent, bool)) (context.Context, func() bool) {
	a.prepare.Do(func() { a.db.PrepareCached(context.WithoutCancel(ctx), a.chainQueries()...) })
	// staged is the event as last staged: the one that committed, when
	// one did (a transaction that rolls back gives the unit to the next,
	// which stages it anew).
	var staged stagedEvent
	ctx, u := a.db.WithUnit(ctx, func(ctx context.Context, tx *store.Tx) (bool, error) {
		e, ok := event()
		if !ok {
			return false, nil
		}
		staged = a.stage(e)
		return true, a.stageTx(ctx, tx, staged)
	})
	// Staging is all the unit does: where the change is one statement,
	// the store may run the event's row with it more cheaply than in a
	// transaction of the caller's (store.Unit.SetRow).
	u.SetRow(func() (store.UnitRow, bool) {
		e, ok := event()
		if !ok {
			return store.UnitRow{}, false
		}
		staged = a.stage(e)
		return store.UnitRow{Into: stageInto, Args: staged.args()}, true
	})
	return ctx, func() bool {
		ok := u.Committed()
		if ok {
			a.known.put(staged)
			a.wake(1)
			a.chainAfterWrite(ctx)
		}
		return ok
	}
}

// WithEvent is the queue's Audit's WithEvent: an event written in the
// change's transaction does not pass through the queue.
func (q *AuditQueue) WithEvent(ctx context.Context, event func() (api.AuditEvent, bool)) (context.Context, func() bool) {
	return q.a.WithEvent(ctx, event)
}

// appendTx appends e after h, the locked head, and moves the head.
func (a *Audit) appendTx(ctx context.Context, tx *store.Tx, h head, e api.AuditEvent) (head, error) {
	h, err := a.insertTx(ctx, tx, h, e)
	if err != nil {
		return h, err
	}
	return h, setHead(ctx, tx, h)
}

func setHead(ctx context.Context, tx *store.Tx, h head) error {
	if _, err := tx.ExecCached(ctx, setHeadQuery, h.seq, h.hash); err != nil {
		return fmt.Errorf("iam: audit head: %w", err)
	}
	return nil
}

// insertTx inserts e after h without moving the stored head; the caller
// sets it once it has appended all it will.
func (a *Audit) insertTx(ctx context.Context, tx *store.Tx, h head, e api.AuditEvent) (head, error) {
	return a.insertBatchTx(ctx, tx, h, []stagedEvent{a.stage(e)})
}

// insertBatchTx inserts events after h, without moving the stored head,
// with multi-row INSERTs of the sizes in chainChunks.
func (a *Audit) insertBatchTx(ctx context.Context, tx *store.Tx, h head, events []stagedEvent) (head, error) {
	for len(events) > 0 {
		k := chunk(len(events))
		args := make([]any, 0, 12*k)
		for _, s := range events[:k] {
			e := s.e
			seq := h.seq + 1
			hash := eventHash(h.hash, seq, s.ms, e)
			args = append(args, seq, s.ms, e.ProjectID, e.Actor, e.Action, e.Resource, e.Result, e.SourceIP, e.RequestID, e.Detail, h.hash, hash)
			h = head{seq, hash}
		}
		if _, err := tx.ExecCached(ctx, insertChunkQuery(k), args...); err != nil {
			return h, fmt.Errorf("iam: audit insert: %w", err)
		}
		events = events[k:]
	}
	return h, nil
}

// chainChunks are the row counts of the statements that chaining runs
// (largest first): a batch of any length is cut into them, so that the
// multi-row INSERT and DELETE of a batch are statements compiled once
// (store.DB.PrepareCached) rather than anew for every length, which was
// about a quarter of chaining's time on SQLite.
var chainChunks = [...]int{64, 16, 4, 1}

// chunk returns the largest of chainChunks that is at most n (n > 0).
func chunk(n int) int {
	for _, k := range chainChunks {
		if k <= n {
			return k
		}
	}
	return 1
}

func insertChunkQuery(k int) string {
	return insertQuery + strings.Repeat(", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", k-1)
}

func deleteChunkQuery(k int) string {
	return "DELETE FROM audit_pending WHERE id IN (?" + strings.Repeat(", ?", k-1) + ")"
}

// chainQueries are the statements staging and chaining run, for
// PrepareCached.
func (a *Audit) chainQueries() []string {
	qs := []string{stageQuery, readStagedQuery, headQuery(a.db.Dialect()), setHeadQuery}
	for _, k := range chainChunks {
		qs = append(qs, insertChunkQuery(k), deleteChunkQuery(k), readRowsQuery(k))
	}
	return qs
}

// normalize fills in the default project and clips fields to their
// columns.
func normalize(e api.AuditEvent) api.AuditEvent {
	if e.ProjectID == "" {
		e.ProjectID = "default"
	}
	e.ProjectID = clip(e.ProjectID, 64)
	e.Actor = clip(e.Actor, 128)
	e.Detail = clip(e.Detail, 4096)
	e.Resource = clip(e.Resource, 256)
	e.Action = clip(e.Action, 128)
	e.Result = clip(e.Result, 128)
	e.SourceIP = clip(e.SourceIP, 64)
	e.RequestID = clip(e.RequestID, 64)
	return e
}

// AuditQuery selects events for Search. Empty fields select everything.
type AuditQuery struct {
	ProjectID string
	// Projects, when set, replaces ProjectID (a union list).
	Projects *store.Projects
	// Actors, Actions, Resources and Results each match any of their values.
	Actors, Actions, Resources, Results []string
	// Start is inclusive and End exclusive.
	Start, End time.Time
	// AfterSeq selects events after this sequence number.
	AfterSeq      int64
	Offset, Limit int
}

const auditColumns = "seq, " + eventColumns + ", prev_hash, hash"

// Search returns the events q selects, oldest first, and how many there
// are in all (before Offset and Limit).
func (a *Audit) Search(ctx context.Context, q AuditQuery) ([]AuditRecord, int, error) {
	if err := a.sync(ctx); err != nil {
		return nil, 0, err
	}
	var w store.Where
	if q.Projects != nil {
		w.InProjects("project_id", *q.Projects)
	} else {
		w.Eq("project_id", q.ProjectID)
	}
	w.In("actor", q.Actors).In("action", q.Actions).In("resource", q.Resources).In("result", q.Results)
	if q.AfterSeq > 0 {
		w.Add("seq > ?", q.AfterSeq)
	}
	if !q.Start.IsZero() {
		w.Add("time_ms >= ?", q.Start.UnixMilli())
	}
	if !q.End.IsZero() {
		w.Add("time_ms < ?", q.End.UnixMilli())
	}
	cond, args := w.SQL()
	var total int
	if err := a.db.QueryRow(ctx, "SELECT COUNT(*) FROM audit_events"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("iam: audit count: %w", err)
	}
	recs, err := a.query(ctx, "SELECT "+auditColumns+" FROM audit_events"+cond+" ORDER BY seq LIMIT ? OFFSET ?", append(args, q.Limit, q.Offset)...)
	return recs, total, err
}

// List returns events with seq > after, oldest first, at most limit.
func (a *Audit) List(ctx context.Context, projectID string, after int64, limit int) ([]AuditRecord, error) {
	if err := a.sync(ctx); err != nil {
		return nil, err
	}
	return a.list(ctx, projectID, after, limit)
}

func (a *Audit) list(ctx context.Context, projectID string, after int64, limit int) ([]AuditRecord, error) {
	var w store.Where
	cond, args := w.Add("seq > ?", after).Eq("project_id", projectID).SQL()
	return a.query(ctx, "SELECT "+auditColumns+" FROM audit_events"+cond+" ORDER BY seq LIMIT ?", append(args, limit)...)
}

func (a *Audit) query(ctx context.Context, q string, args ...any) ([]AuditRecord, error) {
	rows, err := a.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanRecord(rows *sql.Rows) (AuditRecord, error) {
	var r AuditRecord
	var ms int64
	err := rows.Scan(&r.Seq, &ms, &r.ProjectID, &r.Actor, &r.Action, &r.Resource, &r.Result, &r.SourceIP, &r.RequestID, &r.Detail, &r.PrevHash, &r.Hash)
	r.Time = time.UnixMilli(ms).UTC()
	return r, err
}

// Checkpoint is where the stored chain starts after a truncation: the last
// removed event's sequence number and hash, signed.
type Checkpoint struct {
	Seq  int64
	Hash string
	Time time.Time
	MAC  string
}

// IsZero reports that no truncation has happened: the chain starts at 1.
func (c Checkpoint) IsZero() bool { return c.Seq == 0 && c.Hash == "" && c.MAC == "" }

func checkpointMAC(key []byte, seq int64, hash string, ms int64) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "tianshu audit checkpoint v1\n%d\n%s\n%d", seq, hash, ms)
	return hex.EncodeToString(m.Sum(nil))
}

// signed reports whether one of the keys signed c.
func (a *Audit) signed(c Checkpoint) bool {
	got, err := hex.DecodeString(c.MAC)
	if err != nil {
		return false
	}
	ok := false
	for _, k := range a.keys {
		want, _ := hex.DecodeString(checkpointMAC(k, c.Seq, c.Hash, c.Time.UnixMilli()))
		ok = hmac.Equal(got, want) || ok
	}
	return ok
}

type queryRower interface {
	QueryRow(ctx context.Context, query string, args ...any) *store.Row
}

func readCheckpoint(ctx context.Context, q queryRower) (Checkpoint, error) {
	var c Checkpoint
	var ms int64
	if err := q.QueryRow(ctx, "SELECT seq, hash, time_ms, mac FROM audit_checkpoint WHERE id = 1").Scan(&c.Seq, &c.Hash, &ms, &c.MAC); err != nil {
		return c, fmt.Errorf("iam: audit checkpoint: %w", err)
	}
	c.Time = time.UnixMilli(ms).UTC()
	return c, nil
}

// Checkpoint returns the current checkpoint (zero before any truncation).
func (a *Audit) Checkpoint(ctx context.Context) (Checkpoint, error) { return readCheckpoint(ctx, a.db) }

// Reasons a chain breaks, as VerifyResult.Reason gives them.
const (
	BreakHash       = "hash mismatch"                 // the row's fields do not give its hash: it was edited
	BreakPrevHash   = "prev_hash mismatch"            // the row does not link to the one before it
	BreakMissing    = "missing row"                   // a sequence number has no row: it was deleted
	BreakHead       = "head mismatch"                 // the last row is not the one the chain head names
	BreakCheckpoint = "checkpoint signature mismatch" // the checkpoint was not signed by the platform's key
)

// VerifyResult is what Check found.
type VerifyResult struct {
	Valid bool
	// Checked counts the events whose hash and link were checked.
	Checked int64
	// Checkpoint is where the walk started (zero: at the first event).
	Checkpoint Checkpoint
	// HeadSeq and HeadHash are the chain head when the walk began; an
	// operator who notes them can later tell that nothing before them
	// changed, even by someone who rewrote the whole chain.
	HeadSeq  int64
	HeadHash string
	// BrokenSeq and Reason name the first broken link when not Valid.
	BrokenSeq int64
	Reason    string
	// Pending counts the events staged and not yet chained when the walk
	// ended: those committed while it ran (it chains the others first).
	Pending int64
}

// verifyPage is how many events Check reads at a time.
const verifyPage = 500

// Check walks the chain from the checkpoint in pages and reports the first
// broken link. An error is returned only when the store could not be read.
func (a *Audit) Check(ctx context.Context) (VerifyResult, error) {
	for attempt := 0; ; attempt++ {
		res, err := a.check(ctx)
		if err != nil || res.Valid || res.Reason != BreakMissing || attempt == 2 {
			return res, err
		}
		// A truncation that ran during the walk removes rows ahead of it;
		// when the checkpoint moved, walk again from the new one.
		cp, err := a.Checkpoint(ctx)
		if err != nil || (cp.Seq == res.Checkpoint.Seq && cp.MAC == res.Checkpoint.MAC) {
			return res, err
		}
	}
}

func (a *Audit) check(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	if err := a.sync(ctx); err != nil {
		return res, err
	}
	// The head first: rows appended during the walk are checked too, but
	// the head must be reached.
	if err := a.db.QueryRow(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&res.HeadSeq, &res.HeadHash); err != nil {
		return res, fmt.Errorf("iam: audit head: %w", err)
	}
	cp, err := a.Checkpoint(ctx)
	if err != nil {
		return res, err
	}
	res.Checkpoint = cp
	broken := func(seq int64, why string) (VerifyResult, error) {
		res.BrokenSeq, res.Reason = seq, why
		return res, nil
	}
	if !cp.IsZero() {
		if len(a.keys) == 0 {
			return res, errors.New("iam: the audit log has a checkpoint but no checkpoint key is configured")
		}
		if !a.signed(cp) {
			return broken(cp.Seq, BreakCheckpoint)
		}
	}
	prev, after := cp.Hash, cp.Seq
	for {
		batch, err := a.list(ctx, "", after, verifyPage)
		if err != nil {
			return res, err
		}
		for _, r := range batch {
			switch {
			case r.Seq != after+1:
				return broken(after+1, BreakMissing)
			case r.PrevHash != prev:
				return broken(r.Seq, BreakPrevHash)
			case eventHash(prev, r.Seq, r.Time.UnixMilli(), r.AuditEvent) != r.Hash:
				return broken(r.Seq, BreakHash)
			case r.Seq == res.HeadSeq && r.Hash != res.HeadHash:
				return broken(r.Seq, BreakHead)
			}
			prev, after = r.Hash, r.Seq
			res.Checked++
		}
		if len(batch) < verifyPage {
			break
		}
	}
	if after < res.HeadSeq {
		return broken(after+1, BreakMissing) // rows at the end were removed
	}
	if res.Pending, err = a.Pending(ctx); err != nil {
		return res, err
	}
	res.Valid = true
	return res, nil
}

// Verify walks the whole chain and returns the number of events checked,
// and an error naming the first event whose hash or link does not match.
func (a *Audit) Verify(ctx context.Context) (int64, error) {
	res, err := a.Check(ctx)
	if err != nil || res.Valid {
		return res.Checked, err
	}
	return res.Checked, fmt.Errorf("iam: audit chain broken at event %d: %s", res.BrokenSeq, res.Reason)
}

// clip returns s cut to at most n bytes and made valid UTF-8 (a column of
// a store that checks its text would refuse it otherwise, and the chain
// hashes what the column holds).
func clip(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s[:min(len(s), n)], "")
}
