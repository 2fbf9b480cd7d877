// Package faces is the built-in face-detect and face-quality algorithm:
// encoded image in, face boxes (with a quality assessment each) out, as
// plain structs that marshal to JSON. It composes imageops (bounded
// decoding, grayscale), cascade (OpenCV-compatible cascade detection) and
// quality.
package faces

import (
	"context"
	"errors"
	"fmt"
	"image"

	"github.com/tianshu-ai/tianshu/internal/vision/cascade"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
	"github.com/tianshu-ai/tianshu/internal/vision/quality"
)

// Models the Detector knows, by name.
const (
	// ModelHaar is OpenCV's haarcascade_frontalface_default: the more
	// accurate, about half as fast.
	ModelHaar = "haar"
	// ModelLBP is OpenCV's lbpcascade_frontalface: faster.
	ModelLBP = "lbp"
)

// ErrUnknownModel is returned for a model name other than "haar" or "lbp".
var ErrUnknownModel = errors.New("faces: unknown model")

// Detector detects faces with one embedded cascade. It is immutable and
// safe for concurrent use; load one per model and share it.
type Detector struct {
	model string
	c     *cascade.Cascade
}

// New loads the embedded cascade named model ("haar", the default when
// empty, or "lbp").
func New(model string) (*Detector, error) {
	var c *cascade.Cascade
	var err error
	switch model {
	case "", ModelHaar:
		model = ModelHaar
		c, err = cascade.FrontalFaceHaar()
	case ModelLBP:
		c, err = cascade.FrontalFaceLBP()
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownModel, model)
	}
	if err != nil {
		return nil, err
	}
	return &Detector{model: model, c: c}, nil
}

// Model returns the detector's model name.
func (d *Detector) Model() string { return d.model }

// Options tune one detection. Zero values take OpenCV's defaults.
type Options struct {
	// ScaleFactor between pyramid levels, > 1; default 1.1.
	ScaleFactor float64 `json:"scaleFactor,omitempty"`
	// MinNeighbors a face needs; default 3. Use -1 for 0 (raw windows).
	MinNeighbors int `json:"minNeighbors,omitempty"`
	// MinSize and MaxSize bound the face side in pixels; 0 means no bound.
	MinSize int `json:"minSize,omitempty"`
	MaxSize int `json:"maxSize,omitempty"`
	// Quality adds a quality.Metrics to each face.
	Quality bool `json:"quality,omitempty"`
	// Limits bound decoding (see imageops.Limits).
	Limits imageops.Limits `json:"-"`
}

// Box is a rectangle as x, y, width and height in image pixels.
type Box struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Rect returns b as an image.Rectangle.
func (b Box) Rect() image.Rectangle { return image.Rect(b.X, b.Y, b.X+b.W, b.Y+b.H) }

// BoxOf returns r as a Box.
func BoxOf(r image.Rectangle) Box { return Box{X: r.Min.X, Y: r.Min.Y, W: r.Dx(), H: r.Dy()} }

// Face is one detected face.
type Face struct {
	Box Box `json:"box"`
	// Neighbors is how many raw windows support the face.
	Neighbors int `json:"neighbors"`
	// Quality is set when Options.Quality is.
	Quality *quality.Metrics `json:"quality,omitempty"`
}

// Result is what one image yields.
type Result struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Model  string `json:"model"`
	Faces  []Face `json:"faces"`
	// Best is the index in Faces of the highest quality score, or -1
	// (also when Quality was not asked for).
	Best int `json:"best"`
}

// DetectBytes decodes an encoded JPEG, PNG or GIF image (with the
// decoding limits of opt) and detects faces in it.
func (d *Detector) DetectBytes(ctx context.Context, data []byte, opt Options) (Result, error) {
	img, _, err := imageops.DecodeBytes(data, opt.Limits)
	if err != nil {
		return Result{}, err
	}
	return d.DetectImage(ctx, img, opt)
}

// DetectImage detects faces in a decoded image.
func (d *Detector) DetectImage(ctx context.Context, img image.Image, opt Options) (Result, error) {
	return d.DetectGray(ctx, imageops.Gray(img), opt)
}

// DetectGray detects faces in a grayscale image.
func (d *Detector) DetectGray(ctx context.Context, g *image.Gray, opt Options) (Result, error) {
	dets, err := d.c.Detect(ctx, g, params(opt))
	if err != nil {
		return Result{}, err
	}
	return d.result(g, dets, opt)
}

// DetectRegions detects faces in the regions of g (g's coordinates) as
// DetectGray would find them there: the same pyramid and windows as a
// search of the whole of g, restricted to the regions (see
// cascade.DetectRegions).
func (d *Detector) DetectRegions(ctx context.Context, g *image.Gray, regions []image.Rectangle, opt Options) (Result, error) {
	dets, err := d.c.DetectRegions(ctx, g, regions, params(opt))
	if err != nil {
		return Result{}, err
	}
	return d.result(g, dets, opt)
}

// params turns Options into the cascade's parameters.
func params(opt Options) cascade.Params {
	p := cascade.DefaultParams()
	if opt.ScaleFactor != 0 {
		p.ScaleFactor = opt.ScaleFactor
	}
	switch {
	case opt.MinNeighbors < 0:
		p.MinNeighbors = 0
	case opt.MinNeighbors > 0:
		p.MinNeighbors = opt.MinNeighbors
	}
	p.MinSize = image.Pt(opt.MinSize, opt.MinSize)
	p.MaxSize = image.Pt(opt.MaxSize, opt.MaxSize)
	return p
}

// result builds the Result of dets found in g, with quality when asked.
func (d *Detector) result(g *image.Gray, dets []cascade.Detection, opt Options) (Result, error) {
	res := Result{Width: g.Rect.Dx(), Height: g.Rect.Dy(), Model: d.model, Faces: make([]Face, 0, len(dets)), Best: -1}
	for _, det := range dets {
		f := Face{Box: BoxOf(det.Rect.Sub(g.Rect.Min)), Neighbors: det.Neighbors}
		if opt.Quality {
			m, err := quality.Assess(g, det.Rect)
			if err != nil {
				return Result{}, err
			}
			m.Box = m.Box.Sub(g.Rect.Min)
			f.Quality = &m
			if res.Best < 0 || m.Score > res.Faces[res.Best].Quality.Score {
				res.Best = len(res.Faces)
			}
		}
		res.Faces = append(res.Faces, f)
	}
	return res, nil
}
