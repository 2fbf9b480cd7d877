package vectors

import "math"

// Quantize writes v (a unit vector) into dst as signed bytes scaled so that
// v's largest magnitude maps to 127, and returns the scale: v[i] ≈
// scale·dst[i]. len(dst) must be len(v). An index walks its graph over
// these (a quarter of float32's memory traffic: at a million vectors the
// walk waits on memory, not on arithmetic) and ranks its final candidates
// with the float32 vectors.
func Quantize(dst []int8, v []float32) float32 {
	dst = dst[:len(v)]
	var m float32
	for _, x := range v {
		m = max(m, float32(math.Abs(float64(x))))
	}
	if m == 0 {
		clear(dst)
		return 0
	}
	inv := 127 / m
	for i, x := range v {
		dst[i] = int8(math.Round(float64(x * inv)))
	}
	return m / 127
}

// DotQ is the inner product of a float32 vector and a quantized one
// (Quantize's bytes, before their scale): multiply by the scale for the
// dot product with the original. b must be at least as long as a. On
// amd64 with AVX2 and FMA, eight lanes at a time in assembly.
func DotQ(a []float32, b []int8) float32 {
	b = b[:len(a)]
	n := len(a) &^ 7
	var s float32
	if n > 0 {
		s = dotQ(a[:n], b[:n])
	}
	for i := n; i < len(a); i++ {
		s += a[i] * float32(b[i])
	}
	return s
}

// dotQGo is DotQ's body in Go, for other architectures and as the
// reference the assembly is tested against; len(a) is a multiple of 8.
func dotQGo(a []float32, b []int8) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	for i := 0; i+4 <= len(a); i += 4 {
		s0 += a[i] * float32(b[i])
		s1 += a[i+1] * float32(b[i+1])
		s2 += a[i+2] * float32(b[i+2])
		s3 += a[i+3] * float32(b[i+3])
	}
	return (s0 + s1) + (s2 + s3)
}

// DotQQ is the inner product of two quantized vectors (before their
// scales: multiply by both). b must be at least as long as a.
func DotQQ(a, b []int8) int32 {
	b = b[:len(a)]
	n := len(a) &^ 15
	var s int32
	if n > 0 {
		s = dotQQ(a[:n], b[:n])
	}
	for i := n; i < len(a); i++ {
		s += int32(a[i]) * int32(b[i])
	}
	return s
}

// dotQQGo is DotQQ's body in Go; len(a) is a multiple of 16.
func dotQQGo(a, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1 int32
	for i := 0; i+2 <= len(a); i += 2 {
		s0 += int32(a[i]) * int32(b[i])
		s1 += int32(a[i+1]) * int32(b[i+1])
	}
	return s0 + s1
}

// PrefetchRows asks the CPU to start loading the first bytes (up to 256)
// of each row ids name in a table of rows of stride bytes that starts at
// base[0], so that a walk's distances to a node's neighbours overlap
// their memory latency instead of paying it one after another. It is a
// hint that reads nothing (a prefetch never faults, whatever the
// address), and does nothing where there is no assembly for it.
func PrefetchRows(base []int8, stride int, ids []uint32) {
	if len(ids) == 0 || len(base) == 0 || stride < 1 {
		return
	}
	prefetchRows(base, stride, ids)
}
