package iam

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Audit is the append-only audit log. Each event's hash covers the previous
// event's hash and its own fields, so editing or removing a row breaks the
// chain, which Verify detects.
type Audit struct {
	db  *store.DB
	now func() time.Time
}

// NewAudit returns the audit log over db.
func NewAudit(db *store.DB, now func() time.Time) *Audit {
	if now == nil {
		now = time.Now
	}
	return &Audit{db: db, now: now}
}

// AuditRecord is a stored audit event.
type AuditRecord struct {
	Seq  int64
	Time time.Time
	api.AuditEvent
	PrevHash, Hash string
}

func eventHash(prev string, seq, ms int64, e api.AuditEvent) string {
	h := sha256.New()
	for _, f := range []string{prev, strconv.FormatInt(seq, 10), strconv.FormatInt(ms, 10), e.ProjectID, e.Actor,
		e.Action, e.Resource, e.Result, e.SourceIP, e.RequestID, e.Detail} {
		h.Write([]byte(strconv.Itoa(len(f)))) // length-prefixed: no ambiguity between fields
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Record appends an event; it implements api.Auditor. The chain head row is
// locked for the transaction, so appends from several replicas serialize.
func (a *Audit) Record(ctx context.Context, e api.AuditEvent) error {
	if e.ProjectID == "" {
		e.ProjectID = "default"
	}
	e.Detail = clip(e.Detail, 4096)
	e.Resource = clip(e.Resource, 256)
	e.Action = clip(e.Action, 128)
	return a.db.InTx(ctx, func(tx *store.Tx) error {
		var seq int64
		var prev string
		if err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1"+tx.Dialect().ForUpdate()).Scan(&seq, &prev); err != nil {
			return fmt.Errorf("iam: audit head: %w", err)
		}
		seq++
		ms := a.now().UnixMilli()
		h := eventHash(prev, seq, ms, e)
		if _, err := tx.Exec(ctx, `INSERT INTO audit_events (seq, time_ms, project_id, actor, action, resource, result, source_ip, request_id, detail, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, seq, ms, e.ProjectID, e.Actor, e.Action, e.Resource, e.Result, e.SourceIP, e.RequestID, e.Detail, prev, h); err != nil {
			return fmt.Errorf("iam: audit insert: %w", err)
		}
		_, err := tx.Exec(ctx, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", seq, h)
		return err
	})
}

// List returns events with seq > after, oldest first, at most limit.
func (a *Audit) List(ctx context.Context, projectID string, after int64, limit int) ([]AuditRecord, error) {
	q := `SELECT seq, time_ms, project_id, actor, action, resource, result, source_ip, request_id, detail, prev_hash, hash
		FROM audit_events WHERE seq > ?`
	args := []any{after}
	if projectID != "" {
		q += " AND project_id = ?"
		args = append(args, projectID)
	}
	rows, err := a.db.Query(ctx, q+" ORDER BY seq LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var r AuditRecord
		var ms int64
		if err := rows.Scan(&r.Seq, &ms, &r.ProjectID, &r.Actor, &r.Action, &r.Resource, &r.Result, &r.SourceIP, &r.RequestID, &r.Detail, &r.PrevHash, &r.Hash); err != nil {
			return nil, err
		}
		r.Time = time.UnixMilli(ms).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// Verify walks the whole chain and returns an error naming the first event
// whose hash or link does not match.
func (a *Audit) Verify(ctx context.Context) (int64, error) {
	prev := ""
	var after, n int64
	for {
		batch, err := a.List(ctx, "", after, 500)
		if err != nil {
			return n, err
		}
		if len(batch) == 0 {
			return n, nil
		}
		for _, r := range batch {
			if r.Seq != after+1 {
				return n, fmt.Errorf("iam: audit chain broken: event %d missing", after+1)
			}
			if r.PrevHash != prev || eventHash(prev, r.Seq, r.Time.UnixMilli(), r.AuditEvent) != r.Hash {
				return n, fmt.Errorf("iam: audit chain broken at event %d", r.Seq)
			}
			prev, after = r.Hash, r.Seq
			n++
		}
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
