package hnsw_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/vectors"
	_ "github.com/tianshu-ai/tianshu/internal/vectors/hnsw"
	"github.com/tianshu-ai/tianshu/internal/vectors/vectortest"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog/vlogtest"
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

func TestBadURL(t *testing.T) {
	for _, u := range []string{"hnsw://host/dir", "hnsw:///tmp/x?ef=0", "hnsw:///tmp/x?snapshot_bytes=1"} {
		if _, err := vectors.Open(context.Background(), u, vectors.Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// TestDurability runs the embedded engines' durability suite on hnsw.
func TestDurability(t *testing.T) { vlogtest.Run(t, vlogtest.Engine{Scheme: "hnsw"}) }
