package cascade

import "golang.org/x/sys/cpu"

// haar8OK is read once: CPU features do not change under a process.
var haar8OK = cpu.X86.HasAVX2

// haarStage8 is in haar8_amd64.s: bit k of the result is set when the
// window whose integral starts at base+k·step (step 1 or 2) passes the
// stage made of stumps with threshold thr, given its normalisation inv[k],
// with run's arithmetic. It reads base[o : o+8·step] at every corner
// offset o of stumps.
//
//go:noescape
func haarStage8(base *int32, step int, stumps []haarStump, inv *[8]float32, thr float64) uint8
