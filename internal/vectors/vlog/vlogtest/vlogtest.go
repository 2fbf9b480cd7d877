// Package vlogtest is the durability suite of the embedded engines, the
// ones whose files package vlog keeps: a torn log tail, a corrupt
// snapshot and a missing directory rebuilt from the store, snapshots
// between writes, one process per directory, and kill -9. Each embedded
// engine runs it beside vectortest's conformance suite.
package vlogtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vectortest"
)

// Engine names the engine under test.
type Engine struct {
	// Scheme is its URL scheme.
	Scheme string
	// Params is the URL query every open uses ("" for the defaults): an
	// engine can make its index take a shape it would reach only at
	// larger sizes (ivf: trained lists).
	Params string
}

// childEnv, set to a directory, makes the kill -9 subtests the child
// process that writes until it is killed.
const childEnv = "TIANSHU_VLOGTEST_CHILD"

// Run runs the suite.
func Run(t *testing.T, e Engine) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, e Engine)
	}{
		{"TornLogTail", testTornLogTail},
		{"CorruptSnapshotRebuilds", testCorruptSnapshotRebuilds},
		{"MissingDirRebuilds", testMissingDirRebuilds},
		{"SnapshotWhileWriting", testSnapshotWhileWriting},
		{"OneProcess", testOneProcess},
		{"Kill9", testKill9},
		{"Kill9GroupCommit", testKill9GroupCommit},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, e) })
	}
}

func (e Engine) open(t *testing.T, dir, extra string, o vectors.Options) vectors.Index {
	t.Helper()
	q := e.Params
	if extra != "" {
		q = strings.TrimPrefix(q+"&"+extra, "&")
	}
	ix, err := vectors.Open(context.Background(), e.Scheme+"://"+dir+"?"+q, o)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// Backend is the engine as vectortest's conformance suite opens it: a
// new directory per index, reopened from the same directory.
func (e Engine) Backend() vectortest.Backend {
	var mu sync.Mutex
	dirs := map[vectors.Index]string{}
	opened := func(t *testing.T, ix vectors.Index, dir string) vectors.Index {
		mu.Lock()
		dirs[ix] = dir
		mu.Unlock()
		t.Cleanup(func() { ix.Close() })
		return ix
	}
	return vectortest.Backend{
		Open: func(t *testing.T) vectors.Index {
			dir := t.TempDir()
			return opened(t, e.open(t, dir, "", vectors.Options{}), dir)
		},
		Reopen: func(t *testing.T, ix vectors.Index) vectors.Index {
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			dir := dirs[ix]
			mu.Unlock()
			return opened(t, e.open(t, dir, "", vectors.Options{}), dir)
		},
	}
}

// Items returns n items of 32-d Gaussian vectors (nearly orthogonal to
// one another: each is its own nearest), ids rec-0000 on.
func Items(n int, seed uint64) []vectors.Item {
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]vectors.Item, n)
	for i := range out {
		v := make([]float32, 32)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		out[i] = vectors.Item{ID: fmt.Sprintf("rec-%04d", i), ProjectID: "p", Type: "face", Time: time.UnixMilli(int64(i)), Vector: v}
	}
	return out
}

// PF selects Items' partition, every similarity.
var PF = vectors.Filter{ProjectID: "p", Type: "face", MinSimilarity: -1}

// FindsAll checks that every item finds itself first.
func FindsAll(t *testing.T, ix vectors.Index, its []vectors.Item) {
	t.Helper()
	for _, it := range its {
		hits, err := ix.Search(context.Background(), it.Vector, 1, PF)
		if err != nil || len(hits) != 1 || hits[0].ID != it.ID {
			t.Fatalf("%s finds %v, %v", it.ID, hits, err)
		}
	}
}

// sourceOf serves items as the store would, blocking until release is
// closed (nil: not at all).
func sourceOf(its []vectors.Item, release chan struct{}) vectors.Source {
	return func(ctx context.Context, yield func(vectors.Item) error) error {
		if release != nil {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for _, it := range its {
			if err := yield(it); err != nil {
				return err
			}
		}
		return nil
	}
}

// testTornLogTail: a log entry cut short (a write that never returned)
// is dropped at open; everything before it is there.
func testTornLogTail(t *testing.T, e Engine) {
	dir := t.TempDir()
	its := Items(400, 1)
	ix := e.open(t, dir, "", vectors.Options{})
	for _, it := range its {
		if err := ix.Upsert(context.Background(), []vectors.Item{it}); err != nil {
			t.Fatal(err)
		}
	}
	// No Close: the log is all there is, as after kill -9; a copy of the
	// directory is what the next process finds (this one keeps the lock).
	crashed := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dir, "index.log"))
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(crashed, "index.log")
	if err := os.WriteFile(logPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A header claiming 500 bytes, then 10 of them.
	f.Write([]byte{0xf4, 0x01, 0, 0, 1, 2, 3, 4, 'U', 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Close()
	ix2 := e.open(t, crashed, "", vectors.Options{})
	defer ix2.Close()
	FindsAll(t, ix2, its)
	if st2, _ := os.Stat(logPath); st2.Size() != st.Size() {
		t.Errorf("log is %d bytes after open; want the torn entry cut to %d", st2.Size(), st.Size())
	}
	ix.Close()
}

// testCorruptSnapshotRebuilds: a snapshot that fails its checksum is set
// aside and the index rebuilt from the store; searches answer
// ErrUnavailable until then, writes meanwhile are kept, and deletes
// meanwhile are not undone by the rebuild.
func testCorruptSnapshotRebuilds(t *testing.T, e Engine) {
	dir := t.TempDir()
	its := Items(300, 2)
	ix := e.open(t, dir, "", vectors.Options{})
	if err := ix.Upsert(context.Background(), its); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "index.snap")
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(snap, b, 0o600); err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	reg := prometheus.NewRegistry()
	ix = e.open(t, dir, "", vectors.Options{Source: sourceOf(its, release), Registerer: reg})
	defer ix.Close()
	if _, err := ix.Search(context.Background(), its[0].Vector, 1, PF); !errors.Is(err, vectors.ErrUnavailable) {
		t.Fatalf("Search while rebuilding = %v; want ErrUnavailable", err)
	}
	if _, err := os.Stat(snap + ".corrupt"); err != nil {
		t.Errorf("corrupt snapshot not set aside: %v", err)
	}
	extra := Items(301, 3)[300]
	extra.ID = "rec-extra"
	if err := ix.Upsert(context.Background(), []vectors.Item{extra}); err != nil {
		t.Fatalf("Upsert while rebuilding: %v", err)
	}
	if err := ix.Delete(context.Background(), []string{"rec-0005"}); err != nil {
		t.Fatalf("Delete while rebuilding: %v", err)
	}
	close(release)
	testenv.Eventually(t, 30*time.Second, "the rebuild to finish", func() bool {
		_, err := ix.Search(context.Background(), its[0].Vector, 1, PF)
		return err == nil
	})
	FindsAll(t, ix, append(append([]vectors.Item{}, its[:5]...), append(its[6:], extra)...))
	hits, _ := ix.Search(context.Background(), its[5].Vector, 1, PF)
	if len(hits) == 1 && hits[0].ID == "rec-0005" {
		t.Errorf("rec-0005, deleted during the rebuild, came back")
	}
	if n := MustMetric(t, reg, "tianshu_vectors_rebuilds_total"); n != 1 {
		t.Errorf("rebuilds = %v; want 1", n)
	}
}

// testMissingDirRebuilds: an index whose files are gone is rebuilt from
// the store.
func testMissingDirRebuilds(t *testing.T, e Engine) {
	dir := filepath.Join(t.TempDir(), "vectors")
	its := Items(200, 4)
	ix := e.open(t, dir, "", vectors.Options{Source: sourceOf(its, nil)})
	defer ix.Close()
	testenv.Eventually(t, 30*time.Second, "the rebuild to finish", func() bool {
		_, err := ix.Search(context.Background(), its[0].Vector, 1, PF)
		return err == nil
	})
	FindsAll(t, ix, its)
	if _, err := os.Stat(filepath.Join(dir, "index.snap")); err != nil {
		t.Errorf("no snapshot after the rebuild: %v", err)
	}
}

// testSnapshotWhileWriting: a small snapshot_bytes makes snapshots happen
// between writes; nothing is lost across them and a reopen.
func testSnapshotWhileWriting(t *testing.T, e Engine) {
	dir := t.TempDir()
	ix := e.open(t, dir, "snapshot_bytes=4096", vectors.Options{})
	its := Items(400, 5)
	for lo := 0; lo < len(its); lo += 20 {
		if err := ix.Upsert(context.Background(), its[lo:lo+20]); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = e.open(t, dir, "", vectors.Options{})
	defer ix.Close()
	FindsAll(t, ix, its)
}

// testOneProcess: a second opener of a directory in use is refused, and
// may open it once the first has closed.
func testOneProcess(t *testing.T, e Engine) {
	dir := t.TempDir()
	ix := e.open(t, dir, "", vectors.Options{})
	if _, err := vectors.Open(context.Background(), e.Scheme+"://"+dir, vectors.Options{}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second Open = %v; want refused", err)
	}
	ix.Close()
	e.open(t, dir, "", vectors.Options{}).Close()
}

// testKill9 writes from a child process that the test kills with SIGKILL
// mid-stream; every upsert the child reported as acknowledged must be in
// the reopened index.
func testKill9(t *testing.T, e Engine) {
	its := Items(100000, 6)
	if dir := os.Getenv(childEnv); dir != "" {
		ix := e.open(t, dir, "", vectors.Options{})
		for i := 0; ; i += 10 {
			if err := ix.Upsert(context.Background(), its[i%len(its):i%len(its)+10]); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("acked %d\n", i+10)
		}
	}
	dir := t.TempDir()
	acked := 0
	testenv.KillChild(t, t.Name(), childEnv+"="+dir, func(line string) bool {
		if n, ok := strings.CutPrefix(line, "acked "); ok {
			acked, _ = strconv.Atoi(n)
		}
		return acked >= 300
	})
	if acked < 300 {
		t.Fatalf("child acknowledged %d upserts before dying", acked)
	}
	ix := e.open(t, dir, "", vectors.Options{})
	defer ix.Close()
	FindsAll(t, ix, its[:acked])
	t.Logf("%d acknowledged upserts survived kill -9", acked)
}

// testKill9GroupCommit is testKill9 with 4 goroutines upserting one item
// each call, so their log entries share fsyncs: every upsert a goroutine
// reported as acknowledged must be in the reopened index.
func testKill9GroupCommit(t *testing.T, e Engine) {
	const n, writers = 40000, 4
	its := Items(n, 10)
	if dir := os.Getenv(childEnv); dir != "" {
		ix := e.open(t, dir, "", vectors.Options{})
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := w; i < n; i += writers {
					if err := ix.Upsert(context.Background(), its[i:i+1]); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					fmt.Printf("acked %d\n", i)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		t.Fatal("the child ran out of items before it was killed")
	}
	dir := t.TempDir()
	var acked []int
	testenv.KillChild(t, t.Name(), childEnv+"="+dir, func(line string) bool {
		if s, ok := strings.CutPrefix(line, "acked "); ok {
			i, _ := strconv.Atoi(s)
			acked = append(acked, i)
		}
		return len(acked) >= 400
	})
	if len(acked) < 400 {
		t.Fatalf("child acknowledged %d upserts before dying", len(acked))
	}
	ix := e.open(t, dir, "", vectors.Options{})
	defer ix.Close()
	var want []vectors.Item
	for _, i := range acked {
		want = append(want, its[i])
	}
	FindsAll(t, ix, want)
	t.Logf("%d acknowledged upserts from %d goroutines survived kill -9", len(acked), writers)
}

// Metric reads a counter or gauge without labels from g, and whether g
// has it.
func Metric(g prometheus.Gatherer, name string) (float64, bool) {
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			if m := mf.GetMetric()[0]; m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return mf.GetMetric()[0].GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// MustMetric is Metric for a metric g must have.
func MustMetric(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	v, ok := Metric(g, name)
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	return v
}
