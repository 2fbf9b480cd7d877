package hnsw_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/hnsw"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog/vlogtest"
)

// BenchmarkGroupCommit upserts one item per call from 8 goroutines, the
// baseline being 1 goroutine in the same run: with group commit the 8
// share fsyncs, so they go faster and sync less than once per upsert.
func BenchmarkGroupCommit(b *testing.B) {
	const n = 2000
	its := vlogtest.Items(n, 9)
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

// TestSameIDWritesReplayAsApplied: writes of one id racing each other
// (upserts of different vectors, and deletes) are applied in the order
// the log holds them, so a reopen after kill -9 (the log alone) holds what
// searches saw before it.
func TestSameIDWritesReplayAsApplied(t *testing.T) {
	dir := t.TempDir()
	// No compaction: its snapshot, written in the background, would race
	// with the copy below.
	ix, err := vectors.Open(context.Background(), "hnsw://"+dir+"?compact_share=1", vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const rounds, writers, dim = 150, 4, 8
	for r := range rounds {
		id := fmt.Sprintf("id-%d", r)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				var err error
				if w == writers-1 && r%3 == 0 {
					err = ix.Delete(ctx, []string{id})
				} else {
					v := make([]float32, dim)
					v[w] = 1
					v[(w+1)%dim] = float32(r%7) / 10
					err = ix.Upsert(ctx, []vectors.Item{{ID: id, ProjectID: "p", Type: "face", Time: time.UnixMilli(int64(r)), Vector: v}})
				}
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	// The directory as the next process finds it after kill -9: its
	// snapshot (none here) and log, not its lock.
	crashed := t.TempDir()
	for _, name := range []string{"index.snap", "index.log"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ix2 := openDir(t, crashed, vectors.Options{})
	defer ix2.Close()
	for r := range rounds {
		id := fmt.Sprintf("id-%d", r)
		live, replayed := hnsw.VectorOf(ix, "p", "face", id), hnsw.VectorOf(ix2, "p", "face", id)
		if !slices.Equal(live, replayed) {
			t.Errorf("%s: the live index holds %v, the replayed log %v", id, live, replayed)
		}
	}
	ix.Close()
}
