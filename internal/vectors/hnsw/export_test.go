package hnsw

import (
	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/vlog"
)

// Compacting reports whether ix (an embedded index) is compacting a
// partition, for tests that must act while it does.
func Compacting(ix vectors.Index) bool { return ix.(*Index).compacting.Load() }

// VectorOf returns the unit vector that ix (an embedded index) holds for
// id in partition project/typ, or nil.
func VectorOf(ix vectors.Index, project, typ, id string) []float32 {
	x := ix.(*Index)
	g, ok := x.parts.Get(vlog.Key{Project: project, Type: typ})
	if !ok {
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	i, ok := g.byID[id]
	if !ok {
		return nil
	}
	return append([]float32(nil), g.vecs[int(i)*g.dim:int(i+1)*g.dim]...)
}
