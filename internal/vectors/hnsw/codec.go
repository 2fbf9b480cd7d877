package hnsw

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt means a file fails its checks; the index is then rebuilt.
var errCorrupt = errors.New("hnsw: index file corrupt")

// enc appends little-endian values to a buffer.
type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) i64(v int64)  { e.b = binary.LittleEndian.AppendUint64(e.b, uint64(v)) }
func (e *enc) f32(v float32) {
	e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(v))
}
func (e *enc) str(s string) { e.u16(uint16(len(s))); e.b = append(e.b, s...) }

// dec reads what enc wrote from a byte slice, remembering the first
// short read.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil || n > len(d.b) || n < 0 {
		d.err = errCorrupt
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
func (d *dec) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}
func (d *dec) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}
func (d *dec) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}
func (d *dec) i64() int64 {
	if b := d.take(8); b != nil {
		return int64(binary.LittleEndian.Uint64(b))
	}
	return 0
}
func (d *dec) f32() float32 { return math.Float32frombits(d.u32()) }
func (d *dec) str() string  { return string(d.take(int(d.u16()))) }

// swriter writes a stream with a running CRC and buffering.
type swriter struct {
	w   *bufio.Writer
	crc hash.Hash32
	e   enc
}

func newSWriter(w io.Writer) *swriter {
	c := crc32.New(castagnoli)
	return &swriter{w: bufio.NewWriterSize(io.MultiWriter(w, c), 1<<20), crc: c}
}

// flush moves the encoded bytes out once they pass 64 KiB (or always).
func (s *swriter) flush(force bool) error {
	if len(s.e.b) < 64<<10 && !force {
		return nil
	}
	_, err := s.w.Write(s.e.b)
	s.e.b = s.e.b[:0]
	return err
}

// sreader reads a stream back with the same CRC.
type sreader struct {
	r   *bufio.Reader
	crc hash.Hash32
	err error
	buf []byte
}

func newSReader(r io.Reader) *sreader {
	c := crc32.New(castagnoli)
	return &sreader{r: bufio.NewReaderSize(io.TeeReader(r, c), 1<<20), crc: c}
}

// next returns a decoder over the next n bytes.
func (s *sreader) next(n int) *dec {
	if s.err != nil {
		return &dec{err: s.err}
	}
	if n < 0 || n > 1<<30 {
		s.err = fmt.Errorf("%w: a %d-byte section", errCorrupt, n)
		return &dec{err: s.err}
	}
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if _, err := io.ReadFull(s.r, b); err != nil {
		s.err = fmt.Errorf("%w: %v", errCorrupt, err)
		return &dec{err: s.err}
	}
	return &dec{b: b}
}
