package hnsw_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/hnsw"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog/vlogtest"
)

func ids(its []vectors.Item) []string {
	out := make([]string, len(its))
	for i, it := range its {
		out[i] = it.ID
	}
	return out
}

// notFound checks that no deleted item is returned for its own vector.
func notFound(t *testing.T, ix vectors.Index, its []vectors.Item) {
	t.Helper()
	for _, it := range its {
		hits, err := ix.Search(context.Background(), it.Vector, 1, vlogtest.PF)
		if err != nil || len(hits) == 1 && hits[0].ID == it.ID {
			t.Fatalf("deleted %s: %v, %v", it.ID, hits, err)
		}
	}
}

// TestCompaction deletes 30% of a partition, past compact_share 0.2:
// the tombstones are compacted away in the background while searches,
// upserts and deletes go on; nothing live is lost, nothing deleted comes
// back, before or after a reopen, and the snapshot shrinks.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	ix, err := vectors.Open(context.Background(), "hnsw://"+dir+"?compact_share=0.2", vectors.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	all := vlogtest.Items(3000, 7)
	base, extra := all[:2000], all[2000:]
	if err := ix.Upsert(context.Background(), base); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil { // a snapshot with every node
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "index.snap"))
	if err != nil {
		t.Fatal(err)
	}
	full := st.Size()
	ix, err = vectors.Open(context.Background(), "hnsw://"+dir+"?compact_share=0.2", vectors.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ix.Close() }()

	// Searches and writes run throughout; the writes go on until the
	// compaction is done, so some land while it copies.
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			if _, err := ix.Search(context.Background(), base[i%len(base)].Vector, 5, vlogtest.PF); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var written atomic.Int64
	wg.Go(func() {
		for i := 0; i < len(extra) && (!stop.Load() || i < 200); i += 10 {
			batch := extra[i : i+10]
			if err := ix.Upsert(context.Background(), batch); err != nil {
				t.Error(err)
				return
			}
			// Each batch's first item is deleted again: deletes during
			// the compaction.
			if err := ix.Delete(context.Background(), []string{batch[0].ID}); err != nil {
				t.Error(err)
				return
			}
			written.Store(int64(i + 10))
		}
	})
	deleted := base[:600]
	if err := ix.Delete(context.Background(), ids(deleted)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the compaction", func() bool {
		return vlogtest.MustMetric(t, reg, "tianshu_vectors_compactions_total") >= 1
	})
	stop.Store(true)
	wg.Wait()
	if n := vlogtest.MustMetric(t, reg, "tianshu_vectors_tombstones"); n > 0.2*3000 {
		t.Errorf("%v tombstones after the compaction", n)
	}
	var live, gone []vectors.Item
	for i := 0; i < int(written.Load()); i += 10 {
		live = append(live, extra[i+1:i+10]...)
		gone = append(gone, extra[i])
	}
	check := func(ix vectors.Index) {
		t.Helper()
		vlogtest.FindsAll(t, ix, base[600:])
		vlogtest.FindsAll(t, ix, live)
		notFound(t, ix, deleted)
		notFound(t, ix, gone)
		s, err := ix.Stats(context.Background())
		if want := len(base) - 600 + len(live); err != nil || s.Items != want {
			t.Fatalf("Stats = %+v, %v; want %d items", s, err, want)
		}
	}
	check(ix)
	// The snapshot holds the live nodes and the tombstones left (deletes
	// made while it copied), not the compacted ones: compared per node
	// with the first snapshot, since how many vectors the writer added
	// meanwhile depends on the machine's speed.
	s, err := ix.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	nodes := float64(s.Items) + vlogtest.MustMetric(t, reg, "tianshu_vectors_tombstones")
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	perNode := float64(full) / float64(len(base))
	if st, err := os.Stat(filepath.Join(dir, "index.snap")); err != nil || float64(st.Size()) > 1.1*perNode*nodes {
		t.Errorf("snapshot after compaction: %v, %v; want at most %.0f (%.0f nodes of %.0f bytes)", st.Size(), err, 1.1*perNode*nodes, nodes, perNode)
	}
	ix = openDir(t, dir, vectors.Options{})
	check(ix)
}

// TestKill9Compaction kills a child process with SIGKILL while it
// compacts a partition and keeps writing: every acknowledged upsert is in
// the reopened index and no acknowledged delete is undone.
func TestKill9Compaction(t *testing.T) {
	const base = 6000
	if dir := os.Getenv("TIANSHU_VECTORS_COMPACT_CHILD"); dir != "" {
		ix, err := vectors.Open(context.Background(), "hnsw://"+dir+"?compact_share=0.2", vectors.Options{})
		if err != nil {
			t.Fatal(err)
		}
		its := vlogtest.Items(base+20000, 8)
		if err := ix.Upsert(context.Background(), its[:base]); err != nil {
			t.Fatal(err)
		}
		if err := ix.Delete(context.Background(), ids(its[:base/2])); err != nil {
			t.Fatal(err)
		}
		for i := base; i < len(its); i += 10 {
			if err := ix.Upsert(context.Background(), its[i:i+10]); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("acked %d compacting %v\n", i+10, hnsw.Compacting(ix))
		}
		t.Fatal("the child ran out of items before it was killed")
	}
	dir := t.TempDir()
	acked, during := 0, 0
	testenv.KillChild(t, "TestKill9Compaction", "TIANSHU_VECTORS_COMPACT_CHILD="+dir, func(line string) bool {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "acked" {
			acked, _ = strconv.Atoi(f[1])
			if f[3] == "true" {
				during++
			}
		}
		return during >= 5 || acked >= base+15000
	})
	if during == 0 {
		t.Fatalf("the child acknowledged %d upserts and none during a compaction", acked)
	}
	ix := openDir(t, dir, vectors.Options{})
	defer ix.Close()
	its := vlogtest.Items(base+20000, 8)
	vlogtest.FindsAll(t, ix, its[base/2:acked])
	notFound(t, ix, its[:base/2])
	t.Logf("killed after %d acknowledged upserts, %d of them while compacting", acked-base, during)
}
