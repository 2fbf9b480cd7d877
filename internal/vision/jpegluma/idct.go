package jpegluma

// The 8-point inverse DCT, scaled by √2 so that the DC weight cos(π/4)·√2
// is 1: with c_k = cos(kπ/16),
//
//	y[n] = X0 + √2·Σ_{k=1..7} X_k·cos((2n+1)kπ/16)
//
// Even part (X0, X2, X4, X6), with one rotation shared by X2 and X6:
//
//	e0,3 = (X0+X4) ± (X2·√2c2 + X6·√2c6)
//	e1,2 = (X0−X4) ± (X2·√2c6 − X6·√2c2)
//
// Odd part (X1, X3, X5, X7), o_n = Σ X_k·√2·cos((2n+1)kπ/16), expanded:
//
//	o0 = X1·√2c1 + X3·√2c3 + X5·√2c5 + X7·√2c7
//	o1 = X1·√2c3 − X3·√2c7 − X5·√2c1 − X7·√2c5
//	o2 = X1·√2c5 − X3·√2c1 + X5·√2c7 + X7·√2c3
//	o3 = X1·√2c7 − X3·√2c5 + X5·√2c3 − X7·√2c1
//
// and y[n] = e_n + o_n, y[7−n] = e_n − o_n for n = 0..3. Applied to the
// columns and then the rows it gives 8× the sample (the standard's 2-D
// normalisation is 1/4 and each √2 pass doubles it), so the last shift
// divides by 8 as well.
const (
	constBits = 13
	pass1Bits = 5 // fractional bits kept between the passes

	fix2p6 = 4433  // √2·c6 = 0.5411961
	fix2m6 = 6270  // √2·(c2 − c6) = 0.7653669
	fix2s6 = 15137 // √2·(c2 + c6) = 1.8477591
	fix1   = 11363 // √2·c1 = 1.3870398
	fix3   = 9633  // √2·c3 = 1.1758756
	fix5   = 6436  // √2·c5 = 0.7856950
	fix7   = 2260  // √2·c7 = 0.2758994
)

// idct1 is the scaled 1-D transform of x0..x7; its results carry
// constBits more fractional bits than its inputs.
func idct1(x0, x1, x2, x3, x4, x5, x6, x7 int) (y0, y1, y2, y3, y4, y5, y6, y7 int) {
	t0 := (x0 + x4) << constBits
	t1 := (x0 - x4) << constBits
	z := (x2 + x6) * fix2p6
	t3 := z + x2*fix2m6
	t2 := z - x6*fix2s6
	e0, e3 := t0+t3, t0-t3
	e1, e2 := t1+t2, t1-t2
	o0 := x1*fix1 + x3*fix3 + x5*fix5 + x7*fix7
	o1 := x1*fix3 - x3*fix7 - x5*fix1 - x7*fix5
	o2 := x1*fix5 - x3*fix1 + x5*fix7 + x7*fix3
	o3 := x1*fix7 - x3*fix5 + x5*fix3 - x7*fix1
	return e0 + o0, e1 + o1, e2 + o2, e3 + o3, e3 - o3, e2 - o2, e1 - o1, e0 - o0
}

// idct transforms the dequantised block blk (natural order) and writes its
// 8×8 samples, level-shifted and clamped, to dst with the given stride.
func idct(dst []byte, stride int, blk *[64]int32) {
	var ws [64]int
	const p1 = constBits - pass1Bits
	for u := range 8 {
		x0 := int(blk[u])
		if blk[8+u]|blk[16+u]|blk[24+u]|blk[32+u]|blk[40+u]|blk[48+u]|blk[56+u] == 0 {
			dc := x0 << pass1Bits
			for v := range 8 {
				ws[8*v+u] = dc
			}
			continue
		}
		y0, y1, y2, y3, y4, y5, y6, y7 := idct1(x0, int(blk[8+u]), int(blk[16+u]), int(blk[24+u]),
			int(blk[32+u]), int(blk[40+u]), int(blk[48+u]), int(blk[56+u]))
		const r = 1 << (p1 - 1)
		ws[u], ws[8+u], ws[16+u], ws[24+u] = (y0+r)>>p1, (y1+r)>>p1, (y2+r)>>p1, (y3+r)>>p1
		ws[32+u], ws[40+u], ws[48+u], ws[56+u] = (y4+r)>>p1, (y5+r)>>p1, (y6+r)>>p1, (y7+r)>>p1
	}
	// Rows: the result is in constBits+pass1Bits fractional bits and 8×
	// the sample; the bias rounds and level-shifts by 128.
	const shift = constBits + pass1Bits + 3
	const bias = 1<<(shift-1) + 128<<shift
	for v := range 8 {
		w := ws[8*v : 8*v+8 : 8*v+8]
		row := dst[v*stride : v*stride+8 : v*stride+8]
		if w[1]|w[2]|w[3]|w[4]|w[5]|w[6]|w[7] == 0 {
			p := clamp((w[0]<<constBits + bias) >> shift)
			for i := range row {
				row[i] = p
			}
			continue
		}
		y0, y1, y2, y3, y4, y5, y6, y7 := idct1(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7])
		row[0], row[1], row[2], row[3] = clamp((y0+bias)>>shift), clamp((y1+bias)>>shift), clamp((y2+bias)>>shift), clamp((y3+bias)>>shift)
		row[4], row[5], row[6], row[7] = clamp((y4+bias)>>shift), clamp((y5+bias)>>shift), clamp((y6+bias)>>shift), clamp((y7+bias)>>shift)
	}
}

// fillDC writes a block with only a DC coefficient: its mean, dc/8, level
// shifted.
func fillDC(dst []byte, stride int, dc int32) {
	p := clamp(int(dc+4)>>3 + 128)
	for v := range 8 {
		row := dst[v*stride : v*stride+8 : v*stride+8]
		for i := range row {
			row[i] = p
		}
	}
}

func clamp(v int) byte { return byte(min(max(v, 0), 255)) }
