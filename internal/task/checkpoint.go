package task

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/tianshu-ai/tianshu/internal/store"
)

// maxPosition bounds a checkpoint's length (the column's).
const maxPosition = 256

// checkpoints holds a running task's newest source positions until the
// worker writes them: sources save as often as they like without waiting on
// the store, and the store sees at most one write per task per interval.
type checkpoints struct {
	mu      sync.Mutex
	pending map[int]string // by source index: the newest position not yet written
}

func newCheckpoints() *checkpoints { return &checkpoints{pending: map[int]string{}} }

// saver is SourceEnv.SavePosition for the source at index.
func (c *checkpoints) saver(index int) func(context.Context, string) error {
	return func(_ context.Context, pos string) error {
		if len(pos) > maxPosition {
			return fmt.Errorf("task: checkpoint of %d bytes; at most %d", len(pos), maxPosition)
		}
		c.mu.Lock()
		c.pending[index] = pos
		c.mu.Unlock()
		return nil
	}
}

// take returns the positions not yet written and forgets them.
func (c *checkpoints) take() map[int]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return nil
	}
	p := c.pending
	c.pending = map[int]string{}
	return p
}

// putBack returns positions whose write failed, unless a newer one came in
// meanwhile.
func (c *checkpoints) putBack(p map[int]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, pos := range p {
		if _, newer := c.pending[i]; !newer {
			c.pending[i] = pos
		}
	}
}

// loadCheckpoints returns a task's saved positions by source index.
func loadCheckpoints(ctx context.Context, db *store.DB, taskID string) (map[int]string, error) {
	rows, err := db.Query(ctx, "SELECT source_index, position FROM task_checkpoints WHERE task_id = ?", taskID)
	if err != nil {
		return nil, fmt.Errorf("task: load checkpoints: %w", err)
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var i int
		var pos string
		if err := rows.Scan(&i, &pos); err != nil {
			return nil, err
		}
		out[i] = pos
	}
	return out, rows.Err()
}

// writeCheckpoints writes a task's positions if the task is still placed on
// nodeID at epoch, and reports whether it was. The task row is locked for
// the check, so a scheduler moving the task waits for the write or comes
// first and fences it: a worker that lost the task (a zombie after a
// network partition) cannot move the next worker's checkpoint back.
func writeCheckpoints(ctx context.Context, db *store.DB, taskID, nodeID string, epoch int64, pos map[int]string, nowMs int64) (bool, error) {
	owner := false
	err := db.InTx(ctx, func(tx *store.Tx) error {
		owner = false
		var node string
		var ep int64
		err := tx.QueryRow(ctx, "SELECT node_id, epoch FROM tasks WHERE id = ?"+tx.Dialect().ForUpdate(), taskID).Scan(&node, &ep)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // deleted
		}
		if err != nil {
			return err
		}
		if node != nodeID || ep != epoch {
			return nil
		}
		owner = true
		// Update or insert, decided under the task row's lock: an upsert
		// is spelt differently in each dialect, and a failed insert would
		// abort a PostgreSQL transaction.
		rows, err := tx.Query(ctx, "SELECT source_index FROM task_checkpoints WHERE task_id = ?", taskID)
		if err != nil {
			return err
		}
		have := map[int]bool{}
		for rows.Next() {
			var i int
			if err := rows.Scan(&i); err != nil {
				rows.Close()
				return err
			}
			have[i] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, p := range pos {
			if have[i] {
				_, err = tx.Exec(ctx, "UPDATE task_checkpoints SET position = ?, epoch = ?, updated_at = ? WHERE task_id = ? AND source_index = ?",
					p, epoch, nowMs, taskID, i)
			} else {
				_, err = tx.Exec(ctx, "INSERT INTO task_checkpoints (task_id, source_index, position, epoch, updated_at) VALUES (?, ?, ?, ?, ?)",
					taskID, i, p, epoch, nowMs)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("task: save checkpoints: %w", err)
	}
	return owner, nil
}
