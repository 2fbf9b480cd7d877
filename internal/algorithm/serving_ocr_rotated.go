package algorithm

import (
	"image"
	"math"
	"sort"
)

// Text at an angle. A text region's box is the rotated rectangle of least
// area around its pixels (found on the convex hull of their squares, one
// hull edge at a time, as rotating calipers do); when that rectangle is
// elongated and turned by ocrMinAngle or more it is kept as such, grown
// like an axis-aligned box, joined with the words of its line, and its
// pixels are sampled along it (bilinear) into a straight crop for the
// recognizer. Other boxes stay axis-aligned.

const (
	// ocrMinAngle is the least turn, in degrees, for which a box is
	// read along its own direction rather than as an axis-aligned crop.
	ocrMinAngle = 2
	// ocrMinElongation is how much longer than high a region must be for
	// its direction to mean anything (a single character's does not).
	ocrMinElongation = 1.5
)

type point struct{ x, y float64 }

func (p point) sub(q point) point          { return point{p.x - q.x, p.y - q.y} }
func (p point) add(q point) point          { return point{p.x + q.x, p.y + q.y} }
func (p point) scale(f float64) point      { return point{p.x * f, p.y * f} }
func (p point) dot(q point) float64        { return p.x*q.x + p.y*q.y }
func (p point) cross(q point) float64      { return p.x*q.y - p.y*q.x }
func (p point) length() float64            { return math.Hypot(p.x, p.y) }
func (p point) perp() point                { return point{-p.y, p.x} }
func (p point) mulXY(sx, sy float64) point { return point{p.x * sx, p.y * sy} }

// rotRect is a rotated rectangle: centre, unit direction u along its long
// side (pointing right: u.x > 0, or down when vertical), long side l and
// short side s.
type rotRect struct {
	c    point
	u    point
	l, s float64
}

// v is the unit direction across the text, pointing down the page.
func (r rotRect) v() point { return r.u.perp() }

// angle is the turn of the long side from the horizontal, in degrees, in
// (-90, 90].
func (r rotRect) angle() float64 { return math.Atan2(r.u.y, r.u.x) * 180 / math.Pi }

// corners are the top-left, top-right, bottom-right and bottom-left
// corners as the text reads.
func (r rotRect) corners() [4]point {
	hu, hv := r.u.scale(r.l/2), r.v().scale(r.s/2)
	return [4]point{r.c.sub(hu).sub(hv), r.c.add(hu).sub(hv), r.c.add(hu).add(hv), r.c.sub(hu).add(hv)}
}

// grow adds d on every side.
func (r rotRect) grow(d float64) rotRect { r.l += 2 * d; r.s += 2 * d; return r }

// bounds is the axis-aligned box around it.
func (r rotRect) bounds() (x0, y0, x1, y1 float64) {
	x0, y0, x1, y1 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range r.corners() {
		x0, y0, x1, y1 = min(x0, p.x), min(y0, p.y), max(x1, p.x), max(y1, p.y)
	}
	return x0, y0, x1, y1
}

// turned reports whether the rectangle is read along its own direction.
func (r rotRect) turned() bool {
	a := math.Abs(r.angle())
	return r.l >= ocrMinElongation*r.s && a >= ocrMinAngle && a <= 180-ocrMinAngle
}

// convexHull returns the hull of pts counter-clockwise (in a y-down
// frame: clockwise on screen), by Andrew's monotone chain.
func convexHull(pts []point) []point {
	sort.Slice(pts, func(i, j int) bool {
		if pts[i].x != pts[j].x {
			return pts[i].x < pts[j].x
		}
		return pts[i].y < pts[j].y
	})
	if len(pts) < 3 {
		return pts
	}
	hull := make([]point, 0, 2*len(pts))
	for _, p := range pts {
		for len(hull) >= 2 && hull[len(hull)-1].sub(hull[len(hull)-2]).cross(p.sub(hull[len(hull)-2])) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	lower := len(hull) + 1
	for i := len(pts) - 2; i >= 0; i-- {
		p := pts[i]
		for len(hull) >= lower && hull[len(hull)-1].sub(hull[len(hull)-2]).cross(p.sub(hull[len(hull)-2])) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	return hull[:len(hull)-1]
}

// minAreaRect is the rotated rectangle of least area around pts: one of
// its sides lies on an edge of their convex hull.
func minAreaRect(pts []point) rotRect {
	hull := convexHull(pts)
	best := rotRect{}
	bestArea := math.Inf(1)
	for i := range hull {
		e := hull[(i+1)%len(hull)].sub(hull[i])
		n := e.length()
		if n == 0 {
			continue
		}
		u := e.scale(1 / n)
		v := u.perp()
		u0, u1, v0, v1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, p := range hull {
			a, b := p.dot(u), p.dot(v)
			u0, u1, v0, v1 = min(u0, a), max(u1, a), min(v0, b), max(v1, b)
		}
		if area := (u1 - u0) * (v1 - v0); area < bestArea {
			bestArea = area
			c := u.scale((u0 + u1) / 2).add(v.scale((v0 + v1) / 2))
			best = orient(rotRect{c: c, u: u, l: u1 - u0, s: v1 - v0})
		}
	}
	if math.IsInf(bestArea, 1) { // a single point or a line of them
		x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
		for _, p := range pts {
			x0, y0, x1, y1 = min(x0, p.x), min(y0, p.y), max(x1, p.x), max(y1, p.y)
		}
		best = orient(rotRect{c: point{(x0 + x1) / 2, (y0 + y1) / 2}, u: point{1, 0}, l: x1 - x0, s: y1 - y0})
	}
	return best
}

// orient makes u run along the long side, pointing right (down when
// vertical).
func orient(r rotRect) rotRect {
	if r.s > r.l {
		r.u, r.l, r.s = r.u.perp(), r.s, r.l
	}
	if r.u.x < 0 || r.u.x == 0 && r.u.y < 0 {
		r.u = r.u.scale(-1)
	}
	return r
}

// regionRect is the least-area rectangle around a region's pixels given
// by the first and last column of each of its rows (rows[y-y0]).
func regionRect(y0 int, first, last []int) rotRect {
	pts := make([]point, 0, 4*len(first))
	for i := range first {
		y := float64(y0 + i)
		x0, x1 := float64(first[i]), float64(last[i]+1)
		pts = append(pts, point{x0, y}, point{x0, y + 1}, point{x1, y}, point{x1, y + 1})
	}
	return minAreaRect(pts)
}

// joinTurned joins each turned box with the boxes that continue its line:
// their centre lies near its axis, they are no taller than it by much,
// turned the same way (within 10°) or not turned at all, and they overlap
// it along the axis or leave a gap of under half its height. The joined
// box is the least-area rectangle around both.
func joinTurned(boxes []textBox) []textBox {
	for joined := true; joined; {
		joined = false
		for i := 0; i < len(boxes); i++ {
			a := boxes[i]
			if a.rect == nil {
				continue
			}
			r := *a.rect
			u, v := r.u, r.v()
			for j := 0; j < len(boxes); j++ {
				if j == i {
					continue
				}
				b := boxes[j]
				if b.rect != nil && math.Abs(b.rect.angle()-r.angle()) > 10 {
					continue
				}
				cs := b.cornerPoints()
				t0, t1, s0, s1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
				for _, p := range cs {
					d := p.sub(r.c)
					t, s := d.dot(u), d.dot(v)
					t0, t1, s0, s1 = min(t0, t), max(t1, t), min(s0, s), max(s1, s)
				}
				if math.Abs((s0+s1)/2) > r.s/4 || s1-s0 > 1.5*r.s ||
					t0 > r.l/2+r.s/2 || t1 < -r.l/2-r.s/2 {
					continue
				}
				ac := a.cornerPoints()
				m := minAreaRect(append(ac[:], cs[:]...))
				boxes[i] = newTextBox(m, (a.score*r.l+b.score*(b.x1-b.x0))/(r.l+(b.x1-b.x0)))
				boxes = append(boxes[:j], boxes[j+1:]...)
				joined = true
				break
			}
			if joined {
				break
			}
		}
	}
	return boxes
}

// newTextBox is a box of rectangle r: turned, or the axis-aligned box
// around it.
func newTextBox(r rotRect, score float64) textBox {
	b := textBox{score: score}
	b.x0, b.y0, b.x1, b.y1 = r.bounds()
	if r.turned() {
		b.rect = &r
	}
	return b
}

// cornerPoints are the box's corners: its rectangle's, or its own.
func (b textBox) cornerPoints() [4]point {
	if b.rect != nil {
		return b.rect.corners()
	}
	return [4]point{{b.x0, b.y0}, {b.x1, b.y0}, {b.x1, b.y1}, {b.x0, b.y1}}
}

// straighten samples the quadrilateral q of img (top-left, top-right,
// bottom-right, bottom-left as the text reads) into a w×h image,
// bilinear, as an affine map from the top-left corner along the top and
// left sides.
func straighten(img *image.RGBA, q [4]point, w, h int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	ux, vy := q[1].sub(q[0]).scale(1/float64(w)), q[3].sub(q[0]).scale(1/float64(h))
	sw, sh := img.Rect.Dx(), img.Rect.Dy()
	for y := range h {
		for x := range w {
			p := q[0].add(ux.scale(float64(x) + 0.5)).add(vy.scale(float64(y) + 0.5))
			fx, fy := min(max(p.x-0.5, 0), float64(sw-1)), min(max(p.y-0.5, 0), float64(sh-1))
			x0, y0 := int(fx), int(fy)
			x1, y1 := min(x0+1, sw-1), min(y0+1, sh-1)
			dx, dy := fx-float64(x0), fy-float64(y0)
			o := out.PixOffset(x, y)
			for c := range 3 {
				at := func(x, y int) float64 { return float64(img.Pix[y*img.Stride+x*4+c]) }
				top := at(x0, y0) + (at(x1, y0)-at(x0, y0))*dx
				bot := at(x0, y1) + (at(x1, y1)-at(x0, y1))*dx
				out.Pix[o+c] = uint8(math.Round(top + (bot-top)*dy))
			}
			out.Pix[o+3] = 255
		}
	}
	return out
}
