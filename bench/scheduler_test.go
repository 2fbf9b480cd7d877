package bench

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/task"
)

// BenchmarkSchedulerPlace1000 measures how long the scheduler takes to
// place 1,000 pending tasks on 10 live nodes (one pass or several), beside
// the bare SQL work of assigning 1,000 rows in one transaction.
func BenchmarkSchedulerPlace1000(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, dialect)
			flows := func(context.Context, string, int64) (int64, string, error) { return 1, "default", nil }
			svc := task.NewService(db, flows, slog.New(slog.DiscardHandler), time.Now)
			now := time.Now().UnixMilli()
			for i := 0; i < 10; i++ {
				if _, err := db.Exec(ctx, `INSERT INTO nodes (id, name, labels, capacity, gpus, lease_expires_ms, started_at, heartbeat_ms)
					VALUES (?, ?, '{}', 200, '[]', ?, ?, ?)`, fmt.Sprintf("node-b%d", i), "bench", now+3600_000, now, now); err != nil {
					b.Fatal(err)
				}
			}
			create := func() []string {
				ids := make([]string, 0, 1000)
				for i := 0; i < 1000; i++ {
					t := &task.Task{Name: "t", FlowID: "flow-x", Sources: []pipeline.SourceSpec{{Type: "topic", Id: "x"}}}
					if err := svc.Create(ctx, t, true); err != nil {
						b.Fatal(err)
					}
					ids = append(ids, t.ID)
				}
				return ids
			}
			create()
			s := task.NewScheduler(db, svc, task.DefaultSchedulerConfig(), "bench", slog.New(slog.DiscardHandler), nil, time.Now)
			start := time.Now()
			passes := 0
			for pending(b, db) > 0 {
				if err := s.Tick(ctx); err != nil {
					b.Fatal(err)
				}
				passes++
			}
			took := time.Since(start)

			// Baseline: the same assignment as one bare UPDATE per task in
			// one transaction, with no choice of node.
			ids := create()
			start = time.Now()
			err := db.InTx(ctx, func(tx *store.Tx) error {
				for i, id := range ids {
					if _, err := tx.Exec(ctx, "UPDATE tasks SET status = 'Scheduled', node_id = ?, epoch = epoch + 1 WHERE id = ?", fmt.Sprintf("node-b%d", i%10), id); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			base := time.Since(start)
			b.ReportMetric(float64(took.Milliseconds()), "ms/1000-tasks")
			b.ReportMetric(float64(passes), "passes")
			benchtable.Record(b, benchtable.Row{Metric: "scheduler: place 1,000 tasks on 10 nodes (" + dialect + ")", Unit: "s",
				Tianshu: took.Seconds(), Baseline: base.Seconds(), Target: "report"})
		})
	}
}

func pending(b *testing.B, db *store.DB) int {
	var n int
	if err := db.QueryRow(context.Background(), "SELECT COUNT(*) FROM tasks WHERE status = 'Pending'").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
