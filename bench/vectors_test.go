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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/vectors"
	_ "github.com/tianshu-ai/tianshu/internal/vectors/hnsw"
	_ "github.com/tianshu-ai/tianshu/internal/vectors/ivf"
	"github.com/tianshu-ai/tianshu/internal/vectors/vectortest"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog/vlogtest"
)

// BenchmarkVectorIndex is issue #29's index benchmark: N synthetic face
// embeddings (default 1,000,000; TIANSHU_BENCH_VECTORS=N for quick runs)
// of each dimension in TIANSHU_BENCH_VECTOR_DIMS (default 128, the
// face-api descriptor; 1024 is faceres), in each embedded engine of
// TIANSHU_BENCH_VECTOR_ENGINES (default hnsw,ivf) one after the other,
// beside one exact scan of the same vectors in the same run.
//
// Distribution: N/100 identities, each a random unit centre; every vector
// is its identity's centre plus Gaussian noise of norm ≈ 0.6, normalized
// (same-person cosine ≈ 0.73, different people ≈ 0), like several shots of
// each person. Queries are 200 new shots of known identities.
//
// It prints top-10 search p50 and p99 against the exact scan's, recall@10
// against the exact scan, the build rate, the insert rate (2 writers,
// batches of 500, each Upsert fsynced) while one goroutine searches flat
// out and while one searches 50 times a second, with the searches' p50 and
// p99 meanwhile, and the index's heap and disk per million vectors; then
// it deletes 30% of the vectors, which the index compacts in the
// background while a goroutine searches, and prints the compaction's
// time, the searches meanwhile, recall@10 afterwards against an exact
// scan of what is left, and heap and disk per million before and after.
// Tuning: TIANSHU_BENCH_VECTOR_PARAMS (hnsw's URL query, say
// "ef_construction=48") and TIANSHU_BENCH_VECTOR_EFS (hnsw search
// breadths to measure); TIANSHU_BENCH_VECTOR_IVF_PARAMS (ivf's, say
// "lists=4") and TIANSHU_BENCH_VECTOR_NPROBES (ivf lists scanned). ivf
// removes deleted vectors from its lists at once: it has no compaction,
// and its "compaction" rows are the deletes themselves.
// The pgvector backend has no row here: it runs only where
// TIANSHU_TEST_PGVECTOR names a server (docs/search.md), and a million
// rows through it is a run of its own.
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
	engines := []string{"hnsw", "ivf"}
	if s := os.Getenv("TIANSHU_BENCH_VECTOR_ENGINES"); s != "" {
		engines = strings.Split(s, ",")
		for _, e := range engines {
			if e != "hnsw" && e != "ivf" {
				b.Fatalf("TIANSHU_BENCH_VECTOR_ENGINES=%q: hnsw, ivf or both", s)
			}
		}
	}
	for _, dim := range dims {
		b.Run(fmt.Sprintf("d%d", dim), func(b *testing.B) { benchVectors(b, n, dim, engines) })
	}
}

// vecEngine is what the benchmark needs to know of an engine: its URL
// query, the search knob and its values to measure (TIANSHU_BENCH_VECTOR_EFS
// or _NPROBES; 0 is the URL's own), and whether deletes leave tombstones
// that a background compaction removes.
type vecEngine struct {
	name, params string
	knob         string
	values       []int
	set          func(ix vectors.Index, v int)
	compacts     bool
}

func vecEngineOf(b *testing.B, name string) vecEngine {
	ints := func(env string) []int {
		s := os.Getenv(env)
		if s == "" {
			return []int{0}
		}
		var out []int
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.Atoi(f)
			if err != nil || v < 1 {
				b.Fatalf("%s=%q", env, s)
			}
			out = append(out, v)
		}
		return out
	}
	if name == "ivf" {
		return vecEngine{name: name, params: os.Getenv("TIANSHU_BENCH_VECTOR_IVF_PARAMS"), knob: "nprobe",
			values: ints("TIANSHU_BENCH_VECTOR_NPROBES"),
			set:    func(ix vectors.Index, v int) { ix.(interface{ SetSearchNprobe(int) }).SetSearchNprobe(v) }}
	}
	return vecEngine{name: name, params: os.Getenv("TIANSHU_BENCH_VECTOR_PARAMS"), knob: "ef",
		values: ints("TIANSHU_BENCH_VECTOR_EFS"), compacts: true,
		set: func(ix vectors.Index, v int) { ix.(interface{ SetSearchEf(int) }).SetSearchEf(v) }}
}

const (
	vecQueries = 200
	vecK       = 10
	// vecLive is how many more vectors go in while a goroutine searches,
	// once flat out and once at vecPaced searches a second.
	vecLive  = 50_000
	vecPaced = 50
	// vecDeleteShare of the vectors are deleted to measure compaction.
	vecDeleteShare = 0.3
)

func benchVectors(b *testing.B, n, dim int, engines []string) {
	r := rand.New(rand.NewPCG(29, uint64(dim)))
	all := vectortest.Clustered(r, n+vecQueries+2*vecLive, max(n/100, 10), dim, 0.6)
	d := vecData{n: n, dim: dim, base: all[:n], queries: all[n : n+vecQueries], live: all[n+vecQueries : n+vecQueries+vecLive], paced: all[n+vecQueries+vecLive:]}
	// Exact scan (baseline), which also gives the true neighbours: once,
	// for every engine.
	d.exact = make([]time.Duration, vecQueries)
	d.truth = make([][]int, vecQueries)
	for i, q := range d.queries {
		t := time.Now()
		d.truth[i] = vectortest.Exact(d.base, q, vecK)
		d.exact[i] = time.Since(t)
	}
	for _, e := range engines {
		b.Run(e, func(b *testing.B) { benchEngine(b, vecEngineOf(b, e), &d) })
	}
}

// vecData is one run's vectors and the exact scan's answers.
type vecData struct {
	n, dim                     int
	base, queries, live, paced [][]float32
	exact                      []time.Duration
	truth                      [][]int
}

func benchEngine(b *testing.B, eng vecEngine, d *vecData) {
	ctx := context.Background()
	n, dim := d.n, d.dim
	base, queries, live, paced, exact, truth := d.base, d.queries, d.live, d.paced, d.exact, d.truth
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
	before := vecHeap()
	ixURL := eng.name + "://" + dir + "?" + eng.params
	reg := prometheus.NewRegistry()
	ix, err := vectors.Open(ctx, ixURL, vectors.Options{Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if ix != nil {
			ix.Close()
		}
	}()

	// Build: two writers, batches of 500 (the records writer's batch).
	baseItems := items(base, 0)
	start, cpu0 := time.Now(), cpuTime(b)
	insertAll(b, ix, baseItems, 2)
	build, buildCPU := time.Since(start), cpuTime(b)-cpu0
	buildRate := float64(n) / build.Seconds()
	baseItems = nil
	after := vecHeap()
	// The raw vectors (all) are the benchmark's, not the index's: the
	// index copies what it keeps.
	heapPerM := float64(after-before) * 1e6 / float64(n)

	f := vectors.Filter{ProjectID: "default", Type: "face", MinSimilarity: -1}
	// The search knob's values to measure; the last one stays set for
	// the rest.
	efs := eng.values
	type efResult struct {
		ef          int
		lat         []time.Duration
		recall      float64
		cpuPerQuery time.Duration
	}
	var results []efResult
	for _, ef := range efs {
		if ef > 0 {
			eng.set(ix, ef)
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

	// Inserts while one goroutine searches, flat out and paced.
	flat := vecInsertWhileSearching(b, ix, items(live, n), queries, f, 0)
	slow := vecInsertWhileSearching(b, ix, items(paced, n+vecLive), queries, f, vecPaced)
	total := n + 2*vecLive
	// ivf's trainings so far and its lists (the last training still runs
	// in the background when the inserts outpaced it).
	trainings, _ := vlogtest.Metric(reg, "tianshu_vectors_retrains_total")
	lists, _ := vlogtest.Metric(reg, "tianshu_vectors_lists")

	// Heap and disk of the whole index: the snapshot Close writes, and the
	// heap of the index reopened from it (no garbage of the build).
	heapDisk := func() (heap, disk float64) {
		start := time.Now()
		if err := ix.Close(); err != nil {
			b.Fatal(err)
		}
		closeTime := time.Since(start)
		ix = nil
		disk = float64(vecDirSize(b, dir))
		closed := vecHeap()
		start = time.Now()
		reg = prometheus.NewRegistry()
		if ix, err = vectors.Open(ctx, ixURL, vectors.Options{Registerer: reg}); err != nil {
			b.Fatal(err)
		}
		openTime := time.Since(start)
		b.Logf("snapshot at close %v, reopen %v", closeTime.Round(time.Millisecond), openTime.Round(time.Millisecond))
		return float64(vecHeap()) - float64(closed), disk
	}
	heapAll, diskAll := heapDisk()

	// Delete 30%, every third id or so, spread over every identity; the
	// index compacts once its tombstones pass compact_share (0.25) while a
	// goroutine searches flat out.
	var del []string
	keep := make([]bool, total)
	for i := range total {
		if float64(i%10) < vecDeleteShare*10 {
			del = append(del, fmt.Sprintf("rec-%08d", i))
		} else {
			keep[i] = true
		}
	}
	var stop atomic.Bool
	var during []time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			t := time.Now()
			if _, err := ix.Search(ctx, queries[i%vecQueries], vecK, f); err != nil {
				b.Error(err)
				return
			}
			during = append(during, time.Since(t))
		}
	})
	start = time.Now()
	for lo := 0; lo < len(del); lo += vectors.MaxBatch {
		if err := ix.Delete(ctx, del[lo:min(lo+vectors.MaxBatch, len(del))]); err != nil {
			b.Fatal(err)
		}
	}
	deleteTime := time.Since(start)
	var tombstonesLeft float64
	if eng.compacts {
		for vlogtest.MustMetric(b, reg, "tianshu_vectors_compactions_total") < 1 && !b.Failed() {
			time.Sleep(100 * time.Millisecond) // a benchmark's progress poll, not a test's wait
		}
		// Deletes that land while the copy is made stay as tombstones in it.
		tombstonesLeft = vlogtest.MustMetric(b, reg, "tianshu_vectors_tombstones")
	}
	compactTime := time.Since(start)
	stop.Store(true)
	wg.Wait()
	// Recall after the compaction against an exact scan of what is left.
	var left [][]float32
	var leftID []int
	for i, v := range slices.Concat(base, live, paced) {
		if keep[i] {
			left, leftID = append(left, v), append(leftID, i)
		}
	}
	found := 0
	for _, q := range queries {
		hits, err := ix.Search(ctx, q, vecK, f)
		if err != nil {
			b.Fatal(err)
		}
		got := map[string]bool{}
		for _, h := range hits {
			got[h.ID] = true
		}
		for _, j := range vectortest.Exact(left, q, vecK) {
			if got[fmt.Sprintf("rec-%08d", leftID[j])] {
				found++
			}
		}
	}
	recallAfter := float64(found) / float64(vecQueries*vecK)
	nDel := len(del)
	left, leftID, del = nil, nil, nil
	heapLeft, diskLeft := heapDisk()
	if err := ix.Close(); err != nil {
		b.Fatal(err)
	}

	name := fmt.Sprintf("vector index %s %s×%d-d", eng.name, humanCount(n), dim)
	for _, r := range results {
		sname := name
		if r.ef > 0 {
			sname = fmt.Sprintf("%s %s %d", name, eng.knob, r.ef)
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
	benchtable.Record(b, benchtable.Row{Metric: name + " CPU per insert while building", Unit: "s",
		Tianshu: buildCPU.Seconds() / float64(n)})
	for _, r := range []struct {
		how string
		vecLiveResult
	}{{"1 goroutine searching flat out", flat}, {fmt.Sprintf("1 goroutine searching %d/s", vecPaced), slow}} {
		benchtable.Record(b, benchtable.Row{Metric: name + " inserts while " + r.how + ", 2 writers, batches of 500 (baseline: the build, no searches)", Unit: "vectors/s",
			Target: "≥ 10,000/s", Tianshu: r.rate, Baseline: buildRate})
		benchtable.Record(b, benchtable.Row{Metric: name + " top-10 search p50 during those inserts (baseline: exact scan)", Unit: "s",
			Tianshu: vecPct(r.searches, 50).Seconds(), Baseline: vecPct(exact, 50).Seconds()})
		benchtable.Record(b, benchtable.Row{Metric: name + " top-10 search p99 during those inserts (baseline: exact scan)", Unit: "s",
			Tianshu: vecPct(r.searches, 99).Seconds(), Baseline: vecPct(exact, 99).Seconds()})
		benchtable.Record(b, benchtable.Row{Metric: name + " CPU per insert (searches included) meanwhile", Unit: "s",
			Tianshu: r.cpu.Seconds() / float64(vecLive)})
		b.Logf("%s: %d searches during %d inserts", r.how, len(r.searches), vecLive)
	}
	benchtable.Record(b, benchtable.Row{Metric: name + " heap per million vectors after the build (before reopening)", Unit: "B", Tianshu: heapPerM})
	perM := 1e6 / float64(total)
	benchtable.Record(b, benchtable.Row{Metric: name + " heap per million vectors, reopened", Unit: "B", Tianshu: heapAll * perM})
	benchtable.Record(b, benchtable.Row{Metric: name + " disk per million vectors (snapshot)", Unit: "B", Tianshu: diskAll * perM})
	benchtable.Record(b, benchtable.Row{Metric: fmt.Sprintf("%s delete %.0f%% (%d ids, batches of %d)", name, vecDeleteShare*100, nDel, vectors.MaxBatch),
		Unit: "s", Tianshu: deleteTime.Seconds()})
	if eng.compacts {
		benchtable.Record(b, benchtable.Row{Metric: name + " from the first delete to the compaction's end", Unit: "s", Tianshu: compactTime.Seconds()})
		benchtable.Record(b, benchtable.Row{Metric: name + " tombstones left after the compaction (deletes made while it copied)", Unit: "",
			Tianshu: tombstonesLeft})
	}
	if trainings > 0 {
		b.Logf("%s: %.0f trainings of the lists finished while building and inserting; %.0f lists after the inserts", eng.name, trainings, lists)
	}
	benchtable.Record(b, benchtable.Row{Metric: name + " top-10 search p50 while compacting (baseline: exact scan)", Unit: "s",
		Tianshu: vecPct(during, 50).Seconds(), Baseline: vecPct(exact, 50).Seconds()})
	benchtable.Record(b, benchtable.Row{Metric: name + " top-10 search p99 while compacting (baseline: exact scan)", Unit: "s",
		Tianshu: vecPct(during, 99).Seconds(), Baseline: vecPct(exact, 99).Seconds()})
	benchtable.Record(b, benchtable.Row{Metric: name + " recall@10 after compacting, against an exact scan of what is left", Unit: "",
		Target: "≥ 0.95", Tianshu: recallAfter})
	// Per million vectors the index held before the deletes, so that the
	// drop is what compaction gave back.
	benchtable.Record(b, benchtable.Row{Metric: name + " heap per million vectors held, after deleting 30% and compacting (baseline: before)", Unit: "B",
		Tianshu: heapLeft * perM, Baseline: heapAll * perM})
	benchtable.Record(b, benchtable.Row{Metric: name + " disk per million vectors held, after deleting 30% and compacting (baseline: before)", Unit: "B",
		Tianshu: diskLeft * perM, Baseline: diskAll * perM})
	b.Logf("build %v, %d searches while compacting; no pgvector row: TIANSHU_TEST_PGVECTOR is not set (docs/search.md)", build.Round(time.Millisecond), len(during))
}

type vecLiveResult struct {
	rate     float64
	searches []time.Duration
	cpu      time.Duration
}

// vecInsertWhileSearching inserts items with 2 writers while one goroutine
// searches, perSecond times a second (0: flat out).
func vecInsertWhileSearching(b *testing.B, ix vectors.Index, items []vectors.Item, queries [][]float32, f vectors.Filter, perSecond int) vecLiveResult {
	var res vecLiveResult
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		var tick *time.Ticker
		if perSecond > 0 {
			tick = time.NewTicker(time.Second / time.Duration(perSecond))
			defer tick.Stop()
		}
		for i := 0; !stop.Load(); i++ {
			if tick != nil {
				<-tick.C
			}
			t := time.Now()
			if _, err := ix.Search(context.Background(), queries[i%len(queries)], vecK, f); err != nil {
				b.Error(err)
				return
			}
			res.searches = append(res.searches, time.Since(t))
		}
	})
	start, cpu0 := time.Now(), cpuTime(b)
	insertAll(b, ix, items, 2)
	res.rate = float64(len(items)) / time.Since(start).Seconds()
	res.cpu = cpuTime(b) - cpu0
	stop.Store(true)
	wg.Wait()
	return res
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

// vecHeap is the live heap: three collections first, since a graph's
// sync.Pool keeps it reachable (the runtime's list of pools) until the
// second collection after its last use.
func vecHeap() uint64 {
	for range 3 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
