package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// recordProducers is how many goroutines write records at once, as the
// worker's per-task store sinks do.
const recordProducers = 4

// benchRecord is a typical face-capture record: ~200 bytes of JSON and
// one crop.
func benchRecord(i int) data.Record {
	d, _ := json.Marshal(map[string]any{"track": i, "gender": "female", "age": 31, "score": 0.973,
		"box": []int{120, 80, 64, 64}, "frame": fmt.Sprintf("frame-%d", i)})
	return data.Record{TaskID: "task-bench", DeviceID: fmt.Sprintf("dev-%d", i%16), Type: "face",
		Time: time.Now(), Data: d, Objects: []string{fmt.Sprintf("projects/default/tasks/task-bench/2026/11/28/crop%d.jpg", i)}}
}

// BenchmarkRecords measures records/s into the store through the data
// center's batching Writer beside the naive baseline, one INSERT (one
// transaction) per record, on the same database in the same run.
func BenchmarkRecords(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			db := storetest.Open(b, dialect) // skips when the server is not reachable
			svc, err := data.New(db, nil, data.Options{})
			if err != nil {
				b.Fatal(err)
			}
			var naive, batched float64
			b.Run("naive", func(b *testing.B) { naive = naiveInserts(b, db) })
			b.Run("batched", func(b *testing.B) {
				batched = writerInserts(b, svc)
				if naive > 0 {
					b.ReportMetric(batched/naive, "x-naive")
				}
			})
			if naive > 0 && batched > 0 {
				target := ""
				if dialect == "sqlite" {
					target = "≥ 50k/s"
				}
				benchtable.Record(b, benchtable.Row{Metric: "records into " + dialect + ", batching writer vs one INSERT each, 4 producers",
					Unit: "rec/s", Target: target, Tianshu: batched, Baseline: naive})
			}
		})
	}
}

func naiveInserts(b *testing.B, db *store.DB) float64 {
	ctx := context.Background()
	recs := make([]data.Record, b.N)
	for i := range recs {
		recs[i] = benchRecord(i)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range recordProducers {
		wg.Go(func() {
			for i := p; i < len(recs); i += recordProducers {
				r := recs[i]
				objs, _ := json.Marshal(r.Objects)
				if _, err := db.Exec(ctx, `INSERT INTO records (id, project_id, task_id, device_id, type, time_ms, data, objects, created_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, data.NewRecordID(), "default", r.TaskID, r.DeviceID, r.Type, r.Time.UnixMilli(),
					string(r.Data), string(objs), time.Now().UnixMilli()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "rec/s")
	return rate
}

func writerInserts(b *testing.B, svc *data.Service) float64 {
	ctx := context.Background()
	recs := make([]data.Record, b.N)
	for i := range recs {
		recs[i] = benchRecord(i)
	}
	b.ResetTimer()
	start := time.Now()
	w := svc.NewWriter(data.WriterOptions{})
	var wg sync.WaitGroup
	for p := range recordProducers {
		wg.Go(func() {
			for i := p; i < len(recs); i += recordProducers {
				if _, err := w.Write(ctx, recs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(ctx); err != nil { // every record committed
		b.Fatal(err)
	}
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "rec/s")
	return rate
}
