// Package motion detects motion between consecutive frames of one stream
// by frame differencing, to gate expensive algorithms: a frame goes on to
// face detection only when something in the watched region changed.
//
// Each frame is converted to grayscale and shrunk (area average) to a
// small working size, which also removes most sensor noise. A working
// pixel has changed when it differs from the previous frame's by more than
// Threshold; the changed share of the pixels inside the region mask is the
// motion ratio, and the changed pixels, dilated by one pixel and grouped
// into 8-connected blobs of at least MinArea pixels, give the motion boxes
// in the frame's coordinates.
package motion

import (
	"errors"
	"fmt"
	"image"

	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
)

// Config tunes a Detector. Zero values take the defaults noted.
type Config struct {
	// Width is the working width in pixels (the height follows the
	// frame's aspect ratio); default 160.
	Width int
	// Threshold is the gray-level difference above which a working pixel
	// counts as changed; default 25.
	Threshold int
	// MinRatio is the share of changed pixels inside the region needed to
	// report motion; default 0.005 (0.5%).
	MinRatio float64
	// MinArea is the smallest blob, in working pixels, that yields a box;
	// default 4.
	MinArea int
	// Polygons, in frame pixel coordinates, bound the watched region
	// (even–odd rule; several polygons add up). Empty with Bitmap nil
	// means the whole frame.
	Polygons [][]image.Point
	// Bitmap is a region mask of any size, stretched over the frame:
	// non-zero pixels are watched. Used when Polygons is empty.
	Bitmap *image.Gray
}

// Result is what one frame shows.
type Result struct {
	// Motion is true when Ratio ≥ MinRatio and there is at least one box.
	Motion bool `json:"motion"`
	// Ratio is the changed share of the watched working pixels, 0–1.
	Ratio float64 `json:"ratio"`
	// Boxes bound the moving blobs, in frame coordinates.
	Boxes []image.Rectangle `json:"boxes"`
	// First is true for the first frame of a stream, or the first after
	// the frame size changed: there is nothing to compare it with yet.
	First bool `json:"first,omitempty"`
}

// Detector holds one stream's state: the previous working frame and the
// rasterised mask. It is not safe for concurrent use; keep one per stream.
type Detector struct {
	cfg   Config
	frame image.Point // the frame size prev and mask were made for
	prev  *image.Gray
	mask  []bool
	nmask int
}

// ErrConfig is returned for an invalid Config.
var ErrConfig = errors.New("motion: invalid config")

// New returns a Detector for one stream.
func New(cfg Config) (*Detector, error) {
	if cfg.Width == 0 {
		cfg.Width = 160
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = 25
	}
	if cfg.MinRatio == 0 {
		cfg.MinRatio = 0.005
	}
	if cfg.MinArea == 0 {
		cfg.MinArea = 4
	}
	if cfg.Width < 8 || cfg.Width > 4096 || cfg.Threshold < 1 || cfg.Threshold > 255 || cfg.MinRatio < 0 || cfg.MinRatio > 1 || cfg.MinArea < 1 {
		return nil, fmt.Errorf("%w: %+v", ErrConfig, cfg)
	}
	for i, p := range cfg.Polygons {
		if len(p) < 3 {
			return nil, fmt.Errorf("%w: polygon %d has %d points", ErrConfig, i, len(p))
		}
	}
	if cfg.Bitmap != nil && cfg.Bitmap.Rect.Empty() {
		return nil, fmt.Errorf("%w: empty bitmap mask", ErrConfig)
	}
	return &Detector{cfg: cfg}, nil
}

// Reset forgets the previous frame, as after a stream reconnects.
func (d *Detector) Reset() { d.prev, d.frame = nil, image.Point{} }

// Update compares frame with the previous one and keeps it for the next
// call.
func (d *Detector) Update(frame image.Image) (Result, error) {
	return d.update(frame.Bounds(), func(w, h int) (*image.Gray, error) { return imageops.ResizeGray(imageops.Gray(frame), w, h) })
}

// ErrSmall is UpdateSmall's refusal of a picture narrower than the
// working width: use Update with the frame.
var ErrSmall = errors.New("motion: picture smaller than the working size")

// UpdateSmall is Update given the frame already shrunk (a JPEG's
// eighth-size DC image, say) instead of the frame itself: small is
// resized to the working size as the frame would be, and the boxes are in
// frame's coordinates. It refuses (ErrSmall) a picture narrower than the
// working width.
func (d *Detector) UpdateSmall(frame image.Rectangle, small *image.Gray) (Result, error) {
	return d.update(frame, func(w, h int) (*image.Gray, error) {
		if small.Rect.Dx() < w || small.Rect.Dy() < h {
			return nil, fmt.Errorf("%w: %v for %dx%d", ErrSmall, small.Rect, w, h)
		}
		return imageops.ResizeGray(small, w, h)
	})
}

// update compares the working frame that shrink makes with the previous
// one.
func (d *Detector) update(fb image.Rectangle, shrink func(w, h int) (*image.Gray, error)) (Result, error) {
	if fb.Empty() {
		return Result{}, fmt.Errorf("motion: empty frame")
	}
	w := min(d.cfg.Width, fb.Dx())
	h := max(1, int(int64(fb.Dy())*int64(w)/int64(fb.Dx())))
	cur, err := shrink(w, h)
	if err != nil {
		return Result{}, err
	}
	if d.prev == nil || d.frame != fb.Size() {
		d.frame = fb.Size()
		d.prev = cur
		d.rasterise(fb, w, h)
		return Result{First: true}, nil
	}
	prev := d.prev
	d.prev = cur
	if d.nmask == 0 {
		return Result{}, nil
	}
	changed := make([]bool, w*h)
	n := 0
	th := d.cfg.Threshold
	for i, m := range d.mask {
		if !m {
			continue
		}
		diff := int(cur.Pix[i]) - int(prev.Pix[i])
		if diff > th || -diff > th {
			changed[i] = true
			n++
		}
	}
	res := Result{Ratio: float64(n) / float64(d.nmask)}
	if n == 0 {
		return res, nil
	}
	grown := dilate(changed, w, h)
	for i, m := range d.mask {
		grown[i] = grown[i] && m // boxes stay inside the region
	}
	for _, r := range blobs(grown, w, h, d.cfg.MinArea) {
		// Working pixel (x, y) covers frame [x·W/w, (x+1)·W/w).
		res.Boxes = append(res.Boxes, image.Rect(
			fb.Min.X+r.Min.X*fb.Dx()/w, fb.Min.Y+r.Min.Y*fb.Dy()/h,
			fb.Min.X+(r.Max.X*fb.Dx()+w-1)/w, fb.Min.Y+(r.Max.Y*fb.Dy()+h-1)/h))
	}
	res.Motion = res.Ratio >= d.cfg.MinRatio && len(res.Boxes) > 0
	return res, nil
}

// rasterise computes which working pixels are watched: those whose centre,
// mapped to the frame, is inside a polygon or a non-zero bitmap pixel.
func (d *Detector) rasterise(fb image.Rectangle, w, h int) {
	d.mask = make([]bool, w*h)
	d.nmask = 0
	for y := 0; y < h; y++ {
		fy := float64(fb.Min.Y) + (float64(y)+0.5)*float64(fb.Dy())/float64(h)
		for x := 0; x < w; x++ {
			fx := float64(fb.Min.X) + (float64(x)+0.5)*float64(fb.Dx())/float64(w)
			in := true
			switch {
			case len(d.cfg.Polygons) > 0:
				in = false
				for _, p := range d.cfg.Polygons {
					if inPolygon(p, fx, fy) {
						in = true
						break
					}
				}
			case d.cfg.Bitmap != nil:
				bm := d.cfg.Bitmap
				bx := bm.Rect.Min.X + int((fx-float64(fb.Min.X))*float64(bm.Rect.Dx())/float64(fb.Dx()))
				by := bm.Rect.Min.Y + int((fy-float64(fb.Min.Y))*float64(bm.Rect.Dy())/float64(fb.Dy()))
				in = bm.GrayAt(bx, by).Y != 0
			}
			if in {
				d.mask[y*w+x] = true
				d.nmask++
			}
		}
	}
}

// inPolygon is the even–odd rule for the point (x, y).
func inPolygon(p []image.Point, x, y float64) bool {
	in := false
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		xi, yi := float64(p[i].X), float64(p[i].Y)
		xj, yj := float64(p[j].X), float64(p[j].Y)
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}

// dilate grows the changed set by one pixel (3×3), joining blobs a pixel
// apart.
func dilate(b []bool, w, h int) []bool {
	out := make([]bool, len(b))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if !b[y*w+x] {
				continue
			}
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					if nx, ny := x+dx, y+dy; nx >= 0 && ny >= 0 && nx < w && ny < h {
						out[ny*w+nx] = true
					}
				}
			}
		}
	}
	return out
}

// blobs returns the bounding boxes of the 8-connected components of b with
// at least minArea pixels, in working coordinates.
func blobs(b []bool, w, h, minArea int) []image.Rectangle {
	seen := make([]bool, len(b))
	var out []image.Rectangle
	var stack []int
	for start, v := range b {
		if !v || seen[start] {
			continue
		}
		seen[start] = true
		stack = append(stack[:0], start)
		r := image.Rect(start%w, start/w, start%w+1, start/w+1)
		area := 0
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			area++
			x, y := i%w, i/w
			r = r.Union(image.Rect(x, y, x+1, y+1))
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= w || ny >= h {
						continue
					}
					if j := ny*w + nx; b[j] && !seen[j] {
						seen[j] = true
						stack = append(stack, j)
					}
				}
			}
		}
		if area >= minArea {
			out = append(out, r)
		}
	}
	return out
}
