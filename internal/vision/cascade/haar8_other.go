//go:build !amd64

package cascade

import "unsafe"

// haar8OK: there is no assembly here, so rows are evaluated one window at
// a time.
const haar8OK = false

func haarStage8(base *int32, step int, stumps []haarStump, inv *[8]float32, thr float64) uint8 {
	_, hi := cornerSpan(stumps)
	return haarStage8Go(unsafe.Slice(base, hi+8*step), 0, step, stumps, inv, thr)
}
