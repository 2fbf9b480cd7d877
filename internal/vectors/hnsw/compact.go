package hnsw

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// compactMin is the fewest tombstones a partition compacts for: below
// it the copy costs more than the tombstones.
const compactMin = 100

// maybeCompact starts compacting the first partition whose tombstones
// pass the index's share (compact_share), unless a compaction or a
// rebuild is running.
func (ix *Index) maybeCompact(st *vlog.Store) {
	if ix.compactShare >= 1 || st.Rebuilding() || st.Closed() {
		return
	}
	var k vlog.Key
	var g *graph
	ix.parts.Each(func(pk vlog.Key, pg *graph) {
		pg.mu.RLock()
		due := pg.ndead >= compactMin && float64(pg.ndead) > ix.compactShare*float64(pg.n())
		pg.mu.RUnlock()
		if due && g == nil {
			k, g = pk, pg
		}
	})
	if g == nil || !ix.compacting.CompareAndSwap(false, true) {
		return
	}
	st.Go(func(ctx context.Context) {
		defer ix.compacting.Store(false)
		if ix.compact(ctx, k, g) {
			st.SnapshotIfIdle(false)
		}
	})
}

// compact replaces partition g by a copy without its tombstones: the live
// nodes are inserted into a new graph in the background while searches
// and writes go on with g, the nodes written meanwhile are caught up, and
// the copy's slices replace g's under its write lock, whose epoch then
// makes inserts planned on the old slices plan again. Nothing logical
// changes, so the log and snapshot stay valid throughout: kill -9 at any
// point reopens the same items (TestKill9Compaction). A snapshot follows,
// so the disk shrinks too.
func (ix *Index) compact(ctx context.Context, k vlog.Key, g *graph) bool {
	start := time.Now()
	g.mu.Lock()
	before, dead := g.n(), g.ndead
	g.removed = []string{}
	g.mu.Unlock()
	ng := newGraph(g.dim)
	ng.m, ng.m0, ng.efCons, ng.efMin = g.m, g.m0, g.efCons, g.efMin
	// copyLive inserts g's live nodes in [from, to) into ng, chunk by
	// chunk from GOMAXPROCS goroutines (the copy is a build: it takes as
	// long as inserting the live nodes); g's read lock is held around
	// each chunk's gathering only. locked: g's write lock is held (the
	// last catch-up), one goroutine does it all.
	copyLive := func(from, to int, locked bool) {
		workers := runtime.GOMAXPROCS(0)
		if locked {
			workers = 1
		}
		var next atomic.Int64
		next.Store(int64(from))
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() { copyChunks(ctx, g, ng, &next, to, locked) })
		}
		wg.Wait()
	}

	// Copy, then catch up with what was written meanwhile until little is
	// left, so the write lock is held for a short final step only.
	done := 0
	for {
		g.mu.RLock()
		n := g.n()
		g.mu.RUnlock()
		if n-done <= 4*chunk || ctx.Err() != nil {
			break
		}
		copyLive(done, n, false)
		done = n
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if ctx.Err() != nil { // closing: leave g as it is
		g.removed = nil
		return false
	}
	copyLive(done, g.n(), true)
	ng.mu.Lock()
	for _, id := range g.removed {
		if _, live := g.byID[id]; !live {
			ng.remove(id)
		}
	}
	ng.mu.Unlock()
	g.adopt(ng)
	ix.compactions.Inc()
	ix.log.Info("vector index partition compacted", "project", k.Project, "type", k.Type,
		"nodes_before", before, "tombstones", dead, "nodes_after", g.n(), "tombstones_after", g.ndead, "duration", time.Since(start))
	return true
}

// adopt takes ng's nodes in place of g's (both write-locked or ng
// private), so that every holder of g sees the compacted graph.
func (g *graph) adopt(ng *graph) {
	g.vecs, g.q8, g.scale = ng.vecs, ng.q8, ng.scale
	g.nbr0, g.dist0, g.cnt0, g.level, g.upper = ng.nbr0, ng.dist0, ng.cnt0, ng.level, ng.upper
	g.dead, g.tms, g.dev, g.task, g.ids = ng.dead, ng.tms, ng.dev, ng.task, ng.ids
	g.names, g.byID = ng.names, ng.byID
	g.entry, g.maxLevel, g.hasEntry, g.ndead = ng.entry, ng.maxLevel, ng.hasEntry, ng.ndead
	g.removed = nil
	g.epoch++
}

// copyChunks is one of copyLive's goroutines: it takes chunks of g's nodes
// from next until to, and inserts their live ones into ng.
func copyChunks(ctx context.Context, g, ng *graph, next *atomic.Int64, to int, locked bool) {
	es := make([]entry, 0, chunk)
	for {
		lo := int(next.Add(chunk)) - chunk
		if lo >= to || !locked && ctx.Err() != nil {
			return
		}
		es = es[:0]
		if !locked {
			g.mu.RLock()
		}
		for i := uint32(lo); i < uint32(min(lo+chunk, to)); i++ {
			if !g.dead[i] {
				// vecs' values never change once written, so the entry
				// may keep pointing into them.
				es = append(es, entry{id: g.ids[i], dev: g.names.Strs[g.dev[i]], task: g.names.Strs[g.task[i]], tms: g.tms[i], q: g.vec(i)})
			}
		}
		if !locked {
			g.mu.RUnlock()
		}
		if len(es) > 0 {
			ng.insert(es)
		}
	}
}
