package cascade

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"sync"
)

// Params are detectMultiScale's parameters, with OpenCV's meaning.
type Params struct {
	// ScaleFactor is how much the window grows from one pyramid level to
	// the next; it must be > 1. 1.1 is OpenCV's default.
	ScaleFactor float64
	// MinNeighbors is how many overlapping raw windows a group needs to be
	// reported (a group of n+1 or more is kept). 0 returns every raw window
	// ungrouped, as OpenCV does.
	MinNeighbors int
	// MinSize is the smallest window considered; zero means the cascade's
	// training window.
	MinSize image.Point
	// MaxSize is the largest window considered; zero means the image size.
	MaxSize image.Point
}

// DefaultParams returns OpenCV's defaults: scale factor 1.1, 3 neighbours,
// no size limits.
func DefaultParams() Params { return Params{ScaleFactor: 1.1, MinNeighbors: 3} }

// Detection is one object found.
type Detection struct {
	// Rect is the object's box in the coordinates of the image passed in.
	Rect image.Rectangle
	// Neighbors is how many raw windows were merged into this box (1 when
	// MinNeighbors is 0): a rough confidence.
	Neighbors int
}

// MaxPixels bounds the images Detect accepts; decode with a pixel limit
// (see imageops) long before this one is reached.
const MaxPixels = 100 << 20

// ErrImageTooLarge is returned for images over MaxPixels.
var ErrImageTooLarge = errors.New("cascade: image too large")

// Detect finds objects in img at every scale, like OpenCV's
// CascadeClassifier.detectMultiScale on a grayscale image: for each scale
// s = ScaleFactor^k whose window fits MinSize..MaxSize, the image is
// resized (bilinear) by 1/s, a window of the training size is slid over it
// in steps of 2 pixels (1 pixel once s ≥ 2; a window rejected by the first
// stage also skips the next position), and the hits, scaled back, are
// grouped by GroupRectangles(hits, MinNeighbors, 0.2). It checks ctx
// between pyramid levels.
//
// Detect allocates about 9 bytes per pixel of img (13 for cascades with
// tilted features) for the resized image and its integral images, reused
// across levels; downscale very large frames first when faces are known
// to be big.
func (c *Cascade) Detect(ctx context.Context, img *image.Gray, p Params) ([]Detection, error) {
	raw, err := c.detectRaw(ctx, img, nil, p)
	if err != nil {
		return nil, err
	}
	return group(raw, p), nil
}

// DetectRegions finds objects in the regions of img (in img's
// coordinates), searching exactly the windows that Detect on the whole of
// img searches, at the same pyramid scales and positions, less those not
// wholly inside a region: a region search finds every raw window that
// Detect finds inside it, not what a pyramid of the cropped region would
// find (its resized pixels fall elsewhere, so borderline windows differ).
// Like Detect it skips the grid position after one that the first stage
// rejects; a region's rows start at its own edge, so near that edge the
// positions skipped can differ from the whole-image search's, which
// matters only where a window right after a first-stage reject passes
// every stage (on the test photos the windows are the same). The raw
// windows of all regions are grouped together, as Detect groups them.
func (c *Cascade) DetectRegions(ctx context.Context, img *image.Gray, regions []image.Rectangle, p Params) ([]Detection, error) {
	if len(regions) == 0 {
		return nil, nil
	}
	raw, err := c.detectRaw(ctx, img, regions, p)
	if err != nil {
		return nil, err
	}
	return group(raw, p), nil
}

// group merges raw windows as Detect reports them.
func group(raw []image.Rectangle, p Params) []Detection {
	if p.MinNeighbors <= 0 {
		out := make([]Detection, len(raw))
		for i, r := range raw {
			out[i] = Detection{Rect: r, Neighbors: 1}
		}
		return out
	}
	return GroupRectangles(raw, p.MinNeighbors, 0.2)
}

// scales lists the pyramid's scale factors for an image of w×h, as float32
// like OpenCV keeps them.
func (c *Cascade) scales(w, h int, p Params) []float32 {
	maxSz := p.MaxSize
	if maxSz.X <= 0 || maxSz.Y <= 0 {
		maxSz = image.Pt(w, h)
	}
	var out []float32
	for factor := 1.0; ; factor *= p.ScaleFactor {
		ww := roundHalfEven(float64(c.winW) * factor)
		wh := roundHalfEven(float64(c.winH) * factor)
		if ww > maxSz.X || wh > maxSz.Y {
			break
		}
		if ww < p.MinSize.X || wh < p.MinSize.Y {
			continue
		}
		out = append(out, float32(factor))
	}
	return out
}

// workspace holds one call's buffers, all rows `stride` apart so feature
// offsets are computed once per call and hold at every pyramid level.
type workspace struct {
	small []uint8 // the resized image, rows of width w
	// sum is the integral image, (H+1) rows of stride; for cascades with
	// tilted features the tilted integral follows it at offset tiltOff,
	// so a tilted rectangle's corners are plain offsets into sum too.
	sum     []int32
	tiltOff int
	sq      []uint32 // integral of squares, modulo 2³² (window sums stay exact)
	// ev is the last call's evaluator, for cascade evC over rows evStride
	// apart with the tilted integral at evTilt.
	ev               evaluator
	evC              *Cascade
	evStride, evTilt int
}

// evaluator returns c's evaluator for integral rows stride apart in ws,
// the last call's when it was made for the same cascade and layout:
// making one lays out every feature's offsets (some 750 kB for the Haar
// cascade), which a frame's small local searches would otherwise repeat
// call after call.
func (ws *workspace) evaluator(c *Cascade, stride int) evaluator {
	if ws.ev != nil && ws.evC == c && ws.evStride == stride && ws.evTilt == ws.tiltOff {
		return ws.ev
	}
	if c.feature == Haar {
		ws.ev = c.newHaarEval(stride, ws)
	} else {
		ws.ev = c.newLBPEval(stride, ws)
	}
	ws.evC, ws.evStride, ws.evTilt = c, stride, ws.tiltOff
	return ws.ev
}

// workspaces keeps the buffers of finished calls for the next ones: a
// 720p frame needs about 8 MB of them, and a camera stream asks for them
// several times a second. Callers bound how many calls run at once (the
// built-in face-detect runs at most one per core), which bounds the pool.
var workspaces sync.Pool // *workspace

// getWorkspace returns a workspace whose buffers hold n pixels and planes
// of plane integral entries (two for tilted cascades, with squares when
// sq), reusing a pooled one when it is large enough. Every entry Detect
// reads is written first (resizeBilinear, integral), so reused buffers
// need no clearing.
func getWorkspace(n, plane int, tilted, sq bool) *workspace {
	ws, _ := workspaces.Get().(*workspace)
	if ws == nil {
		ws = &workspace{}
	}
	sums := plane
	ws.tiltOff = 0
	if tilted {
		sums = 2 * plane
		ws.tiltOff = plane
	}
	ws.small = grow(ws.small, n)
	ws.sum = grow(ws.sum, sums)
	ws.sq = ws.sq[:0]
	if sq {
		ws.sq = grow(ws.sq, plane)
	}
	return ws
}

// grow returns b resliced to n, or a new slice when b cannot hold n.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// detectRaw returns the raw windows over the whole of img (regions nil)
// or wholly inside regions (img coordinates).
func (c *Cascade) detectRaw(ctx context.Context, img *image.Gray, regions []image.Rectangle, p Params) ([]image.Rectangle, error) {
	if img == nil {
		return nil, errors.New("cascade: nil image")
	}
	if !(p.ScaleFactor > 1) || math.IsInf(p.ScaleFactor, 0) {
		return nil, fmt.Errorf("cascade: scale factor %v, want > 1", p.ScaleFactor)
	}
	W, H := img.Rect.Dx(), img.Rect.Dy()
	if W <= 0 || H <= 0 {
		return nil, nil
	}
	if int64(W)*int64(H) > MaxPixels {
		return nil, fmt.Errorf("%w: %dx%d", ErrImageTooLarge, W, H)
	}
	scales := c.scales(W, H, p)
	if len(scales) == 0 {
		return nil, nil
	}
	stride := W + 1
	plane := stride * (H + 1)
	ws := getWorkspace(W*H, plane, c.tilted, c.feature == Haar)
	defer workspaces.Put(ws)
	ev := ws.evaluator(c, stride)
	// hb, when set, evaluates a row's windows eight at a time.
	hb, _ := ev.(*haarEval)
	if hb != nil && !hb.batch8() {
		hb = nil
	}
	ox, oy := img.Rect.Min.X, img.Rect.Min.Y
	var out []image.Rectangle
	for _, sc := range scales {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w := roundHalfEven32(float32(W) / sc)
		h := roundHalfEven32(float32(H) / sc)
		if w < c.winW || h < c.winH {
			continue
		}
		step := 2
		if sc >= 2 {
			step = 1
		}
		winW := roundHalfEven32(float32(c.winW) * sc)
		winH := roundHalfEven32(float32(c.winH) * sc)
		// hit records the window at (x, y) of the resized image, scaled
		// back.
		hit := func(x, y int) {
			rx := roundHalfEven32(float32(x) * sc)
			ry := roundHalfEven32(float32(y) * sc)
			out = append(out, image.Rect(ox+rx, oy+ry, ox+rx+winW, oy+ry+winH))
		}
		// part searches the windows whose top-left corners are the step
		// grid's points in [x0, x1] × [y0, y1] of the w×h resized image,
		// resizing and integrating only the pixels they cover.
		part := func(x0, y0, x1, y1 int) {
			pw, ph := x1-x0+c.winW, y1-y0+c.winH
			resizeBilinear(img, w, h, image.Rect(x0, y0, x0+pw, y0+ph), ws.small)
			integral(ws.small, pw, ph, stride, ws.sum, ws.sq)
			if c.tilted {
				tiltedIntegral(ws.small, pw, ph, stride, ws.sum[ws.tiltOff:])
			}
			for y := y0; y <= y1; y += step {
				row := (y - y0) * stride
				x := x0
				if hb != nil {
					var skip bool
					hb.hits = hb.hits[:0]
					x, skip = hb.runRow8(row-x0, x0, x1, step)
					for _, hx := range hb.hits {
						hit(hx, y)
					}
					if skip {
						x += step
					}
				}
				for ; x <= x1; x += step {
					r := ev.run(row + x - x0)
					if r > 0 {
						hit(x, y)
					} else if r == 0 {
						x += step
					}
				}
			}
		}
		if regions == nil {
			part(0, 0, (w-c.winW)/step*step, (h-c.winH)/step*step)
			continue
		}
		for _, rg := range regions {
			// The grid points whose window, scaled back, lies in rg.
			rg = rg.Sub(img.Rect.Min)
			x0 := alignUp(ceilDiv(rg.Min.X, sc), step)
			y0 := alignUp(ceilDiv(rg.Min.Y, sc), step)
			x1 := min(floorDiv(rg.Max.X, sc), w) - c.winW
			y1 := min(floorDiv(rg.Max.Y, sc), h) - c.winH
			if x0 > x1 || y0 > y1 {
				continue
			}
			part(x0, y0, x1/step*step, y1/step*step)
		}
	}
	return out, nil
}

// ceilDiv and floorDiv are ⌈v/s⌉ and ⌊v/s⌋ for v ≥ 0, clamped at 0.
func ceilDiv(v int, s float32) int  { return max(0, int(math.Ceil(float64(float32(v)/s)))) }
func floorDiv(v int, s float32) int { return max(0, int(math.Floor(float64(float32(v)/s)))) }

// alignUp rounds v up to a multiple of step.
func alignUp(v, step int) int { return (v + step - 1) / step * step }

// evaluator runs the cascade on the window whose top-left corner is at
// integral-image offset p: 1 when every stage passes, -k when stage k
// rejects (0 for the first stage), -1 when the window is not evaluated.
type evaluator interface {
	run(p int) int
}

// roundHalfEven rounds like C's lrint in the default rounding mode.
func roundHalfEven(v float64) int { return int(math.RoundToEven(v)) }

func roundHalfEven32(v float32) int { return int(math.RoundToEven(float64(v))) }

// resizeBilinear resizes src to w×h with bilinear interpolation at pixel
// centres, in 8-bit fixed point weights with round-to-nearest, the
// bit-exact form of OpenCV's INTER_LINEAR_EXACT, and writes the part r of
// the result into dst (r.Dx()*r.Dy() bytes, rows r.Dx() apart): each pixel
// is the one the whole resize gives there.
func resizeBilinear(src *image.Gray, w, h int, r image.Rectangle, dst []uint8) {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	pix, sstride := src.Pix[src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y):], src.Stride
	rw := r.Dx()
	if w == sw && h == sh {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			o := y*sstride + r.Min.X
			copy(dst[(y-r.Min.Y)*rw:(y-r.Min.Y+1)*rw], pix[o:o+rw])
		}
		return
	}
	xo, xa := linearTable(sw, w)
	yo, ya := linearTable(sh, h)
	xo, xa = xo[r.Min.X:r.Max.X], xa[r.Min.X:r.Max.X]
	r0 := make([]uint32, rw)
	r1 := make([]uint32, rw)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		a := ya[y]
		s0 := pix[int(yo[y])*sstride:]
		hrow(s0, xo, xa, r0)
		out := dst[(y-r.Min.Y)*rw : (y-r.Min.Y+1)*rw]
		if a == 0 {
			for x := range out {
				out[x] = uint8((r0[x]*256 + 1<<15) >> 16)
			}
			continue
		}
		hrow(pix[(int(yo[y])+1)*sstride:], xo, xa, r1)
		b := 256 - a
		for x := range out {
			out[x] = uint8((r0[x]*b + r1[x]*a + 1<<15) >> 16)
		}
	}
}

// hrow interpolates one source row horizontally into 8.8 fixed point.
func hrow(src []uint8, xo []int32, xa []uint32, out []uint32) {
	out = out[:len(xo)]
	xa = xa[:len(xo)]
	for x, o := range xo {
		a := xa[x]
		if a == 0 {
			out[x] = uint32(src[o]) << 8
			continue
		}
		out[x] = uint32(src[o])*(256-a) + uint32(src[o+1])*a
	}
}

// linearTable maps each destination index to its left source index and
// the 8-bit weight of the right neighbour; at the edges it clamps to the
// border pixel with weight 0.
func linearTable(sn, dn int) ([]int32, []uint32) {
	scale := 1 / (float64(dn) / float64(sn))
	off := make([]int32, dn)
	alpha := make([]uint32, dn)
	for d := 0; d < dn; d++ {
		f := (float64(d)+0.5)*scale - 0.5
		i := int(math.Floor(f))
		f -= float64(i)
		if i < 0 {
			i, f = 0, 0
		}
		if i >= sn-1 {
			i, f = sn-1, 0
		}
		a := uint32(math.RoundToEven(f * 256))
		if a >= 256 { // f just under 1: the right pixel alone
			i, a = i+1, 0
		}
		off[d], alpha[d] = int32(i), a
	}
	return off, alpha
}

// integral fills sum (and sq when not empty) with the integral image of the
// w×h image img: sum[(y+1)*stride+(x+1)] is the sum of img over [0,x]×[0,y];
// row 0 and column 0 are zero.
func integral(img []uint8, w, h, stride int, sum []int32, sq []uint32) {
	clear(sum[:stride])
	if len(sq) > 0 {
		clear(sq[:stride])
	}
	for y := 0; y < h; y++ {
		src := img[y*w : (y+1)*w]
		prev := sum[y*stride : y*stride+w+1]
		cur := sum[(y+1)*stride : (y+1)*stride+w+1]
		cur[0] = 0
		var run int32
		if len(sq) == 0 {
			for x, v := range src {
				run += int32(v)
				cur[x+1] = prev[x+1] + run
			}
			continue
		}
		qprev := sq[y*stride : y*stride+w+1]
		qcur := sq[(y+1)*stride : (y+1)*stride+w+1]
		qcur[0] = 0
		var qrun uint32
		for x, v := range src {
			run += int32(v)
			qrun += uint32(v) * uint32(v)
			cur[x+1] = prev[x+1] + run
			qcur[x+1] = qprev[x+1] + qrun
		}
	}
}

// tiltedIntegral fills t with the 45° integral image of the w×h image img:
// t[Y*stride+X] is the sum of img(x, y) over y < Y and |x − X + 1| ≤ Y − y − 1,
// the triangle opening upwards from (X−1, Y−1), for 0 ≤ X ≤ w, 0 ≤ Y ≤ h.
//
// With P_y(k) the sum of row y's first k pixels (k clamped to [0, w]),
// t(X, Y) = Σ_{y<Y} P_y(X+Y−1−y) − Σ_{y<Y} P_y(X−Y+y); both sums run along
// diagonals, so each row of them is the previous row's, shifted by one,
// plus one prefix sum: a single pass with two rows of state.
func tiltedIntegral(img []uint8, w, h, stride int, t []int32) {
	clear(t[:stride])
	pre := make([]int32, w+1)
	d1 := make([]int32, w+2) // Σ P_y(X+Y−1−y); column w+1 stands for every X ≥ w
	d2 := make([]int32, w+1) // Σ P_y(X−Y+y)
	n1 := make([]int32, w+2)
	n2 := make([]int32, w+1)
	for Y := 1; Y <= h; Y++ {
		row := img[(Y-1)*w : Y*w]
		for x, v := range row {
			pre[x+1] = pre[x] + int32(v)
		}
		for X := 0; X <= w; X++ {
			n1[X] = d1[X+1] + pre[X]
		}
		n1[w+1] = d1[w+1] + pre[w]
		n2[0] = 0
		for X := 1; X <= w; X++ {
			n2[X] = d2[X-1] + pre[X-1]
		}
		out := t[Y*stride : Y*stride+w+1]
		for X := range out {
			out[X] = n1[X] - n2[X]
		}
		d1, n1 = n1, d1
		d2, n2 = n2, d2
	}
}
