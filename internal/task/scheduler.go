package task

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// The scheduler is elected through a lease row in the store rather than a
// JetStream key-value entry: the store is the one backend every role
// already shares and must reach, placement decisions are written there in
// the same transactions, and a lease row works the same on SQLite, MariaDB
// and PostgreSQL. Its cost — one UPDATE per renewal — is negligible.

// SchedulerConfig tunes the scheduler.
type SchedulerConfig struct {
	// LeaseTTL is how long a scheduler's leadership and a node's heartbeat
	// stay valid without renewal.
	LeaseTTL time.Duration
	// Interval is how often the leader places tasks and expires nodes.
	Interval time.Duration
}

// DefaultSchedulerConfig returns the defaults: 10 s leases, 500 ms ticks.
func DefaultSchedulerConfig() SchedulerConfig {
	return SchedulerConfig{LeaseTTL: 10 * time.Second, Interval: 500 * time.Millisecond}
}

// Scheduler places tasks on nodes and moves them when a node's lease lapses.
type Scheduler struct {
	db     *store.DB
	svc    *Service
	cfg    SchedulerConfig
	log    *slog.Logger
	now    func() time.Time
	holder string

	placed   prometheus.Counter
	moved    prometheus.Counter
	leader   prometheus.Gauge
	pending  prometheus.Gauge
	tickTime prometheus.Histogram
}

// NewScheduler returns a scheduler identified by holder (unique per process).
func NewScheduler(db *store.DB, svc *Service, cfg SchedulerConfig, holder string, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) *Scheduler {
	s := &Scheduler{db: db, svc: svc, cfg: cfg, holder: holder, log: log, now: now,
		placed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_scheduler_placements_total", Help: "Tasks placed on a node."}),
		moved:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_scheduler_moves_total", Help: "Tasks taken from a node whose lease lapsed."}),
		leader:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "tianshu_scheduler_leader", Help: "1 while this process is the active scheduler."}),
		pending:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "tianshu_scheduler_pending_tasks", Help: "Tasks waiting for a node at the last tick."}),
		tickTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tianshu_scheduler_tick_seconds", Help: "Duration of one scheduling pass."}),
	}
	s.placed = telemetry.MustRegister(reg, s.placed)
	s.moved = telemetry.MustRegister(reg, s.moved)
	s.leader = telemetry.MustRegister(reg, s.leader)
	s.pending = telemetry.MustRegister(reg, s.pending)
	s.tickTime = telemetry.MustRegister(reg, s.tickTime)
	return s
}

// Run schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	leading := false
	for {
		ok, err := s.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "scheduler lease failed", "err", err)
		}
		if ok != leading {
			leading = ok
			if ok {
				s.log.InfoContext(ctx, "scheduler elected", "holder", s.holder)
				s.leader.Set(1)
			} else {
				s.log.InfoContext(ctx, "scheduler lost leadership", "holder", s.holder)
				s.leader.Set(0)
			}
		}
		if leading {
			start := time.Now()
			if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "scheduling pass failed", "err", err)
			}
			s.tickTime.Observe(time.Since(start).Seconds())
		}
		select {
		case <-ctx.Done():
			s.release()
			return
		case <-t.C:
		}
	}
}

// acquire takes or renews the scheduler lease.
func (s *Scheduler) acquire(ctx context.Context) (bool, error) {
	now := s.now().UnixMilli()
	exp := now + s.cfg.LeaseTTL.Milliseconds()
	res, err := s.db.Exec(ctx, `UPDATE leases SET holder = ?, expires_ms = ?, epoch = epoch + 1
		WHERE name = 'scheduler' AND (holder = ? OR expires_ms < ?)`, s.holder, exp, s.holder, now)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	_, err = s.db.Exec(ctx, "INSERT INTO leases (name, holder, expires_ms, epoch) VALUES ('scheduler', ?, ?, 1)", s.holder, exp)
	if err != nil {
		if s.db.IsUniqueViolation(err) {
			return false, nil // someone else holds it
		}
		return false, err
	}
	return true, nil
}

// release gives the lease up on a clean stop so a standby takes over at once.
func (s *Scheduler) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = s.db.Exec(ctx, "UPDATE leases SET expires_ms = 0 WHERE name = 'scheduler' AND holder = ?", s.holder)
	s.leader.Set(0)
}

type nodeInfo struct {
	id       string
	labels   map[string]string
	capacity int
	used     int
}

// Tick runs one scheduling pass: expire dead nodes, then place pending tasks.
func (s *Scheduler) Tick(ctx context.Context) error {
	now := s.now().UnixMilli()
	// Tasks on nodes whose lease lapsed go back to Pending (or Stopped when
	// they were being stopped anyway).
	dead, err := s.db.Query(ctx, "SELECT id FROM nodes WHERE lease_expires_ms < ?", now)
	if err != nil {
		return err
	}
	var deadIDs []string
	for dead.Next() {
		var id string
		if err := dead.Scan(&id); err != nil {
			dead.Close()
			return err
		}
		deadIDs = append(deadIDs, id)
	}
	dead.Close()
	for _, n := range deadIDs {
		if err := s.expireNode(ctx, n, now); err != nil {
			return err
		}
	}

	nodes, err := s.liveNodes(ctx, now)
	if err != nil {
		return err
	}
	rows, err := s.db.Query(ctx, "SELECT id, constraints FROM tasks WHERE status = ? AND desired_state = ? AND edge_node = '' ORDER BY updated_at, id LIMIT 1000", StatusPending, DesiredRunning)
	if err != nil {
		return err
	}
	type pend struct {
		id string
		c  Constraints
	}
	var pending []pend
	for rows.Next() {
		var p pend
		var con string
		if err := rows.Scan(&p.id, &con); err != nil {
			rows.Close()
			return err
		}
		_ = json.Unmarshal([]byte(con), &p.c)
		pending = append(pending, p)
	}
	rows.Close()
	s.pending.Set(float64(len(pending)))
	if len(pending) == 0 || len(nodes) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		for _, p := range pending {
			n := pick(nodes, p.c)
			if n == nil {
				continue
			}
			// The node must still be there: one that shut down since
			// liveNodes read it has handed its tasks back as Pending.
			res, err := tx.Exec(ctx, `UPDATE tasks SET status = ?, node_id = ?, epoch = epoch + 1, updated_at = ?
				WHERE id = ? AND status = ? AND desired_state = ? AND EXISTS (SELECT 1 FROM nodes WHERE id = ?)`,
				StatusScheduled, n.id, now, p.id, StatusPending, DesiredRunning, n.id)
			if err != nil {
				return err
			}
			if c, _ := res.RowsAffected(); c == 1 {
				n.used++
				s.placed.Inc()
				s.log.InfoContext(ctx, "task placed", "task", p.id, "node", n.id)
			}
		}
		return nil
	})
}

func (s *Scheduler) expireNode(ctx context.Context, nodeID string, now int64) error {
	rows, err := s.db.Query(ctx, "SELECT id, desired_state FROM tasks WHERE node_id = ?", nodeID)
	if err != nil {
		return err
	}
	type moved struct{ id, desired string }
	var ts []moved
	for rows.Next() {
		var m moved
		if err := rows.Scan(&m.id, &m.desired); err != nil {
			rows.Close()
			return err
		}
		ts = append(ts, m)
	}
	rows.Close()
	for _, m := range ts {
		status := StatusPending
		if m.desired != DesiredRunning {
			status = StatusStopped
		}
		if _, err := s.db.Exec(ctx, `UPDATE tasks SET status = ?, node_id = '', reason = ?, updated_at = ? WHERE id = ? AND node_id = ?`,
			status, "node "+nodeID+" stopped heartbeating", now, m.id, nodeID); err != nil {
			return err
		}
		s.moved.Inc()
		s.svc.Event(ctx, m.id, "node_lost", nodeID, fmt.Sprintf("node %s lease lapsed; task set %s", nodeID, status))
	}
	_, err = s.db.Exec(ctx, "DELETE FROM nodes WHERE id = ? AND lease_expires_ms < ?", nodeID, now)
	if err == nil {
		s.log.WarnContext(ctx, "node expired", "node", nodeID, "tasks_moved", len(ts))
	}
	return err
}

func (s *Scheduler) liveNodes(ctx context.Context, now int64) ([]*nodeInfo, error) {
	rows, err := s.db.Query(ctx, `SELECT n.id, n.labels, n.capacity,
		(SELECT COUNT(*) FROM tasks t WHERE t.node_id = n.id) FROM nodes n WHERE n.lease_expires_ms >= ?`, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*nodeInfo
	for rows.Next() {
		var n nodeInfo
		var labels string
		if err := rows.Scan(&n.id, &labels, &n.capacity, &n.used); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(labels), &n.labels)
		out = append(out, &n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, rows.Err()
}

// pick returns the node with the most free capacity whose labels satisfy
// the constraints, or nil.
func pick(nodes []*nodeInfo, c Constraints) *nodeInfo {
	var best *nodeInfo
	for _, n := range nodes {
		if n.capacity-n.used <= 0 || !matches(n.labels, c.Labels) {
			continue
		}
		if best == nil || n.capacity-n.used > best.capacity-best.used {
			best = n
		}
	}
	return best
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
