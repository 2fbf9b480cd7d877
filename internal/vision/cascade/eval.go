package cascade

import "math"

// The evaluators below are the hot loop. Every feature's rectangles are
// turned, once per call, into offsets into integral images whose rows are
// `stride` apart; a window at offset p then reads sum[p+o]. Stages are
// tried in order and a window stops at the first stage it fails, which for
// most windows is the first or second.

// corners are the integral-image offsets of a rectangle's four corners:
// top-left, top-right, bottom-left, bottom-right. Its sum is
// s[tl] - s[tr] - s[bl] + s[br].
type corners struct{ tl, tr, bl, br int32 }

func rectCorners(x, y, w, h, stride int) corners {
	return corners{
		tl: int32(y*stride + x),
		tr: int32(y*stride + x + w),
		bl: int32((y+h)*stride + x),
		br: int32((y+h)*stride + x + w),
	}
}

// tiltedCorners are the tilted-integral offsets (shifted by off, where the
// tilted plane starts) of a 45° rectangle with top corner (x, y), sides w
// (down-right) and h (down-left): its sum is, as for upright rectangles,
// t[top] − t[left] − t[right] + t[bottom], the triangle above the bottom
// corner less those above the side corners plus the one above the top.
func tiltedCorners(x, y, w, h, stride, off int) corners {
	return corners{
		tl: int32(off + y*stride + x),
		tr: int32(off + (y+h)*stride + x - h),
		bl: int32(off + (y+w)*stride + x + w),
		br: int32(off + (y+w+h)*stride + x + w - h),
	}
}

// haarStump is one single-split weak classifier with its feature inlined.
type haarStump struct {
	r         [3]corners
	w         [3]float32
	threshold float32
	// leaf[0] is added when the normalised feature < threshold, leaf[1]
	// otherwise. Indexing by the comparison's outcome instead of branching
	// on it avoids a branch that mispredicts half the time.
	leaf [2]float64
}

type haarEval struct {
	c      *Cascade
	ws     *workspace
	norm   corners
	area   float64
	stumps []haarStump // when c.stumps
	feats  []haarStump // per feature (threshold and leaves unused) otherwise
	// minOff and maxOff bound the stumps' corner offsets (runRow8 checks
	// its loads against them); hits is runRow8's output, reused.
	minOff, maxOff int
	hits           []int
}

func (c *Cascade) newHaarEval(stride int, ws *workspace) *haarEval {
	e := &haarEval{c: c, ws: ws}
	// Like OpenCV, the window's mean and deviation are taken over the
	// window less a one-pixel border.
	e.norm = rectCorners(1, 1, c.winW-2, c.winH-2, stride)
	e.area = float64((c.winW - 2) * (c.winH - 2))
	feats := make([]haarStump, len(c.haar))
	for i, f := range c.haar {
		for k, r := range f.rects {
			if f.tilted {
				feats[i].r[k] = tiltedCorners(r.x, r.y, r.w, r.h, stride, ws.tiltOff)
			} else {
				feats[i].r[k] = rectCorners(r.x, r.y, r.w, r.h, stride)
			}
			feats[i].w[k] = r.weight
		}
	}
	if !c.stumps {
		e.feats = feats
		return e
	}
	e.stumps = make([]haarStump, len(c.trees))
	for i, t := range c.trees {
		n := c.nodes[t.firstNode]
		s := feats[n.feature]
		s.threshold = n.threshold
		s.leaf[0] = float64(c.leaves[t.firstLeaf+leafIndex(n.left)])
		s.leaf[1] = float64(c.leaves[t.firstLeaf+leafIndex(n.right)])
		e.stumps[i] = s
	}
	e.minOff, e.maxOff = cornerSpan(e.stumps)
	return e
}

// leafIndex turns a stump's child (≤ 0) into its leaf index.
func leafIndex(child int) int { return -child }

// minStdDev: windows flatter than this are not evaluated. OpenCV skips
// them too (a face is never a flat patch) and it saves most of the work on
// walls and sky.
const minStdDev = 10

func (e *haarEval) run(p int) int {
	inv, ok := e.normInv(p)
	if !ok {
		return -1
	}
	s := e.ws.sum[p:]
	if e.stumps == nil {
		return e.runTrees(s, inv)
	}
	return e.runFrom(s, inv, 0)
}

// normInv returns the reciprocal of the window's (area-scaled) standard
// deviation at offset p, or false when the window is too flat to evaluate.
func (e *haarEval) normInv(p int) (float32, bool) {
	s := e.ws.sum[p:]
	q := e.ws.sq[p:]
	n := e.norm
	vs := s[n.tl] - s[n.tr] - s[n.bl] + s[n.br]
	vq := q[n.tl] - q[n.tr] - q[n.bl] + q[n.br]
	nf := e.area*float64(vq) - float64(vs)*float64(vs)
	if !(nf > 0) {
		return 0, false
	}
	inv := float32(1 / math.Sqrt(nf))
	if float64(inv)*e.area >= 1/float64(minStdDev) {
		return 0, false
	}
	return inv, true
}

// runFrom runs the stump stages from stage `from` on for the window whose
// integral starts at s, with run's result.
func (e *haarEval) runFrom(s []int32, inv float32, from int) int {
	for si := from; si < len(e.c.stages); si++ {
		st := &e.c.stages[si]
		if stageSum(s, e.stumps[st.first:st.first+st.count], inv) < float64(st.threshold) {
			return -si
		}
	}
	return 1
}

// stageSum is the sum of the leaves that the stumps ss pick for the window
// whose integral starts at s. haar8_amd64.s repeats its arithmetic
// operation by operation.
func stageSum(s []int32, ss []haarStump, inv float32) float64 {
	var acc float64
	for i := range ss {
		w := &ss[i]
		f := w.w[0]*float32(s[w.r[0].tl]-s[w.r[0].tr]-s[w.r[0].bl]+s[w.r[0].br]) +
			w.w[1]*float32(s[w.r[1].tl]-s[w.r[1].tr]-s[w.r[1].bl]+s[w.r[1].br])
		if w.w[2] != 0 {
			f += w.w[2] * float32(s[w.r[2].tl]-s[w.r[2].tr]-s[w.r[2].bl]+s[w.r[2].br])
		}
		acc += w.leaf[b2i(f*inv >= w.threshold)]
	}
	return acc
}

// b2i is 1 for true and 0 for false; the compiler makes it a SETcc.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *haarEval) feature(s []int32, idx int, inv float32) float32 {
	w := &e.feats[idx]
	f := w.w[0]*float32(s[w.r[0].tl]-s[w.r[0].tr]-s[w.r[0].bl]+s[w.r[0].br]) +
		w.w[1]*float32(s[w.r[1].tl]-s[w.r[1].tr]-s[w.r[1].bl]+s[w.r[1].br])
	if w.w[2] != 0 {
		f += w.w[2] * float32(s[w.r[2].tl]-s[w.r[2].tr]-s[w.r[2].bl]+s[w.r[2].br])
	}
	return f * inv
}

func (e *haarEval) runTrees(s []int32, inv float32) int {
	c := e.c
	for si := range c.stages {
		st := &c.stages[si]
		var acc float64
		for _, t := range c.trees[st.first : st.first+st.count] {
			k := 0
			for {
				n := &c.nodes[t.firstNode+k]
				next := n.right
				if e.feature(s, n.feature, inv) < n.threshold {
					next = n.left
				}
				if next <= 0 {
					acc += float64(c.leaves[t.firstLeaf-next])
					break
				}
				k = next
			}
		}
		if acc < float64(st.threshold) {
			return -si
		}
	}
	return 1
}

// lbpStump is one single-split LBP weak classifier: the 16 grid points of
// its 3×3 blocks and the 256-bit set of codes that take the left leaf.
type lbpStump struct {
	p      [16]int32
	subset [8]uint32
	leaf   [2]float64 // [0] when the code is in subset, [1] otherwise
}

type lbpEval struct {
	c      *Cascade
	ws     *workspace
	stumps []lbpStump // when c.stumps
	feats  []lbpStump // per feature otherwise
}

func (c *Cascade) newLBPEval(stride int, ws *workspace) *lbpEval {
	e := &lbpEval{c: c, ws: ws}
	feats := make([]lbpStump, len(c.lbp))
	for i, f := range c.lbp {
		for r := 0; r < 4; r++ {
			for k := 0; k < 4; k++ {
				feats[i].p[r*4+k] = int32((f.y+r*f.h)*stride + f.x + k*f.w)
			}
		}
	}
	if !c.stumps {
		e.feats = feats
		return e
	}
	e.stumps = make([]lbpStump, len(c.trees))
	for i, t := range c.trees {
		n := c.nodes[t.firstNode]
		s := feats[n.feature]
		copy(s.subset[:], c.subsets[t.firstNode*8:t.firstNode*8+8])
		s.leaf[0] = float64(c.leaves[t.firstLeaf+leafIndex(n.left)])
		s.leaf[1] = float64(c.leaves[t.firstLeaf+leafIndex(n.right)])
		e.stumps[i] = s
	}
	return e
}

// code computes the 8-bit multi-block LBP code: each of the eight blocks
// around the centre, clockwise from the top-left one (most significant
// bit), sets its bit when its sum is ≥ the centre block's. Bits come from
// the sign of the difference (block sums are far from overflowing), so
// there are no branches to mispredict.
func code(s []int32, p *[16]int32) uint8 {
	// The 16 grid corners, each read once (a block sum needs four, and
	// neighbouring blocks share them).
	v0, v1, v2, v3 := s[p[0]], s[p[1]], s[p[2]], s[p[3]]
	v4, v5, v6, v7 := s[p[4]], s[p[5]], s[p[6]], s[p[7]]
	v8, v9, v10, v11 := s[p[8]], s[p[9]], s[p[10]], s[p[11]]
	v12, v13, v14, v15 := s[p[12]], s[p[13]], s[p[14]], s[p[15]]
	cv := v5 - v6 - v9 + v10
	ge := func(sum int32) uint8 { return uint8(1 ^ uint32(sum-cv)>>31) }
	return ge(v0-v1-v4+v5)<<7 |
		ge(v1-v2-v5+v6)<<6 |
		ge(v2-v3-v6+v7)<<5 |
		ge(v6-v7-v10+v11)<<4 |
		ge(v10-v11-v14+v15)<<3 |
		ge(v9-v10-v13+v14)<<2 |
		ge(v8-v9-v12+v13)<<1 |
		ge(v4-v5-v8+v9)
}

func (e *lbpEval) run(p int) int {
	s := e.ws.sum[p:]
	if e.stumps == nil {
		return e.runTrees(s)
	}
	for si := range e.c.stages {
		st := &e.c.stages[si]
		var acc float64
		ss := e.stumps[st.first : st.first+st.count]
		for i := range ss {
			w := &ss[i]
			c := code(s, &w.p)
			acc += w.leaf[1^(w.subset[c>>5]>>(c&31))&1]
		}
		if acc < float64(st.threshold) {
			return -si
		}
	}
	return 1
}

func (e *lbpEval) runTrees(s []int32) int {
	c := e.c
	for si := range c.stages {
		st := &c.stages[si]
		var acc float64
		for _, t := range c.trees[st.first : st.first+st.count] {
			k := 0
			for {
				ni := t.firstNode + k
				n := &c.nodes[ni]
				cd := code(s, &e.feats[n.feature].p)
				next := n.right
				if c.subsets[ni*8+int(cd>>5)]&(1<<(cd&31)) != 0 {
					next = n.left
				}
				if next <= 0 {
					acc += float64(c.leaves[t.firstLeaf-next])
					break
				}
				k = next
			}
		}
		if acc < float64(st.threshold) {
			return -si
		}
	}
	return 1
}
