package iam

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/iam/auditconfig"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// ErrChainBroken is wrapped by Truncate when the events it would remove do
// not verify: they are kept as evidence, and the operator must look.
var ErrChainBroken = errors.New("iam: audit chain broken")

// TruncateBatch bounds how many events one Truncate removes, so that one
// transaction stays short; RunRetention calls it until it removes fewer.
const TruncateBatch = 10000

// Truncation is what one Truncate did.
type Truncation struct {
	// ThroughSeq is the last removed event (the new checkpoint); 0 when
	// nothing was old enough.
	ThroughSeq int64
	Deleted    int64
}

// Truncate removes the oldest events recorded before cutoff, at most batch
// of them, in one transaction that also signs a new checkpoint and appends
// a TruncateAuditLog event. Only a prefix of the chain is removed: an
// event is kept while any before it is younger than cutoff (clocks of
// replicas differ). The removed events are verified first; a broken link
// among them fails with ErrChainBroken and removes nothing, so retention
// never erases the evidence of tampering.
func (a *Audit) Truncate(ctx context.Context, cutoff time.Time, batch int) (Truncation, error) {
	var out Truncation
	if len(a.keys) == 0 {
		return out, errors.New("iam: audit truncation needs a checkpoint key")
	}
	err := a.db.InTx(ctx, func(tx *store.Tx) error {
		h, err := a.lockAndChain(ctx, tx)
		if err != nil {
			return err
		}
		cp, err := readCheckpoint(ctx, tx)
		if err != nil {
			return err
		}
		var young sql.NullInt64
		if err := tx.QueryRow(ctx, "SELECT MIN(seq) FROM audit_events WHERE seq > ? AND time_ms >= ?", cp.Seq, cutoff.UnixMilli()).Scan(&young); err != nil {
			return fmt.Errorf("iam: audit truncate: %w", err)
		}
		through := h.seq
		if young.Valid {
			through = young.Int64 - 1
		}
		through = min(through, cp.Seq+int64(batch))
		if through <= cp.Seq {
			return nil
		}
		last, err := verifySegment(ctx, tx, cp, through)
		if err != nil {
			return err
		}
		res, err := tx.Exec(ctx, "DELETE FROM audit_events WHERE seq <= ?", through)
		if err != nil {
			return fmt.Errorf("iam: audit truncate: %w", err)
		}
		n, _ := res.RowsAffected()
		ms := a.now().UnixMilli()
		if _, err := tx.Exec(ctx, "UPDATE audit_checkpoint SET seq = ?, hash = ?, time_ms = ?, mac = ? WHERE id = 1",
			through, last, ms, checkpointMAC(a.keys[0], through, last, ms)); err != nil {
			return fmt.Errorf("iam: audit checkpoint: %w", err)
		}
		detail, _ := json.Marshal(map[string]any{"ThroughSeq": through, "Deleted": n, "Cutoff": cutoff.UTC().Format(time.RFC3339)})
		if _, err := a.appendTx(ctx, tx, h, api.AuditEvent{Actor: "system", Action: "TruncateAuditLog", Resource: "audit",
			Result: "OK", Detail: string(detail)}); err != nil {
			return err
		}
		out = Truncation{ThroughSeq: through, Deleted: n}
		return nil
	})
	return out, err
}

// verifySegment checks the chain from cp through seq `through` and returns
// the hash of event `through`.
func verifySegment(ctx context.Context, tx *store.Tx, cp Checkpoint, through int64) (string, error) {
	rows, err := tx.Query(ctx, "SELECT "+auditColumns+" FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq", cp.Seq, through)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	prev, after := cp.Hash, cp.Seq
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return "", err
		}
		switch {
		case r.Seq != after+1:
			return "", fmt.Errorf("%w at event %d: %s; nothing truncated", ErrChainBroken, after+1, BreakMissing)
		case r.PrevHash != prev:
			return "", fmt.Errorf("%w at event %d: %s; nothing truncated", ErrChainBroken, r.Seq, BreakPrevHash)
		case eventHash(prev, r.Seq, r.Time.UnixMilli(), r.AuditEvent) != r.Hash:
			return "", fmt.Errorf("%w at event %d: %s; nothing truncated", ErrChainBroken, r.Seq, BreakHash)
		}
		prev, after = r.Hash, r.Seq
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if after != through {
		return "", fmt.Errorf("%w at event %d: %s; nothing truncated", ErrChainBroken, after+1, BreakMissing)
	}
	return prev, nil
}

// retentionSetting names the settings row holding the retention last
// recorded in the log.
const retentionSetting = "audit.retention"

// NoteRetention appends a SetAuditRetention event when retention differs
// from the one last noted, so that a change of retention (shortening it to
// erase history, say) is itself in the log.
func (a *Audit) NoteRetention(ctx context.Context, retention time.Duration) error {
	return a.db.InTx(ctx, func(tx *store.Tx) error {
		h, err := a.lockAndChain(ctx, tx)
		if err != nil {
			return err
		}
		prev := time.Duration(0).String()
		err = tx.QueryRow(ctx, "SELECT value FROM settings WHERE name = ?", retentionSetting).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("iam: audit retention: %w", err)
		}
		if prev == retention.String() {
			return nil
		}
		detail, _ := json.Marshal(map[string]string{"Retention": retention.String(), "Previous": prev})
		if _, err := a.appendTx(ctx, tx, h, api.AuditEvent{Actor: "system", Action: "SetAuditRetention", Resource: "audit",
			Result: "OK", Detail: string(detail)}); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)"+
			tx.Dialect().OnConflict([]string{"name"}, "value", "updated_at"), retentionSetting, retention.String(), a.now().UnixMilli())
		return err
	})
}

// RunRetention notes the configured retention in the log, then every
// cfg.RetentionInterval removes events older than cfg.Retention, until
// ctx ends. With a retention of 0 it only notes it. Failures are logged
// and retried at the next interval.
func (a *Audit) RunRetention(ctx context.Context, cfg auditconfig.Config, log *slog.Logger) error {
	if err := a.NoteRetention(ctx, cfg.Retention); err != nil && ctx.Err() == nil {
		log.Error("audit retention not noted", "err", err)
	}
	if cfg.Retention <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(cfg.RetentionInterval)
	defer t.Stop()
	for {
		for {
			res, err := a.Truncate(ctx, a.now().Add(-cfg.Retention), TruncateBatch)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("audit truncation failed", "err", err)
				}
				break
			}
			if res.Deleted > 0 {
				log.Info("audit log truncated", "through_seq", res.ThroughSeq, "deleted", res.Deleted)
			}
			if res.Deleted < TruncateBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
