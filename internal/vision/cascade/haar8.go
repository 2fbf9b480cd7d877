package cascade

// The batched path: most windows fail one of the first few stages, and
// evaluating one window at a time leaves the loop waiting on its scattered
// loads. Eight neighbouring windows of a row read the same feature corners
// at offsets step apart, so their first stages run as one 8-lane pass
// (haarStage8, in assembly where the CPU has AVX2) and only the survivors
// continue one at a time. The results are exactly run's: the lane
// arithmetic is run's, operation by operation, and the skip after a
// first-stage reject is applied in x order as the scalar loop does.

// batchStages is how many stages (0..batchStages-1) the batch evaluates
// before its survivors continue one at a time. On BenchmarkDetect/haar the
// time fell with every stage added up to about 8 (3 stages: -35%, 8:
// -55%) and stayed flat from there to all 25: past stage 3 a window that
// survives tends to have neighbours that do too, and a batched stage costs
// about what one window's scalar stage does.
const batchStages = 8

// scalarOnly turns the batched path off (tests compare the two).
var scalarOnly = false

// batch8 reports whether e can evaluate windows eight at a time.
func (e *haarEval) batch8() bool {
	return haar8OK && !scalarOnly && e.stumps != nil && !e.c.tilted && e.minOff >= 0
}

// cornerSpan returns the smallest and largest corner offset of stumps.
func cornerSpan(stumps []haarStump) (lo, hi int) {
	lo, hi = 0, 0
	for i := range stumps {
		for _, r := range stumps[i].r {
			for _, o := range [4]int32{r.tl, r.tr, r.bl, r.br} {
				lo, hi = min(lo, int(o)), max(hi, int(o))
			}
		}
	}
	return lo, hi
}

// runRow8 evaluates the grid positions x, x+step, … ≤ x1 of a row whose
// position x is at integral offset off+x, in batches of eight while whole
// batches fit in the row and in the integral image, appending the x of
// each window that passes every stage to e.hits. It returns the first
// position left to the scalar loop and whether that position is to be
// skipped (the one before it failed stage 0).
func (e *haarEval) runRow8(off, x, x1, step int) (int, bool) {
	sum := e.ws.sum
	// The assembly reads eight (step 1) or sixteen (step 2) consecutive
	// entries at each corner.
	reach := e.maxOff + 8*step
	stages := e.c.stages
	st0 := &stages[0]
	skip := false
	for x+7*step <= x1 {
		p0 := off + x
		if p0+reach > len(sum) {
			break
		}
		var inv [8]float32
		var live uint8
		for k := range 8 {
			if v, ok := e.normInv(p0 + k*step); ok {
				inv[k] = v
				live |= 1 << k
			}
		}
		x += 8 * step
		if live == 0 {
			// Flat windows return -1: no skip, and the carry, if any,
			// is spent on the first of them.
			skip = false
			continue
		}
		base := &sum[p0]
		pass := haarStage8(base, step, e.stumps[st0.first:st0.first+st0.count], &inv, float64(st0.threshold)) & live
		// Which lanes the scalar loop would have evaluated: not the one
		// right after an evaluated lane that failed stage 0.
		var evald uint8
		for k := range 8 {
			if skip {
				skip = false
				continue
			}
			if live>>k&1 == 0 {
				continue
			}
			evald |= 1 << k
			skip = pass>>k&1 == 0
		}
		alive := pass & evald
		si := 1
		for ; si < batchStages && si < len(stages) && alive != 0; si++ {
			st := &stages[si]
			alive &= haarStage8(base, step, e.stumps[st.first:st.first+st.count], &inv, float64(st.threshold))
		}
		for k := 0; alive != 0; k++ {
			if alive&1 != 0 {
				p := p0 + k*step
				if e.runFrom(sum[p:], inv[k], si) > 0 {
					e.hits = append(e.hits, x-8*step+k*step)
				}
			}
			alive >>= 1
		}
	}
	return x, skip
}

// haarStage8Go is haarStage8 one lane at a time, with run's arithmetic:
// bit k of the result is set when the window at sum[p0+k·step:] passes the
// stage of stumps with threshold thr, given its normalisation inv[k].
func haarStage8Go(sum []int32, p0, step int, stumps []haarStump, inv *[8]float32, thr float64) uint8 {
	var m uint8
	for k := range 8 {
		if stageSum(sum[p0+k*step:], stumps, inv[k]) >= thr {
			m |= 1 << k
		}
	}
	return m
}
