package gb28181

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// RTPPacket is one RTP packet (RFC 3550) as GB/T 28181 devices send
// video: payload type 96 carrying MPEG-2 program stream.
type RTPPacket struct {
	PayloadType uint8
	Marker      bool
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
	// Payload aliases the parsed buffer.
	Payload []byte
}

// ErrRTP is wrapped by every RTP parsing error.
var ErrRTP = errors.New("gb28181: bad RTP packet")

// MaxRTPPacket bounds one RTP packet (a UDP datagram, or an RFC 4571
// frame, whose 2-byte length bounds it anyway).
const MaxRTPPacket = 65535

// ParseRTP parses one RTP packet; the payload aliases b.
func ParseRTP(b []byte) (RTPPacket, error) {
	if len(b) < 12 {
		return RTPPacket{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrRTP, len(b))
	}
	if v := b[0] >> 6; v != 2 {
		return RTPPacket{}, fmt.Errorf("%w: version %d", ErrRTP, v)
	}
	off := 12 + 4*int(b[0]&0x0F)
	if len(b) < off {
		return RTPPacket{}, fmt.Errorf("%w: CSRC list past the end", ErrRTP)
	}
	if b[0]&0x10 != 0 { // header extension
		if len(b) < off+4 {
			return RTPPacket{}, fmt.Errorf("%w: extension past the end", ErrRTP)
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
		if len(b) < off {
			return RTPPacket{}, fmt.Errorf("%w: extension past the end", ErrRTP)
		}
	}
	end := len(b)
	if b[0]&0x20 != 0 { // padding
		pad := int(b[end-1])
		if pad == 0 || off+pad > end {
			return RTPPacket{}, fmt.Errorf("%w: padding %d", ErrRTP, pad)
		}
		end -= pad
	}
	return RTPPacket{
		PayloadType: b[1] & 0x7F,
		Marker:      b[1]&0x80 != 0,
		Seq:         binary.BigEndian.Uint16(b[2:]),
		Timestamp:   binary.BigEndian.Uint32(b[4:]),
		SSRC:        binary.BigEndian.Uint32(b[8:]),
		Payload:     b[off:end],
	}, nil
}

// AppendRTP appends p, with a plain 12-byte header, to dst.
func AppendRTP(dst []byte, p RTPPacket) []byte {
	var h [12]byte
	h[0] = 0x80
	h[1] = p.PayloadType & 0x7F
	if p.Marker {
		h[1] |= 0x80
	}
	binary.BigEndian.PutUint16(h[2:], p.Seq)
	binary.BigEndian.PutUint32(h[4:], p.Timestamp)
	binary.BigEndian.PutUint32(h[8:], p.SSRC)
	dst = append(dst, h[:]...)
	return append(dst, p.Payload...)
}

// ReadFramed reads one RFC 4571 frame (a 2-byte big-endian length, then
// that many bytes: RTP over TCP) into buf, which must hold MaxRTPPacket
// bytes, and returns it. Empty frames are skipped.
func ReadFramed(r io.Reader, buf []byte) ([]byte, error) {
	for {
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(l[:]))
		if n == 0 {
			continue
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return nil, noEOF(err)
		}
		return buf[:n], nil
	}
}

// AppendFramed appends pkt with its RFC 4571 length prefix.
func AppendFramed(dst, pkt []byte) []byte {
	return append(binary.BigEndian.AppendUint16(dst, uint16(len(pkt))), pkt...)
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
