package hnsw_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// BenchmarkGroupCommit upserts one item per call from 8 goroutines, the
// baseline being 1 goroutine in the same run: with group commit the 8
// share fsyncs, so they go faster and sync less than once per upsert.
func BenchmarkGroupCommit(b *testing.B) {
	const n = 2000
	its := items(n, 9)
	run := func(writers int) (rate, syncsPerUpsert float64) {
		reg := prometheus.NewRegistry()
		ix, err := vectors.Open(context.Background(), "hnsw://"+b.TempDir(), vectors.Options{Registerer: reg})
		if err != nil {
			b.Fatal(err)
		}
		defer ix.Close()
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range writers {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					if err := ix.Upsert(context.Background(), its[i:i+1]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		rate = n / time.Since(start).Seconds()
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "tianshu_vectors_log_syncs_total" {
				syncsPerUpsert = mf.GetMetric()[0].GetCounter().GetValue() / n
			}
		}
		return rate, syncsPerUpsert
	}
	for b.Loop() {
		one, oneSyncs := run(1)
		eight, eightSyncs := run(8)
		b.ReportMetric(eight, "upserts/s")
		b.ReportMetric(eightSyncs, "syncs/upsert")
		b.Logf("8 writers: %.0f upserts/s, %.2f fsyncs per upsert; baseline 1 writer: %.0f upserts/s, %.2f fsyncs per upsert; ratio %.2f×",
			eight, eightSyncs, one, oneSyncs, eight/one)
	}
}
