package algorithm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// TensorInfo is one input or output of a model as its file declares it.
type TensorInfo struct {
	Name string
	// ElemType is ONNX's TensorProto.DataType (1 FLOAT, 7 INT64, ...).
	ElemType int
	// Shape holds each dimension's size, -1 where it is symbolic or
	// unknown (Dims then holds its name, if any).
	Shape []int64
	Dims  []string
}

// ModelInfo is what a model file declares of its graph.
type ModelInfo struct {
	IRVersion int64
	Inputs    []TensorInfo
	Outputs   []TensorInfo
}

// ErrNotONNX is returned for a file that is not an ONNX model.
var ErrNotONNX = errors.New("not an ONNX model")

var onnxTypes = map[int]string{1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
	9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}

// ShapeString writes a shape as [1,3,640,640], symbolic dims by name.
func (t TensorInfo) ShapeString() string {
	parts := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		switch {
		case d >= 0:
			parts[i] = strconv.FormatInt(d, 10)
		case i < len(t.Dims) && t.Dims[i] != "":
			parts[i] = t.Dims[i]
		default:
			parts[i] = "?"
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func (t TensorInfo) String() string {
	ty := onnxTypes[t.ElemType]
	if ty == "" {
		ty = "type " + strconv.Itoa(t.ElemType)
	}
	return fmt.Sprintf("%q %s %s", t.Name, ty, t.ShapeString())
}

// pbReader walks protobuf messages from a stream, skipping what it does
// not need (weights) without holding them in memory.
type pbReader struct {
	r   *bufio.Reader
	pos int64
}

func (p *pbReader) varint() (uint64, error) {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		b, err := p.r.ReadByte()
		if err != nil {
			return 0, err
		}
		p.pos++
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, errors.New("varint too long")
}

func (p *pbReader) skip(n int64) error {
	m, err := p.r.Discard(int(min(n, 1<<62)))
	p.pos += int64(m)
	if err == nil && int64(m) < n {
		return p.skip(n - int64(m))
	}
	return err
}

func (p *pbReader) bytes(n int64) ([]byte, error) {
	if n > maxModelHeader {
		return nil, fmt.Errorf("a %d-byte field where metadata was expected", n)
	}
	b := make([]byte, n)
	m, err := io.ReadFull(p.r, b)
	p.pos += int64(m)
	return b, err
}

// fields calls f for each field up to end; f must consume the value of a
// length-delimited field it accepts (returning true), others are skipped.
func (p *pbReader) fields(end int64, f func(num protowire.Number, typ protowire.Type, n int64) (bool, error)) error {
	for p.pos < end {
		tag, err := p.varint()
		if err == io.EOF && end == math.MaxInt64 {
			return nil // a stream of unknown size ends between fields
		}
		if err != nil {
			return err
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		if num < 1 {
			return fmt.Errorf("invalid field number %d at byte %d", num, p.pos)
		}
		var n int64
		switch typ {
		case protowire.VarintType:
			v, err := p.varint()
			if err != nil {
				return err
			}
			if _, err := f(num, typ, int64(v)); err != nil {
				return err
			}
			continue
		case protowire.Fixed32Type:
			n = 4
		case protowire.Fixed64Type:
			n = 8
		case protowire.BytesType:
			v, err := p.varint()
			if err != nil {
				return err
			}
			if int64(v) < 0 || p.pos+int64(v) > end {
				return fmt.Errorf("field %d runs past its message", num)
			}
			n = int64(v)
			ok, err := f(num, typ, n)
			if err != nil {
				return err
			}
			if ok {
				continue
			}
		default:
			return fmt.Errorf("invalid wire type %d at byte %d", typ, p.pos)
		}
		if err := p.skip(n); err != nil {
			return err
		}
	}
	if p.pos != end && end != math.MaxInt64 {
		return errors.New("message runs past its end")
	}
	return nil
}

// ReadModelInfo reads an ONNX file's graph inputs and outputs (not its
// weights, which it skips); size is the file's length, or -1 when unknown. Inputs that are initializers (models before IR
// version 4 list weights as inputs) are left out. A file that does not
// parse as an ONNX ModelProto with a graph is ErrNotONNX.
func ReadModelInfo(r io.Reader, size int64) (*ModelInfo, error) {
	p := &pbReader{r: bufio.NewReaderSize(r, 64<<10)}
	if size < 0 {
		size = math.MaxInt64
	}
	info := &ModelInfo{}
	var inits []string
	sawGraph := false
	err := p.fields(size, func(num protowire.Number, typ protowire.Type, n int64) (bool, error) {
		switch {
		case num == 1 && typ == protowire.VarintType:
			info.IRVersion = n
		case num == 7 && typ == protowire.BytesType:
			sawGraph = true
			return true, p.fields(p.pos+n, func(num protowire.Number, typ protowire.Type, n int64) (bool, error) {
				if typ != protowire.BytesType {
					return false, nil
				}
				switch num {
				case 5: // initializer: only its name (field 8)
					return true, p.fields(p.pos+n, func(num protowire.Number, typ protowire.Type, n int64) (bool, error) {
						if num == 8 && typ == protowire.BytesType {
							b, err := p.bytes(n)
							inits = append(inits, string(b))
							return true, err
						}
						return false, nil
					})
				case 11, 12:
					b, err := p.bytes(n)
					if err != nil {
						return true, err
					}
					t, err := parseValueInfo(b)
					if err != nil {
						return true, err
					}
					if num == 11 {
						info.Inputs = append(info.Inputs, t)
					} else {
						info.Outputs = append(info.Outputs, t)
					}
					return true, nil
				}
				return false, nil
			})
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotONNX, err)
	}
	if !sawGraph || info.IRVersion == 0 {
		return nil, fmt.Errorf("%w: no ir_version and graph", ErrNotONNX)
	}
	info.Inputs = slices.DeleteFunc(info.Inputs, func(t TensorInfo) bool { return slices.Contains(inits, t.Name) })
	if len(info.Inputs) == 0 || len(info.Outputs) == 0 {
		return nil, fmt.Errorf("%w: the graph declares no inputs or no outputs", ErrNotONNX)
	}
	return info, nil
}

// parseValueInfo reads a ValueInfoProto: name (1), type (2) → tensor_type
// (1) → elem_type (1), shape (2) → dim (1) → dim_value (1) | dim_param (2).
func parseValueInfo(b []byte) (TensorInfo, error) {
	var t TensorInfo
	err := walk(b, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case 1:
			t.Name = string(v)
		case 2:
			return walk(v, func(num protowire.Number, v []byte, _ uint64) error {
				if num != 1 {
					return nil // not a tensor (sequence, map): no shape
				}
				return walk(v, func(num protowire.Number, v []byte, x uint64) error {
					switch num {
					case 1:
						t.ElemType = int(x)
					case 2:
						return walk(v, func(num protowire.Number, v []byte, _ uint64) error {
							if num != 1 {
								return nil
							}
							size, name := int64(-1), ""
							err := walk(v, func(num protowire.Number, v []byte, x uint64) error {
								switch num {
								case 1:
									size = int64(x)
								case 2:
									name = string(v)
								}
								return nil
							})
							t.Shape = append(t.Shape, size)
							t.Dims = append(t.Dims, name)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	return t, err
}

// walk calls f for each field of an in-memory message: v for bytes, x
// for varints.
func walk(b []byte, f func(num protowire.Number, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, v, x); err != nil {
			return err
		}
	}
	return nil
}

// CheckServing checks a model's declared tensors against a serving
// descriptor and fills the tensor names it left out. Errors are
// *FieldError naming the descriptor's field, the tensor and its shape.
func CheckServing(s *Serving, info *ModelInfo) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: "serving." + field, Msg: fmt.Sprintf(format, args...)}
	}
	list := func(ts []TensorInfo) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = t.String()
		}
		return strings.Join(s, ", ")
	}
	find := func(ts []TensorInfo, name string) (TensorInfo, bool) {
		for _, t := range ts {
			if t.Name == name {
				return t, true
			}
		}
		return TensorInfo{}, false
	}
	in := &s.Input
	if in.Tensor == "" {
		if len(info.Inputs) != 1 {
			return bad("input.tensor", "the model has %d inputs (%s): name the image's", len(info.Inputs), list(info.Inputs))
		}
		in.Tensor = info.Inputs[0].Name
	}
	if len(info.Inputs) > 1 {
		return bad("input.tensor", "the model has %d inputs (%s); this runtime feeds one image tensor", len(info.Inputs), list(info.Inputs))
	}
	ti, ok := find(info.Inputs, in.Tensor)
	if !ok {
		return bad("input.tensor", "the model has no input %q; its inputs: %s", in.Tensor, list(info.Inputs))
	}
	if ti.ElemType != 1 {
		return bad("input", "the model's input %s is not float32, which this runtime feeds", ti)
	}
	want := []int64{1, 3, int64(in.Height), int64(in.Width)}
	if s.Output.Kind == KindOCR {
		want = []int64{1, 3, -1, -1} // the image's own size, fitted
	}
	layout := LayoutNCHW
	if in.Layout == LayoutNHWC {
		want, layout = []int64{1, int64(in.Height), int64(in.Width), 3}, LayoutNHWC
	}
	if len(ti.Shape) != 4 {
		return bad("input", "the model's input %s has rank %d; the descriptor feeds %s %v", ti, len(ti.Shape), layout, want)
	}
	for i, d := range ti.Shape {
		if d >= 0 && want[i] >= 0 && d != want[i] {
			return bad("input", "the model's input %s does not match the descriptor's %s %v (dimension %d is %d, not %d)",
				ti, layout, want, i, d, want[i])
		}
	}
	out := &s.Output
	if out.Tensor == "" {
		out.Tensor = info.Outputs[0].Name
	}
	to, ok := find(info.Outputs, out.Tensor)
	if !ok {
		return bad("output.tensor", "the model has no output %q; its outputs: %s", out.Tensor, list(info.Outputs))
	}
	if to.ElemType != 1 {
		return bad("output", "the model's output %s is not float32, which this runtime decodes", to)
	}
	nl := int64(len(out.Labels))
	switch out.Kind {
	case KindClassify:
		// [C], [1,C], [1,C,1,1]: one dimension that is not 1.
		var classes []int64
		for i, d := range to.Shape {
			if d != 1 && !(i == 0 && d < 0 && len(to.Shape) > 1) {
				classes = append(classes, d)
			}
		}
		if len(classes) > 1 {
			return bad("output", "the model's output %s is not a classification head ([C], [1,C] or [1,C,1,1])", to)
		}
		if len(classes) == 1 && classes[0] >= 0 && nl > 0 && classes[0] != nl {
			return bad("output.labels", "%d labels for the model's output %s of %d classes", nl, to, classes[0])
		}
	case KindOCR:
		if len(to.Shape) != 4 || to.Shape[1] > 1 {
			return bad("output", "the model's output %s is not a text probability map [1, 1, H, W]", to)
		}
	case KindDetect:
		if len(to.Shape) != 3 || to.Shape[0] > 1 {
			return bad("output", "the model's output %s is not %s's [1, %s]", to, out.Format, map[string]string{FormatYOLOv8: "4+C, N", FormatYOLOv5: "N, 5+C"}[out.Format])
		}
		attrs, first := to.Shape[1], int64(4)
		if out.Format == FormatYOLOv5 {
			attrs, first = to.Shape[2], 5
		}
		if attrs >= 0 && attrs <= first {
			return bad("output", "the model's output %s has %d values per candidate; %s needs %d plus one per class", to, attrs, out.Format, first)
		}
		if attrs >= 0 && nl > 0 && attrs-first != nl {
			return bad("output.labels", "%d labels for the model's output %s of %d classes (%s: %d + classes)", nl, to, attrs-first, out.Format, first)
		}
	}
	return nil
}

// CheckRecognition checks an OCR version's recognizer against its
// descriptor: one float32 input [1, 3, height, W], an output [1, T, C] of
// as many classes as characters plus the blank; it fills the tensor names
// left out.
func CheckRecognition(r *ServingRecognition, info *ModelInfo) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: "serving.recognition." + field, Msg: fmt.Sprintf(format, args...)}
	}
	if len(info.Inputs) != 1 {
		return bad("model", "the recognizer has %d inputs; one image tensor is fed", len(info.Inputs))
	}
	in := info.Inputs[0]
	if r.Tensor == "" {
		r.Tensor = in.Name
	}
	if in.Name != r.Tensor {
		return bad("tensor", "the recognizer has no input %q; its input: %s", r.Tensor, in)
	}
	h := int64(r.Height)
	if h == 0 {
		h = ocrRecHeight
	}
	if in.ElemType != 1 || len(in.Shape) != 4 || (in.Shape[1] >= 0 && in.Shape[1] != 3) || (in.Shape[2] >= 0 && in.Shape[2] != h) {
		return bad("height", "the recognizer's input %s is not float32 [1, 3, %d, W]", in, h)
	}
	if r.Output == "" && len(info.Outputs) > 0 {
		r.Output = info.Outputs[0].Name
	}
	for _, o := range info.Outputs {
		if o.Name != r.Output {
			continue
		}
		if o.ElemType != 1 || len(o.Shape) != 3 {
			return bad("output", "the recognizer's output %s is not float32 [1, T, C]", o)
		}
		if c := o.Shape[2]; c >= 0 && c != int64(len(r.Characters))+1 {
			return bad("characters", "%d characters for the recognizer's output %s of %d classes (the blank and one per character)", len(r.Characters), o, c)
		}
		return nil
	}
	return bad("output", "the recognizer has no output %q", r.Output)
}
