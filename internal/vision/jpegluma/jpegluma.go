// Package jpegluma decodes the luma (Y) plane of a sequential JPEG and
// nothing else: what face detection reads of a camera's frame. The chroma
// blocks are entropy-decoded (the bitstream has no other way past them)
// but never dequantized, transformed or stored, and blocks that carry only
// a DC coefficient, and rows and columns of coefficients that are zero,
// skip the inverse DCT's arithmetic. On 720p 4:2:0 camera frames it costs
// a third to a half of image/jpeg's full decode (BenchmarkDecode, and the
// cameras benchmark's offline rows).
//
// It reads baseline and extended sequential Huffman JPEGs (SOF0, SOF1) of
// 8-bit samples with one component (gray) or three (YCbCr) whose first
// component is the luma at the full sampling rate, with or without restart
// intervals, interleaved or not. Anything else (progressive, arithmetic,
// lossless or 12-bit coding, CMYK, RGB-coded) is refused with
// ErrUnsupported, so that the caller decodes it the ordinary way.
//
// The inverse DCT is the separable Loeffler–Ligtenberg–Moschytz
// factorisation of the even part with the odd part computed directly, in
// 64-bit integers with 13 fractional bits; its output differs from
// image/jpeg's by at most a grey level or two (the standard lets decoders
// differ that much; the tests measure it).
package jpegluma

import (
	"errors"
	"fmt"
	"image"
)

var (
	// ErrUnsupported means the JPEG uses a coding this package does not
	// read; the image may be fine for a full decoder.
	ErrUnsupported = errors.New("jpegluma: unsupported JPEG coding")
	// ErrFormat means the data is not a JPEG or is corrupt or truncated.
	ErrFormat = errors.New("jpegluma: unreadable JPEG")
	// ErrTooLarge means the header announces more pixels than allowed.
	ErrTooLarge = errors.New("jpegluma: image too large")
)

// Decode returns the luma plane of the JPEG in data, refusing images of
// more than maxPixels pixels (width × height, from the header, before any
// pixel memory is allocated). The image's Rect starts at the origin; its
// Stride may exceed its width (the plane keeps the JPEG's block padding).
//
// It also returns the plane at an eighth of its size, ⌈width/8⌉ ×
// ⌈height/8⌉: each pixel the mean of its 8×8 block, which is the block's
// DC coefficient, so it costs no transform (motion detection's working
// frame).
func Decode(data []byte, maxPixels int64) (luma, eighth *image.Gray, err error) {
	d := decoder{data: data}
	if luma, err = d.decode(maxPixels); err != nil {
		return nil, nil, err
	}
	return luma, d.eighth, nil
}

// DecodeConfig reads the header's size, as image/jpeg's DecodeConfig
// would, with the same refusals as Decode's except the size limit.
func DecodeConfig(data []byte) (width, height int, err error) {
	d := decoder{data: data, headerOnly: true}
	if _, err := d.decode(0); err != nil {
		return 0, 0, err
	}
	return d.width, d.height, nil
}

const (
	lutBits = 9 // Huffman lookahead bits
	lutSize = 1 << lutBits
)

// huffman is one Huffman table: a lookup of the lutBits-bit prefixes for
// the short codes, the canonical code ranges for the long ones, and for AC
// tables each prefix that holds a whole coefficient (code and value bits)
// decoded in advance.
type huffman struct {
	defined bool
	// lut is length<<8 | symbol for each prefix that starts with a code
	// of at most lutBits bits; 0 for the others.
	lut [lutSize]uint16
	// maxCode[l] is the largest code of length l (-1: none); a code c of
	// length l is symbol vals[c+offset[l]].
	maxCode [17]int32
	offset  [17]int32
	vals    [256]byte
	// fast, for AC tables: value<<16 | run<<8 | bits for each prefix that
	// holds a code and its value bits entirely; 0 for the others.
	fast [lutSize]int32
}

type component struct {
	id     byte
	h, v   int
	tq     int
	dc, ac *huffman
	pred   int
}

type decoder struct {
	data       []byte
	pos        int
	headerOnly bool

	// The entropy-coded data's bits, most significant first: acc holds
	// nbits of them. marker is set once a marker is reached (then zeros
	// are shifted in); eof once the data ended without one.
	acc    uint64
	nbits  uint
	marker bool
	eof    bool

	quant    [4][64]int32 // in zigzag order
	quantSet [4]bool
	dc, ac   [4]huffman

	width, height int
	comps         []component
	hmax, vmax    int
	restart       int
	adobeRGB      bool
	sofSeen       bool
	eighth        *image.Gray
}

// unzig maps a coefficient's zigzag index to its natural (row-major) one.
var unzig = [64]int{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

func formatErr(f string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(f, a...))
}

// decode reads the markers up to the first scan and decodes it.
func (d *decoder) decode(maxPixels int64) (*image.Gray, error) {
	if len(d.data) < 4 || d.data[0] != 0xFF || d.data[1] != 0xD8 {
		return nil, formatErr("missing SOI marker")
	}
	d.pos = 2
	for {
		// A marker: 0xFF, any fill 0xFFs, then its code.
		if d.pos >= len(d.data) {
			return nil, formatErr("no scan before the end of the data")
		}
		if d.data[d.pos] != 0xFF {
			return nil, formatErr("expected a marker at byte %d", d.pos)
		}
		for d.pos < len(d.data) && d.data[d.pos] == 0xFF {
			d.pos++
		}
		if d.pos >= len(d.data) {
			return nil, formatErr("no scan before the end of the data")
		}
		code := d.data[d.pos]
		d.pos++
		switch {
		case code == 0xD9:
			return nil, formatErr("no scan before the EOI marker")
		case code >= 0xD0 && code <= 0xD7, code == 0x01:
			continue // no length
		}
		if d.pos+2 > len(d.data) {
			return nil, formatErr("truncated marker segment")
		}
		n := int(d.data[d.pos])<<8 | int(d.data[d.pos+1])
		if n < 2 || d.pos+n > len(d.data) {
			return nil, formatErr("marker 0x%02X: segment length %d past the data", code, n)
		}
		seg := d.data[d.pos+2 : d.pos+n]
		d.pos += n
		var err error
		switch {
		case code == 0xC0 || code == 0xC1:
			err = d.sof(seg)
			if err == nil && d.headerOnly {
				return nil, nil
			}
			if err == nil && int64(d.width)*int64(d.height) > maxPixels {
				return nil, fmt.Errorf("%w: header says %dx%d (%d pixels, limit %d)", ErrTooLarge, d.width, d.height,
					int64(d.width)*int64(d.height), maxPixels)
			}
		case code >= 0xC2 && code <= 0xCF && code != 0xC4 && code != 0xC8 && code != 0xCC:
			return nil, fmt.Errorf("%w: frame marker 0x%02X (only baseline and extended sequential Huffman)", ErrUnsupported, code)
		case code == 0xC4:
			err = d.dht(seg)
		case code == 0xCC:
			return nil, fmt.Errorf("%w: arithmetic coding", ErrUnsupported)
		case code == 0xDB:
			err = d.dqt(seg)
		case code == 0xDD:
			if len(seg) != 2 {
				return nil, formatErr("DRI segment of %d bytes", len(seg))
			}
			d.restart = int(seg[0])<<8 | int(seg[1])
		case code == 0xEE:
			// Adobe's APP14: transform 0 on three components means RGB.
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" && seg[11] == 0 {
				d.adobeRGB = true
			}
		case code == 0xDA:
			return d.sos(seg)
		}
		if err != nil {
			return nil, err
		}
	}
}

func (d *decoder) sof(seg []byte) error {
	if d.sofSeen {
		return formatErr("second frame header")
	}
	d.sofSeen = true
	if len(seg) < 6 {
		return formatErr("SOF segment of %d bytes", len(seg))
	}
	if seg[0] != 8 {
		return fmt.Errorf("%w: %d-bit samples", ErrUnsupported, seg[0])
	}
	d.height = int(seg[1])<<8 | int(seg[2])
	d.width = int(seg[3])<<8 | int(seg[4])
	nf := int(seg[5])
	if d.width == 0 || d.height == 0 {
		return formatErr("frame of %dx%d", d.width, d.height)
	}
	if nf != 1 && nf != 3 {
		return fmt.Errorf("%w: %d components", ErrUnsupported, nf)
	}
	if len(seg) != 6+3*nf {
		return formatErr("SOF segment of %d bytes for %d components", len(seg), nf)
	}
	d.comps = make([]component, nf)
	for i := range d.comps {
		c := &d.comps[i]
		b := seg[6+3*i:]
		c.id, c.h, c.v, c.tq = b[0], int(b[1]>>4), int(b[1]&15), int(b[2])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return formatErr("component %d: sampling %dx%d, table %d", i, c.h, c.v, c.tq)
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	if nf == 3 {
		if d.adobeRGB || (d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B') {
			return fmt.Errorf("%w: RGB-coded", ErrUnsupported)
		}
		if d.comps[0].h != d.hmax || d.comps[0].v != d.vmax {
			return fmt.Errorf("%w: luma sampled %dx%d of %dx%d", ErrUnsupported, d.comps[0].h, d.comps[0].v, d.hmax, d.vmax)
		}
	}
	return nil
}

func (d *decoder) dqt(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 || pq > 1 {
			return formatErr("DQT table %d precision %d", tq, pq)
		}
		n := 64 * (1 + int(pq))
		if len(seg) < 1+n {
			return formatErr("truncated DQT")
		}
		for k := range 64 {
			if pq == 0 {
				d.quant[tq][k] = int32(seg[1+k])
			} else {
				d.quant[tq][k] = int32(seg[1+2*k])<<8 | int32(seg[2+2*k])
			}
		}
		d.quantSet[tq] = true
		seg = seg[1+n:]
	}
	return nil
}

func (d *decoder) dht(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return formatErr("truncated DHT")
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 {
			return formatErr("DHT class %d table %d", tc, th)
		}
		var counts [17]int
		total := 0
		for l := 1; l <= 16; l++ {
			counts[l] = int(seg[l])
			total += counts[l]
		}
		if total == 0 || total > 256 || len(seg) < 17+total {
			return formatErr("DHT table with %d codes", total)
		}
		h := &d.dc[th]
		if tc == 1 {
			h = &d.ac[th]
		}
		*h = huffman{defined: true}
		copy(h.vals[:], seg[17:17+total])
		if err := h.build(counts, tc == 1); err != nil {
			return err
		}
		seg = seg[17+total:]
	}
	return nil
}

// build assigns the canonical codes (T.81 Annex C) and fills the lookups.
func (h *huffman) build(counts [17]int, ac bool) error {
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		h.offset[l] = k - code
		h.maxCode[l] = -1
		for range counts[l] {
			if code >= 1<<l {
				return formatErr("Huffman table: too many codes of %d bits", l)
			}
			if l <= lutBits {
				first := code << (lutBits - l)
				for i := range int32(1) << (lutBits - l) {
					h.lut[first+i] = uint16(l)<<8 | uint16(h.vals[k])
				}
			}
			h.maxCode[l] = code
			code++
			k++
		}
		code <<= 1
	}
	if !ac {
		return nil
	}
	for i := range int32(lutSize) {
		e := h.lut[i]
		if e == 0 {
			continue
		}
		l, rs := int32(e>>8), int32(e&0xFF)
		run, size := rs>>4, rs&15
		if size == 0 || l+size > lutBits {
			continue
		}
		v := (i >> (lutBits - l - size)) & (1<<size - 1)
		h.fast[i] = extend(v, size)<<16 | run<<8 | (l + size)
	}
	return nil
}

// extend turns size bits v into the signed value they code (T.81 F.2.2.1).
func extend(v, size int32) int32 {
	if v < 1<<(size-1) {
		return v - 1<<size + 1
	}
	return v
}

func (d *decoder) sos(seg []byte) (*image.Gray, error) {
	if !d.sofSeen {
		return nil, formatErr("scan before the frame header")
	}
	if len(seg) < 1 {
		return nil, formatErr("empty SOS segment")
	}
	ns := int(seg[0])
	if ns < 1 || ns > len(d.comps) || len(seg) != 4+2*ns {
		return nil, formatErr("SOS segment of %d bytes for %d components", len(seg), ns)
	}
	scan := make([]*component, ns)
	for i := range ns {
		id, tables := seg[1+2*i], seg[2+2*i]
		for j := range d.comps {
			if d.comps[j].id == id {
				scan[i] = &d.comps[j]
			}
		}
		if scan[i] == nil {
			return nil, formatErr("scan names component %d, not in the frame", id)
		}
		td, ta := int(tables>>4), int(tables&15)
		if td > 3 || ta > 3 || !d.dc[td].defined || !d.ac[ta].defined {
			return nil, formatErr("scan component %d: Huffman tables %d/%d not defined", id, td, ta)
		}
		scan[i].dc, scan[i].ac = &d.dc[td], &d.ac[ta]
		if !d.quantSet[scan[i].tq] {
			return nil, formatErr("component %d: quantisation table %d not defined", id, scan[i].tq)
		}
	}
	ss, se, a := seg[1+2*ns], seg[2+2*ns], seg[3+2*ns]
	if ss != 0 || se != 63 || a != 0 {
		return nil, fmt.Errorf("%w: spectral selection %d–%d, approximation %d", ErrUnsupported, ss, se, a)
	}
	if scan[0] != &d.comps[0] {
		return nil, fmt.Errorf("%w: the first scan does not start with the luma", ErrUnsupported)
	}
	return d.scan(scan)
}

// scan decodes the scan's MCUs, keeping the luma's blocks.
func (d *decoder) scan(scan []*component) (*image.Gray, error) {
	y := scan[0]
	// A scan of one component is not interleaved: its MCU is one block
	// and its blocks cover that component only (T.81 A.2.2).
	h, v := y.h, y.v
	mcux := (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	mcuy := (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	if len(scan) == 1 {
		h, v = 1, 1
		mcux, mcuy = (d.width+7)/8, (d.height+7)/8
	}
	stride := mcux * h * 8
	pix := make([]byte, stride*mcuy*v*8)
	d.eighth = image.NewGray(image.Rect(0, 0, (d.width+7)/8, (d.height+7)/8))
	small := d.eighth
	for _, c := range scan {
		c.pred = 0
	}
	var blk, scratch [64]int32
	qy := &d.quant[y.tq]
	mcus, next := mcux*mcuy, 0
	for m := range mcus {
		if d.restart > 0 && m > 0 && m%d.restart == 0 {
			if err := d.restartMarker(next); err != nil {
				return nil, err
			}
			next = (next + 1) % 8
			for _, c := range scan {
				c.pred = 0
			}
		}
		mx, my := m%mcux, m/mcux
		for ci, c := range scan {
			cv, ch := c.v, c.h
			if len(scan) == 1 {
				cv, ch = 1, 1
			}
			for by := range cv {
				for bx := range ch {
					if ci > 0 {
						// Decoded to get past it; never transformed.
						if _, err := d.block(c, &d.quant[c.tq], &scratch); err != nil {
							return nil, err
						}
						continue
					}
					blk = [64]int32{}
					last, err := d.block(c, qy, &blk)
					if err != nil {
						return nil, err
					}
					row, col := my*v+by, mx*h+bx
					off := row*8*stride + col*8
					if col < small.Rect.Dx() && row < small.Rect.Dy() {
						small.Pix[row*small.Stride+col] = clamp(int(blk[0]+4)>>3 + 128)
					}
					if last == 0 {
						fillDC(pix[off:], stride, blk[0])
					} else {
						idct(pix[off:], stride, &blk)
					}
				}
			}
		}
		if d.eof {
			return nil, formatErr("entropy-coded data truncated")
		}
	}
	return &image.Gray{Pix: pix, Stride: stride, Rect: image.Rect(0, 0, d.width, d.height)}, nil
}

// restartMarker discards the bits left of the interval and expects the
// RSTn marker numbered n.
func (d *decoder) restartMarker(n int) error {
	d.acc, d.nbits = 0, 0
	if !d.marker {
		// The interval's bits ended before a marker was read: skip to it.
		for d.pos+1 < len(d.data) && (d.data[d.pos] != 0xFF || d.data[d.pos+1] == 0) {
			d.pos++
		}
	}
	for d.pos+1 < len(d.data) && d.data[d.pos] == 0xFF && d.data[d.pos+1] == 0xFF {
		d.pos++
	}
	if d.pos+1 >= len(d.data) || d.data[d.pos] != 0xFF || d.data[d.pos+1] != byte(0xD0+n) {
		return formatErr("expected restart marker RST%d at byte %d", n, d.pos)
	}
	d.pos += 2
	d.marker = false
	return nil
}

// fill tops the bit accumulator up to at least 57 bits, unstuffing 0xFF00
// and shifting in zeros once a marker or the end is reached.
func (d *decoder) fill() {
	for d.nbits <= 56 {
		var b byte
		if !d.marker {
			if d.pos < len(d.data) {
				b = d.data[d.pos]
				if b != 0xFF {
					d.pos++
				} else if d.pos+1 < len(d.data) && d.data[d.pos+1] == 0 {
					d.pos += 2
				} else {
					d.marker, b = true, 0
				}
			} else {
				d.eof, d.marker = true, true
			}
		}
		d.acc |= uint64(b) << (56 - d.nbits)
		d.nbits += 8
	}
}

// symbol decodes one Huffman symbol; the caller has filled at least 16
// bits.
func (d *decoder) symbol(h *huffman) (int32, error) {
	if e := h.lut[d.acc>>(64-lutBits)]; e != 0 {
		l := uint(e >> 8)
		d.acc <<= l
		d.nbits -= l
		return int32(e & 0xFF), nil
	}
	for l := uint(lutBits + 1); l <= 16; l++ {
		c := int32(d.acc >> (64 - l))
		if c <= h.maxCode[l] {
			d.acc <<= l
			d.nbits -= l
			return int32(h.vals[c+h.offset[l]]), nil
		}
	}
	return 0, formatErr("bad Huffman code")
}

// receive reads size (0–16) bits as a coefficient value; the caller has
// filled them.
func (d *decoder) receive(size int32) int32 {
	if size == 0 {
		return 0
	}
	v := int32(d.acc >> (64 - uint(size)))
	d.acc <<= uint(size)
	d.nbits -= uint(size)
	return extend(v, size)
}

// block decodes one block's coefficients into blk (zeroed by the caller),
// dequantised, in natural order, and returns the zigzag index of the last
// one decoded (0: a DC-only block).
func (d *decoder) block(c *component, q *[64]int32, blk *[64]int32) (int, error) {
	if d.nbits < 32 {
		d.fill()
	}
	s, err := d.symbol(c.dc)
	if err != nil {
		return 0, err
	}
	if s > 11 {
		return 0, formatErr("DC difference of %d bits", s)
	}
	c.pred += int(d.receive(s))
	blk[0] = int32(c.pred) * q[0]
	last := 0
	ac := c.ac
	for k := 1; k < 64; {
		if d.nbits < 32 {
			d.fill()
		}
		if e := ac.fast[d.acc>>(64-lutBits)]; e != 0 {
			n := uint(e & 0xFF)
			d.acc <<= n
			d.nbits -= n
			k += int(e>>8) & 0xFF
			if k > 63 {
				return 0, formatErr("AC coefficients past the block")
			}
			blk[unzig[k]] = (e >> 16) * q[k]
			last = k
			k++
			continue
		}
		rs, err := d.symbol(ac)
		if err != nil {
			return 0, err
		}
		run, size := int(rs>>4), rs&15
		if size == 0 {
			if run != 15 {
				break // end of block
			}
			k += 16
			continue
		}
		k += run
		if k > 63 {
			return 0, formatErr("AC coefficients past the block")
		}
		blk[unzig[k]] = d.receive(size) * q[k]
		last = k
		k++
	}
	return last, nil
}
