package hnsw

import "github.com/tianshu-ai/tianshu/internal/vectors"

// Compacting reports whether ix (an embedded index) is compacting a
// partition, for tests that must act while it does.
func Compacting(ix vectors.Index) bool { return ix.(*Index).compacting.Load() }
