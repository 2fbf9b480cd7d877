//go:build !amd64

package vectors

// hasAVX2FMA: there is no assembly here (the tests report which loop ran).
const hasAVX2FMA = false

func dot(a, b []float32) float32 { return dotGo(a, b) }

func dotQ(a []float32, b []int8) float32 { return dotQGo(a, b) }

func dotQQ(a, b []int8) int32 { return dotQQGo(a, b) }

func dot8([]float32, []float32, *[8]float32) bool { return false }

func prefetchRows([]int8, int, []uint32) {}
