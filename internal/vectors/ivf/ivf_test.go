package ivf_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/ivf"
	"github.com/tianshu-ai/tianshu/internal/vectors/vectortest"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog/vlogtest"
)

// open opens ivf://dir?params.
func open(t *testing.T, dir, params string, o vectors.Options) vectors.Index {
	t.Helper()
	ix, err := vectors.Open(context.Background(), "ivf://"+dir+"?"+params, o)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestConformance runs the suite twice: on the default index (every
// partition of the suite stays below flat_max: one list, scanned whole)
// and with flat_max=50, so that the suite's larger partitions are
// trained and searched through their lists (this run checks behaviour;
// recall at scale is the benchmark's). nprobe=32 of its ~57 lists there:
// the suite's recall data has about 10 shots a person, so a query's top
// 10 often holds unrelated vectors (cosine ≈ 0.3), which lie in any list;
// recall was 0.82 at nprobe 4, 0.87 at 8, 0.948-0.96 at 16 (the lists
// depend on when the background training ran), 1.0 with every list.
func TestConformance(t *testing.T) {
	for _, params := range []string{"", "flat_max=50&nprobe=32"} {
		t.Run("params="+params, func(t *testing.T) {
			vectortest.Run(t, vlogtest.Engine{Scheme: "ivf", Params: params}.Backend())
		})
	}
}

const dim = 32

var pf = vectors.Filter{ProjectID: "p", Type: "face", MinSimilarity: -1}

// clustered returns n items of n/200 identities (vectortest.Clustered),
// ids from off, each on one of 4 devices.
func clustered(n, off int, seed uint64) []vectors.Item {
	r := rand.New(rand.NewPCG(seed, 29))
	vs := vectortest.Clustered(r, n, max(n/200, 4), dim, 0.6)
	out := make([]vectors.Item, n)
	for i, v := range vs {
		out[i] = vectors.Item{ID: fmt.Sprintf("rec-%06d", off+i), ProjectID: "p", Type: "face", DeviceID: fmt.Sprintf("dev-%d", i%4),
			Time: time.UnixMilli(int64(off + i)), Vector: v}
	}
	return out
}

// withQueries splits the last n items off as queries: new shots of the
// same identities.
func withQueries(its []vectors.Item, n int) ([]vectors.Item, [][]float32) {
	var qs [][]float32
	for _, it := range its[len(its)-n:] {
		qs = append(qs, it.Vector)
	}
	return its[:len(its)-n], qs
}

func upsertAll(t *testing.T, ix vectors.Index, its []vectors.Item) {
	t.Helper()
	for lo := 0; lo < len(its); lo += 500 {
		if err := ix.Upsert(context.Background(), its[lo:min(lo+500, len(its))]); err != nil {
			t.Fatal(err)
		}
	}
}

// recall is recall@10 of queries against an exact scan of its.
func recall(t *testing.T, ix vectors.Index, its []vectors.Item, queries [][]float32, f vectors.Filter) float64 {
	t.Helper()
	var vs [][]float32
	var idx []int
	for i, it := range its {
		if f.Matches(it.DeviceID, it.TaskID, it.Time) {
			vs, idx = append(vs, it.Vector), append(idx, i)
		}
	}
	found := 0
	for _, q := range queries {
		hits, err := ix.Search(context.Background(), q, 10, f)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, h := range hits {
			got[h.ID] = true
		}
		for _, j := range vectortest.Exact(vs, q, 10) {
			if got[its[idx[j]].ID] {
				found++
			}
		}
	}
	return float64(found) / float64(10*len(queries))
}

// TestRetrain: a partition trained at flat_max is retrained in the
// background once it has grown 4×; inserts and deletes made while the
// retrain runs are all in the new lists, recall stays ≥ 0.95 before,
// during and after, and a reopen keeps the trained lists.
func TestRetrain(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	ix := open(t, dir, "flat_max=1000&nprobe=8", vectors.Options{Registerer: reg})
	defer func() { ix.Close() }()
	its, queries := withQueries(clustered(12050, 0, 1), 50)
	upsertAll(t, ix, its[:1001])
	testenv.Eventually(t, 30*time.Second, "the first training", func() bool { return vlogtest.MustMetric(t, reg, "tianshu_vectors_retrains_total") == 1 })
	if r := recall(t, ix, its[:1001], queries, pf); r < 0.95 {
		t.Errorf("recall@10 after the first training = %.3f; want ≥ 0.95", r)
	}
	// Grow to 4× and keep writing while the retrain runs: inserts,
	// replacements and deletes of vectors the retrain is moving.
	upsertAll(t, ix, its[1001:4004])
	var wg sync.WaitGroup
	wg.Go(func() {
		for lo := 4004; lo < len(its); lo += 50 {
			if err := ix.Upsert(context.Background(), its[lo:min(lo+50, len(its))]); err != nil {
				t.Error(err)
				return
			}
			if err := ix.Delete(context.Background(), []string{its[deletedBy(lo)].ID}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	// Recall while retraining, over the vectors no concurrent write
	// touches (its[1001:4004], picked by time): the writer adds nearer
	// neighbours and deletes some of the first thousand meanwhile.
	window := pf
	window.Start, window.End = its[1001].Time, its[4004].Time
	during := recall(t, ix, its[1001:4004], queries[:10], window)
	wg.Wait()
	testenv.Eventually(t, 60*time.Second, "the retrain after 4× growth", func() bool {
		return vlogtest.MustMetric(t, reg, "tianshu_vectors_retrains_total") >= 2
	})
	live := liveAfter(its)
	check := func(when string) {
		t.Helper()
		st, err := ix.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Items != len(live) {
			t.Errorf("%s: %d items; want %d", when, st.Items, len(live))
		}
		for _, it := range live[len(live)-200:] {
			hits, err := ix.Search(context.Background(), it.Vector, 1, pf)
			if err != nil || len(hits) != 1 || hits[0].ID != it.ID {
				t.Fatalf("%s: %s (inserted during the retrain) finds %v, %v", when, it.ID, hits, err)
			}
		}
		if r := recall(t, ix, live, queries, pf); r < 0.95 {
			t.Errorf("%s: recall@10 = %.3f; want ≥ 0.95", when, r)
		}
	}
	if during < 0.95 {
		t.Errorf("recall@10 while retraining = %.3f; want ≥ 0.95", during)
	}
	check("after the retrain")
	if n := vlogtest.MustMetric(t, reg, "tianshu_vectors_lists"); n < 50 {
		t.Errorf("lists = %v after training at 4,004 vectors; want 2·√4004 ≈ 127", n)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	reg = prometheus.NewRegistry()
	ix = open(t, dir, "flat_max=1000&nprobe=8", vectors.Options{Registerer: reg})
	check("reopened")
	if n := vlogtest.MustMetric(t, reg, "tianshu_vectors_retrains_total"); n != 0 {
		t.Errorf("reopen retrained %v times; the snapshot holds the lists", n)
	}
}

// deletedBy is the item TestRetrain's concurrent writer deletes after
// inserting its[lo:lo+50]: every sixth of the first training's.
func deletedBy(lo int) int { return 4 + (lo-4004)/50*6 }

// liveAfter is what TestRetrain's writes leave: every item but the ones
// deleted by the concurrent writer.
func liveAfter(its []vectors.Item) []vectors.Item {
	deleted := map[int]bool{}
	for lo := 4004; lo < len(its); lo += 50 {
		deleted[deletedBy(lo)] = true
	}
	var out []vectors.Item
	for i, it := range its {
		if !deleted[i] {
			out = append(out, it)
		}
	}
	return out
}

// TestFilteredSearch: device and time filters that leave few vectors in
// the probed lists still find the nearest allowed ones (the search scans
// the other lists), and MinSimilarity drops what falls below it.
func TestFilteredSearch(t *testing.T) {
	reg := prometheus.NewRegistry()
	ix := open(t, t.TempDir(), "flat_max=500&nprobe=2", vectors.Options{Registerer: reg})
	defer ix.Close()
	its := clustered(3000, 0, 3)
	upsertAll(t, ix, its)
	testenv.Eventually(t, 30*time.Second, "the training", func() bool { return vlogtest.MustMetric(t, reg, "tianshu_vectors_retrains_total") == 1 })
	queries := [][]float32{its[7].Vector, its[1500].Vector, its[2999].Vector}
	for _, f := range []vectors.Filter{
		{ProjectID: "p", Type: "face", MinSimilarity: -1, DeviceIDs: []string{"dev-3"}},
		{ProjectID: "p", Type: "face", MinSimilarity: -1, Start: time.UnixMilli(100), End: time.UnixMilli(140)},
		{ProjectID: "p", Type: "face", MinSimilarity: -1, DeviceIDs: []string{"dev-1"}, Start: time.UnixMilli(2000)},
	} {
		if r := recall(t, ix, its, queries, f); r < 0.95 {
			t.Errorf("filter %+v: recall@10 = %.3f; want ≥ 0.95", f, r)
		}
	}
	hits, err := ix.Search(context.Background(), its[0].Vector, 1000, vectors.Filter{ProjectID: "p", Type: "face", MinSimilarity: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || len(hits) == 1000 {
		t.Errorf("MinSimilarity 0.5 kept %d of 1000 hits; want some and not all", len(hits))
	}
	for _, h := range hits {
		if h.Similarity < 0.5 {
			t.Errorf("hit %s at %.3f below MinSimilarity", h.ID, h.Similarity)
		}
	}
}

// TestShrinkRetrain: a trained partition whose deletes leave a quarter
// of the vectors it was last trained on (and more than flat_max) is
// trained again, to 2·√N lists of what it holds, and searches find the
// vectors left; deletes that leave a quarter again, within flat_max, put
// it back in one list, searched exactly.
func TestShrinkRetrain(t *testing.T) {
	reg := prometheus.NewRegistry()
	ix := open(t, t.TempDir(), "flat_max=500&nprobe=8", vectors.Options{Registerer: reg})
	defer ix.Close()
	its, queries := withQueries(clustered(2150, 0, 5), 50)
	// One write: the training samples all 2,100.
	if err := ix.Upsert(context.Background(), its); err != nil {
		t.Fatal(err)
	}
	// trainings is whether n trainings have finished and none runs.
	trainings := func(n float64) func() bool {
		return func() bool {
			return ivf.Trained(ix) && vlogtest.MustMetric(t, reg, "tianshu_vectors_retrains_total") == n
		}
	}
	testenv.Eventually(t, 30*time.Second, "the training", trainings(1))
	before := vlogtest.MustMetric(t, reg, "tianshu_vectors_lists")
	// Keep 501: more than flat_max, at most a quarter of 2,100.
	var del []string
	for _, it := range its[501:] {
		del = append(del, it.ID)
	}
	if err := ix.Delete(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the training after the deletes", trainings(2))
	after := vlogtest.MustMetric(t, reg, "tianshu_vectors_lists")
	if after > before/1.5 {
		t.Errorf("lists %v after shrinking to 501 vectors (%v before, 2·√2,100 ≈ 92); want 2·√501 ≈ 45", after, before)
	}
	if r := recall(t, ix, its[:501], queries, pf); r < 0.95 {
		t.Errorf("recall@10 after the shrink's training = %.3f; want ≥ 0.95", r)
	}
	// Shrunk again to a quarter, now within flat_max: one list again,
	// scanned whole, so every search is exact; no training.
	del = del[:0]
	for _, it := range its[100:501] {
		del = append(del, it.ID)
	}
	if err := ix.Delete(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	if n := vlogtest.MustMetric(t, reg, "tianshu_vectors_lists"); n != 1 {
		t.Errorf("lists %v after shrinking to 100 vectors (flat_max 500); want 1", n)
	}
	if n := vlogtest.MustMetric(t, reg, "tianshu_vectors_retrains_total"); n != 2 {
		t.Errorf("%v trainings; going back to one list is not one", n)
	}
	if r := recall(t, ix, its[:100], queries, pf); r != 1 {
		t.Errorf("recall@10 of the one list = %.3f; want 1 (an exact scan)", r)
	}
}

// TestDeleteTrained: deleted vectors leave the lists of a trained
// partition at once, and stay deleted across a reopen.
func TestDeleteTrained(t *testing.T) {
	dir := t.TempDir()
	ix := open(t, dir, "flat_max=500", vectors.Options{})
	its := clustered(2000, 0, 4)
	upsertAll(t, ix, its)
	var del []string
	for i := 0; i < len(its); i += 3 {
		del = append(del, its[i].ID)
	}
	if err := ix.Delete(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	gone := func() {
		t.Helper()
		for i := 0; i < len(its); i += 3 {
			hits, err := ix.Search(context.Background(), its[i].Vector, 10, pf)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				if h.ID == its[i].ID {
					t.Fatalf("deleted %s found", h.ID)
				}
			}
		}
		if st, _ := ix.Stats(context.Background()); st.Items != len(its)-len(del) {
			t.Errorf("%d items; want %d", st.Items, len(its)-len(del))
		}
	}
	gone()
	ix.Close()
	ix = open(t, dir, "flat_max=500", vectors.Options{})
	defer ix.Close()
	gone()
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"ivf://host/dir", "ivf:///tmp/x?nprobe=0", "ivf:///tmp/x?lists=0", "ivf:///tmp/x?flat_max=1", "ivf:///tmp/x?snapshot_bytes=1"} {
		if _, err := vectors.Open(context.Background(), u, vectors.Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// TestDurability runs the embedded engines' durability suite on ivf, with
// flat_max=200 so that its partitions are trained lists.
func TestDurability(t *testing.T) {
	vlogtest.Run(t, vlogtest.Engine{Scheme: "ivf", Params: "flat_max=200"})
}
