package vectors

import "golang.org/x/sys/cpu"

// hasAVX2FMA is read once: CPU features do not change under a process.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dotAVX2 is in dot_amd64.s; len(b) ≥ len(a) > 0.
//
//go:noescape
func dotAVX2(a, b []float32) float32

// dotQAVX2 is in dot_amd64.s; len(b) ≥ len(a), len(a) a multiple of 8.
//
//go:noescape
func dotQAVX2(a []float32, b []int8) float32

// dotQQAVX2 is in dot_amd64.s; len(b) ≥ len(a), len(a) a multiple of 16.
//
//go:noescape
func dotQQAVX2(a, b []int8) int32

// dot8AVX2 is in dot_amd64.s; len(q) a multiple of 8, len(rows) ≥
// 8·len(q).
//
//go:noescape
func dot8AVX2(q, rows []float32, out *[8]float32)

// prefetchRowsAsm is in dot_amd64.s.
//
//go:noescape
func prefetchRowsAsm(base []int8, stride int, ids []uint32)

func dot(a, b []float32) float32 {
	if hasAVX2FMA {
		return dotAVX2(a, b)
	}
	return dotGo(a, b)
}

func dotQ(a []float32, b []int8) float32 {
	if hasAVX2FMA {
		return dotQAVX2(a, b)
	}
	return dotQGo(a, b)
}

func dotQQ(a, b []int8) int32 {
	if hasAVX2FMA {
		return dotQQAVX2(a, b)
	}
	return dotQQGo(a, b)
}

// dot8 writes the inner products of q with rows' first eight rows to
// out and reports true, or reports false where the CPU or len(q) leaves
// it to Dot.
func dot8(q, rows []float32, out *[8]float32) bool {
	if hasAVX2FMA && len(q)%8 == 0 {
		dot8AVX2(q, rows, out)
		return true
	}
	return false
}

func prefetchRows(base []int8, stride int, ids []uint32) { prefetchRowsAsm(base, stride, ids) }
