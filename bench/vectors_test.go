package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/vectors"
	_ "github.com/tianshu-ai/tianshu/internal/vectors/hnsw"
	"github.com/tianshu-ai/tianshu/internal/vectors/vectortest"
)

// BenchmarkVectorIndex is issue #29's index benchmark: N synthetic face
// embeddings (default 1,000,000; TIANSHU_BENCH_VECTORS=N for quick runs)
// of each dimension in TIANSHU_BENCH_VECTOR_DIMS (default 128, the
// face-api descriptor; 1024 is faceres), in the embedded index, beside an
// exact scan of the same vectors in the same run.
//
// Distribution: N/100 identities, each a random unit centre; every vector
// is its identity's centre plus Gaussian noise of norm ≈ 0.6, normalized
// (same-person cosine ≈ 0.73, different people ≈ 0), like several shots of
// each person. Queries are 200 new shots of known identities.
//
// It prints top-10 search p50 and p99 against the exact scan's, recall@10
// against the exact scan, the build rate, the insert rate while one
// goroutine searches, and the index's heap and disk per million vectors.
func BenchmarkVectorIndex(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("TIANSHU_BENCH_VECTORS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1000 {
			b.Fatalf("TIANSHU_BENCH_VECTORS=%q: want a number ≥ 1000", s)
		}
		n = v
	}
	dims := []int{128}
	if s := os.Getenv("TIANSHU_BENCH_VECTOR_DIMS"); s != "" {
		dims = nil
		for _, f := range strings.Split(s, ",") {
			d, err := strconv.Atoi(f)
			if err != nil || d < 1 || d > vectors.MaxDim {
				b.Fatalf("TIANSHU_BENCH_VECTOR_DIMS=%q", s)
			}
			dims = append(dims, d)
		}
	}
	for _, dim := range dims {
		b.Run(fmt.Sprintf("d%d", dim), func(b *testing.B) { benchVectors(b, n, dim) })
	}
}

const (
	vecQueries = 200
	vecK       = 10
	// vecLive is how many more vectors go in while a goroutine searches.
	vecLive = 50_000
)

func benchVectors(b *testing.B, n, dim int) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(29, uint64(dim)))
	all := vectortest.Clustered(r, n+vecQueries+vecLive, max(n/100, 10), dim, 0.6)
	base, queries, live := all[:n], all[n:n+vecQueries], all[n+vecQueries:]
	items := func(vs [][]float32, off int) []vectors.Item {
		out := make([]vectors.Item, len(vs))
		t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		for i, v := range vs {
			out[i] = vectors.Item{ID: fmt.Sprintf("rec-%08d", off+i), ProjectID: "default", Type: "face",
				DeviceID: fmt.Sprintf("dev-%d", (off+i)%16), TaskID: "task-bench", Time: t0.Add(time.Duration(off+i) * time.Second), Vector: v}
		}
		return out
	}
	dir := filepath.Join(b.TempDir(), "vectors")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// TIANSHU_BENCH_VECTOR_PARAMS (say "ef=96&ef_construction=64") tunes
	// the index.
	ix, err := vectors.Open(ctx, "hnsw://"+dir+"?"+os.Getenv("TIANSHU_BENCH_VECTOR_PARAMS"), vectors.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()

	// Build: two writers, batches of 500 (the records writer's batch).
	baseItems := items(base, 0)
	start, cpu0 := time.Now(), cpuTime(b)
	insertAll(b, ix, baseItems, 2)
	build, buildCPU := time.Since(start), cpuTime(b)-cpu0
	buildRate := float64(n) / build.Seconds()
	baseItems = nil
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The raw vectors (all) are the benchmark's, not the index's: the
	// index copies what it keeps.
	heapPerM := float64(after.HeapAlloc-before.HeapAlloc) * 1e6 / float64(n)

	f := vectors.Filter{ProjectID: "default", Type: "face", MinSimilarity: -1}
	// Exact scan (baseline), which also gives the true neighbours.
	exact := make([]time.Duration, vecQueries)
	truth := make([][]int, vecQueries)
	for i, q := range queries {
		t := time.Now()
		truth[i] = vectortest.Exact(base, q, vecK)
		exact[i] = time.Since(t)
	}
	// Search breadths to measure (TIANSHU_BENCH_VECTOR_EFS, default the
	// index's own); the last one stays set for the rest.
	efs := []int{0}
	if s := os.Getenv("TIANSHU_BENCH_VECTOR_EFS"); s != "" {
		efs = nil
		for _, f := range strings.Split(s, ",") {
			ef, err := strconv.Atoi(f)
			if err != nil || ef < 1 {
				b.Fatalf("TIANSHU_BENCH_VECTOR_EFS=%q", s)
			}
			efs = append(efs, ef)
		}
	}
	type efResult struct {
		ef          int
		lat         []time.Duration
		recall      float64
		cpuPerQuery time.Duration
	}
	var results []efResult
	for _, ef := range efs {
		if ef > 0 {
			ix.(interface{ SetSearchEf(int) }).SetSearchEf(ef)
		}
		res := efResult{ef: ef, lat: make([]time.Duration, vecQueries)}
		found := 0
		cpu0 = cpuTime(b)
		for i, q := range queries {
			t := time.Now()
			hits, err := ix.Search(ctx, q, vecK, f)
			res.lat[i] = time.Since(t)
			if err != nil {
				b.Fatal(err)
			}
			got := map[string]bool{}
			for _, h := range hits {
				got[h.ID] = true
			}
			for _, j := range truth[i] {
				if got[fmt.Sprintf("rec-%08d", j)] {
					found++
				}
			}
		}
		res.recall = float64(found) / float64(vecQueries*vecK)
		res.cpuPerQuery = (cpuTime(b) - cpu0) / vecQueries
		results = append(results, res)
	}

	// Inserts while one goroutine searches.
	var stop atomic.Bool
	var searches []time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			t := time.Now()
			if _, err := ix.Search(ctx, queries[i%vecQueries], vecK, f); err != nil {
				b.Error(err)
				return
			}
			searches = append(searches, time.Since(t))
		}
	})
	start, cpu0 = time.Now(), cpuTime(b)
	insertAll(b, ix, items(live, n), 2)
	liveRate := float64(len(live)) / time.Since(start).Seconds()
	liveCPU := cpuTime(b) - cpu0
	stop.Store(true)
	wg.Wait()

	start = time.Now()
	if err := ix.Close(); err != nil {
		b.Fatal(err)
	}
	closeTime := time.Since(start)
	disk := vecDirSize(b, dir)
	diskPerM := float64(disk) * 1e6 / float64(n+len(live))

	name := fmt.Sprintf("vector index %s×%d-d", humanCount(n), dim)
	for _, r := range results {
		sname := name
		if r.ef > 0 {
			sname = fmt.Sprintf("%s ef %d", name, r.ef)
		}
		benchtable.Record(b, benchtable.Row{Metric: sname + " top-10 search p50 (baseline: exact scan)", Unit: "s",
			Target: "≤ 10 ms", Tianshu: vecPct(r.lat, 50).Seconds(), Baseline: vecPct(exact, 50).Seconds()})
		benchtable.Record(b, benchtable.Row{Metric: sname + " top-10 search p99 (baseline: exact scan)", Unit: "s",
			Tianshu: vecPct(r.lat, 99).Seconds(), Baseline: vecPct(exact, 99).Seconds()})
		benchtable.Record(b, benchtable.Row{Metric: sname + " recall@10 against the exact scan", Unit: "",
			Target: "≥ 0.95", Tianshu: r.recall})
		benchtable.Record(b, benchtable.Row{Metric: sname + " CPU per search", Unit: "s", Tianshu: r.cpuPerQuery.Seconds()})
	}
	benchtable.Record(b, benchtable.Row{Metric: name + " build, 2 writers, batches of 500", Unit: "vectors/s", Tianshu: buildRate})
	benchtable.Record(b, benchtable.Row{Metric: name + " inserts while 1 goroutine searches, 2 writers", Unit: "vectors/s",
		Target: "≥ 10,000/s", Tianshu: liveRate})
	benchtable.Record(b, benchtable.Row{Metric: name + " search p50 during those inserts", Unit: "s",
		Tianshu: vecPct(searches, 50).Seconds()})
	benchtable.Record(b, benchtable.Row{Metric: name + " CPU per insert while building", Unit: "s",
		Tianshu: buildCPU.Seconds() / float64(n)})
	benchtable.Record(b, benchtable.Row{Metric: name + " CPU per insert+search while searching", Unit: "s",
		Tianshu: liveCPU.Seconds() / float64(len(live))})
	benchtable.Record(b, benchtable.Row{Metric: name + " heap per million vectors", Unit: "B", Tianshu: heapPerM})
	benchtable.Record(b, benchtable.Row{Metric: name + " disk per million vectors (snapshot)", Unit: "B", Tianshu: diskPerM})
	b.Logf("build %v, snapshot at close %v, %d searches during inserts", build.Round(time.Millisecond), closeTime.Round(time.Millisecond), len(searches))
}

func insertAll(b *testing.B, ix vectors.Index, items []vectors.Item, writers int) {
	const batch = 500
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				lo := int(next.Add(batch)) - batch
				if lo >= len(items) {
					return
				}
				if err := ix.Upsert(context.Background(), items[lo:min(lo+batch, len(items))]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func vecPct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func humanCount(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func vecDirSize(b *testing.B, dir string) int64 {
	var total int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			total += fi.Size()
		}
	}
	return total
}
