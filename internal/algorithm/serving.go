package algorithm

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// A serving runtime turns a model file into a running instance: a process
// version whose program is not uploaded but shipped with the platform, in
// a directory under Options.ServingDir that holds a package manifest like
// any other process package. The platform talks to it over OIP v2 and does
// the pre- and post-processing the version's Serving descriptor declares,
// so a model file plus a descriptor is a working algorithm.

// ServingRuntime describes one serving runtime.
type ServingRuntime struct {
	// Name is what Serving.Runtime names.
	Name string
	// Format is the model file format it serves ("onnx").
	Format string
	// Protocol is what the platform speaks to it (oip-v2).
	Protocol string
	// Kinds are the output kinds its descriptors may declare, and
	// DetectionFormats the layouts of kind detection.
	Kinds            []string
	DetectionFormats []string
	// Dir is its package directory under Options.ServingDir.
	Dir string
	// Requires are paths under Dir that an installed copy has (its
	// dependencies with their native libraries).
	Requires []string
	// Doc says what it is, for docs and errors.
	Doc string
}

// servingRuntimes are the serving runtimes this build knows: a fixed table,
// like the field types, not state.
var servingRuntimes = []ServingRuntime{
	{Name: "onnx-cpu", Format: "onnx", Protocol: ProtocolOIPV2,
		Kinds: []string{KindClassify, KindDetect, KindOCR}, DetectionFormats: []string{FormatYOLOv8, FormatYOLOv5},
		Dir: "onnx-node", Requires: []string{"node_modules/onnxruntime-node"},
		Doc: "ONNX Runtime on the CPU (npm onnxruntime-node) behind a small OIP v2 server in Node.js"},
}

// ServingRuntimes returns the serving runtimes this build knows.
func ServingRuntimes() []ServingRuntime {
	out := slices.Clone(servingRuntimes)
	for i := range out {
		out[i].Kinds = slices.Clone(out[i].Kinds)
		out[i].DetectionFormats = slices.Clone(out[i].DetectionFormats)
		out[i].Requires = slices.Clone(out[i].Requires)
	}
	return out
}

// LookupServingRuntime returns the serving runtime called name.
func LookupServingRuntime(name string) (ServingRuntime, bool) {
	for _, r := range servingRuntimes {
		if r.Name == name {
			return r, true
		}
	}
	return ServingRuntime{}, false
}

func servingRuntimeNames() string {
	n := make([]string, len(servingRuntimes))
	for i, r := range servingRuntimes {
		n[i] = r.Name
	}
	return strings.Join(n, ", ")
}

// MaxModelBytes is the largest model file a serving runtime takes.
const MaxModelBytes = 2 << 30

// Limits on a serving descriptor.
const (
	maxModelSide   = 8192
	maxLabels      = 10000
	maxLabelLen    = 256
	maxTopK        = 100
	maxDetections  = 1000
	maxThreads     = 64
	maxTensorName  = 256
	maxModelHeader = 64 << 20 // bytes of an ONNX file read for its metadata
)

// Input layouts, channel orders, output kinds and detection formats.
const (
	LayoutNCHW     = "NCHW"
	LayoutNHWC     = "NHWC"
	ChannelsRGB    = "RGB"
	ChannelsBGR    = "BGR"
	KindClassify   = "classification"
	KindDetect     = "detection"
	FormatYOLOv8   = "yolov8"
	FormatYOLOv5   = "yolov5"
	ActSoftmax     = "softmax"
	ActSigmoid     = "sigmoid"
	ActNone        = "none"
	servingModelID = "model" // the model's name on its OIP v2 server
)

// Serving declares a model-file version: which serving runtime runs which
// model file, and how images become the model's input tensor and its
// output tensor becomes the version's outputs.
type Serving struct {
	// Runtime names the serving runtime ("onnx-cpu").
	Runtime string `json:"runtime"`
	// Model is the model file: a blob key (CreateAlgorithmVersion sets it
	// from ModelUploadId) or a local path.
	Model string `json:"model"`
	// Threads is ONNX Runtime's intra-op threads per replica (default 1).
	Threads int           `json:"threads,omitempty"`
	Input   ServingInput  `json:"input"`
	Output  ServingOutput `json:"output"`
	// Recognition is the second model of kind ocr, the text recognizer.
	Recognition *ServingRecognition `json:"recognition,omitempty"`
}

// ServingInput says how an image becomes the input tensor: it is resized
// (stretched, bilinear) to Width×Height, each channel value v in 0..255
// becomes (v*Scale - Mean[c]) / Std[c] in the channel order and layout
// given, as FP32 with a batch dimension of 1.
type ServingInput struct {
	// Tensor is the input's name in the model (default: its only input).
	Tensor string `json:"tensor,omitempty"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	// Layout is NCHW (default) or NHWC.
	Layout string `json:"layout,omitempty"`
	// Channels is RGB (default) or BGR.
	Channels string `json:"channels,omitempty"`
	// Scale multiplies the 0..255 values first (default 1/255).
	Scale float64 `json:"scale,omitempty"`
	// Mean and Std are per channel, in the order of Channels (default 0
	// and 1).
	Mean []float64 `json:"mean,omitempty"`
	Std  []float64 `json:"std,omitempty"`
}

// ServingOutput says how the output tensor is decoded.
//
// classification: a tensor of C scores ([C], [1,C], or [1,C,1,1]), turned
// into probabilities by Activation (softmax by default), answered as
// label, score and the TopK classes.
//
// detection, format yolov8: one tensor [1, 4+C, N]: for each of N
// candidates cx, cy, w, h (in input pixels) and C class scores. Format
// yolov5: [1, N, 5+C]: cx, cy, w, h, objectness and C class scores, the
// score being objectness × class score. Candidates under Confidence are
// dropped, then non-maximum suppression per class at IoU, at most
// MaxDetections, boxes mapped back to the image's pixels as [x, y, w, h].
type ServingOutput struct {
	Kind string `json:"kind"`
	// Tensor is the output's name in the model (default: its first).
	Tensor string   `json:"tensor,omitempty"`
	Labels []string `json:"labels,omitempty"`
	// Classification.
	TopK       int    `json:"topK,omitempty"`
	Activation string `json:"activation,omitempty"`
	// Detection.
	Format        string  `json:"format,omitempty"`
	Confidence    float64 `json:"confidence,omitempty"`
	IoU           float64 `json:"iou,omitempty"`
	MaxDetections int     `json:"maxDetections,omitempty"`
	// OCR: the probability map's threshold (0.3), a text box's least
	// mean probability (0.6) and how much a box grows (1.5).
	Threshold    float64 `json:"threshold,omitempty"`
	BoxThreshold float64 `json:"boxThreshold,omitempty"`
	Unclip       float64 `json:"unclip,omitempty"`
}

// Validate checks the descriptor; errors are *FieldError naming the field
// as "serving.<field>".
func (s *Serving) Validate() error { return s.validate("serving") }

// validate checks the descriptor; errors name the field under prefix.
func (s *Serving) validate(prefix string) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: prefix + "." + field, Msg: fmt.Sprintf(format, args...)}
	}
	if s.Runtime == "" {
		return bad("runtime", "required: %s", servingRuntimeNames())
	}
	if _, ok := LookupServingRuntime(s.Runtime); !ok {
		return bad("runtime", "unknown serving runtime %q; known: %s", s.Runtime, servingRuntimeNames())
	}
	if s.Model == "" {
		return bad("model", "required: upload the model file (ModelUploadId) or name its blob key")
	}
	if len(s.Model) > 1024 {
		return bad("model", "longer than 1024 bytes")
	}
	if s.Threads < 0 || s.Threads > maxThreads {
		return bad("threads", "must be between 0 (meaning 1) and %d", maxThreads)
	}
	in := &s.Input
	if len(in.Tensor) > maxTensorName {
		return bad("input.tensor", "longer than %d bytes", maxTensorName)
	}
	if in.Width < 1 || in.Width > maxModelSide {
		return bad("input.width", "must be between 1 and %d pixels, got %d", maxModelSide, in.Width)
	}
	if in.Height < 1 || in.Height > maxModelSide {
		return bad("input.height", "must be between 1 and %d pixels, got %d", maxModelSide, in.Height)
	}
	switch in.Layout {
	case "", LayoutNCHW, LayoutNHWC:
	default:
		return bad("input.layout", "unknown layout %q; use NCHW or NHWC", in.Layout)
	}
	switch in.Channels {
	case "", ChannelsRGB, ChannelsBGR:
	default:
		return bad("input.channels", "unknown channel order %q; use RGB or BGR", in.Channels)
	}
	if in.Scale < 0 || math.IsInf(in.Scale, 0) || math.IsNaN(in.Scale) || in.Scale > 1e6 {
		return bad("input.scale", "must be between 0 (meaning 1/255) and 1e6")
	}
	for _, p := range []struct {
		name string
		v    []float64
		std  bool
	}{{"input.mean", in.Mean, false}, {"input.std", in.Std, true}} {
		if p.v == nil {
			continue
		}
		if len(p.v) != 3 {
			return bad(p.name, "needs 3 values, one per channel; got %d", len(p.v))
		}
		for i, x := range p.v {
			if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 1e6 {
				return bad(fmt.Sprintf("%s[%d]", p.name, i), "must be a finite number of at most 1e6")
			}
			if p.std && x == 0 {
				return bad(fmt.Sprintf("%s[%d]", p.name, i), "must not be 0")
			}
		}
	}
	out := &s.Output
	if out.Kind != KindOCR && s.Recognition != nil {
		return bad("recognition", "only kind ocr has a recognizer")
	}
	if out.Kind != KindOCR && (out.Threshold != 0 || out.BoxThreshold != 0 || out.Unclip != 0) {
		return bad("output", "threshold, boxThreshold and unclip are for kind ocr")
	}
	if len(out.Tensor) > maxTensorName {
		return bad("output.tensor", "longer than %d bytes", maxTensorName)
	}
	if len(out.Labels) > maxLabels {
		return bad("output.labels", "at most %d labels", maxLabels)
	}
	for i, l := range out.Labels {
		if len(l) > maxLabelLen {
			return bad(fmt.Sprintf("output.labels[%d]", i), "longer than %d bytes", maxLabelLen)
		}
	}
	switch out.Kind {
	case KindClassify:
		if out.TopK < 0 || out.TopK > maxTopK {
			return bad("output.topK", "must be between 0 (meaning 5) and %d", maxTopK)
		}
		switch out.Activation {
		case "", ActSoftmax, ActSigmoid, ActNone:
		default:
			return bad("output.activation", "unknown activation %q; use softmax, sigmoid or none", out.Activation)
		}
		if out.Format != "" || out.Confidence != 0 || out.IoU != 0 || out.MaxDetections != 0 {
			return bad("output", "format, confidence, iou and maxDetections are for kind detection")
		}
	case KindDetect:
		switch out.Format {
		case FormatYOLOv8, FormatYOLOv5:
		case "":
			return bad("output.format", "required for detection: yolov8 ([1, 4+C, N]) or yolov5 ([1, N, 5+C])")
		default:
			return bad("output.format", "unknown format %q; use yolov8 ([1, 4+C, N]) or yolov5 ([1, N, 5+C])", out.Format)
		}
		if out.Confidence < 0 || out.Confidence > 1 {
			return bad("output.confidence", "must be between 0 (meaning 0.25) and 1")
		}
		if out.IoU < 0 || out.IoU > 1 {
			return bad("output.iou", "must be between 0 (meaning 0.45) and 1")
		}
		if out.MaxDetections < 0 || out.MaxDetections > maxDetections {
			return bad("output.maxDetections", "must be between 0 (meaning 100) and %d", maxDetections)
		}
		if out.TopK != 0 || out.Activation != "" {
			return bad("output", "topK and activation are for kind classification")
		}
	case KindOCR:
		if err := out.validateOCR(bad); err != nil {
			return err
		}
		if err := s.Recognition.validate(bad); err != nil {
			return err
		}
	case "":
		return bad("output.kind", "required: classification, detection or ocr")
	default:
		return bad("output.kind", "unknown kind %q; use classification, detection or ocr", out.Kind)
	}
	return nil
}

// ServingContract is the contract of a model-file version whose
// descriptor decodes outputs of the given kind: an image in; label, score
// and classes, or objects, out.
func ServingContract(kind string) Contract {
	c := Contract{Inputs: []Field{{Name: "image", Type: TypeImage, Required: true}}}
	switch kind {
	case KindClassify:
		c.Outputs = []Field{{Name: "label", Type: TypeText, Doc: "the most likely class"},
			{Name: "score", Type: TypeNumber, Doc: "its probability"},
			{Name: "classes", Type: TypeList, Doc: "the top-k classes: {label, index, score}"}}
	case KindDetect:
		c.Outputs = []Field{{Name: "objects", Type: TypeObjects}}
	case KindOCR:
		c.Outputs = []Field{{Name: "text", Type: TypeText, Doc: "the lines read, in reading order, one per line"},
			{Name: "objects", Type: TypeObjects, Doc: "one per text box: its box, the text as label, the recognizer's score"},
			{Name: "width", Type: TypeInteger, Doc: "the image's width in pixels"},
			{Name: "height", Type: TypeInteger, Doc: "the image's height in pixels"}}
	}
	return c
}

// FillServingDefaults gives a model-file version what it may leave out:
// the runtime (process), the protocol (oip-v2) and, with no inputs
// declared, the contract of its output kind.
func (v *Version) FillServingDefaults() {
	if v.Serving == nil {
		return
	}
	if v.Runtime == "" {
		v.Runtime = RuntimeProcess
	}
	if v.Protocol == "" {
		v.Protocol = ProtocolOIPV2
	}
	if len(v.Contract.Inputs) == 0 && len(v.Contract.Outputs) == 0 {
		v.Contract = ServingContract(v.Serving.Output.Kind)
	}
}

// preprocess turns a decoded RGBA image into the model's input tensor.
func (in *ServingInput) preprocess(pix []uint8, stride, sw, sh int) ([]float32, []int) {
	return in.preprocessInto(nil, pix, stride, sw, sh)
}

// preprocessInto is preprocess writing into out when it holds the tensor
// (a shared memory region), else into a new slice.
func (in *ServingInput) preprocessInto(out []float32, pix []uint8, stride, sw, sh int) ([]float32, []int) {
	w, h := in.Width, in.Height
	scale := float32(in.Scale)
	if scale == 0 {
		scale = 1.0 / 255
	}
	// (v*scale - mean) / std as one multiply-add per value: v*mul + add.
	var mul, add [3]float32
	for c := range 3 {
		inv := float32(1)
		if in.Std != nil {
			inv = float32(1 / in.Std[c])
		}
		mean := float32(0)
		if in.Mean != nil {
			mean = float32(in.Mean[c])
		}
		mul[c], add[c] = scale*inv, -mean*inv
	}
	// Source channel for each tensor channel: R,G,B or B,G,R.
	src := [3]int{0, 1, 2}
	if in.Channels == ChannelsBGR {
		src = [3]int{2, 1, 0}
	}
	// Bilinear sampling positions, per column computed once.
	type tap struct {
		o0, o1 int // byte offsets of the two source pixels
		f      float32
	}
	taps := func(n, sn int) []tap {
		t := make([]tap, n)
		f := float32(sn) / float32(n)
		for i := range t {
			s := (float32(i)+0.5)*f - 0.5
			i0 := int(s)
			if s < 0 {
				s, i0 = 0, 0
			}
			i1 := min(i0+1, sn-1)
			t[i] = tap{i0, i1, s - float32(i0)}
		}
		return t
	}
	cols, rows := taps(w, sw), taps(h, sh)
	nhwc := in.Layout == LayoutNHWC
	if len(out) < 3*w*h {
		out = make([]float32, 3*w*h)
	}
	out = out[:3*w*h]
	plane := w * h
	for y, ry := range rows {
		r0, r1 := pix[ry.o0*stride:ry.o0*stride+sw*4], pix[ry.o1*stride:ry.o1*stride+sw*4]
		dy := ry.f
		for x, cx := range cols {
			a0, a1, dx := cx.o0*4, cx.o1*4, cx.f
			p00, p01 := r0[a0:a0+3:a0+3], r0[a1:a1+3:a1+3]
			p10, p11 := r1[a0:a0+3:a0+3], r1[a1:a1+3:a1+3]
			var v [3]float32
			for c := range 3 {
				top := float32(p00[c]) + (float32(p01[c])-float32(p00[c]))*dx
				bot := float32(p10[c]) + (float32(p11[c])-float32(p10[c]))*dx
				v[c] = top + (bot-top)*dy
			}
			r, g, b := v[src[0]]*mul[0]+add[0], v[src[1]]*mul[1]+add[1], v[src[2]]*mul[2]+add[2]
			if nhwc {
				o := out[(y*w+x)*3 : (y*w+x)*3+3 : (y*w+x)*3+3]
				o[0], o[1], o[2] = r, g, b
			} else {
				i := y*w + x
				out[i], out[plane+i], out[2*plane+i] = r, g, b
			}
		}
	}
	if nhwc {
		return out, []int{1, h, w, 3}
	}
	return out, []int{1, 3, h, w}
}

// classify decodes a classification head's scores.
func (o *ServingOutput) classify(scores []float32) map[string]any {
	p := make([]float64, len(scores))
	switch o.Activation {
	case "", ActSoftmax:
		m := math.Inf(-1)
		for _, s := range scores {
			m = math.Max(m, float64(s))
		}
		sum := 0.0
		for i, s := range scores {
			p[i] = math.Exp(float64(s) - m)
			sum += p[i]
		}
		for i := range p {
			p[i] /= sum
		}
	case ActSigmoid:
		for i, s := range scores {
			p[i] = 1 / (1 + math.Exp(-float64(s)))
		}
	default:
		for i, s := range scores {
			p[i] = float64(s)
		}
	}
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
	k := o.TopK
	if k == 0 {
		k = 5
	}
	k = min(k, len(idx))
	classes := make([]any, k)
	for i := range k {
		classes[i] = map[string]any{"label": o.label(idx[i]), "index": idx[i], "score": p[idx[i]]}
	}
	res := map[string]any{"classes": classes}
	if k > 0 {
		res["label"] = o.label(idx[0])
		res["score"] = p[idx[0]]
	}
	return res
}

func (o *ServingOutput) label(i int) string {
	if i < len(o.Labels) {
		return o.Labels[i]
	}
	return fmt.Sprintf("class%d", i)
}

type detection struct {
	x0, y0, x1, y1 float32
	score          float32
	class          int
}

// detect decodes a YOLO-style tensor of the given shape; sx, sy map input
// pixels back to image pixels.
func (o *ServingOutput) detect(data []float32, shape []int, sx, sy float32) (map[string]any, error) {
	dims := shape
	if len(dims) == 3 && dims[0] == 1 {
		dims = dims[1:]
	}
	if len(dims) != 2 {
		return nil, fmt.Errorf("%w: output shape %v is not [1, rows, columns]", ErrBadResponse, shape)
	}
	var n, attrs int
	var at func(i, j int) float32
	if o.Format == FormatYOLOv8 {
		attrs, n = dims[0], dims[1]
		at = func(i, j int) float32 { return data[j*n+i] }
		if attrs < 5 {
			return nil, fmt.Errorf("%w: yolov8 output %v needs at least 4+1 rows", ErrBadResponse, shape)
		}
	} else {
		n, attrs = dims[0], dims[1]
		at = func(i, j int) float32 { return data[i*attrs+j] }
		if attrs < 6 {
			return nil, fmt.Errorf("%w: yolov5 output %v needs at least 5+1 columns", ErrBadResponse, shape)
		}
	}
	first := 4
	if o.Format == FormatYOLOv5 {
		first = 5
	}
	conf := float32(o.Confidence)
	if conf == 0 {
		conf = 0.25
	}
	var cands []detection
	for i := range n {
		best, cls := float32(-1), 0
		for j := first; j < attrs; j++ {
			if s := at(i, j); s > best {
				best, cls = s, j-first
			}
		}
		if o.Format == FormatYOLOv5 {
			best *= at(i, 4)
		}
		if best < conf {
			continue
		}
		cx, cy, w, h := at(i, 0), at(i, 1), at(i, 2), at(i, 3)
		cands = append(cands, detection{x0: cx - w/2, y0: cy - h/2, x1: cx + w/2, y1: cy + h/2, score: best, class: cls})
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].score > cands[b].score })
	iou := float32(o.IoU)
	if iou == 0 {
		iou = 0.45
	}
	limit := o.MaxDetections
	if limit == 0 {
		limit = 100
	}
	var kept []detection
	for _, c := range cands {
		if len(kept) >= limit {
			break
		}
		ok := true
		for _, k := range kept {
			if k.class == c.class && overlap(k, c) > iou {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, c)
		}
	}
	objs := make([]any, len(kept))
	for i, k := range kept {
		r := func(v float32) float64 { return math.Round(float64(v)*100) / 100 }
		objs[i] = map[string]any{
			"box":   []any{r(k.x0 * sx), r(k.y0 * sy), r((k.x1 - k.x0) * sx), r((k.y1 - k.y0) * sy)},
			"label": o.label(k.class), "score": math.Round(float64(k.score)*1e4) / 1e4,
		}
	}
	return map[string]any{"objects": objs}, nil
}

// overlap is the intersection over union of two boxes.
func overlap(a, b detection) float32 {
	iw := min(a.x1, b.x1) - max(a.x0, b.x0)
	ih := min(a.y1, b.y1) - max(a.y0, b.y0)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := (a.x1-a.x0)*(a.y1-a.y0) + (b.x1-b.x0)*(b.y1-b.y0) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}
