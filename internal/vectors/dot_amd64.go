package vectors

import "golang.org/x/sys/cpu"

// hasAVX2FMA is read once: CPU features do not change under a process.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dotAVX2 is in dot_amd64.s; len(b) ≥ len(a) > 0.
//
//go:noescape
func dotAVX2(a, b []float32) float32

func dot(a, b []float32) float32 {
	if hasAVX2FMA {
		return dotAVX2(a, b)
	}
	return dotGo(a, b)
}
