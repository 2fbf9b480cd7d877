// Package quality scores a face crop for best-shot selection: how big,
// sharp, well exposed, contrasted and frontal it is, and one score in
// [0, 1] that combines them.
//
// All measures are taken on the grayscale image inside the face box (as a
// cascade detector returns it). Sharpness, contrast and frontalness are
// computed on the crop resampled to NormSize×NormSize so that they compare
// across face sizes; size is judged separately.
package quality

import (
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
)

// NormSize is the side of the square the crop is resampled to before
// sharpness, contrast and frontalness are measured.
const NormSize = 96

// Metrics describe one face crop.
type Metrics struct {
	// Box is the face box, clamped to the image.
	Box image.Rectangle `json:"box"`
	// Size is the smaller side of Box in pixels.
	Size int `json:"size"`
	// Sharpness is the variance of the Laplacian (4-neighbour kernel) of
	// the crop at NormSize×NormSize: ~0 for a flat or very blurred crop,
	// a few hundred and more for a sharp face.
	Sharpness float64 `json:"sharpness"`
	// Brightness is the mean gray level, 0–255.
	Brightness float64 `json:"brightness"`
	// Contrast is the standard deviation of the gray levels, 0–127.5.
	Contrast float64 `json:"contrast"`
	// Frontalness is the left–right mirror symmetry of the crop: the
	// correlation between its left half and its mirrored right half,
	// clamped to [0, 1]. A frontal face is close to symmetric; a turned
	// head is not. Strong side lighting lowers it too, which is wanted
	// for a best shot.
	Frontalness float64 `json:"frontalness"`
	// Score combines the above into [0, 1]; see Score.
	Score float64 `json:"score"`
}

// ErrEmptyBox is returned when the box does not overlap the image.
var ErrEmptyBox = errors.New("quality: face box outside the image")

// Assess measures the face in box of img.
func Assess(img *image.Gray, box image.Rectangle) (Metrics, error) {
	r := box.Intersect(img.Rect)
	if r.Empty() {
		return Metrics{}, fmt.Errorf("%w: box %v, image %v", ErrEmptyBox, box, img.Rect)
	}
	crop := img.SubImage(r).(*image.Gray)
	norm, err := imageops.ResizeGray(crop, NormSize, NormSize)
	if err != nil {
		return Metrics{}, err
	}
	m := Metrics{Box: r, Size: min(r.Dx(), r.Dy())}
	m.Brightness, m.Contrast = meanStd(crop)
	m.Sharpness = laplacianVariance(norm)
	m.Frontalness = symmetry(norm)
	m.Score = Score(m)
	return m, nil
}

// AssessAll measures every box; boxes outside the image get a zero
// Metrics (score 0).
func AssessAll(img *image.Gray, boxes []image.Rectangle) []Metrics {
	out := make([]Metrics, len(boxes))
	for i, b := range boxes {
		out[i], _ = Assess(img, b)
	}
	return out
}

// Best returns the index of the highest score, or -1 for none.
func Best(ms []Metrics) int {
	best := -1
	for i, m := range ms {
		if best < 0 || m.Score > ms[best].Score {
			best = i
		}
	}
	return best
}

// Score combines the metrics as a weighted geometric mean of per-measure
// scores in [0, 1], so a face bad in any one respect scores low:
//
//	size        s = clamp((Size − 24) / (112 − 24))      weight 0.25
//	sharpness   h = Sharpness / (Sharpness + 150)         weight 0.30
//	brightness  b = 1 in [70, 190], linear to 0 at 15 and 245  weight 0.15
//	contrast    c = clamp(Contrast / 45)                  weight 0.10
//	frontal     f = Frontalness                           weight 0.20
//
//	score = s^0.25 · h^0.30 · b^0.15 · c^0.10 · f^0.20
//
// 24 px is the smallest face a 24×24 cascade finds; past 112 px more
// pixels no longer help recognition. The sharpness knee (score 0.5 at a
// Laplacian variance of 150) and the contrast and brightness ranges were
// set on the test photos: a sharp, evenly lit face scores 0.6–0.9, the
// same face blurred or half its size clearly less.
func Score(m Metrics) float64 {
	s := clamp01(float64(m.Size-24) / (112 - 24))
	h := m.Sharpness / (m.Sharpness + 150)
	var b float64
	switch {
	case m.Brightness < 70:
		b = clamp01((m.Brightness - 15) / (70 - 15))
	case m.Brightness > 190:
		b = clamp01((245 - m.Brightness) / (245 - 190))
	default:
		b = 1
	}
	c := clamp01(m.Contrast / 45)
	f := clamp01(m.Frontalness)
	if s == 0 || h == 0 || b == 0 || c == 0 || f == 0 || math.IsNaN(h) {
		return 0
	}
	return math.Exp(0.25*math.Log(s) + 0.30*math.Log(h) + 0.15*math.Log(b) + 0.10*math.Log(c) + 0.20*math.Log(f))
}

func clamp01(v float64) float64 {
	if !(v > 0) {
		return 0
	}
	return min(v, 1)
}

func meanStd(g *image.Gray) (mean, std float64) {
	var s, q float64
	n := float64(g.Rect.Dx() * g.Rect.Dy())
	for y := g.Rect.Min.Y; y < g.Rect.Max.Y; y++ {
		row := g.Pix[g.PixOffset(g.Rect.Min.X, y):][:g.Rect.Dx()]
		for _, v := range row {
			f := float64(v)
			s += f
			q += f * f
		}
	}
	mean = s / n
	return mean, math.Sqrt(max(q/n-mean*mean, 0))
}

// laplacianVariance is the variance of the 4-neighbour Laplacian over the
// interior of g (which starts at the origin).
func laplacianVariance(g *image.Gray) float64 {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	if w < 3 || h < 3 {
		return 0
	}
	var s, q float64
	for y := 1; y < h-1; y++ {
		up, row, down := g.Pix[(y-1)*g.Stride:], g.Pix[y*g.Stride:], g.Pix[(y+1)*g.Stride:]
		for x := 1; x < w-1; x++ {
			l := float64(int(up[x]) + int(down[x]) + int(row[x-1]) + int(row[x+1]) - 4*int(row[x]))
			s += l
			q += l * l
		}
	}
	n := float64((w - 2) * (h - 2))
	m := s / n
	return max(q/n-m*m, 0)
}

// symmetry is the Pearson correlation of g's left half with its mirrored
// right half, after removing the best-fitting left-to-right brightness ramp
// (so that side lighting alone does not read as a turned head), clamped to
// [0, 1]; 0 for a flat crop.
func symmetry(g *image.Gray) float64 {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	// Least-squares fit of v ≈ a + b·(x − cx) over the crop.
	cx := float64(w-1) / 2
	var sxv, sxx float64
	for y := 0; y < h; y++ {
		row := g.Pix[y*g.Stride:]
		for x := 0; x < w; x++ {
			dx := float64(x) - cx
			sxv += dx * float64(row[x])
			sxx += dx * dx
		}
	}
	slope := sxv / sxx // gray levels per pixel
	half := w / 2
	var sa, sb, saa, sbb, sab float64
	for y := 0; y < h; y++ {
		row := g.Pix[y*g.Stride:]
		for x := 0; x < half; x++ {
			dx := float64(x) - cx
			a := float64(row[x]) - slope*dx
			b := float64(row[w-1-x]) + slope*dx // mirrored column is at −dx
			sa += a
			sb += b
			saa += a * a
			sbb += b * b
			sab += a * b
		}
	}
	n := float64(half * h)
	cov := sab/n - sa/n*sb/n
	va := saa/n - sa/n*sa/n
	vb := sbb/n - sb/n*sb/n
	if va <= 1e-9 || vb <= 1e-9 {
		return 0
	}
	return clamp01(cov / math.Sqrt(va*vb))
}
