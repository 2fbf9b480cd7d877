package algorithm

import (
	"context"
	"fmt"
	"image"
	"math"
	"slices"
	"sort"
	"strings"
)

// OCR (output kind "ocr") runs two models of the PaddleOCR family: a
// DB-style text detector (the version's model) whose output is a text
// probability map [1,1,H,W] the size of its input, and a CTC text
// recognizer (Serving.Recognition) whose output is [1,T,C]: for each of T
// steps the probabilities of the blank (class 0) and of C-1 characters.
//
// Detection: the image is scaled, keeping its aspect ratio, to fit in
// Input.Width×Input.Height (never enlarged), each side rounded up to a
// multiple of 32; the probability map is thresholded at Output.Threshold;
// each 8-connected region of text pixels whose mean probability reaches
// Output.BoxThreshold becomes an axis-aligned box, or, for text turned by
// 2° or more, the rotated rectangle around it (serving_ocr_rotated.go),
// grown on every side by area×Unclip/perimeter (DB's unclip of a
// rectangle); boxes of one line grown into each other are merged.
// Recognition: each box is cropped from the original image (a turned one
// sampled straight along its rectangle), scaled to the recognizer's
// height, normalized as (v/255-0.5)/0.5 and decoded greedily: the best
// class per step, repeats and blanks dropped.

// Defaults of the OCR decoding.
const (
	ocrThreshold    = 0.3
	ocrBoxThreshold = 0.6
	ocrUnclip       = 1.5
	ocrRecHeight    = 48
	ocrRecMaxWidth  = 1280
	ocrMinSide      = 3
	ocrMaxBoxes     = 200
	ocrRecModelID   = "rec" // the recognizer's name on the OIP v2 server
)

// KindOCR is the output kind of a text detector plus recognizer.
const KindOCR = "ocr"

// ServingRecognition is the text recognizer of an OCR version.
type ServingRecognition struct {
	// Model is the recognizer's model file: a blob key
	// (CreateAlgorithmVersion sets it from RecognitionModelUploadId) or a
	// local path.
	Model string `json:"model"`
	// Tensor and Output name its input and output (default: its only
	// input and its first output).
	Tensor string `json:"tensor,omitempty"`
	Output string `json:"output,omitempty"`
	// Height is its input's height (default 48); MaxWidth bounds the
	// width of a text line's tensor (default 1280).
	Height   int `json:"height,omitempty"`
	MaxWidth int `json:"maxWidth,omitempty"`
	// Characters are the dictionary: class i+1 is Characters[i] (class 0
	// is CTC's blank).
	Characters []string `json:"characters"`
}

func (r *ServingRecognition) validate(bad func(field, format string, args ...any) error) error {
	if r == nil {
		return bad("recognition", "required for kind ocr: the recognizer's model and characters")
	}
	if r.Model == "" {
		return bad("recognition.model", "required: upload the recognizer (RecognitionModelUploadId) or name its blob key")
	}
	if len(r.Model) > 1024 {
		return bad("recognition.model", "longer than 1024 bytes")
	}
	if len(r.Tensor) > maxTensorName || len(r.Output) > maxTensorName {
		return bad("recognition", "tensor names are at most %d bytes", maxTensorName)
	}
	if r.Height < 0 || r.Height > 256 {
		return bad("recognition.height", "must be between 0 (meaning %d) and 256", ocrRecHeight)
	}
	if r.MaxWidth < 0 || r.MaxWidth > maxModelSide {
		return bad("recognition.maxWidth", "must be between 0 (meaning %d) and %d", ocrRecMaxWidth, maxModelSide)
	}
	if len(r.Characters) == 0 {
		return bad("recognition.characters", "required: the dictionary, class 1 onward")
	}
	if len(r.Characters) > 100000 {
		return bad("recognition.characters", "at most 100000 characters")
	}
	for i, c := range r.Characters {
		if len(c) > 64 {
			return bad(fmt.Sprintf("recognition.characters[%d]", i), "longer than 64 bytes")
		}
	}
	return nil
}

func (o *ServingOutput) validateOCR(bad func(field, format string, args ...any) error) error {
	for _, p := range []struct {
		name string
		v    float64
		max  float64
	}{{"output.threshold", o.Threshold, 1}, {"output.boxThreshold", o.BoxThreshold, 1}, {"output.unclip", o.Unclip, 10}} {
		if p.v < 0 || p.v > p.max || math.IsNaN(p.v) {
			return bad(p.name, "must be between 0 (the default) and %g", p.max)
		}
	}
	if o.MaxDetections < 0 || o.MaxDetections > maxDetections {
		return bad("output.maxDetections", "must be between 0 (meaning %d) and %d", ocrMaxBoxes, maxDetections)
	}
	if o.TopK != 0 || o.Activation != "" || o.Format != "" || o.Confidence != 0 || o.IoU != 0 || len(o.Labels) != 0 {
		return bad("output", "topK, activation, format, confidence, iou and labels are not for kind ocr (the recognizer's characters are recognition.characters)")
	}
	return nil
}

// textBox is one detected text region in detector-input pixels: an
// axis-aligned box, or, for turned text, the rotated rectangle rect with
// x0…y1 the box around it.
type textBox struct {
	x0, y0, x1, y1 float64
	score          float64
	rect           *rotRect
}

// detectText finds the text boxes in a probability map of w×h.
func (o *ServingOutput) detectText(prob []float32, w, h int) []textBox {
	thr := float32(o.Threshold)
	if thr == 0 {
		thr = ocrThreshold
	}
	boxThr := o.BoxThreshold
	if boxThr == 0 {
		boxThr = ocrBoxThreshold
	}
	ratio := o.Unclip
	if ratio == 0 {
		ratio = ocrUnclip
	}
	limit := o.MaxDetections
	if limit == 0 {
		limit = ocrMaxBoxes
	}
	seen := make([]bool, w*h)
	// The first and last column of each row of the region being filled.
	first, last := make([]int, h), make([]int, h)
	for y := range h {
		first[y], last[y] = w, -1
	}
	var stack []int
	var boxes []textBox
	for start := range prob {
		if seen[start] || prob[start] <= thr {
			continue
		}
		// One 8-connected region, flood-filled.
		seen[start] = true
		stack = append(stack[:0], start)
		x0, y0, x1, y1 := w, h, -1, -1
		sum, n := 0.0, 0
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := i%w, i/w
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			first[y], last[y] = min(first[y], x), max(last[y], x)
			sum += float64(prob[i])
			n++
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= w || ny >= h {
						continue
					}
					j := ny*w + nx
					if !seen[j] && prob[j] > thr {
						seen[j] = true
						stack = append(stack, j)
					}
				}
			}
		}
		rows := [2][]int{slices.Clone(first[y0 : y1+1]), slices.Clone(last[y0 : y1+1])}
		for y := y0; y <= y1; y++ {
			first[y], last[y] = w, -1
		}
		bw, bh := float64(x1-x0+1), float64(y1-y0+1)
		if min(bw, bh) < ocrMinSide {
			continue
		}
		score := sum / float64(n)
		if score < boxThr {
			continue
		}
		if r := regionRect(y0, rows[0], rows[1]); r.turned() && r.s >= ocrMinSide {
			// Turned text: its own rectangle, grown the same way.
			b := newTextBox(r.grow(r.l*r.s*ratio/(2*(r.l+r.s))), score)
			boxes = append(boxes, b)
			continue
		}
		d := bw * bh * ratio / (2 * (bw + bh))
		b := textBox{x0: float64(x0) - d, y0: float64(y0) - d, x1: float64(x1+1) + d, y1: float64(y1+1) + d, score: score}
		if min(b.x1-b.x0, b.y1-b.y0) < ocrMinSide+2 {
			continue
		}
		boxes = append(boxes, b)
	}
	boxes = mergeOverlapping(joinTurned(boxes))
	// Reading order: top to bottom by line, left to right within one.
	sort.SliceStable(boxes, func(a, b int) bool {
		ya, yb := (boxes[a].y0+boxes[a].y1)/2, (boxes[b].y0+boxes[b].y1)/2
		if math.Abs(ya-yb) < min(boxes[a].y1-boxes[a].y0, boxes[b].y1-boxes[b].y0)/2 {
			return boxes[a].x0 < boxes[b].x0
		}
		return ya < yb
	})
	if len(boxes) > limit {
		boxes = boxes[:limit]
	}
	return boxes
}

// mergeOverlapping joins boxes that overlap after growing and share most
// of their height (words of one line grown into each other), so that a
// line is read whole rather than as crops that cut into their neighbours.
func mergeOverlapping(boxes []textBox) []textBox {
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(boxes); i++ {
			for j := i + 1; j < len(boxes); j++ {
				a, b := boxes[i], boxes[j]
				if a.rect != nil || b.rect != nil {
					continue // turned lines were joined by joinTurned
				}
				ov := min(a.y1, b.y1) - max(a.y0, b.y0)
				if min(a.x1, b.x1) <= max(a.x0, b.x0) || ov < 0.5*min(a.y1-a.y0, b.y1-b.y0) {
					continue
				}
				boxes[i] = textBox{x0: min(a.x0, b.x0), y0: min(a.y0, b.y0), x1: max(a.x1, b.x1), y1: max(a.y1, b.y1),
					score: (a.score*(a.x1-a.x0) + b.score*(b.x1-b.x0)) / ((a.x1 - a.x0) + (b.x1 - b.x0))}
				boxes = append(boxes[:j], boxes[j+1:]...)
				merged = true
				j--
			}
		}
	}
	return boxes
}

// polygonOf is a box's corners as [[x, y], …] in image pixels, to 0.01.
func polygonOf(q [4]point) []any {
	out := make([]any, 4)
	for i, p := range q {
		out[i] = []any{math.Round(p.x*100) / 100, math.Round(p.y*100) / 100}
	}
	return out
}

// ctcDecode decodes a recognizer's [1,T,C] output greedily; the score is
// the mean probability of the characters kept.
func (r *ServingRecognition) ctcDecode(data []float32, shape []int) (string, float64, error) {
	if len(shape) != 3 || shape[0] != 1 || shape[2] < 2 || len(data) != shape[1]*shape[2] {
		return "", 0, fmt.Errorf("%w: recognizer output shape %v is not [1, steps, classes]", ErrBadResponse, shape)
	}
	steps, classes := shape[1], shape[2]
	var sb strings.Builder
	sum, n, prev := 0.0, 0, -1
	for t := range steps {
		row := data[t*classes : (t+1)*classes]
		best, bi := row[0], 0
		for c, p := range row {
			if p > best {
				best, bi = p, c
			}
		}
		if bi != 0 && bi != prev {
			if bi-1 < len(r.Characters) {
				sb.WriteString(r.Characters[bi-1])
			}
			sum += float64(best)
			n++
		}
		prev = bi
	}
	if n == 0 {
		return "", 0, nil
	}
	return sb.String(), sum / float64(n), nil
}

// ocrSize is the detector input's size for an image of sw×sh: fitted into
// maxW×maxH keeping the aspect ratio, never enlarged, each side rounded up
// to a multiple of 32.
func ocrSize(sw, sh, maxW, maxH int) (int, int) {
	s := min(1, float64(maxW)/float64(sw), float64(maxH)/float64(sh))
	up := func(v float64) int { return max(32, int(math.Ceil(v/32))*32) }
	return up(float64(sw) * s), up(float64(sh) * s)
}

// ocr runs detection and then recognition on each text box.
func (p *servingProto) ocr(ctx context.Context, in *instance, rgba *image.RGBA) (map[string]any, error) {
	sw, sh := rgba.Rect.Dx(), rgba.Rect.Dy()
	det := p.s.Input
	det.Width, det.Height = ocrSize(sw, sh, p.s.Input.Width, p.s.Input.Height)
	buf := p.tensorBuf(ctx, in, 3*det.Width*det.Height)
	tensor, shape := det.preprocessInto(buf.f, rgba.Pix, rgba.Stride, sw, sh)
	prob, pshape, err := p.run(ctx, in, servingModelID, p.s.Input.Tensor, p.s.Output.Tensor, tensor, shape, buf)
	if err != nil {
		return nil, err
	}
	if len(pshape) != 4 || pshape[0] != 1 || pshape[1] != 1 || pshape[2] != det.Height || pshape[3] != det.Width {
		return nil, fmt.Errorf("%w: detector output shape %v is not [1, 1, %d, %d]", ErrBadResponse, pshape, det.Height, det.Width)
	}
	boxes := p.s.Output.detectText(prob, det.Width, det.Height)
	rec := p.s.Recognition
	height := rec.Height
	if height == 0 {
		height = ocrRecHeight
	}
	maxW := rec.MaxWidth
	if maxW == 0 {
		maxW = ocrRecMaxWidth
	}
	recIn := ServingInput{Height: height, Channels: p.s.Input.Channels, Mean: []float64{0.5, 0.5, 0.5}, Std: []float64{0.5, 0.5, 0.5}}
	sx, sy := float64(sw)/float64(det.Width), float64(sh)/float64(det.Height)
	objs := make([]any, 0, len(boxes))
	var lines []string
	for _, b := range boxes {
		r := image.Rect(int(math.Floor(b.x0*sx)), int(math.Floor(b.y0*sy)), int(math.Ceil(b.x1*sx)), int(math.Ceil(b.y1*sy))).Intersect(rgba.Rect)
		if r.Dx() < 2 || r.Dy() < 2 {
			continue
		}
		var t []float32
		var s []int
		var quad [4]point
		angle := 0.0
		if b.rect != nil {
			// Turned text: sampled along its rectangle into a straight line.
			for i, p := range b.rect.corners() {
				quad[i] = p.mulXY(sx, sy)
			}
			long, high := quad[1].sub(quad[0]).length(), quad[3].sub(quad[0]).length()
			if long < 2 || high < 2 {
				continue
			}
			recIn.Width = min(maxW, max(8, int(math.Ceil(float64(height)*long/high))))
			line := straighten(rgba, quad, recIn.Width, height)
			t, s = recIn.preprocess(line.Pix, line.Stride, recIn.Width, height)
			angle = b.rect.angle()
		} else {
			crop := rgba.SubImage(r).(*image.RGBA)
			recIn.Width = min(maxW, max(8, int(math.Ceil(float64(height)*float64(r.Dx())/float64(r.Dy())))))
			t, s = recIn.preprocess(crop.Pix, crop.Stride, r.Dx(), r.Dy())
			quad = [4]point{{float64(r.Min.X), float64(r.Min.Y)}, {float64(r.Max.X), float64(r.Min.Y)}, {float64(r.Max.X), float64(r.Max.Y)}, {float64(r.Min.X), float64(r.Max.Y)}}
		}
		out, oshape, err := p.run(ctx, in, ocrRecModelID, rec.Tensor, rec.Output, t, s, tensorBuf{})
		if err != nil {
			return nil, err
		}
		text, score, err := rec.ctcDecode(out, oshape)
		if err != nil {
			return nil, err
		}
		if text == "" {
			continue
		}
		lines = append(lines, text)
		objs = append(objs, map[string]any{
			"box":   []any{float64(r.Min.X), float64(r.Min.Y), float64(r.Dx()), float64(r.Dy())},
			"label": text, "score": math.Round(score*1e4) / 1e4,
			"attributes": map[string]any{"text": text, "detectionScore": math.Round(b.score*1e4) / 1e4,
				"polygon": polygonOf(quad), "angle": math.Round(angle*10) / 10},
		})
	}
	return map[string]any{"text": strings.Join(lines, "\n"), "objects": objs, "width": int64(sw), "height": int64(sh)}, nil
}
