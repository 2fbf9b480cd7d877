package faces

import (
	"context"
	"fmt"
	"image"

	"github.com/tianshu-ai/tianshu/internal/vision/motion"
	"github.com/tianshu-ai/tianshu/internal/vision/quality"
)

// Decision says what a Stream did with one frame.
type Decision string

// The decisions, as DescribeTaskStats and the metrics count them.
const (
	// Detected: detection ran over the whole frame (the first frame, a
	// new frame size, the periodic full pass, or a frame where so much
	// changed that the camera itself probably moved or the light changed).
	Detected Decision = "detected"
	// Motion: detection ran only in the regions that changed (and around
	// the faces they touch); the other faces were carried over.
	Motion Decision = "motion"
	// Tracked: nothing changed; the previous frame's faces were carried
	// over, their quality measured again on this frame.
	Tracked Decision = "tracked"
	// Skipped: nothing changed and there were no faces: no detection.
	Skipped Decision = "skipped"
)

// Decisions lists every Decision.
var Decisions = []Decision{Detected, Motion, Tracked, Skipped}

// GateOptions tune a Stream. Zero values take the defaults noted.
type GateOptions struct {
	// FullEvery is the most frames from one full-frame detection to the
	// next (FullEvery−1 gated frames in between), so that a face that
	// appeared without motion (or was missed in a motion region) is found
	// within that many frames; default 10 (2 s at 5 fps). 1 detects on
	// every frame (gating off).
	FullEvery int
	// MaxMotion is the changed share of the frame (motion ratio) at and
	// above which the frame gets full detection: the camera panned or
	// shook, or the light changed; default 0.25.
	MaxMotion float64
	// Threshold is the motion detector's gray-level difference; default
	// motion's (25).
	Threshold int
}

// Stream detects faces in one camera's consecutive frames, cheaply where
// nothing happens: a frame is compared with the previous one on a
// downscaled copy (internal/vision/motion), detection runs only in the
// changed regions (grown to hold a face of the largest size that fits
// there, plus the previous faces they touch), faces outside them are
// carried over with their boxes, and every FullEvery frames, or when much
// of the frame changed, the whole frame is searched. A Stream is not safe
// for concurrent use: keep one per camera and feed it frames in order.
type Stream struct {
	d      *Detector
	opt    GateOptions
	motion *motion.Detector
	faces  []Face
	since  int // frames since the last full detection
}

// NewStream returns a Stream detecting with d.
func NewStream(d *Detector, opt GateOptions) (*Stream, error) {
	if opt.FullEvery == 0 {
		opt.FullEvery = 10
	}
	if opt.MaxMotion == 0 {
		opt.MaxMotion = 0.25
	}
	if opt.FullEvery < 1 || opt.FullEvery > 1000 || opt.MaxMotion < 0 || opt.MaxMotion > 1 {
		return nil, fmt.Errorf("faces: gate options: fullEvery %d (1–1000), maxMotion %v (0–1)", opt.FullEvery, opt.MaxMotion)
	}
	m, err := motion.New(motion.Config{Threshold: opt.Threshold})
	if err != nil {
		return nil, err
	}
	return &Stream{d: d, opt: opt, motion: m}, nil
}

// Detect finds the faces of the next frame g of the stream and says how.
func (s *Stream) Detect(ctx context.Context, g *image.Gray, opt Options) (Result, Decision, error) {
	mres, err := s.motion.Update(g)
	if err != nil {
		return Result{}, "", err
	}
	s.since++
	bounds := g.Rect
	if mres.First || s.since >= s.opt.FullEvery || mres.Ratio >= s.opt.MaxMotion || s.opt.FullEvery == 1 {
		return s.full(ctx, g, opt)
	}
	if !mres.Motion {
		return s.carry(g, opt, nil, nil)
	}
	// The regions to search: each moving box grown by the smallest face
	// side searched (at least two detector windows), so that a face
	// reaching out of it is still whole in the region, then merged where
	// they overlap.
	winW, _ := s.d.c.WindowSize()
	grow := max(opt.MinSize, 2*winW)
	var rois []image.Rectangle
	for _, b := range mres.Boxes {
		rois = append(rois, image.Rect(b.Min.X-grow, b.Min.Y-grow, b.Max.X+grow, b.Max.Y+grow).Intersect(bounds))
	}
	// A previous face that a moving region touches is searched for
	// around where it was.
	for _, f := range s.faces {
		r := f.Box.Rect()
		for _, m := range rois {
			if r.Overlaps(m) {
				grow := r.Dx() / 2
				rois = append(rois, image.Rect(r.Min.X-grow, r.Min.Y-grow, r.Max.X+grow, r.Max.Y+grow).Intersect(bounds))
				break
			}
		}
	}
	rois = mergeRects(rois)
	area := 0
	for _, r := range rois {
		area += r.Dx() * r.Dy()
	}
	if 2*area >= bounds.Dx()*bounds.Dy() {
		return s.full(ctx, g, opt)
	}
	// The regions are searched with the whole frame's pyramid, so that a
	// face is found there exactly when a full pass would find it (a
	// pyramid of the cropped region samples other pixels, and borderline
	// faces came and went with it).
	res, err := s.d.DetectRegions(ctx, g, rois, Options{ScaleFactor: opt.ScaleFactor,
		MinNeighbors: opt.MinNeighbors, MinSize: opt.MinSize, MaxSize: opt.MaxSize})
	if err != nil {
		return Result{}, "", err
	}
	return s.carry(g, opt, rois, res.Faces)
}

// full detects over the whole frame.
func (s *Stream) full(ctx context.Context, g *image.Gray, opt Options) (Result, Decision, error) {
	res, err := s.d.DetectGray(ctx, g, opt)
	if err != nil {
		return Result{}, "", err
	}
	s.since = 0
	s.faces = append(s.faces[:0], res.Faces...)
	return res, Detected, nil
}

// carry returns found plus the previous faces outside every searched
// region, with quality measured on g when asked for.
func (s *Stream) carry(g *image.Gray, opt Options, searched []image.Rectangle, found []Face) (Result, Decision, error) {
	dec := Motion
	if searched == nil {
		dec = Skipped
		if len(s.faces) > 0 {
			dec = Tracked
		}
	}
	faces := found
next:
	for _, f := range s.faces {
		for _, r := range searched {
			if f.Box.Rect().Overlaps(r) {
				continue next
			}
		}
		faces = append(faces, f)
	}
	res := Result{Width: g.Rect.Dx(), Height: g.Rect.Dy(), Model: s.d.model, Faces: make([]Face, 0, len(faces)), Best: -1}
	for _, f := range faces {
		f.Quality = nil
		if opt.Quality {
			m, err := quality.Assess(g, f.Box.Rect().Add(g.Rect.Min))
			if err != nil {
				continue // the face left the frame
			}
			m.Box = m.Box.Sub(g.Rect.Min)
			f.Quality = &m
			if res.Best < 0 || m.Score > res.Faces[res.Best].Quality.Score {
				res.Best = len(res.Faces)
			}
		}
		res.Faces = append(res.Faces, f)
	}
	s.faces = append(s.faces[:0], res.Faces...)
	return res, dec, nil
}

// mergeRects joins overlapping rectangles until none overlap.
func mergeRects(rs []image.Rectangle) []image.Rectangle {
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(rs) && !merged; i++ {
			for j := i + 1; j < len(rs); j++ {
				if rs[i].Overlaps(rs[j]) {
					rs[i] = rs[i].Union(rs[j])
					rs = append(rs[:j], rs[j+1:]...)
					merged = true
					break
				}
			}
		}
	}
	return rs
}
