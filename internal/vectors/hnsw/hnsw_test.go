package hnsw_test

import (
	"context"
	"testing"

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

func TestConformance(t *testing.T) { vectortest.Run(t, vlogtest.Engine{Scheme: "hnsw"}.Backend()) }

func TestBadURL(t *testing.T) {
	for _, u := range []string{"hnsw://host/dir", "hnsw:///tmp/x?ef=0", "hnsw:///tmp/x?snapshot_bytes=1"} {
		if _, err := vectors.Open(context.Background(), u, vectors.Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// TestDurability runs the embedded engines' durability suite on hnsw.
func TestDurability(t *testing.T) { vlogtest.Run(t, vlogtest.Engine{Scheme: "hnsw"}) }
