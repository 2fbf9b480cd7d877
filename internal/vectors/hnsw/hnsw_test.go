package hnsw_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/testenv"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	_ "github.com/tianshu-ai/tianshu/internal/vectors/hnsw"
	"github.com/tianshu-ai/tianshu/internal/vectors/vectortest"
)

func openDir(t *testing.T, dir string, o vectors.Options) vectors.Index {
	t.Helper()
	ix, err := vectors.Open(context.Background(), "hnsw://"+dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestConformance(t *testing.T) {
	dirs := map[vectors.Index]string{}
	vectortest.Run(t, vectortest.Backend{
		Open: func(t *testing.T) vectors.Index {
			dir := t.TempDir()
			ix := openDir(t, dir, vectors.Options{})
			dirs[ix] = dir
			t.Cleanup(func() { ix.Close() })
			return ix
		},
		Reopen: func(t *testing.T, ix vectors.Index) vectors.Index {
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
			n := openDir(t, dirs[ix], vectors.Options{})
			dirs[n] = dirs[ix]
			t.Cleanup(func() { n.Close() })
			return n
		},
	})
}

func vec(r *rand.Rand) []float32 {
	v := make([]float32, 32)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func items(n int, seed uint64) []vectors.Item {
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]vectors.Item, n)
	for i := range out {
		out[i] = vectors.Item{ID: fmt.Sprintf("rec-%04d", i), ProjectID: "p", Type: "face", Time: time.UnixMilli(int64(i)), Vector: vec(r)}
	}
	return out
}

var pf = vectors.Filter{ProjectID: "p", Type: "face", MinSimilarity: -1}

// findsAll checks that every item finds itself first.
func findsAll(t *testing.T, ix vectors.Index, its []vectors.Item) {
	t.Helper()
	for _, it := range its {
		hits, err := ix.Search(context.Background(), it.Vector, 1, pf)
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

// TestTornLogTail: a log entry cut short (a write that never returned)
// is dropped at open; everything before it is there.
func TestTornLogTail(t *testing.T) {
	dir := t.TempDir()
	its := items(40, 1)
	ix := openDir(t, dir, vectors.Options{})
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
	ix2 := openDir(t, crashed, vectors.Options{})
	defer ix2.Close()
	findsAll(t, ix2, its)
	if st2, _ := os.Stat(logPath); st2.Size() != st.Size() {
		t.Errorf("log is %d bytes after open; want the torn entry cut to %d", st2.Size(), st.Size())
	}
	ix.Close()
}

// TestCorruptSnapshotRebuilds: a snapshot that fails its checksum is set
// aside and the index rebuilt from the store; searches answer
// ErrUnavailable until then, writes meanwhile are kept, and deletes
// meanwhile are not undone by the rebuild.
func TestCorruptSnapshotRebuilds(t *testing.T) {
	dir := t.TempDir()
	its := items(300, 2)
	ix := openDir(t, dir, vectors.Options{})
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
	ix = openDir(t, dir, vectors.Options{Source: sourceOf(its, release), Registerer: reg})
	defer ix.Close()
	if _, err := ix.Search(context.Background(), its[0].Vector, 1, pf); !errors.Is(err, vectors.ErrUnavailable) {
		t.Fatalf("Search while rebuilding = %v; want ErrUnavailable", err)
	}
	if _, err := os.Stat(snap + ".corrupt"); err != nil {
		t.Errorf("corrupt snapshot not set aside: %v", err)
	}
	extra := items(301, 3)[300]
	extra.ID = "rec-extra"
	if err := ix.Upsert(context.Background(), []vectors.Item{extra}); err != nil {
		t.Fatalf("Upsert while rebuilding: %v", err)
	}
	if err := ix.Delete(context.Background(), []string{"rec-0005"}); err != nil {
		t.Fatalf("Delete while rebuilding: %v", err)
	}
	close(release)
	testenv.Eventually(t, 30*time.Second, "the rebuild to finish", func() bool {
		_, err := ix.Search(context.Background(), its[0].Vector, 1, pf)
		return err == nil
	})
	findsAll(t, ix, append(append([]vectors.Item{}, its[:5]...), append(its[6:], extra)...))
	hits, _ := ix.Search(context.Background(), its[5].Vector, 1, pf)
	if len(hits) == 1 && hits[0].ID == "rec-0005" {
		t.Errorf("rec-0005, deleted during the rebuild, came back")
	}
	if n := counter(t, reg, "tianshu_vectors_rebuilds_total"); n != 1 {
		t.Errorf("rebuilds = %v; want 1", n)
	}
}

// counter reads a counter or gauge without labels.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if m := mf.GetMetric()[0]; m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestMissingDirRebuilds: an index whose files are gone is rebuilt from the
// store.
func TestMissingDirRebuilds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vectors")
	its := items(200, 4)
	ix := openDir(t, dir, vectors.Options{Source: sourceOf(its, nil)})
	defer ix.Close()
	testenv.Eventually(t, 30*time.Second, "the rebuild to finish", func() bool {
		_, err := ix.Search(context.Background(), its[0].Vector, 1, pf)
		return err == nil
	})
	findsAll(t, ix, its)
	if _, err := os.Stat(filepath.Join(dir, "index.snap")); err != nil {
		t.Errorf("no snapshot after the rebuild: %v", err)
	}
}

// TestSnapshotWhileWriting: a small snapshot_bytes makes snapshots happen
// between writes; nothing is lost across them and a reopen.
func TestSnapshotWhileWriting(t *testing.T) {
	dir := t.TempDir()
	ix, err := vectors.Open(context.Background(), "hnsw://"+dir+"?snapshot_bytes=4096", vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	its := items(400, 5)
	for lo := 0; lo < len(its); lo += 20 {
		if err := ix.Upsert(context.Background(), its[lo:lo+20]); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = openDir(t, dir, vectors.Options{})
	defer ix.Close()
	findsAll(t, ix, its)
}

// TestOneProcess: a second opener of a directory in use is refused, and
// may open it once the first has closed.
func TestOneProcess(t *testing.T) {
	dir := t.TempDir()
	ix := openDir(t, dir, vectors.Options{})
	if _, err := vectors.Open(context.Background(), "hnsw://"+dir, vectors.Options{}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second Open = %v; want refused", err)
	}
	ix.Close()
	openDir(t, dir, vectors.Options{}).Close()
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"hnsw://host/dir", "hnsw:///tmp/x?ef=0", "hnsw:///tmp/x?snapshot_bytes=1"} {
		if _, err := vectors.Open(context.Background(), u, vectors.Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// TestKill9 writes from a child process that the test kills with SIGKILL
// mid-stream; every upsert the child reported as acknowledged must be in
// the reopened index.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("TIANSHU_VECTORS_CHILD"); dir != "" {
		ix := openDir(t, dir, vectors.Options{})
		its := items(100000, 6)
		for i := 0; ; i += 10 {
			if err := ix.Upsert(context.Background(), its[i%len(its):i%len(its)+10]); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("acked %d\n", i+10)
		}
	}
	dir := t.TempDir()
	acked := 0
	testenv.KillChild(t, "TestKill9", "TIANSHU_VECTORS_CHILD="+dir, func(line string) bool {
		if n, ok := strings.CutPrefix(line, "acked "); ok {
			acked, _ = strconv.Atoi(n)
		}
		return acked >= 300
	})
	if acked < 300 {
		t.Fatalf("child acknowledged %d upserts before dying", acked)
	}
	ix := openDir(t, dir, vectors.Options{})
	defer ix.Close()
	findsAll(t, ix, items(100000, 6)[:acked])
	t.Logf("%d acknowledged upserts survived kill -9", acked)
}
