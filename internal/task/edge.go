package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// maxEdgeTasks bounds the tasks one edge node is sent at a time.
const maxEdgeTasks = 1000

// EdgeTasks returns the tasks placed on an edge node, oldest first.
func (s *Service) EdgeTasks(ctx context.Context, nodeID string) ([]*Task, error) {
	rows, err := s.db.Query(ctx, "SELECT "+taskColumns+" FROM tasks WHERE edge_node = ? ORDER BY created_at, id LIMIT ?", nodeID, maxEdgeTasks)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// StopEdge stops every task placed on an edge node that is being deleted:
// desired stopped, status Stopped with the reason, an event each. They
// keep their edge node, so that StartTask refuses them by name rather than
// run them on a worker that cannot reach the site's cameras. It returns
// how many tasks it stopped.
func (s *Service) StopEdge(ctx context.Context, nodeID, reason string) (int, error) {
	ts, err := s.EdgeTasks(ctx, nodeID)
	if err != nil {
		return 0, err
	}
	now := s.now().UnixMilli()
	for _, t := range ts {
		if _, err := s.db.Exec(ctx, `UPDATE tasks SET desired_state = ?, status = ?, reason = ?, updated_at = ? WHERE id = ? AND edge_node = ?`,
			DesiredStopped, StatusStopped, reason, now, t.ID, nodeID); err != nil {
			return 0, err
		}
		s.Event(ctx, t.ID, "stopped", "", reason)
	}
	return len(ts), nil
}

// EdgeState is what an edge node reports of one of its tasks.
type EdgeState struct {
	Status, Reason, Error string
	FlowVersion           int64
}

// ReportEdge records an edge node's report of a task placed on it; a
// report of a task placed elsewhere changes nothing.
func (s *Service) ReportEdge(ctx context.Context, nodeID, taskID string, st EdgeState) error {
	_, err := s.db.Exec(ctx, `UPDATE tasks SET status = ?, reason = ?, edge_version = ?, edge_error = ?, updated_at = ?
		WHERE id = ? AND edge_node = ? AND (status <> ? OR reason <> ? OR edge_version <> ? OR edge_error <> ?)`,
		st.Status, clip(st.Reason, 1024), st.FlowVersion, clip(st.Error, 1024), s.now().UnixMilli(),
		taskID, nodeID, st.Status, clip(st.Reason, 1024), st.FlowVersion, clip(st.Error, 1024))
	return err
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// Apply makes the local task t.ID (on an edge, a task the cloud placed
// here) match t: created when missing, moved to t's flow version and
// parameters, started or stopped. A task that already matches is left
// alone, so applying the same state again restarts nothing. The flow
// version must exist here already.
func (s *Service) Apply(ctx context.Context, t *Task) error {
	cur, err := s.Get(ctx, t.ID)
	if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
		if err := checkSources(t.Sources); err != nil {
			return err
		}
		n := *t
		n.EdgeNode, n.NodeID = "", ""
		n.Status = StatusStopped
		if n.Desired == DesiredRunning {
			n.Status = StatusPending
		}
		n.CreatedAt, n.UpdatedAt = s.now(), s.now()
		err := s.db.InTx(ctx, func(tx *store.Tx) error { return s.insertTask(ctx, tx, &n) })
		if err != nil {
			return fmt.Errorf("task: insert: %w", err)
		}
		s.Event(ctx, t.ID, "created", "", fmt.Sprintf("from the cloud: flow %s version %d", t.FlowID, t.FlowVersion))
		return nil
	}
	if err != nil {
		return err
	}
	if cur.FlowID != t.FlowID {
		return errors.New("task: the flow of an edge task cannot change")
	}
	if _, _, err := s.MoveToVersion(ctx, t.ID, t.FlowVersion, t.Parameters); err != nil {
		return err
	}
	switch {
	case t.Desired == DesiredRunning && cur.Desired != DesiredRunning:
		return s.Start(ctx, t.ID)
	case t.Desired != DesiredRunning && cur.Desired == DesiredRunning:
		return s.Stop(ctx, t.ID)
	}
	return nil
}
