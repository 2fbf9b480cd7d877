package algorithm

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // decoders for the images a model-file version receives
	_ "image/png"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// servingProto calls a serving runtime's OIP v2 server: it decodes the
// image, builds the input tensor as the descriptor says, sends it with
// OIP's binary tensor data extension (no JSON numbers on the hot path),
// and decodes the output tensor into the version's outputs.
type servingProto struct {
	httpBase
	s        *Serving
	maxImage int64
	shm      shmPools
	// viaShm and viaBody count the tensors sent each way.
	viaShm, viaBody prometheus.Counter
}

// shmMaxRegion bounds one shared memory region; larger tensors go in the
// body.
const shmMaxRegion = 32 << 20

const servingHealthPath = "/v2/health/ready"

func newServingProto(h httpBase, v *Version, maxImage int64, tensors *prometheus.CounterVec) *servingProto {
	p := &servingProto{httpBase: h, s: v.Serving, maxImage: maxImage,
		viaShm: tensors.WithLabelValues(v.AlgorithmID, v.Version, "shm"), viaBody: tensors.WithLabelValues(v.AlgorithmID, v.Version, "body")}
	// A region holds the largest input tensor the descriptor makes.
	in := v.Serving.Input
	size := 12 * in.Width * in.Height
	if v.Serving.Output.Kind == KindOCR {
		w, h := ocrSize(in.Width, in.Height, in.Width, in.Height)
		size = 12 * w * h
		if r := v.Serving.Recognition; r != nil {
			size = max(size, 12*cmp.Or(r.Height, ocrRecHeight)*cmp.Or(r.MaxWidth, ocrRecMaxWidth))
		}
	}
	if size <= shmMaxRegion && v.Runtime == RuntimeProcess {
		// Only a process on this node shares its memory; a container's
		// server gets its tensors in the request.
		p.shm.size = size
	}
	return p
}

// Close unmaps the shared memory regions.
func (p *servingProto) Close() error { return p.shm.Close() }

func (p *servingProto) health(ctx context.Context, in *instance) error {
	return httpHealth(ctx, &p.httpBase, in.address()+servingHealthPath)
}

func (p *servingProto) inferBatch(context.Context, *instance, []map[string]any) ([]itemResult, error) {
	return nil, errNoBatch
}

func (p *servingProto) infer(ctx context.Context, in *instance, inputs map[string]any) (map[string]any, error) {
	name, data, _, err := splitImage(inputs)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%w: no image input", ErrBadInput)
	}
	if int64(len(data)) > p.maxImage {
		return nil, fmt.Errorf("%w: input %q is %d bytes, over %d", ErrBadInput, name, len(data), p.maxImage)
	}
	rgba, err := decodeRGBA(data)
	if err != nil {
		return nil, fmt.Errorf("%w: input %q: %v", ErrBadInput, name, err)
	}
	if p.s.Output.Kind == KindOCR {
		return p.ocr(ctx, in, rgba)
	}
	sw, sh := rgba.Rect.Dx(), rgba.Rect.Dy()
	buf := p.tensorBuf(ctx, in, 3*p.s.Input.Width*p.s.Input.Height)
	tensor, shape := p.s.Input.preprocessInto(buf.f, rgba.Pix, rgba.Stride, sw, sh)
	out, oshape, err := p.run(ctx, in, servingModelID, p.s.Input.Tensor, p.s.Output.Tensor, tensor, shape, buf)
	if err != nil {
		return nil, err
	}
	switch p.s.Output.Kind {
	case KindClassify:
		return p.s.Output.classify(out), nil
	default:
		sx := float32(sw) / float32(p.s.Input.Width)
		sy := float32(sh) / float32(p.s.Input.Height)
		return p.s.Output.detect(out, oshape, sx, sy)
	}
}

// InputTensor decodes a JPEG or PNG image and returns the input tensor
// the descriptor makes of it, and its shape: what the platform sends to the
// serving runtime.
func (s *Serving) InputTensor(img []byte) ([]float32, []int, error) {
	t, shape, _, _, err := s.Input.tensor(img)
	return t, shape, err
}

// tensor decodes the image and preprocesses it; sw and sh are its size.
func (in *ServingInput) tensor(data []byte) (t []float32, shape []int, sw, sh int, err error) {
	rgba, err := decodeRGBA(data)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	sw, sh = rgba.Rect.Dx(), rgba.Rect.Dy()
	t, shape = in.preprocess(rgba.Pix, rgba.Stride, sw, sh)
	return t, shape, sw, sh, nil
}

// decodeRGBA decodes a JPEG or PNG image of at most 100 megapixels into
// RGBA pixels whose rectangle starts at 0,0.
func decodeRGBA(data []byte) (*image.RGBA, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a JPEG or PNG image: %v", err)
	}
	if cfg.Width*cfg.Height > 100<<20 {
		return nil, fmt.Errorf("%dx%d is over 100 megapixels", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	rgba, ok := img.(*image.RGBA)
	if !ok || rgba.Rect.Min != (image.Point{}) {
		rgba = image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
		draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
	}
	return rgba, nil
}

// tensorBuf is where a tensor of n floats is built: a free shared memory
// region, so that it is written once and not copied, when one holds it;
// else nothing (preprocessInto allocates).
type tensorBuf struct {
	f    []float32
	pool *shmPool
	r    *shmRegion
}

func (p *servingProto) tensorBuf(ctx context.Context, in *instance, n int) tensorBuf {
	if !littleEndian {
		return tensorBuf{}
	}
	pool, r := p.shm.acquire(ctx, &p.httpBase, in, 4*n)
	if r == nil {
		return tensorBuf{}
	}
	return tensorBuf{f: unsafe.Slice((*float32)(unsafe.Pointer(&r.mem[0])), n), pool: pool, r: r}
}

// run sends one FP32 tensor to the model called model and returns its
// output tensor named output. The tensor goes through a shared memory
// region: buf's, where the caller built it (released here), or a free one
// it is copied into; else in the body.
func (p *servingProto) run(ctx context.Context, in *instance, model, input, output string, tensor []float32, shape []int, buf tensorBuf) ([]float32, []int, error) {
	raw := floatBytes(tensor)
	pool, r := buf.pool, buf.r
	switch {
	case r != nil && len(raw) > len(r.mem):
		pool.release(r)
		pool, r = nil, nil
	case r != nil && unsafe.SliceData(tensor) != unsafe.SliceData(buf.f):
		copy(r.mem, raw) // built elsewhere after all
	case r == nil:
		if pool, r = p.shm.acquire(ctx, &p.httpBase, in, len(raw)); r != nil {
			copy(r.mem, raw)
		}
	}
	if r != nil {
		params := map[string]any{"shared_memory_region": r.name, "shared_memory_byte_size": len(raw)}
		out, oshape, err := p.send(ctx, in, model, input, output, shape, params, nil)
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "shared memory region") {
			pool.release(r)
			p.viaShm.Inc()
			return out, oshape, err
		}
		if buf.r != nil {
			// The tensor lives in the region: the body needs its own copy.
			raw = slices.Clone(raw)
		}
		pool.release(r)
		// The process lost its registrations (it restarted on the same
		// port): new regions next time, the body this time.
		p.shm.drop(in, pool)
	}
	p.viaBody.Inc()
	return p.send(ctx, in, model, input, output, shape, map[string]any{"binary_data_size": len(raw)}, raw)
}

// send sends one inference request whose input tensor is raw in the body
// (binary data extension) or, with raw nil, where params say (a shared
// memory region).
func (p *servingProto) send(ctx context.Context, in *instance, model, input, output string, shape []int, params map[string]any, raw []byte) ([]float32, []int, error) {
	head, err := json.Marshal(map[string]any{
		"inputs":     []any{map[string]any{"name": input, "shape": shape, "datatype": "FP32", "parameters": params}},
		"parameters": map[string]any{"binary_data_output": true},
	})
	if err != nil {
		return nil, nil, err
	}
	// Spaces after the JSON align the tensor's bytes on 4, so that the
	// server can view them as floats without a copy.
	for len(head)%4 != 0 {
		head = append(head, ' ')
	}
	size := int64(len(head) + len(raw))
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, in.address()+"/v2/models/"+model+"/infer",
		io.MultiReader(bytes.NewReader(head), bytes.NewReader(raw)))
	if err != nil {
		return nil, nil, err
	}
	hr.ContentLength = size
	hr.GetBody = func() (io.ReadCloser, error) { // for replays on a stale connection
		return io.NopCloser(io.MultiReader(bytes.NewReader(head), bytes.NewReader(raw))), nil
	}
	hr.Header["Content-Type"] = []string{"application/octet-stream"}
	hr.Header["Inference-Header-Content-Length"] = []string{strconv.Itoa(len(head))}
	resp, err := p.do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer drain(resp)
	b, err := io.ReadAll(io.LimitReader(resp.Body, p.maxResp+1))
	if err != nil {
		return nil, nil, &transportError{err: fmt.Errorf("reading response: %w", err), sent: true}
	}
	if int64(len(b)) > p.maxResp {
		return nil, nil, fmt.Errorf("%w: response larger than %d bytes", ErrBadResponse, p.maxResp)
	}
	hlen := len(b)
	if h := resp.Header.Get("Inference-Header-Content-Length"); h != "" {
		if hlen, err = strconv.Atoi(h); err != nil || hlen < 0 || hlen > len(b) {
			return nil, nil, fmt.Errorf("%w: bad Inference-Header-Content-Length %q", ErrBadResponse, h)
		}
	}
	var res struct {
		Outputs []struct {
			Name       string    `json:"name"`
			Shape      []int     `json:"shape"`
			Datatype   string    `json:"datatype"`
			Data       []float32 `json:"data"`
			Parameters struct {
				Size int `json:"binary_data_size"`
			} `json:"parameters"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(b[:hlen], &res); err != nil {
		return nil, nil, fmt.Errorf("%w: not valid JSON (%v): %q", ErrBadResponse, err, snippet(b[:hlen]))
	}
	off := hlen
	for _, o := range res.Outputs {
		size := o.Parameters.Size
		if size < 0 || off+size > len(b) {
			return nil, nil, fmt.Errorf("%w: output %q's binary data runs past the body", ErrBadResponse, o.Name)
		}
		data := b[off : off+size]
		off += size
		if o.Name != output {
			continue
		}
		if o.Datatype != "FP32" {
			return nil, nil, fmt.Errorf("%w: output %q is %s, not FP32", ErrBadResponse, o.Name, o.Datatype)
		}
		n := 1
		for _, d := range o.Shape {
			n *= d
		}
		vals := o.Data
		if size > 0 {
			vals = make([]float32, size/4)
			for i := range vals {
				vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
			}
		}
		if len(vals) != n {
			return nil, nil, fmt.Errorf("%w: output %q has shape %v but %d values", ErrBadResponse, o.Name, o.Shape, len(vals))
		}
		return vals, o.Shape, nil
	}
	return nil, nil, fmt.Errorf("%w: no output %q", ErrBadResponse, output)
}

// littleEndian says whether this machine stores floats as OIP's binary
// extension sends them, so that a tensor can be sent without copying.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// floatBytes returns the tensor's little-endian bytes: a view of its
// memory where the machine is little-endian (no 600 kB copy per call for
// a 224×224 image), else an encoded copy.
func floatBytes(t []float32) []byte {
	if littleEndian {
		if len(t) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(&t[0])), 4*len(t))
	}
	b := make([]byte, 4*len(t))
	for i, f := range t {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}
