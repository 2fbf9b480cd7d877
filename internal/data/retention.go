package data

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Policy is how long a task's records are kept; a zero field sets no limit
// of its kind, and both limits apply when both are set.
type Policy struct {
	MaxAge   time.Duration // records older than this (by Time) go
	MaxCount int64         // only the newest MaxCount records stay
}

// SetRetention sets the retention policy of a task's records (the tasks
// layer calls it when a task is created or changed). A zero policy keeps
// records forever, or for the Retention loop's DefaultMaxAge.
func (s *Service) SetRetention(ctx context.Context, projectID, taskID string, p Policy) error {
	if projectID == "" {
		projectID = "default"
	}
	if p.MaxAge < 0 || p.MaxCount < 0 {
		return fmt.Errorf("data: retention of task %s: negative limit", taskID)
	}
	now := s.o.Now().UnixMilli()
	q := "INSERT INTO record_retention (task_id, project_id, max_age_ms, max_count, updated_at) VALUES (?, ?, ?, ?, ?)" +
		s.db.Dialect().OnConflict([]string{"task_id"}, "project_id", "max_age_ms", "max_count", "updated_at")
	if _, err := s.db.Exec(ctx, q, taskID, projectID, p.MaxAge.Milliseconds(), p.MaxCount, now); err != nil {
		return fmt.Errorf("data: set retention of task %s: %w", taskID, err)
	}
	return nil
}

// RetentionPolicy returns a task's policy; a task without one has the zero
// Policy.
func (s *Service) RetentionPolicy(ctx context.Context, taskID string) (Policy, error) {
	var age, count int64
	err := s.db.QueryRow(ctx, "SELECT max_age_ms, max_count FROM record_retention WHERE task_id = ?", taskID).Scan(&age, &count)
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("data: retention of task %s: %w", taskID, err)
	}
	return Policy{MaxAge: time.Duration(age) * time.Millisecond, MaxCount: count}, nil
}

// DeleteRetention forgets a task's policy (when the task is deleted; its
// records then fall under DefaultMaxAge).
func (s *Service) DeleteRetention(ctx context.Context, taskID string) error {
	_, err := s.db.Exec(ctx, "DELETE FROM record_retention WHERE task_id = ?", taskID)
	return err
}

// RetentionOptions tune the retention loop.
type RetentionOptions struct {
	// Interval between rounds (default 1 min).
	Interval time.Duration
	// DefaultMaxAge applies to records of tasks without a policy with a
	// MaxAge; 0 keeps them.
	DefaultMaxAge time.Duration
}

// Retention enforces retention in the background: each round deletes the
// records (and their objects) that the policies no longer keep, in batches
// of bounded size, and expires incomplete uploads past their deadline.
// Running it on several replicas at once is safe (deletes are idempotent),
// only wasteful.
type Retention struct {
	s *Service
	o RetentionOptions
}

// NewRetention returns the retention loop; start it with Run.
func (s *Service) NewRetention(o RetentionOptions) *Retention {
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	return &Retention{s: s, o: o}
}

// Run runs rounds every Interval until ctx ends, logging failures (a
// failed round is retried at the next tick). It returns ctx's error.
func (j *Retention) Run(ctx context.Context) error {
	t := time.NewTicker(j.o.Interval)
	defer t.Stop()
	for {
		if n, err := j.RunOnce(ctx); err != nil && ctx.Err() == nil {
			j.s.log.WarnContext(ctx, "retention round failed", "deleted", n, "err", err)
		} else if n > 0 {
			j.s.log.InfoContext(ctx, "retention round", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// RunOnce runs one round and returns how many records it deleted.
func (j *Retention) RunOnce(ctx context.Context) (int, error) {
	s := j.s
	now := s.o.Now()
	type pol struct {
		task, project string
		age, count    int64
	}
	rows, err := s.db.Query(ctx, "SELECT task_id, project_id, max_age_ms, max_count FROM record_retention")
	if err != nil {
		return 0, fmt.Errorf("data: list retention policies: %w", err)
	}
	var pols []pol
	for rows.Next() {
		var p pol
		if err := rows.Scan(&p.task, &p.project, &p.age, &p.count); err != nil {
			rows.Close()
			return 0, err
		}
		pols = append(pols, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	total := 0
	var errs []error
	for _, p := range pols {
		if p.age > 0 {
			n, err := s.deleteAll(ctx, "task_id = ? AND time_ms < ?", []any{p.task, now.UnixMilli() - p.age}, "retention")
			total += n
			errs = append(errs, err)
		}
		if p.count > 0 {
			n, err := s.trimToCount(ctx, p.task, p.count)
			total += n
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
	if j.o.DefaultMaxAge > 0 {
		n, err := s.deleteAll(ctx, "time_ms < ? AND task_id NOT IN (SELECT task_id FROM record_retention WHERE max_age_ms > 0)",
			[]any{now.Add(-j.o.DefaultMaxAge).UnixMilli()}, "retention")
		total += n
		errs = append(errs, err)
	}
	if err := s.expireUploads(ctx); err != nil {
		errs = append(errs, err)
	}
	return total, errors.Join(errs...)
}

// trimToCount deletes a task's records beyond its newest count.
func (s *Service) trimToCount(ctx context.Context, taskID string, count int64) (int, error) {
	// The oldest record kept bounds what goes: everything strictly older in
	// (time, id) order, the order queries page in.
	var t int64
	var id string
	err := s.db.QueryRow(ctx, "SELECT time_ms, id FROM records WHERE task_id = ? ORDER BY time_ms DESC, id DESC LIMIT 1 OFFSET ?",
		taskID, count-1).Scan(&t, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil // fewer than count records
	}
	if err != nil {
		return 0, fmt.Errorf("data: retention of task %s: %w", taskID, err)
	}
	return s.deleteAll(ctx, "task_id = ? AND (time_ms < ? OR (time_ms = ? AND id < ?))", []any{taskID, t, t, id}, "retention")
}
