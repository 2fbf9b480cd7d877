// Package vectortest is the conformance suite every vector index backend
// must pass. Code that uses a vectors.Index may rely on what this suite
// checks and on nothing else.
package vectortest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// Backend is how the suite gets indexes.
type Backend struct {
	// Open returns a new, empty index and arranges (t.Cleanup) to close
	// it and drop what it stored.
	Open func(t *testing.T) vectors.Index
	// Reopen closes ix and opens the same storage again; nil skips the
	// durability test.
	Reopen func(t *testing.T, ix vectors.Index) vectors.Index
}

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"Empty", testEmpty},
		{"RoundTrip", testRoundTrip},
		{"Normalized", testNormalized},
		{"Recall", testRecall},
		{"Partitions", testPartitions},
		{"Filters", testFilters},
		{"Replace", testReplace},
		{"Move", testMove},
		{"Delete", testDelete},
		{"Invalid", testInvalid},
		{"Concurrent", testConcurrent},
		{"Reopen", testReopen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

// Dim is the dimension the suite uses: the 128-d face descriptors the
// issue prefers; backends treat every dimension alike.
const Dim = 128

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func randVec(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func item(id string, v []float32) vectors.Item {
	return vectors.Item{ID: id, ProjectID: "p1", Type: "face", DeviceID: "dev-a", TaskID: "task-a", Time: t0, Vector: v}
}

func filter() vectors.Filter { return vectors.Filter{ProjectID: "p1", Type: "face", MinSimilarity: -1} }

func upsert(t *testing.T, ix vectors.Index, items ...vectors.Item) {
	t.Helper()
	if err := ix.Upsert(context.Background(), items); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
}

func search(t *testing.T, ix vectors.Index, v []float32, k int, f vectors.Filter) []vectors.Hit {
	t.Helper()
	hits, err := ix.Search(context.Background(), v, k, f)
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Similarity > hits[i-1].Similarity+1e-6 {
			t.Fatalf("hits not ordered by similarity: %v", hits)
		}
	}
	return hits
}

func ids(hits []vectors.Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func testEmpty(t *testing.T, b Backend) {
	ix := b.Open(t)
	hits := search(t, ix, randVec(rand.New(rand.NewPCG(1, 1)), Dim), 10, filter())
	if len(hits) != 0 {
		t.Fatalf("empty index: %v", hits)
	}
	st, err := ix.Stats(context.Background())
	if err != nil || st.Items != 0 {
		t.Fatalf("Stats = %+v, %v; want 0 items", st, err)
	}
}

func testRoundTrip(t *testing.T, b Backend) {
	ix := b.Open(t)
	r := rand.New(rand.NewPCG(2, 2))
	a, bb, c := randVec(r, Dim), randVec(r, Dim), randVec(r, Dim)
	ia := item("rec-a", a)
	ia.DeviceID, ia.TaskID, ia.Time = "dev-x", "task-y", t0.Add(1234*time.Millisecond)
	upsert(t, ix, ia, item("rec-b", bb), item("rec-c", c))
	hits := search(t, ix, a, 3, filter())
	if len(hits) != 3 || hits[0].ID != "rec-a" {
		t.Fatalf("hits = %v; want rec-a first of 3", hits)
	}
	h := hits[0]
	if math.Abs(float64(h.Similarity-1)) > 1e-4 {
		t.Errorf("similarity of the same vector = %v; want 1", h.Similarity)
	}
	if h.DeviceID != "dev-x" || h.TaskID != "task-y" || !h.Time.Equal(ia.Time) {
		t.Errorf("hit = %+v; want device dev-x, task task-y, time %v", h, ia.Time)
	}
	if got := search(t, ix, a, 1, filter()); len(got) != 1 {
		t.Errorf("k=1 gave %d hits", len(got))
	}
	st, err := ix.Stats(context.Background())
	if err != nil || st.Items != 3 || st.Partitions != 1 {
		t.Errorf("Stats = %+v, %v; want 3 items in 1 partition", st, err)
	}
}

// testNormalized: similarity is the cosine, whatever the vectors' lengths.
func testNormalized(t *testing.T, b Backend) {
	ix := b.Open(t)
	r := rand.New(rand.NewPCG(3, 3))
	v := randVec(r, Dim)
	w := make([]float32, Dim)
	neg := make([]float32, Dim)
	for i := range v {
		w[i], neg[i] = 7*v[i], -v[i]
	}
	upsert(t, ix, item("rec-long", w), item("rec-neg", neg))
	hits := search(t, ix, v, 2, filter())
	if len(hits) != 2 || hits[0].ID != "rec-long" || math.Abs(float64(hits[0].Similarity-1)) > 1e-4 ||
		math.Abs(float64(hits[1].Similarity+1)) > 1e-4 {
		t.Fatalf("hits = %+v; want rec-long at 1, rec-neg at -1", hits)
	}
	f := filter()
	f.MinSimilarity = 0.5
	if hits := search(t, ix, v, 2, f); len(hits) != 1 || hits[0].ID != "rec-long" {
		t.Fatalf("MinSimilarity 0.5: %+v; want rec-long only", hits)
	}
}

// Clustered returns n unit-length vectors around ids identities (Gaussian
// noise of the given spread around a random centre each), the shape of
// face embeddings: several shots of each person.
func Clustered(r *rand.Rand, n, ids, dim int, spread float64) [][]float32 {
	centres := make([][]float32, ids)
	for i := range centres {
		centres[i] = vectors.Normalize(randVec(r, dim))
	}
	out := make([][]float32, n)
	s := spread / math.Sqrt(float64(dim))
	for i := range out {
		c := centres[r.IntN(ids)]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + float32(r.NormFloat64()*s)
		}
		out[i] = vectors.Normalize(v)
	}
	return out
}

// Exact returns the indexes of the k vectors most similar to q by brute
// force, most similar first (ties by index): one pass keeping the best k
// in a sorted slice. vecs must be unit length.
func Exact(vecs [][]float32, q []float32, k int) []int {
	type sc struct {
		i int
		s float32
	}
	q = vectors.Normalize(q)
	best := make([]sc, 0, k+1)
	for i, v := range vecs {
		s := vectors.Dot(q, v)
		if len(best) == k && s <= best[k-1].s {
			continue
		}
		j := len(best)
		for j > 0 && best[j-1].s < s {
			j--
		}
		best = slices.Insert(best, j, sc{i, s})
		if len(best) > k {
			best = best[:k]
		}
	}
	out := make([]int, len(best))
	for i, b := range best {
		out[i] = b.i
	}
	return out
}

func testRecall(t *testing.T, b Backend) {
	ix := b.Open(t)
	r := rand.New(rand.NewPCG(4, 4))
	const n, k, queries = 3000, 10, 50
	all := Clustered(r, n+queries, 300, Dim, 0.6)
	vecs, held := all[:n], all[n:] // queries are new shots of known people
	items := make([]vectors.Item, n)
	for i, v := range vecs {
		items[i] = item(fmt.Sprintf("rec-%05d", i), v)
	}
	for lo := 0; lo < n; lo += 500 {
		upsert(t, ix, items[lo:lo+500]...)
	}
	found, total := 0, 0
	for _, q := range held {
		want := Exact(vecs, q, k)
		got := map[string]bool{}
		for _, h := range search(t, ix, q, k, filter()) {
			got[h.ID] = true
		}
		for _, i := range want {
			total++
			if got[fmt.Sprintf("rec-%05d", i)] {
				found++
			}
		}
	}
	if recall := float64(found) / float64(total); recall < 0.95 {
		t.Fatalf("recall@%d = %.3f; want ≥ 0.95", k, recall)
	}
}

func testPartitions(t *testing.T, b Backend) {
	ix := b.Open(t)
	v := randVec(rand.New(rand.NewPCG(5, 5)), Dim)
	a := item("rec-p1-face", v)
	bb := item("rec-p2-face", v)
	bb.ProjectID = "p2"
	c := item("rec-p1-person", v)
	c.Type = "person"
	upsert(t, ix, a, bb, c)
	for _, tc := range []struct{ project, typ, want string }{
		{"p1", "face", "rec-p1-face"}, {"p2", "face", "rec-p2-face"}, {"p1", "person", "rec-p1-person"},
	} {
		hits := search(t, ix, v, 10, vectors.Filter{ProjectID: tc.project, Type: tc.typ, MinSimilarity: -1})
		if !slices.Equal(ids(hits), []string{tc.want}) {
			t.Errorf("%s/%s: %v; want only %s", tc.project, tc.typ, ids(hits), tc.want)
		}
	}
	if hits := search(t, ix, v, 10, vectors.Filter{ProjectID: "p3", Type: "face"}); len(hits) != 0 {
		t.Errorf("another project: %v", hits)
	}
	// Another partition may hold another dimension.
	d := item("rec-p1-vehicle", randVec(rand.New(rand.NewPCG(6, 6)), 64))
	d.Type = "vehicle"
	upsert(t, ix, d)
}

func testFilters(t *testing.T, b Backend) {
	ix := b.Open(t)
	r := rand.New(rand.NewPCG(7, 7))
	q := randVec(r, Dim)
	var items []vectors.Item
	for i := range 60 {
		// Near q, so every item would be a hit without the filters.
		v := make([]float32, Dim)
		for j := range v {
			v[j] = q[j] + float32(r.NormFloat64()*0.05)
		}
		it := item(fmt.Sprintf("rec-%02d", i), v)
		it.DeviceID = fmt.Sprintf("dev-%d", i%3)
		it.TaskID = fmt.Sprintf("task-%d", i%2)
		it.Time = t0.Add(time.Duration(i) * time.Minute)
		items = append(items, it)
	}
	// Unrelated items, so that filters cannot just return everything.
	for i := range 200 {
		items = append(items, item(fmt.Sprintf("rec-z%03d", i), randVec(r, Dim)))
	}
	upsert(t, ix, items...)
	check := func(name string, f vectors.Filter, keep func(i int) bool) {
		t.Helper()
		f.ProjectID, f.Type, f.MinSimilarity = "p1", "face", -1
		var want []string
		for i := range 60 {
			if keep(i) {
				want = append(want, fmt.Sprintf("rec-%02d", i))
			}
		}
		got := ids(search(t, ix, q, 100, f))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %d hits %v; want %d %v", name, len(got), got, len(want), want)
		}
	}
	check("device", vectors.Filter{DeviceIDs: []string{"dev-1"}}, func(i int) bool { return i%3 == 1 })
	check("devices", vectors.Filter{DeviceIDs: []string{"dev-0", "dev-2", "dev-none"}}, func(i int) bool { return i%3 != 1 })
	check("task", vectors.Filter{TaskIDs: []string{"task-1"}}, func(i int) bool { return i%2 == 1 })
	check("device and task", vectors.Filter{DeviceIDs: []string{"dev-0"}, TaskIDs: []string{"task-0"}}, func(i int) bool { return i%6 == 0 })
	check("time", vectors.Filter{DeviceIDs: []string{"dev-0", "dev-1", "dev-2"}, Start: t0.Add(10 * time.Minute), End: t0.Add(20 * time.Minute)},
		func(i int) bool { return i >= 10 && i < 20 })
	check("unknown device", vectors.Filter{DeviceIDs: []string{"dev-9"}}, func(int) bool { return false })
}

func testReplace(t *testing.T, b Backend) {
	ix := b.Open(t)
	r := rand.New(rand.NewPCG(8, 8))
	old, nu := randVec(r, Dim), randVec(r, Dim)
	upsert(t, ix, item("rec-1", old), item("rec-2", randVec(r, Dim)))
	upsert(t, ix, item("rec-1", nu))
	hits := search(t, ix, nu, 1, filter())
	if len(hits) != 1 || hits[0].ID != "rec-1" || hits[0].Similarity < 0.999 {
		t.Fatalf("after replace, the new vector finds %+v", hits)
	}
	for _, h := range search(t, ix, old, 2, filter()) {
		if h.ID == "rec-1" && h.Similarity > 0.999 {
			t.Fatalf("the old vector of rec-1 is still there: %+v", h)
		}
	}
	if st, _ := ix.Stats(context.Background()); st.Items != 2 {
		t.Errorf("Items = %d after a replace; want 2", st.Items)
	}
}

func testMove(t *testing.T, b Backend) {
	ix := b.Open(t)
	v := randVec(rand.New(rand.NewPCG(9, 9)), Dim)
	upsert(t, ix, item("rec-1", v))
	moved := item("rec-1", v)
	moved.ProjectID = "p2"
	upsert(t, ix, moved)
	if hits := search(t, ix, v, 5, filter()); len(hits) != 0 {
		t.Errorf("p1 still finds %v after rec-1 moved to p2", hits)
	}
	if hits := search(t, ix, v, 5, vectors.Filter{ProjectID: "p2", Type: "face"}); len(hits) != 1 {
		t.Errorf("p2 finds %v; want rec-1", hits)
	}
}

func testDelete(t *testing.T, b Backend) {
	ix := b.Open(t)
	r := rand.New(rand.NewPCG(10, 10))
	var items []vectors.Item
	for i := range 50 {
		items = append(items, item(fmt.Sprintf("rec-%02d", i), randVec(r, Dim)))
	}
	upsert(t, ix, items...)
	if err := ix.Delete(context.Background(), []string{"rec-03", "rec-07", "rec-unknown"}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, id := range []int{3, 7} {
		for _, h := range search(t, ix, items[id].Vector, 50, filter()) {
			if h.ID == items[id].ID {
				t.Fatalf("deleted %s still found", h.ID)
			}
		}
	}
	if hits := search(t, ix, items[4].Vector, 1, filter()); len(hits) != 1 || hits[0].ID != "rec-04" {
		t.Errorf("rec-04 after deleting others: %v", hits)
	}
	if st, _ := ix.Stats(context.Background()); st.Items != 48 {
		t.Errorf("Items = %d; want 48", st.Items)
	}
	// Deleting again, or nothing, is fine; a deleted id may come back.
	if err := ix.Delete(context.Background(), []string{"rec-03"}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Delete(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	upsert(t, ix, items[3])
	if hits := search(t, ix, items[3].Vector, 1, filter()); len(hits) != 1 || hits[0].ID != "rec-03" {
		t.Errorf("re-added rec-03: %v", hits)
	}
}

func testInvalid(t *testing.T, b Backend) {
	ix := b.Open(t)
	r := rand.New(rand.NewPCG(11, 11))
	upsert(t, ix, item("rec-1", randVec(r, Dim)))
	ctx := context.Background()
	nan := randVec(r, Dim)
	nan[5] = float32(math.NaN())
	long := item("rec-long", randVec(r, Dim))
	long.DeviceID = string(make([]byte, vectors.MaxIDLen+1))
	noProject := item("rec-np", randVec(r, Dim))
	noProject.ProjectID = ""
	for _, tc := range []struct {
		name  string
		items []vectors.Item
		want  error
	}{
		{"wrong dimension", []vectors.Item{item("rec-2", randVec(r, Dim+1))}, vectors.ErrDimension},
		{"two dimensions in a batch", []vectors.Item{
			func() vectors.Item { i := item("rec-3", randVec(r, 8)); i.Type = "new"; return i }(),
			func() vectors.Item { i := item("rec-4", randVec(r, 9)); i.Type = "new"; return i }()}, vectors.ErrDimension},
		{"empty vector", []vectors.Item{item("rec-2", nil)}, vectors.ErrDimension},
		{"too long", []vectors.Item{func() vectors.Item { i := item("rec-2", randVec(r, vectors.MaxDim+1)); i.Type = "x"; return i }()}, vectors.ErrDimension},
		{"zero vector", []vectors.Item{item("rec-2", make([]float32, Dim))}, vectors.ErrInvalid},
		{"NaN", []vectors.Item{item("rec-2", nan)}, vectors.ErrInvalid},
		{"no id", []vectors.Item{item("", randVec(r, Dim))}, vectors.ErrInvalid},
		{"no project", []vectors.Item{noProject}, vectors.ErrInvalid},
		{"long device", []vectors.Item{long}, vectors.ErrInvalid},
		// One bad item refuses the batch: rec-ok must not be written.
		{"bad batch", []vectors.Item{item("rec-ok", randVec(r, Dim)), item("rec-bad", randVec(r, 3))}, vectors.ErrDimension},
	} {
		if err := ix.Upsert(ctx, tc.items); !errors.Is(err, tc.want) {
			t.Errorf("%s: Upsert = %v; want %v", tc.name, err, tc.want)
		}
	}
	if st, _ := ix.Stats(ctx); st.Items != 1 {
		t.Errorf("Items = %d after refused upserts; want 1", st.Items)
	}
	q := randVec(r, Dim)
	for _, tc := range []struct {
		name string
		v    []float32
		k    int
		f    vectors.Filter
		want error
	}{
		{"k 0", q, 0, filter(), vectors.ErrInvalid},
		{"k too big", q, vectors.MaxK + 1, filter(), vectors.ErrInvalid},
		{"no type", q, 5, vectors.Filter{ProjectID: "p1"}, vectors.ErrInvalid},
		{"wrong dimension", randVec(r, Dim-1), 5, filter(), vectors.ErrDimension},
		{"zero", make([]float32, Dim), 5, filter(), vectors.ErrInvalid},
	} {
		if _, err := ix.Search(ctx, tc.v, tc.k, tc.f); !errors.Is(err, tc.want) {
			t.Errorf("Search %s = %v; want %v", tc.name, err, tc.want)
		}
	}
	if err := ix.Delete(ctx, []string{""}); !errors.Is(err, vectors.ErrInvalid) {
		t.Errorf("Delete(\"\") = %v; want ErrInvalid", err)
	}
	big := make([]vectors.Item, vectors.MaxBatch+1)
	if err := ix.Upsert(ctx, big); !errors.Is(err, vectors.ErrInvalid) {
		t.Errorf("Upsert of %d = %v; want ErrInvalid", len(big), err)
	}
}

func testConcurrent(t *testing.T, b Backend) {
	ix := b.Open(t)
	const writers, each = 4, 150
	vecs := make([][][]float32, writers)
	for w := range vecs {
		r := rand.New(rand.NewPCG(12, uint64(w)))
		for range each {
			vecs[w] = append(vecs[w], randVec(r, Dim))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg, sg sync.WaitGroup
	errs := make(chan error, writers+2)
	for s := range 2 {
		sg.Add(1)
		go func() {
			defer sg.Done()
			r := rand.New(rand.NewPCG(13, uint64(s)))
			for ctx.Err() == nil {
				if _, err := ix.Search(context.Background(), randVec(r, Dim), 5, filter()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i += 10 {
				var batch []vectors.Item
				for j := i; j < i+10; j++ {
					batch = append(batch, item(fmt.Sprintf("rec-%d-%03d", w, j), vecs[w][j]))
				}
				if err := ix.Upsert(context.Background(), batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	sg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	missing := 0
	for w := range writers {
		for j, v := range vecs[w] {
			hits := search(t, ix, v, 1, filter())
			if len(hits) != 1 || hits[0].ID != fmt.Sprintf("rec-%d-%03d", w, j) {
				missing++
			}
		}
	}
	// Random vectors in 128 dimensions are far apart: each must find itself.
	if missing > 0 {
		t.Fatalf("%d of %d concurrently written vectors do not find themselves", missing, writers*each)
	}
	if st, _ := ix.Stats(context.Background()); st.Items != writers*each {
		t.Errorf("Items = %d; want %d", st.Items, writers*each)
	}
}

func testReopen(t *testing.T, b Backend) {
	if b.Reopen == nil {
		t.Skip("backend has no Reopen")
	}
	ix := b.Open(t)
	r := rand.New(rand.NewPCG(14, 14))
	var items []vectors.Item
	for i := range 100 {
		it := item(fmt.Sprintf("rec-%03d", i), randVec(r, Dim))
		it.DeviceID = fmt.Sprintf("dev-%d", i%4)
		items = append(items, it)
	}
	upsert(t, ix, items...)
	if err := ix.Delete(context.Background(), []string{"rec-010"}); err != nil {
		t.Fatal(err)
	}
	ix = b.Reopen(t, ix)
	if st, _ := ix.Stats(context.Background()); st.Items != 99 {
		t.Errorf("Items after reopen = %d; want 99", st.Items)
	}
	for i, it := range items {
		hits := search(t, ix, it.Vector, 1, filter())
		if i == 10 {
			if len(hits) == 1 && hits[0].ID == it.ID {
				t.Errorf("deleted rec-010 is back after reopen")
			}
			continue
		}
		if len(hits) != 1 || hits[0].ID != it.ID || hits[0].DeviceID != it.DeviceID {
			t.Fatalf("after reopen, %s finds %+v", it.ID, hits)
		}
	}
	// Writes go on after a reopen, and survive another.
	upsert(t, ix, item("rec-new", randVec(r, Dim)))
	ix = b.Reopen(t, ix)
	if st, _ := ix.Stats(context.Background()); st.Items != 100 {
		t.Errorf("Items after the second reopen = %d; want 100", st.Items)
	}
}
