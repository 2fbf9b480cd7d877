// Package builtin holds the algorithms compiled into Tianshu, so the
// embedded platform does real work on a laptop with no download and no GPU:
// face detection and quality, image operations, and motion detection, all in
// pure Go (internal/vision).
package builtin

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"runtime"
	"sync"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/vision/faces"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
	"github.com/tianshu-ai/tianshu/internal/vision/jpegluma"
	"github.com/tianshu-ai/tianshu/internal/vision/motion"
	"github.com/tianshu-ai/tianshu/internal/vision/quality"
)

// All returns every built-in algorithm by name.
func All() (map[string]algorithm.Builtin, error) {
	haar, err := faces.New(faces.ModelHaar)
	if err != nil {
		return nil, err
	}
	lbp, err := faces.New(faces.ModelLBP)
	if err != nil {
		return nil, err
	}
	dc := &decodeCache{}
	m := &motionState{detectors: map[string]*motion.Detector{}, frames: dc}
	fd := &faceDetector{haar: haar, lbp: lbp, streams: map[string]*faceStream{}, frames: dc,
		slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
	ops := imageOps{frames: dc}
	return map[string]algorithm.Builtin{
		"face-detect": {Func: fd.detect, Contract: algorithm.Contract{
			Inputs: []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true},
				{Name: "model", Type: "text"}, {Name: "minSize", Type: "integer"}, {Name: "maxSize", Type: "integer"},
				{Name: "scaleFactor", Type: "number"}, {Name: "minNeighbors", Type: "integer"}, {Name: "quality", Type: "bool"},
				{Name: "gate", Type: "bool", Doc: "detect only where the frame changed since the stream's previous one, carrying the other faces over (with key; without one every frame is searched in full)"},
				{Name: "key", Type: "text", Doc: "the stream (camera) the frame belongs to, for gate"},
				{Name: "fullEvery", Type: "integer", Doc: "with gate: every this many frames, search again what changed since the last such search and where the detector nearly found a face (default 10; 1 turns gating off)"},
				{Name: "maxMotion", Type: "number", Doc: "with gate: the changed share of the frame from which the whole frame is searched (default 0.25)"},
				{Name: "localScales", Type: "integer", Doc: "with gate: each carried face is searched for again on every frame around its last box, at this many pyramid scales either side of its size (default 2; -1: carried faces are searched again only where the picture changed, at every scale)"}},
			Outputs: []algorithm.Field{{Name: "faces", Type: algorithm.TypeObjects, Items: []algorithm.Field{
				{Name: "box", Type: "list", Doc: "[x, y, w, h] in the picture's pixels"}, {Name: "label", Type: "text", Doc: "face"},
				{Name: "neighbors", Type: "integer", Doc: "how many detections merged into this one"},
				{Name: "score", Type: "number", Doc: "the quality score, 0 to 1 (0 without quality)"},
				{Name: "quality", Type: "object", Doc: "score, size, sharpness, brightness, contrast, frontalness (with quality, the default)"}}},
				{Name: "width", Type: "integer"}, {Name: "height", Type: "integer"},
				{Name: "decision", Type: "text", Doc: "what was done with the frame: detected (whole frame), motion (new faces searched where the picture changed unexplained by a followed face), tracked (faces followed by searches near their last boxes), skipped (nothing to do); detected without gate"}},
		}},
		"face-quality": {Func: ops.faceQuality, Contract: algorithm.Contract{
			Inputs:  []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true}, {Name: "box", Type: "list", Required: true}},
			Outputs: []algorithm.Field{{Name: "score", Type: "number"}, {Name: "size", Type: "integer"}, {Name: "sharpness", Type: "number"}, {Name: "brightness", Type: "number"}, {Name: "contrast", Type: "number"}, {Name: "frontalness", Type: "number"}},
		}},
		"image-ops": {Func: ops.run, Contract: algorithm.Contract{
			Inputs: []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true}, {Name: "op", Type: "text", Required: true},
				{Name: "box", Type: "list"}, {Name: "boxes", Type: "list"}, {Name: "margin", Type: "number"}, {Name: "width", Type: "integer"},
				{Name: "height", Type: "integer"}, {Name: "quality", Type: "integer"}, {Name: "strength", Type: "integer"}},
			Outputs: []algorithm.Field{{Name: "image", Type: algorithm.TypeImage}, {Name: "box", Type: "list"}, {Name: "width", Type: "integer"}, {Name: "height", Type: "integer"}},
		}},
		"motion": {Func: m.detect, Contract: algorithm.Contract{
			Inputs: []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true}, {Name: "key", Type: "text"},
				{Name: "threshold", Type: "integer"}, {Name: "minRatio", Type: "number"}},
			Outputs: []algorithm.Field{{Name: "motion", Type: "bool"}, {Name: "ratio", Type: "number"}, {Name: "objects", Type: algorithm.TypeObjects, Items: []algorithm.Field{
				{Name: "box", Type: "list", Doc: "[x, y, w, h] of a moving region"}, {Name: "label", Type: "text", Doc: "motion"}, {Name: "score", Type: "number", Doc: "the frame's changed ratio"}}}},
		}},
	}, nil
}

// imageBytes takes the encoded image from an inputs map.
func imageBytes(in map[string]any) ([]byte, error) {
	switch v := in["image"].(type) {
	case media.Image:
		return v.Bytes, nil
	case *media.Image:
		return v.Bytes, nil
	case []byte:
		return v, nil
	case media.Encoded:
		b, _ := v.EncodedImage()
		return b, nil
	case nil:
		return nil, fmt.Errorf("%w: image: required", algorithm.ErrBadInput)
	}
	return nil, fmt.Errorf("%w: image: not an image", algorithm.ErrBadInput)
}

// decodeCache keeps the last few decoded frames by their encoded bytes, so
// that the nodes of one flow run that take the same frame (face-detect,
// then a crop per face) decode it once. An entry is found by the identity
// of the bytes (same backing array and length), never by content: a
// frame's bytes are not changed once made, and the entry keeps them alive,
// so their address cannot be reused for other bytes while it is cached.
// Decoded images are shared read-only: every operation here copies before
// it changes pixels.
//
// Face detection and motion read the luma only: their frames are decoded
// with jpegluma, which skips the chroma's transform, and cached as
// *image.Gray (lumaOnly), found again by luma but never by a caller that
// needs the colours.
type decodeCache struct {
	mu   sync.Mutex
	next int
	ring [decodeCacheSize]cacheEntry
}

type cacheEntry struct {
	data     []byte
	img      image.Image
	lumaOnly bool
	// eighth is a luma-only frame at an eighth of its size (its DC
	// image).
	eighth *image.Gray
}

// decodeCacheSize covers the frames in flight of a few cameras; a 720p
// frame takes 1.4 MB decoded.
const decodeCacheSize = 16

// get finds b's decoded image; with luma, a luma-only one will do.
func (c *decodeCache) get(b []byte, luma bool) (cacheEntry, bool) {
	if len(b) == 0 {
		return cacheEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.ring {
		e := &c.ring[i]
		if len(e.data) == len(b) && &e.data[0] == &b[0] && (luma || !e.lumaOnly) {
			return *e, true
		}
	}
	return cacheEntry{}, false
}

func (c *decodeCache) put(e cacheEntry) {
	if len(e.data) == 0 {
		return
	}
	c.mu.Lock()
	c.ring[c.next] = e
	c.next = (c.next + 1) % len(c.ring)
	c.mu.Unlock()
}

// decode returns the decoded image of b, from the cache when it is there.
func (c *decodeCache) decode(b []byte) (image.Image, error) {
	if e, ok := c.get(b, false); ok {
		return e.img, nil
	}
	img, _, err := imageops.DecodeBytes(b, imageops.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%w: image: %v", algorithm.ErrBadInput, err)
	}
	c.put(cacheEntry{data: b, img: img})
	return img, nil
}

// luma returns the luma plane of b and, for a JPEG jpegluma reads, the
// plane at an eighth of its size (else nil), read-only: they may be
// shared. They come from the cache when there. A JPEG jpegluma cannot
// read, and any other format, is decoded in full, with decode's limits
// and errors.
func (c *decodeCache) luma(b []byte) (g, eighth *image.Gray, err error) {
	if e, ok := c.get(b, true); ok {
		return imageops.Luma(e.img), e.eighth, nil
	}
	g, eighth, err = jpegluma.Decode(b, imageops.DefaultMaxPixels)
	if err != nil {
		img, err := c.decode(b)
		if err != nil {
			return nil, nil, err
		}
		return imageops.Luma(img), nil, nil
	}
	c.put(cacheEntry{data: b, img: g, lumaOnly: true, eighth: eighth})
	return g, eighth, nil
}

// decodeInput decodes the "image" input.
func (c *decodeCache) decodeInput(in map[string]any) (image.Image, error) {
	b, err := imageBytes(in)
	if err != nil {
		return nil, err
	}
	return c.decode(b)
}

func num(in map[string]any, k string) (float64, bool) {
	switch v := in[k].(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	}
	return 0, false
}

// box reads [x, y, w, h].
func box(v any) (image.Rectangle, error) {
	l, ok := v.([]any)
	if !ok {
		if il, ok := v.([]int); ok {
			l = make([]any, len(il))
			for i, x := range il {
				l[i] = x
			}
		}
	}
	if len(l) != 4 {
		return image.Rectangle{}, fmt.Errorf("%w: box: want [x, y, w, h]", algorithm.ErrBadInput)
	}
	var n [4]int
	for i, x := range l {
		f, ok := num(map[string]any{"v": x}, "v")
		if !ok {
			return image.Rectangle{}, fmt.Errorf("%w: box[%d]: not a number", algorithm.ErrBadInput, i)
		}
		n[i] = int(f)
	}
	return image.Rect(n[0], n[1], n[0]+n[2], n[1]+n[3]), nil
}

func boxList(r image.Rectangle) []any {
	return []any{int64(r.Min.X), int64(r.Min.Y), int64(r.Dx()), int64(r.Dy())}
}

// faceDetector is the face-detect algorithm: stateless, or with gate one
// faces.Stream per key, bounded.
type faceDetector struct {
	haar, lbp *faces.Detector
	frames    *decodeCache
	mu        sync.Mutex
	streams   map[string]*faceStream
	// slots bounds the frames decoded and searched at once to one per
	// core: every task runs several messages at a time (worker in_flight),
	// and eight cameras would otherwise hold 32 decoded frames and 8 MB
	// detection workspaces, all competing for the same cores.
	slots chan struct{}
}

// faceStream serialises one stream's frames: a faces.Stream compares each
// frame with the one before.
type faceStream struct {
	mu    sync.Mutex
	s     *faces.Stream
	model string
	gate  faces.GateOptions
}

const maxFaceStreams = 10000

// stream returns the key's gated detector, made anew when the model or the
// gate options changed.
func (fd *faceDetector) stream(key string, d *faces.Detector, opt faces.GateOptions) (*faceStream, error) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	st := fd.streams[key]
	if st != nil && st.model == d.Model() && st.gate == opt {
		return st, nil
	}
	s, err := faces.NewStream(d, opt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", algorithm.ErrBadInput, err)
	}
	if len(fd.streams) >= maxFaceStreams {
		fd.streams = map[string]*faceStream{}
	}
	st = &faceStream{s: s, model: d.Model(), gate: opt}
	fd.streams[key] = st
	return st, nil
}

func (fd *faceDetector) detect(ctx context.Context, in map[string]any) (map[string]any, error) {
	b, err := imageBytes(in)
	if err != nil {
		return nil, err
	}
	d := fd.haar
	if m, _ := in["model"].(string); m == faces.ModelLBP {
		d = fd.lbp
	} else if m != "" && m != faces.ModelHaar {
		return nil, fmt.Errorf("%w: model: %q is not haar or lbp", algorithm.ErrBadInput, m)
	}
	opt := faces.Options{Quality: true}
	if v, ok := num(in, "minSize"); ok {
		opt.MinSize = int(v)
	}
	if v, ok := num(in, "maxSize"); ok {
		opt.MaxSize = int(v)
	}
	if v, ok := num(in, "scaleFactor"); ok {
		opt.ScaleFactor = v
	}
	if v, ok := num(in, "minNeighbors"); ok {
		opt.MinNeighbors = int(v)
	}
	if q, ok := in["quality"].(bool); ok {
		opt.Quality = q
	}
	gate, _ := in["gate"].(bool)
	key, _ := in["key"].(string)
	// A frame of no stream (an InvokeFlow call) has nothing to compare
	// with: it is searched in full.
	gate = gate && key != ""
	if len(key) > 256 {
		return nil, fmt.Errorf("%w: key: longer than 256 bytes", algorithm.ErrBadInput)
	}
	var gopt faces.GateOptions
	if v, ok := num(in, "fullEvery"); ok {
		if v < 1 || v > 1000 {
			return nil, fmt.Errorf("%w: fullEvery: %v, want 1 to 1000", algorithm.ErrBadInput, v)
		}
		gopt.FullEvery = int(v)
	}
	if v, ok := num(in, "maxMotion"); ok {
		if !(v > 0 && v <= 1) {
			return nil, fmt.Errorf("%w: maxMotion: %v, want above 0, at most 1", algorithm.ErrBadInput, v)
		}
		gopt.MaxMotion = v
	}
	if v, ok := num(in, "localScales"); ok {
		if v != -1 && (v < 1 || v > 20) {
			return nil, fmt.Errorf("%w: localScales: %v, want -1 or 1 to 20", algorithm.ErrBadInput, v)
		}
		gopt.LocalScales = int(v)
	}
	// A camera's frames are searched in turn, and a frame waits for its
	// stream before it takes a slot: a slot is never held by a frame that
	// only waits for the one before it while a core stays idle.
	var st *faceStream
	if gate {
		// Each camera's refresh passes at its own phase, from its key, so
		// that cameras started together spread them over the ticks.
		every := gopt.FullEvery
		if every == 0 {
			every = faces.DefaultFullEvery
		}
		h := fnv.New32a()
		h.Write([]byte(key))
		gopt.Phase = int(h.Sum32() % uint32(every))
		if st, err = fd.stream(key, d, gopt); err != nil {
			return nil, err
		}
		st.mu.Lock()
		defer st.mu.Unlock()
	}
	select {
	case fd.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-fd.slots }()
	g, eighth, err := fd.frames.luma(b) // read-only: shared through the cache
	if err != nil {
		return nil, err
	}
	var res faces.Result
	dec := faces.Detected
	if st != nil {
		res, dec, err = st.s.DetectScaled(ctx, g, eighth, opt)
	} else {
		res, err = d.DetectGray(ctx, g, opt)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: image: %v", algorithm.ErrBadInput, err)
	}
	out := make([]any, 0, len(res.Faces))
	for _, f := range res.Faces {
		o := map[string]any{"box": boxList(f.Box.Rect()), "label": "face", "neighbors": int64(f.Neighbors), "score": 0.0}
		if f.Quality != nil {
			o["score"] = f.Quality.Score
			o["quality"] = qualityMap(*f.Quality)
		}
		out = append(out, o)
	}
	return map[string]any{"faces": out, "width": int64(res.Width), "height": int64(res.Height), "decision": string(dec)}, nil
}

func qualityMap(m quality.Metrics) map[string]any {
	return map[string]any{"score": m.Score, "size": int64(m.Size), "sharpness": m.Sharpness, "brightness": m.Brightness,
		"contrast": m.Contrast, "frontalness": m.Frontalness}
}

// imageOps runs the image-ops and face-quality algorithms.
type imageOps struct{ frames *decodeCache }

func (o imageOps) faceQuality(_ context.Context, in map[string]any) (map[string]any, error) {
	img, err := o.frames.decodeInput(in)
	if err != nil {
		return nil, err
	}
	r, err := box(in["box"])
	if err != nil {
		return nil, err
	}
	m, err := quality.Assess(imageops.Gray(img), r)
	if err != nil {
		return nil, fmt.Errorf("%w: box: %v", algorithm.ErrBadInput, err)
	}
	return qualityMap(m), nil
}

// imageOps: op crop (box, margin), resize (width, height), mosaic or blur
// (boxes, strength), encode (quality). The result is a JPEG image.
func (o imageOps) run(_ context.Context, in map[string]any) (map[string]any, error) {
	img, err := o.frames.decodeInput(in)
	if err != nil {
		return nil, err
	}
	q := 85
	if v, ok := num(in, "quality"); ok {
		q = int(v)
	}
	out := map[string]any{}
	op, _ := in["op"].(string)
	switch op {
	case "crop":
		r, err := box(in["box"])
		if err != nil {
			return nil, err
		}
		margin, _ := num(in, "margin")
		c, got, err := imageops.Crop(img, r, margin)
		if err != nil {
			return nil, fmt.Errorf("%w: box: %v", algorithm.ErrBadInput, err)
		}
		img = c
		out["box"] = boxList(got)
	case "resize":
		w, _ := num(in, "width")
		h, _ := num(in, "height")
		if img, err = imageops.Resize(img, int(w), int(h)); err != nil {
			return nil, fmt.Errorf("%w: width/height: %v", algorithm.ErrBadInput, err)
		}
	case "mosaic", "blur":
		l, _ := in["boxes"].([]any)
		var rs []image.Rectangle
		for i, b := range l {
			r, err := box(b)
			if err != nil {
				return nil, fmt.Errorf("boxes[%d]: %w", i, err)
			}
			rs = append(rs, r)
		}
		mode := imageops.Mosaic
		if op == "blur" {
			mode = imageops.Blur
		}
		strength := 0
		if v, ok := num(in, "strength"); ok {
			strength = int(v)
		}
		if img, err = imageops.Mask(img, rs, mode, strength); err != nil {
			return nil, fmt.Errorf("%w: %v", algorithm.ErrBadInput, err)
		}
	case "encode":
	default:
		return nil, fmt.Errorf("%w: op: %q is not crop, resize, mosaic, blur or encode", algorithm.ErrBadInput, op)
	}
	b, err := imageops.EncodeJPEGBytes(img, q)
	if err != nil {
		return nil, err
	}
	out["image"] = media.Image{Bytes: b, ContentType: "image/jpeg"}
	out["width"], out["height"] = int64(img.Bounds().Dx()), int64(img.Bounds().Dy())
	return out, nil
}

// motionState keeps one detector per stream key (the device), bounded.
type motionState struct {
	mu        sync.Mutex
	detectors map[string]*motion.Detector
	frames    *decodeCache
}

const maxMotionStreams = 10000

func (m *motionState) detect(_ context.Context, in map[string]any) (map[string]any, error) {
	b, err := imageBytes(in)
	if err != nil {
		return nil, err
	}
	img, eighth, err := m.frames.luma(b)
	if err != nil {
		return nil, err
	}
	key, _ := in["key"].(string)
	cfg := motion.Config{}
	if v, ok := num(in, "threshold"); ok {
		cfg.Threshold = int(v)
	}
	if v, ok := num(in, "minRatio"); ok {
		cfg.MinRatio = v
	}
	m.mu.Lock()
	d, ok := m.detectors[key]
	if !ok {
		if len(m.detectors) >= maxMotionStreams {
			m.detectors = map[string]*motion.Detector{}
		}
		if d, err = motion.New(cfg); err != nil {
			m.mu.Unlock()
			return nil, fmt.Errorf("%w: %v", algorithm.ErrBadInput, err)
		}
		m.detectors[key] = d
	}
	// A detector is not safe for concurrent use: frames of one stream are
	// compared in turn.
	var res motion.Result
	err = motion.ErrSmall
	if eighth != nil {
		res, err = d.UpdateSmall(img.Rect, eighth)
	}
	if errors.Is(err, motion.ErrSmall) {
		res, err = d.Update(img)
	}
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	objs := make([]any, 0, len(res.Boxes))
	for _, b := range res.Boxes {
		objs = append(objs, map[string]any{"box": boxList(b), "label": "motion", "score": res.Ratio})
	}
	return map[string]any{"motion": res.Motion, "ratio": res.Ratio, "objects": objs}, nil
}
