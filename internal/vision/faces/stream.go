package faces

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/tianshu-ai/tianshu/internal/vision/cascade"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
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
	// Motion: detection ran in the regions that changed where no face
	// followed from the previous frame explains the change (at every
	// scale), besides the local searches of Tracked.
	Motion Decision = "motion"
	// Tracked: the previous frame's faces were followed (each searched
	// again near its last box, at scales near its size, and so were the
	// moving areas it touches); nothing else changed. A face not found
	// again is carried over for a few frames. Quality is measured on this
	// frame.
	Tracked Decision = "tracked"
	// Skipped: nothing changed and there were no faces: no detection.
	Skipped Decision = "skipped"
)

// Decisions lists every Decision.
var Decisions = []Decision{Detected, Motion, Tracked, Skipped}

// DefaultFullEvery is GateOptions.FullEvery's default.
const DefaultFullEvery = 10

// GateOptions tune a Stream. Zero values take the defaults noted.
type GateOptions struct {
	// FullEvery is how many frames apart the stream looks again at what
	// changed since its last look (a refresh pass: the frame is compared
	// with the one of the last refresh or whole-frame search, and every
	// part that differs is searched at every scale), so that a face that
	// appeared too slowly for the frame-to-frame motion (or was missed in
	// a motion region) is found within that many frames; default 10 (2 s
	// at 5 fps). 1 detects on every frame (gating off).
	FullEvery int
	// MaxMotion is the changed share of the frame (motion ratio) at and
	// above which the frame gets full detection: the camera panned or
	// shook, or the light changed; default 0.25.
	MaxMotion float64
	// Threshold is the motion detector's gray-level difference; default
	// motion's (25).
	Threshold int
	// LocalScales is how many pyramid scale steps either side of a
	// carried face's size the face is searched for again on each gated
	// frame, in a window around its last box; default 2 (3 found the
	// same faces at 1.1–1.25 times the CPU on a moving input, 1 lost a
	// face in a frame). Negative turns
	// these local searches off: carried faces are then searched again only
	// when a moving region touches them, at every scale.
	LocalScales int
	// Phase moves the refresh passes: the first comes Phase frames
	// sooner than FullEvery after the stream's first frame, and every
	// FullEvery frames after it (0 ≤ Phase < FullEvery). Cameras started
	// together with different phases do not all refresh on the same
	// tick: eight cameras' whole-frame passes at once took four times a
	// tick's CPU and made the latest-frame-wins sources drop frames that
	// an even spread leaves time for.
	Phase int
}

// Stream detects faces in one camera's consecutive frames, cheaply where
// nothing happens: a frame is compared with the previous one on a
// downscaled copy (internal/vision/motion); each face of the previous
// frame is searched for again in a window around its box, moved by its
// last motion, and in the moving areas that window touches, at the
// pyramid scales near its size (a tracker carrying boxes between
// detections); new faces are searched at every scale only where the
// picture changed and no face followed explains it; every FullEvery
// frames, everything that changed since the last such look is searched
// (a refresh pass); and when much of the frame changed, the whole frame
// is. A Stream is not safe for concurrent use: keep one per camera and
// feed it frames in order.
type Stream struct {
	d      *Detector
	opt    GateOptions
	motion *motion.Detector
	// ref compares a frame with the one of the last refresh pass or
	// whole-frame search (it sees only those frames).
	ref *motion.Detector
	// cands are the clusters of raw detector windows of the last refresh
	// pass or whole-frame search (faces and near-faces, found or not):
	// where noise may tip a borderline face over the threshold.
	cands   []candidate
	tracks  []track
	since   int // frames since the last refresh pass or full detection
	follows int // frames the faces were followed on
	// near are the groups of two or more raw windows (near-faces, and
	// faces) of the last whole-frame search, refresh pass or near-face
	// watch: watched on every frame between refresh passes.
	near []cascade.Detection
	// small is the frame's reduced picture during DetectScaled.
	small *image.Gray
}

// NewStream returns a Stream detecting with d.
func NewStream(d *Detector, opt GateOptions) (*Stream, error) {
	if opt.FullEvery == 0 {
		opt.FullEvery = DefaultFullEvery
	}
	if opt.MaxMotion == 0 {
		opt.MaxMotion = 0.25
	}
	if opt.LocalScales == 0 {
		opt.LocalScales = 2
	}
	if opt.FullEvery < 1 || opt.FullEvery > 1000 || opt.MaxMotion < 0 || opt.MaxMotion > 1 || opt.LocalScales > 20 || opt.Phase < 0 || opt.Phase >= opt.FullEvery {
		return nil, fmt.Errorf("faces: gate options: fullEvery %d (1–1000), maxMotion %v (0–1), localScales %d (at most 20), phase %d (0–fullEvery−1)",
			opt.FullEvery, opt.MaxMotion, opt.LocalScales, opt.Phase)
	}
	m, err := motion.New(motion.Config{Threshold: opt.Threshold})
	if err != nil {
		return nil, err
	}
	ref, err := motion.New(motion.Config{Threshold: opt.Threshold})
	if err != nil {
		return nil, err
	}
	return &Stream{d: d, opt: opt, motion: m, ref: ref}, nil
}

// Detect finds the faces of the next frame g of the stream and says how.
func (s *Stream) Detect(ctx context.Context, g *image.Gray, opt Options) (Result, Decision, error) {
	return s.DetectScaled(ctx, g, nil, opt)
}

// DetectScaled is Detect given also the frame at a reduced size, at least
// the motion check's working width (160 px) wide: a JPEG's eighth-size DC
// image (jpegluma), which spares the motion check shrinking g. A small nil
// or too narrow is made from g, as Detect does.
func (s *Stream) DetectScaled(ctx context.Context, g, small *image.Gray, opt Options) (Result, Decision, error) {
	s.small = small
	defer func() { s.small = nil }()
	mres, err := s.look(s.motion, g)
	if err != nil {
		return Result{}, "", err
	}
	s.since++
	if mres.First || mres.Ratio >= s.opt.MaxMotion || s.opt.FullEvery == 1 {
		res, dec, err := s.full(ctx, g, opt)
		if mres.First {
			s.since = s.opt.Phase
		}
		return res, dec, err
	}
	// The refresh pass, every FullEvery frames: what a whole-frame search
	// could find that the frame-to-frame searches did not look for.
	var refresh *[]track
	if s.since >= s.opt.FullEvery {
		s.since = 0
		faces, whole, err := s.refresh(ctx, g, opt)
		if err != nil {
			return Result{}, "", err
		}
		if whole {
			return s.full(ctx, g, opt)
		}
		refresh = &faces
	}
	if s.opt.LocalScales < 0 {
		return s.regions(ctx, g, opt, mres, refresh)
	}
	found, lost, followed, err := s.follow(ctx, g, mres.Boxes, opt)
	if err != nil {
		return Result{}, "", err
	}
	// New faces are searched where the picture changed and no face found
	// again explains the change: each moving box that touches no followed
	// window, grown by the smallest face side, at every scale.
	var rois []image.Rectangle
	if mres.Motion {
		for _, b := range mres.Boxes {
			if !overlapsAny(b, followed) {
				rois = append(rois, b)
			}
		}
		rois = s.grown(g, opt, rois)
	}
	rois = mergeRects(rois)
	dec := Tracked
	if len(rois) > 0 {
		if 2*area(rois) >= g.Rect.Dx()*g.Rect.Dy() {
			return s.full(ctx, g, opt)
		}
		dets, err := s.d.c.DetectRegions(ctx, g, rois, params(opt))
		if err != nil {
			return Result{}, "", err
		}
		for _, det := range dets {
			if !overlapsFace(det.Rect.Sub(g.Rect.Min), found) {
				found = append(found, track{Face: Face{Box: BoxOf(det.Rect.Sub(g.Rect.Min)), Neighbors: det.Neighbors}})
			}
		}
		dec = Motion
	}
	// Between refresh passes the near-faces no found face or searched
	// region explains are searched again on every frame, each at its own
	// size: a face that flickers around the detector's threshold on a
	// still picture is found on the first frame it crosses it, not only
	// when that frame is a refresh frame.
	if refresh == nil && len(s.near) > 0 {
		more, err := s.watchNear(ctx, g, opt, found, rois)
		if err != nil {
			return Result{}, "", err
		}
		if len(more) > 0 {
			found = append(found, more...)
			dec = Motion
		}
	}
	if refresh != nil {
		for _, f := range *refresh {
			if !overlapsFace(f.Box.Rect(), found) {
				found = append(found, f)
			}
		}
		dec = Motion
	}
	// A face not found again is carried a few frames (a detection that
	// flickers with noise), unless a region searched for new faces
	// covered it.
	for _, t := range lost {
		if t.misses+1 >= maxMisses || overlapsAny(t.Box.Rect(), rois) || overlapsFace(t.Box.Rect(), found) {
			continue
		}
		t.misses++
		found = append(found, t)
	}
	if len(found) == 0 && len(rois) == 0 && refresh == nil {
		dec = Skipped
	}
	return s.keep(g, opt, found), dec, nil
}

// watchNear searches the near-faces (s.near) that neither a face found
// nor a region searched on this frame covers, each in a window half its
// side around it at the scales within LocalScales steps of its size, and
// returns the faces found there that are not in found. The near-faces
// are then those of this search and the ones left out.
func (s *Stream) watchNear(ctx context.Context, g *image.Gray, opt Options, found []track, searched []image.Rectangle) ([]track, error) {
	var watch, kept []cascade.Detection
	for _, c := range s.near {
		if overlapsFace(c.Rect, found) || overlapsAny(c.Rect, searched) {
			kept = append(kept, c)
		} else {
			watch = append(watch, c)
		}
	}
	p := params(opt)
	minN := p.MinNeighbors
	p.MinNeighbors = 0
	cands := make([]candidate, len(watch))
	for i, c := range watch {
		cands[i] = candidate{r: c.Rect, lo: c.Rect.Dx(), hi: c.Rect.Dx()}
	}
	raw, quiet, err := s.nearRaw(ctx, g, cands, p)
	if err != nil {
		return nil, err
	}
	// A near-face where nothing was found is watched even so: noise that
	// hides it on one frame shows it on another.
	for _, c := range quiet {
		kept = append(kept, cascade.Detection{Rect: c.r, Neighbors: 1})
	}
	s.near = append(kept, cascade.Groups(raw, 0.2)...)
	var out []track
	for _, det := range cascade.GroupRectangles(raw, minN, 0.2) {
		if r := det.Rect.Sub(g.Rect.Min); !overlapsFace(r, found) {
			out = append(out, track{Face: Face{Box: BoxOf(r), Neighbors: det.Neighbors}})
		}
	}
	return out, nil
}

// look updates the motion check m with the frame g, from the frame's
// reduced picture where DetectScaled was given one wide enough.
func (s *Stream) look(m *motion.Detector, g *image.Gray) (motion.Result, error) {
	if s.small != nil {
		r, err := m.UpdateSmall(g.Rect, s.small)
		if !errors.Is(err, motion.ErrSmall) {
			return r, err
		}
	}
	return m.Update(g)
}

// candidate is a cluster of overlapping raw detector windows: its
// bounds and the smallest and largest window side in it.
type candidate struct {
	r      image.Rectangle
	lo, hi int
}

// clusters joins overlapping raw windows into candidates.
func clusters(raw []image.Rectangle) []candidate {
	var cs []candidate
	for _, r := range raw {
		c := candidate{r, r.Dx(), r.Dx()}
		// Join every cluster c overlaps, until it overlaps none.
		for joined := true; joined; {
			joined = false
			for i := 0; i < len(cs); i++ {
				if cs[i].r.Overlaps(c.r) {
					c = candidate{c.r.Union(cs[i].r), min(c.lo, cs[i].lo), max(c.hi, cs[i].hi)}
					cs[i] = cs[len(cs)-1]
					cs = cs[:len(cs)-1]
					joined = true
					break
				}
			}
		}
		cs = append(cs, c)
	}
	return cs
}

// refresh is the refresh pass: the parts of g that differ from the frame
// of the last refresh pass or whole-frame search (a face that came too
// slowly for the frame-to-frame motion) are searched at every scale, and
// the candidates of that search (where noise may now tip a borderline
// face over the threshold) at the scales near theirs; the raw windows
// are grouped together as a whole-frame search groups them. whole says
// that so much changed that the whole frame is to be searched instead.
func (s *Stream) refresh(ctx context.Context, g *image.Gray, opt Options) (faces []track, whole bool, err error) {
	rres, err := s.look(s.ref, g)
	if err != nil {
		return nil, false, err
	}
	changed := mergeRects(s.grown(g, opt, rres.Boxes))
	if rres.First || rres.Ratio >= s.opt.MaxMotion || 2*area(changed) >= g.Rect.Dx()*g.Rect.Dy() {
		return nil, true, nil
	}
	p := params(opt)
	minN := p.MinNeighbors
	p.MinNeighbors = 0
	raw, err := s.rawIn(ctx, g, changed, p)
	if err != nil {
		return nil, false, err
	}
	more, quiet, err := s.nearRaw(ctx, g, s.cands, p)
	if err != nil {
		return nil, false, err
	}
	raw = append(raw, more...)
	// Candidates and near-faces where nothing was found this time stay,
	// where the picture did not change (a changed part was searched at
	// every scale): on a still picture, noise hides a borderline face on
	// some frames and shows it on others.
	near := cascade.Groups(raw, 0.2)
	for _, c := range s.near {
		if !overlapsAny(c.Rect, raw) && !overlapsAny(c.Rect, changed) {
			near = append(near, c)
		}
	}
	s.near = near
	s.cands = clusters(raw)
	for _, c := range quiet {
		if !overlapsAny(c.r, changed) {
			s.cands = append(s.cands, c)
		}
	}
	for _, det := range cascade.GroupRectangles(raw, minN, 0.2) {
		faces = append(faces, track{Face: Face{Box: BoxOf(det.Rect.Sub(g.Rect.Min)), Neighbors: det.Neighbors}})
	}
	return faces, false, nil
}

// nearRaw searches each candidate cluster again, in a window around it at
// the scales near its windows', and returns the raw windows found and the
// candidates where none was.
func (s *Stream) nearRaw(ctx context.Context, g *image.Gray, cands []candidate, p cascade.Params) (raw []image.Rectangle, quiet []candidate, err error) {
	k := math.Pow(p.ScaleFactor, float64(max(1, s.opt.LocalScales)))
	for _, c := range cands {
		cp := p
		lo, hi := int(float64(c.lo)/k), int(math.Ceil(float64(c.hi)*k))
		cp.MinSize = image.Pt(max(lo, p.MinSize.X), max(lo, p.MinSize.Y))
		if p.MaxSize.X <= 0 || hi < p.MaxSize.X {
			cp.MaxSize = image.Pt(hi, hi)
		}
		m := c.hi / 2
		region := image.Rect(c.r.Min.X-m, c.r.Min.Y-m, c.r.Max.X+m, c.r.Max.Y+m).Intersect(g.Rect)
		more, err := s.rawIn(ctx, g, []image.Rectangle{region}, cp)
		if err != nil {
			return nil, nil, err
		}
		if len(more) == 0 {
			quiet = append(quiet, c)
		}
		raw = append(raw, more...)
	}
	return raw, quiet, nil
}

// rawIn returns the raw windows (p.MinNeighbors 0) in regions of g.
func (s *Stream) rawIn(ctx context.Context, g *image.Gray, regions []image.Rectangle, p cascade.Params) ([]image.Rectangle, error) {
	dets, err := s.d.c.DetectRegions(ctx, g, regions, p)
	out := make([]image.Rectangle, 0, len(dets))
	for _, d := range dets {
		out = append(out, d.Rect)
	}
	return out, err
}

// maxMisses is how many gated frames in a row a face may go unfound by
// its local search before it is dropped (a full pass or a motion region
// finds it again).
const maxMisses = 3

// track is a face the stream carries from frame to frame.
type track struct {
	Face
	// v is how far the face's centre moved between the last two frames
	// it was found on.
	v image.Point
	// misses counts the frames since its local search last found it.
	misses int
}

// follow searches for the stream's faces again: each in a window around
// its box moved by its last motion, grown by half its side plus that
// motion, at the pyramid scales within LocalScales steps of its size; and
// in the moving boxes that such a window touches, directly or through
// other moving boxes within half a face of each other, each grown by half
// the largest of those faces, once, at the scales of those faces (faces
// that move with one, a group or a picture, are of about its size). It
// returns the faces found again (each the detection in its window closest
// to where it was expected) and the new ones found, the faces not found
// again, and the areas searched for the faces found again: the motion
// that those faces explain.
func (s *Stream) follow(ctx context.Context, g *image.Gray, moving []image.Rectangle, opt Options) (found, lost []track, followed []image.Rectangle, err error) {
	type area struct {
		r      image.Rectangle
		lo, hi int   // the face sides searched
		side   int   // the largest face's side
		owners []int // the faces it is searched for
	}
	bounds := g.Rect.Sub(g.Rect.Min)
	k := math.Pow(params(opt).ScaleFactor, float64(s.opt.LocalScales))
	n := len(s.tracks)
	wins, preds := make([]image.Rectangle, n), make([]image.Rectangle, n)
	var areas []area
	for i, t := range s.tracks {
		r := t.Box.Rect().Add(t.v)
		side := max(r.Dx(), r.Dy())
		m := side/2 + max(abs(t.v.X), abs(t.v.Y))
		preds[i] = r
		wins[i] = image.Rect(r.Min.X-m, r.Min.Y-m, r.Max.X+m, r.Max.Y+m).Intersect(bounds)
		if !wins[i].Empty() {
			areas = append(areas, area{wins[i], int(float64(side) / k), int(math.Ceil(float64(side) * k)), side, []int{i}})
		}
	}
	// The moving areas the faces' windows touch are searched on every
	// other frame: a face that moves with a followed one is found a frame
	// later at most, and on a panned picture those areas were two thirds
	// of the gated CPU. On the other frames they count as explained by
	// the faces found all the same.
	faceAreas := len(areas)
	s.follows++
	if s.follows%2 == 0 {
		faceAreas = math.MaxInt
	}
	used := make([]bool, len(moving))
	for grew := true; grew; {
		grew = false
		for j, b := range moving {
			if used[j] {
				continue
			}
			b = b.Sub(g.Rect.Min)
			na := area{lo: math.MaxInt}
			for _, a := range areas {
				if b.Overlaps(a.r) {
					na.lo, na.hi, na.side = min(na.lo, a.lo), max(na.hi, a.hi), max(na.side, a.side)
					na.owners = append(na.owners, a.owners...)
				}
			}
			if na.side > 0 {
				na.r = image.Rect(b.Min.X-na.side/2, b.Min.Y-na.side/2, b.Max.X+na.side/2, b.Max.Y+na.side/2).Intersect(bounds)
				areas = append(areas, na)
				used[j], grew = true, true
			}
		}
	}
	var dets []track
	for _, a := range areas[:min(faceAreas, len(areas))] {
		p := params(opt)
		p.MinSize = image.Pt(max(a.lo, p.MinSize.X), max(a.lo, p.MinSize.Y))
		if p.MaxSize.X <= 0 || a.hi < p.MaxSize.X {
			p.MaxSize = image.Pt(a.hi, a.hi)
		}
		ds, err := s.d.c.DetectRegions(ctx, g, []image.Rectangle{a.r.Add(g.Rect.Min)}, p)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, det := range ds {
			if b := det.Rect.Sub(g.Rect.Min); !overlapsFace(b, dets) {
				dets = append(dets, track{Face: Face{Box: BoxOf(b), Neighbors: det.Neighbors}})
			}
		}
	}
	taken := make([]bool, len(dets))
	foundTrack := make([]bool, n)
	for i, t := range s.tracks {
		best, bestIoU := -1, 0.0
		for j, d := range dets {
			b := d.Box.Rect()
			if taken[j] || !b.Min.Add(b.Max).Div(2).In(wins[i]) {
				continue
			}
			if v := imageops.IoU(b, preds[i]); best < 0 || v > bestIoU {
				best, bestIoU = j, v
			}
		}
		if best < 0 {
			lost = append(lost, t)
			continue
		}
		taken[best], foundTrack[i] = true, true
		nt := dets[best]
		c0 := t.Box.Rect().Min.Add(t.Box.Rect().Max)
		c1 := nt.Box.Rect().Min.Add(nt.Box.Rect().Max)
		nt.v = c1.Sub(c0).Div(2)
		found = append(found, nt)
	}
	for j, d := range dets {
		if !taken[j] && !overlapsFace(d.Box.Rect(), found) {
			found = append(found, d)
		}
	}
	for _, a := range areas {
		for _, o := range a.owners {
			if foundTrack[o] {
				followed = append(followed, a.r)
				break
			}
		}
	}
	return found, lost, followed, nil
}

// regions is Detect without local searches (LocalScales < 0): the moving
// regions, plus the carried faces they touch, are searched at every
// scale; the other faces are carried over unsearched.
func (s *Stream) regions(ctx context.Context, g *image.Gray, opt Options, mres motion.Result, refresh *[]track) (Result, Decision, error) {
	var found []track
	if refresh != nil {
		found = append(found, *refresh...)
	}
	if !mres.Motion {
		for _, t := range s.tracks {
			if !overlapsFace(t.Box.Rect(), found) {
				found = append(found, t)
			}
		}
		dec := Tracked
		switch {
		case refresh != nil:
			dec = Motion
		case len(found) == 0:
			dec = Skipped
		}
		return s.keep(g, opt, found), dec, nil
	}
	bounds := g.Rect
	rois := s.grown(g, opt, mres.Boxes)
	// A previous face that a moving region touches is searched for
	// around where it was.
	for _, f := range s.tracks {
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
	if 2*area(rois) >= bounds.Dx()*bounds.Dy() {
		return s.full(ctx, g, opt)
	}
	// The regions are searched with the whole frame's pyramid, so that a
	// face is found there exactly when a full pass would find it (a
	// pyramid of the cropped region samples other pixels, and borderline
	// faces came and went with it).
	dets, err := s.d.c.DetectRegions(ctx, g, rois, params(opt))
	if err != nil {
		return Result{}, "", err
	}
	for _, det := range dets {
		if b := det.Rect.Sub(g.Rect.Min); !overlapsFace(b, found) {
			found = append(found, track{Face: Face{Box: BoxOf(b), Neighbors: det.Neighbors}})
		}
	}
	// Faces outside every searched region are carried over.
	for _, t := range s.tracks {
		if !overlapsAny(t.Box.Rect(), rois) && !overlapsFace(t.Box.Rect(), found) {
			found = append(found, t)
		}
	}
	return s.keep(g, opt, found), Motion, nil
}

// grown makes the regions to search of boxes that changed: each grown
// by the smallest face side searched, at least two detector windows, so
// that a face reaching out of its box is still whole in its region.
func (s *Stream) grown(g *image.Gray, opt Options, boxes []image.Rectangle) []image.Rectangle {
	winW, _ := s.d.c.WindowSize()
	grow := max(opt.MinSize, 2*winW)
	out := make([]image.Rectangle, 0, len(boxes))
	for _, b := range boxes {
		out = append(out, image.Rect(b.Min.X-grow, b.Min.Y-grow, b.Max.X+grow, b.Max.Y+grow).Intersect(g.Rect))
	}
	return out
}

// full detects over the whole frame.
func (s *Stream) full(ctx context.Context, g *image.Gray, opt Options) (Result, Decision, error) {
	p := params(opt)
	minN := p.MinNeighbors
	p.MinNeighbors = 0
	raw, err := s.d.c.Detect(ctx, g, p)
	if err != nil {
		return Result{}, "", err
	}
	rects := make([]image.Rectangle, len(raw))
	for i, r := range raw {
		rects[i] = r.Rect
	}
	s.cands = clusters(rects)
	s.near = cascade.Groups(rects, 0.2)
	res, err := s.d.result(g, cascade.GroupRectangles(rects, minN, 0.2), opt)
	if err != nil {
		return Result{}, "", err
	}
	// The next refresh pass compares with this frame.
	s.ref.Reset()
	if _, err := s.look(s.ref, g); err != nil {
		return Result{}, "", err
	}
	s.since = 0
	s.tracks = s.tracks[:0]
	for _, f := range res.Faces {
		s.tracks = append(s.tracks, track{Face: f})
	}
	return res, Detected, nil
}

// keep makes the frame's result of faces, with quality measured on g when
// asked for, and carries them to the next frame.
func (s *Stream) keep(g *image.Gray, opt Options, faces []track) Result {
	res := Result{Width: g.Rect.Dx(), Height: g.Rect.Dy(), Model: s.d.model, Faces: make([]Face, 0, len(faces)), Best: -1}
	s.tracks = s.tracks[:0]
	for _, t := range faces {
		t.Quality = nil
		if opt.Quality {
			m, err := quality.Assess(g, t.Box.Rect().Add(g.Rect.Min))
			if err != nil {
				continue // the face left the frame
			}
			m.Box = m.Box.Sub(g.Rect.Min)
			t.Quality = &m
			if res.Best < 0 || m.Score > res.Faces[res.Best].Quality.Score {
				res.Best = len(res.Faces)
			}
		}
		res.Faces = append(res.Faces, t.Face)
		s.tracks = append(s.tracks, t)
	}
	return res
}

// overlapsAny reports whether r overlaps one of rs.
func overlapsAny(r image.Rectangle, rs []image.Rectangle) bool {
	for _, o := range rs {
		if r.Overlaps(o) {
			return true
		}
	}
	return false
}

// sameFace returns the index of the first of ts that is the same face as
// r (IoU ≥ 0.3, the template tracker's own test), or -1.
func sameFace(r image.Rectangle, ts []track) int {
	for i, t := range ts {
		if imageops.IoU(r, t.Box.Rect()) >= 0.3 {
			return i
		}
	}
	return -1
}

// overlapsFace reports whether r is the same face as one of ts.
func overlapsFace(r image.Rectangle, ts []track) bool { return sameFace(r, ts) >= 0 }

// area is the summed area of rs.
func area(rs []image.Rectangle) int {
	n := 0
	for _, r := range rs {
		n += r.Dx() * r.Dy()
	}
	return n
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
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
