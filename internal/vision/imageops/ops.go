package imageops

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"math"
)

// MaxOutputPixels bounds the images Resize creates.
const MaxOutputPixels = DefaultMaxPixels

// ErrBadSize is returned for empty or oversized target sizes.
var ErrBadSize = errors.New("imageops: bad size")

// ToRGBA returns img as *image.RGBA with bounds starting at (0, 0): img
// itself when it already is one at the origin, a converted copy otherwise.
func ToRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	if m, ok := img.(*image.RGBA); ok && b.Min == (image.Point{}) {
		return m
	}
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out
}

// ExpandBox grows box by margin (a fraction of its width and height, on
// each side: 0.2 adds 20% left, right, top and bottom) and clamps it to
// bounds. The result may be empty when box lies outside bounds.
func ExpandBox(box, bounds image.Rectangle, margin float64) image.Rectangle {
	if margin < 0 || math.IsNaN(margin) {
		margin = 0
	}
	mx := int(math.Round(float64(box.Dx()) * margin))
	my := int(math.Round(float64(box.Dy()) * margin))
	return image.Rect(box.Min.X-mx, box.Min.Y-my, box.Max.X+mx, box.Max.Y+my).Intersect(bounds)
}

// Crop returns a copy of the part of img inside box grown by margin (see
// ExpandBox), clamped to the image, as *image.RGBA with bounds at (0, 0),
// and the rectangle actually cropped in img's coordinates. It fails when
// nothing of box lies inside the image.
func Crop(img image.Image, box image.Rectangle, margin float64) (*image.RGBA, image.Rectangle, error) {
	r := ExpandBox(box, img.Bounds(), margin)
	if r.Empty() {
		return nil, r, fmt.Errorf("%w: crop %v outside image %v", ErrBadSize, box, img.Bounds())
	}
	out := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(out, out.Rect, img, r.Min, draw.Src)
	return out, r, nil
}

// Resize scales img to w×h: area-weighted (box filter) when shrinking,
// bilinear when enlarging, separately in x and y. It returns *image.Gray
// for *image.Gray input and *image.RGBA otherwise.
func Resize(img image.Image, w, h int) (image.Image, error) {
	if w <= 0 || h <= 0 || int64(w)*int64(h) > MaxOutputPixels {
		return nil, fmt.Errorf("%w: %dx%d", ErrBadSize, w, h)
	}
	if g, ok := img.(*image.Gray); ok {
		return ResizeGray(g, w, h)
	}
	src := ToRGBA(img)
	if src.Rect.Empty() {
		return nil, fmt.Errorf("%w: empty source", ErrBadSize)
	}
	if int64(w)*int64(src.Rect.Dy()) > 4*MaxOutputPixels {
		return nil, fmt.Errorf("%w: %dx%d from %v needs too large an intermediate", ErrBadSize, w, h, src.Rect)
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	resample(src.Pix, src.Stride, src.Rect.Dx(), src.Rect.Dy(), out.Pix, out.Stride, w, h, 4)
	return out, nil
}

// ResizeGray is Resize for 8-bit grayscale images.
func ResizeGray(img *image.Gray, w, h int) (*image.Gray, error) {
	if w <= 0 || h <= 0 || int64(w)*int64(h) > MaxOutputPixels {
		return nil, fmt.Errorf("%w: %dx%d", ErrBadSize, w, h)
	}
	b := img.Rect
	if b.Empty() {
		return nil, fmt.Errorf("%w: empty source", ErrBadSize)
	}
	if int64(w)*int64(b.Dy()) > 4*MaxOutputPixels {
		return nil, fmt.Errorf("%w: %dx%d from %v needs too large an intermediate", ErrBadSize, w, h, b)
	}
	out := image.NewGray(image.Rect(0, 0, w, h))
	resample(img.Pix[img.PixOffset(b.Min.X, b.Min.Y):], img.Stride, b.Dx(), b.Dy(), out.Pix, out.Stride, w, h, 1)
	return out, nil
}

// contrib is one output sample's input span and weights (16.16 fixed
// point, summing to 1<<16).
type contrib struct {
	first int
	w     []int32
}

// weights computes, for each of dn outputs, the inputs of a triangle
// filter as wide as the scale (at least one pixel): bilinear when
// enlarging, an area average when shrinking.
func weights(sn, dn int) []contrib {
	scale := float64(sn) / float64(dn)
	support := max(scale, 1)
	out := make([]contrib, dn)
	for d := range out {
		center := (float64(d) + 0.5) * scale
		lo := max(int(math.Floor(center-support)), 0)
		hi := min(int(math.Ceil(center+support)), sn)
		var ws []float64
		var sum float64
		for i := lo; i < hi; i++ {
			x := math.Abs((float64(i) + 0.5 - center) / support)
			v := max(1-x, 0)
			ws = append(ws, v)
			sum += v
		}
		c := contrib{first: lo, w: make([]int32, len(ws))}
		if sum == 0 { // cannot happen with support ≥ 1; be safe
			c.first, c.w = min(int(center), sn-1), []int32{1 << 16}
			out[d] = c
			continue
		}
		var acc int32
		big := 0
		for i, v := range ws {
			c.w[i] = int32(math.Round(v / sum * (1 << 16)))
			acc += c.w[i]
			if c.w[i] > c.w[big] {
				big = i
			}
		}
		c.w[big] += 1<<16 - acc // exact unit gain: flat areas stay flat
		out[d] = c
	}
	return out
}

// resample resizes an n-channel 8-bit image separably (x then y).
func resample(src []uint8, sstride, sw, sh int, dst []uint8, dstride, dw, dh, n int) {
	wx := weights(sw, dw)
	wy := weights(sh, dh)
	tmp := make([]uint8, dw*n*sh)
	for y := 0; y < sh; y++ {
		row := src[y*sstride : y*sstride+sw*n]
		out := tmp[y*dw*n : (y+1)*dw*n]
		for x, c := range wx {
			for ch := 0; ch < n; ch++ {
				var acc int64
				for k, w := range c.w {
					acc += int64(row[(c.first+k)*n+ch]) * int64(w)
				}
				out[x*n+ch] = clamp8((acc + 1<<15) >> 16)
			}
		}
	}
	tw := dw * n
	for y, c := range wy {
		out := dst[y*dstride : y*dstride+tw]
		for x := 0; x < tw; x++ {
			var acc int64
			for k, w := range c.w {
				acc += int64(tmp[(c.first+k)*tw+x]) * int64(w)
			}
			out[x] = clamp8((acc + 1<<15) >> 16)
		}
	}
}

func clamp8(v int64) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// MaskMode selects how Mask hides a region.
type MaskMode int

// Mask modes.
const (
	// Mosaic replaces each cell of the region with the cell's mean colour.
	Mosaic MaskMode = iota + 1
	// Blur applies three box blurs in a row (close to a Gaussian of the
	// same radius) inside the region only.
	Blur
)

// Mask returns a copy of img (as *image.RGBA at the origin) with each
// region hidden, for privacy. strength is the mosaic cell size or the blur
// radius in pixels; 0 picks one from the region (an eighth of its smaller
// side, at least 4), so a face is unrecognisable by default. Regions are
// in img's coordinates and clamped to it.
func Mask(img image.Image, regions []image.Rectangle, mode MaskMode, strength int) (*image.RGBA, error) {
	if mode != Mosaic && mode != Blur {
		return nil, fmt.Errorf("imageops: unknown mask mode %d", mode)
	}
	b := img.Bounds()
	src := ToRGBA(img)
	out := image.NewRGBA(src.Rect)
	copy(out.Pix, src.Pix)
	for _, reg := range regions {
		r := reg.Intersect(b).Sub(b.Min)
		if r.Empty() {
			continue
		}
		s := strength
		if s <= 0 {
			s = max(min(r.Dx(), r.Dy())/8, 4)
		}
		if mode == Mosaic {
			mosaic(out, r, s)
		} else {
			blur(out, r, s)
		}
	}
	return out, nil
}

func mosaic(m *image.RGBA, r image.Rectangle, cell int) {
	for cy := r.Min.Y; cy < r.Max.Y; cy += cell {
		for cx := r.Min.X; cx < r.Max.X; cx += cell {
			c := image.Rect(cx, cy, cx+cell, cy+cell).Intersect(r)
			var sum [4]int
			for y := c.Min.Y; y < c.Max.Y; y++ {
				p := m.Pix[m.PixOffset(c.Min.X, y):]
				for x := 0; x < c.Dx(); x++ {
					for k := 0; k < 4; k++ {
						sum[k] += int(p[4*x+k])
					}
				}
			}
			n := c.Dx() * c.Dy()
			var avg [4]uint8
			for k := range avg {
				avg[k] = uint8((sum[k] + n/2) / n)
			}
			for y := c.Min.Y; y < c.Max.Y; y++ {
				p := m.Pix[m.PixOffset(c.Min.X, y):]
				for x := 0; x < c.Dx(); x++ {
					copy(p[4*x:4*x+4], avg[:])
				}
			}
		}
	}
}

// blur box-blurs r three times horizontally and vertically with radius
// rad (clamped at the region's edges, so nothing outside leaks in or is
// changed).
func blur(m *image.RGBA, r image.Rectangle, rad int) {
	w, h := r.Dx(), r.Dy()
	buf := make([]int32, w*h*4)
	for y := 0; y < h; y++ {
		p := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):]
		for x := 0; x < w*4; x++ {
			buf[y*w*4+x] = int32(p[x])
		}
	}
	line := make([]int32, max(w, h))
	out := make([]int32, max(w, h))
	for pass := 0; pass < 3; pass++ {
		for ch := 0; ch < 4; ch++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					line[x] = buf[(y*w+x)*4+ch]
				}
				boxLine(line[:w], out[:w], rad)
				for x := 0; x < w; x++ {
					buf[(y*w+x)*4+ch] = out[x]
				}
			}
			for x := 0; x < w; x++ {
				for y := 0; y < h; y++ {
					line[y] = buf[(y*w+x)*4+ch]
				}
				boxLine(line[:h], out[:h], rad)
				for y := 0; y < h; y++ {
					buf[(y*w+x)*4+ch] = out[y]
				}
			}
		}
	}
	for y := 0; y < h; y++ {
		p := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):]
		for x := 0; x < w*4; x++ {
			p[x] = uint8(buf[y*w*4+x])
		}
	}
}

// boxLine writes the mean of in over [i-rad, i+rad] (clamped to the line)
// to out[i], with a running sum.
func boxLine(in, out []int32, rad int) {
	n := len(in)
	var sum int32
	lo, hi := 0, -1
	for i := 0; i < n; i++ {
		a, b := max(i-rad, 0), min(i+rad, n-1)
		for hi < b {
			hi++
			sum += in[hi]
		}
		for lo < a {
			sum -= in[lo]
			lo++
		}
		cnt := int32(hi - lo + 1)
		out[i] = (sum + cnt/2) / cnt
	}
}

// IoU is the intersection over union of two boxes: 0 when they do not
// overlap, 1 when they are the same box.
func IoU(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	ia := float64(in.Dx() * in.Dy())
	return ia / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia)
}
