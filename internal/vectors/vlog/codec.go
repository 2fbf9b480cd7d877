package vlog

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

// ErrCorrupt means a file fails its checks; the index is then rebuilt.
// An engine's snapshot reader returns it (wrapped) for what it cannot
// read.
var ErrCorrupt = errors.New("vectors: index file corrupt")

// Enc appends little-endian values to a buffer.
type Enc struct{ B []byte }

// U8 appends a byte.
func (e *Enc) U8(v uint8) { e.B = append(e.B, v) }

// U16 appends a uint16.
func (e *Enc) U16(v uint16) { e.B = binary.LittleEndian.AppendUint16(e.B, v) }

// U32 appends a uint32.
func (e *Enc) U32(v uint32) { e.B = binary.LittleEndian.AppendUint32(e.B, v) }

// I64 appends an int64.
func (e *Enc) I64(v int64) { e.B = binary.LittleEndian.AppendUint64(e.B, uint64(v)) }

// F32 appends a float32.
func (e *Enc) F32(v float32) {
	e.B = binary.LittleEndian.AppendUint32(e.B, math.Float32bits(v))
}

// Str appends a string of up to 65,535 bytes, length first.
func (e *Enc) Str(s string) { e.U16(uint16(len(s))); e.B = append(e.B, s...) }

// Dec reads what Enc wrote from a byte slice, remembering the first
// short read (Err, ErrCorrupt).
type Dec struct {
	B   []byte
	Err error
}

// Take returns the next n bytes, nil after a short read.
func (d *Dec) Take(n int) []byte {
	if d.Err != nil || n > len(d.B) || n < 0 {
		d.Err = ErrCorrupt
		return nil
	}
	v := d.B[:n]
	d.B = d.B[n:]
	return v
}

// U8 reads a byte.
func (d *Dec) U8() uint8 {
	if b := d.Take(1); b != nil {
		return b[0]
	}
	return 0
}

// U16 reads a uint16.
func (d *Dec) U16() uint16 {
	if b := d.Take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

// U32 reads a uint32.
func (d *Dec) U32() uint32 {
	if b := d.Take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// I64 reads an int64.
func (d *Dec) I64() int64 {
	if b := d.Take(8); b != nil {
		return int64(binary.LittleEndian.Uint64(b))
	}
	return 0
}

// F32 reads a float32.
func (d *Dec) F32() float32 { return math.Float32frombits(d.U32()) }

// Str reads a string Enc.Str wrote.
func (d *Dec) Str() string { return string(d.Take(int(d.U16()))) }

// Writer writes a snapshot stream with a running CRC and buffering: an
// engine encodes into its Enc and calls Flush every so often.
type Writer struct {
	Enc
	w   *bufio.Writer
	crc hash.Hash32
}

func newWriter(w io.Writer) *Writer {
	c := crc32.New(castagnoli)
	return &Writer{w: bufio.NewWriterSize(io.MultiWriter(w, c), 1<<20), crc: c}
}

// Flush moves the encoded bytes out once they pass 64 KiB (or always).
func (s *Writer) Flush(force bool) error {
	if len(s.B) < 64<<10 && !force {
		return nil
	}
	_, err := s.w.Write(s.B)
	s.B = s.B[:0]
	return err
}

// Reader reads a snapshot stream back with the same CRC.
type Reader struct {
	r   *bufio.Reader
	crc hash.Hash32
	// Err is the first failed read (ErrCorrupt wrapped).
	Err error
	buf []byte
}

func newReader(r io.Reader) *Reader {
	c := crc32.New(castagnoli)
	return &Reader{r: bufio.NewReaderSize(io.TeeReader(r, c), 1<<20), crc: c}
}

// Next returns a decoder over the next n bytes; after a failed read, one
// that fails too.
func (s *Reader) Next(n int) *Dec {
	if s.Err != nil {
		return &Dec{Err: s.Err}
	}
	if n < 0 || n > 1<<30 {
		s.Err = fmt.Errorf("%w: a %d-byte section", ErrCorrupt, n)
		return &Dec{Err: s.Err}
	}
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if _, err := io.ReadFull(s.r, b); err != nil {
		s.Err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		return &Dec{Err: s.Err}
	}
	return &Dec{B: b}
}

// Str reads a string Enc.Str wrote.
func (s *Reader) Str() string { l := int(s.Next(2).U16()); return string(s.Next(l).Take(l)) }
