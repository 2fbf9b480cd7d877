// Package builtin holds the algorithms compiled into Tianshu, so the
// embedded platform does real work on a laptop with no download and no GPU:
// face detection and quality, image operations, and motion detection, all in
// pure Go (internal/vision).
package builtin

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/vision/faces"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
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
	m := &motionState{detectors: map[string]*motion.Detector{}}
	return map[string]algorithm.Builtin{
		"face-detect": {Func: faceDetect(haar, lbp), Contract: algorithm.Contract{
			Inputs: []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true},
				{Name: "model", Type: "text"}, {Name: "minSize", Type: "integer"}, {Name: "maxSize", Type: "integer"},
				{Name: "scaleFactor", Type: "number"}, {Name: "minNeighbors", Type: "integer"}, {Name: "quality", Type: "bool"}},
			Outputs: []algorithm.Field{{Name: "faces", Type: algorithm.TypeObjects, Items: []algorithm.Field{
				{Name: "box", Type: "list", Doc: "[x, y, w, h] in the picture's pixels"}, {Name: "label", Type: "text", Doc: "face"},
				{Name: "neighbors", Type: "integer", Doc: "how many detections merged into this one"},
				{Name: "score", Type: "number", Doc: "the quality score, 0 to 1 (0 without quality)"},
				{Name: "quality", Type: "object", Doc: "score, size, sharpness, brightness, contrast, frontalness (with quality, the default)"}}},
				{Name: "width", Type: "integer"}, {Name: "height", Type: "integer"}},
		}},
		"face-quality": {Func: faceQuality, Contract: algorithm.Contract{
			Inputs:  []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true}, {Name: "box", Type: "list", Required: true}},
			Outputs: []algorithm.Field{{Name: "score", Type: "number"}, {Name: "size", Type: "integer"}, {Name: "sharpness", Type: "number"}, {Name: "brightness", Type: "number"}, {Name: "contrast", Type: "number"}, {Name: "frontalness", Type: "number"}},
		}},
		"image-ops": {Func: imageOps, Contract: algorithm.Contract{
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

func decode(in map[string]any) (image.Image, error) {
	b, err := imageBytes(in)
	if err != nil {
		return nil, err
	}
	img, _, err := imageops.DecodeBytes(b, imageops.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%w: image: %v", algorithm.ErrBadInput, err)
	}
	return img, nil
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

func faceDetect(haar, lbp *faces.Detector) algorithm.Func {
	return func(ctx context.Context, in map[string]any) (map[string]any, error) {
		b, err := imageBytes(in)
		if err != nil {
			return nil, err
		}
		d := haar
		if m, _ := in["model"].(string); m == faces.ModelLBP {
			d = lbp
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
		res, err := d.DetectBytes(ctx, b, opt)
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
		return map[string]any{"faces": out, "width": int64(res.Width), "height": int64(res.Height)}, nil
	}
}

func qualityMap(m quality.Metrics) map[string]any {
	return map[string]any{"score": m.Score, "size": int64(m.Size), "sharpness": m.Sharpness, "brightness": m.Brightness,
		"contrast": m.Contrast, "frontalness": m.Frontalness}
}

func faceQuality(_ context.Context, in map[string]any) (map[string]any, error) {
	img, err := decode(in)
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
func imageOps(_ context.Context, in map[string]any) (map[string]any, error) {
	img, err := decode(in)
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
}

const maxMotionStreams = 10000

func (m *motionState) detect(_ context.Context, in map[string]any) (map[string]any, error) {
	img, err := decode(in)
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
	res, err := d.Update(img)
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
