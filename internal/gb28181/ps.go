package gb28181

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MPEG-2 program stream (ISO/IEC 13818-1) as GB/T 28181 carries video:
// a pack header before each frame, a system header and a program stream
// map (PSM) before each key frame, the frame in PES packets of stream
// 0xE0. The PSM's stream type names the codec; ffmpeg's mpeg muxer
// writes no PSM (its demuxer guesses the codec), so the simulator packs
// PS itself, as cameras do.

// Stream types a PSM gives video in GB/T 28181.
const (
	StreamTypeH264 = 0x1B
	StreamTypeH265 = 0x24
)

const (
	psPack   = 0xBA
	psSystem = 0xBB
	psMap    = 0xBC
	psVideo  = 0xE0
	// maxPESPayload keeps a PES packet's length in its 16-bit field.
	maxPESPayload = 65535 - 8
)

// ErrPS is wrapped by every program stream parsing error.
var ErrPS = errors.New("gb28181: bad program stream")

// AppendPS appends one access unit (a frame, Annex B) as program stream:
// pack header, on key frames a system header and a PSM naming streamType,
// then PES packets with pts (90 kHz) on the first.
func AppendPS(dst, au []byte, streamType byte, pts uint64, key bool) []byte {
	dst = appendPackHeader(dst, pts)
	if key {
		dst = append(dst, 0, 0, 1, psSystem, 0, 12,
			0x80, 0x04, 0xA9, // rate bound (markers set)
			0x04, 0xE1, 0xFF, // audio bound 1, locks, video bound 1
			0xE0, 0xE0, 0x80, // video: buffer bound
			0xC0, 0xC0, 0x08) // audio: buffer bound
		psm := []byte{0, 0, 1, psMap, 0, 14, 0xE0, 0xFF, 0, 0, 0, 4, streamType, psVideo, 0, 0}
		dst = append(dst, psm...)
		dst = binary.BigEndian.AppendUint32(dst, crc32MPEG(psm))
	}
	first := true
	for len(au) > 0 || first {
		n := min(len(au), maxPESPayload-5)
		hdr := 3
		if first {
			hdr += 5
		}
		dst = append(dst, 0, 0, 1, psVideo)
		dst = binary.BigEndian.AppendUint16(dst, uint16(hdr+n))
		if first {
			dst = append(dst, 0x80, 0x80, 5)
			dst = append(dst, 0x21|byte(pts>>29)&0x0E, byte(pts>>22), byte(pts>>14)|1, byte(pts>>7), byte(pts<<1)|1)
		} else {
			dst = append(dst, 0x80, 0, 0)
		}
		dst = append(dst, au[:n]...)
		au = au[n:]
		first = false
	}
	return dst
}

func appendPackHeader(dst []byte, scr uint64) []byte {
	const muxRate = 6106 // ×50 bytes/s; informative
	rate := uint32(muxRate)
	return append(dst, 0, 0, 1, psPack,
		0x44|byte(scr>>27)&0x38|byte(scr>>28)&0x03,
		byte(scr>>20),
		0x04|byte(scr>>12)&0xF8|byte(scr>>13)&0x03,
		byte(scr>>5),
		0x04|byte(scr<<3)&0xF8,
		0x01,
		byte(rate>>14), byte(rate>>6), byte(rate<<2)|0x03,
		0xF8)
}

// crc32MPEG is the CRC of MPEG-2 sections: polynomial 0x04C11DB7, not
// reflected, initial value all ones.
func crc32MPEG(b []byte) uint32 {
	crc := uint32(0xFFFFFFFF)
	for _, c := range b {
		crc ^= uint32(c) << 24
		for i := 0; i < 8; i++ {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// PSInfo is what ScanPS found in a piece of program stream.
type PSInfo struct {
	Packs, SystemHeaders, Maps, PES int
	// VideoType is the stream type the last PSM gave stream 0xE0 (0: none
	// seen).
	VideoType byte
	// Truncated says the last packet runs past the end (a packet split
	// across RTP payloads: not an error).
	Truncated bool
}

// Codec names a PSM video stream type: h264, h265, or "type 0x.." for
// others (MPEG-4 0x10, SVAC 0x80, ...).
func Codec(streamType byte) string {
	switch streamType {
	case StreamTypeH264:
		return "h264"
	case StreamTypeH265:
		return "h265"
	case 0:
		return ""
	}
	return fmt.Sprintf("type 0x%02x", streamType)
}

// ScanPS walks the packets of b, which starts at a packet boundary (an
// RTP payload that starts a frame), and says what it holds. Anything
// that is not a program stream packet is an error.
func ScanPS(b []byte) (PSInfo, error) {
	var in PSInfo
	for len(b) > 0 {
		if len(b) < 4 {
			in.Truncated = true
			return in, nil
		}
		if b[0] != 0 || b[1] != 0 || b[2] != 1 {
			return in, fmt.Errorf("%w: no start code (%x)", ErrPS, b[:4])
		}
		id := b[3]
		switch {
		case id == 0xB9: // program end
			return in, nil
		case id == psPack:
			if len(b) < 14 {
				in.Truncated = true
				return in, nil
			}
			if b[4]&0xC0 != 0x40 {
				return in, fmt.Errorf("%w: an MPEG-1 or damaged pack header", ErrPS)
			}
			n := 14 + int(b[13]&0x07)
			if len(b) < n {
				in.Truncated = true
				return in, nil
			}
			in.Packs++
			b = b[n:]
			continue
		case id < psPack:
			return in, fmt.Errorf("%w: stream id 0x%02x is not a packet", ErrPS, id)
		}
		if len(b) < 6 {
			in.Truncated = true
			return in, nil
		}
		n := 6 + int(binary.BigEndian.Uint16(b[4:]))
		if len(b) < n {
			in.Truncated = true
			return in, nil
		}
		body := b[6:n]
		switch {
		case id == psSystem:
			in.SystemHeaders++
		case id == psMap:
			in.Maps++
			if t, err := parsePSM(body); err != nil {
				return in, err
			} else if t != 0 {
				in.VideoType = t
			}
		case id >= 0xC0 && id <= 0xEF:
			in.PES++
		}
		b = b[n:]
	}
	return in, nil
}

// parsePSM returns the stream type the map gives the first video stream.
func parsePSM(b []byte) (byte, error) {
	if len(b) < 4 {
		return 0, fmt.Errorf("%w: program stream map of %d bytes", ErrPS, len(b))
	}
	info := int(binary.BigEndian.Uint16(b[2:]))
	b = b[4:]
	if len(b) < info+2 {
		return 0, fmt.Errorf("%w: program stream map info past its end", ErrPS)
	}
	b = b[info:]
	esLen := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < esLen {
		return 0, fmt.Errorf("%w: elementary stream map past its end", ErrPS)
	}
	b = b[:esLen]
	for len(b) >= 4 {
		typ, id, l := b[0], b[1], int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+l {
			return 0, fmt.Errorf("%w: elementary stream info past its end", ErrPS)
		}
		if id >= 0xE0 && id <= 0xEF {
			return typ, nil
		}
		b = b[4+l:]
	}
	return 0, nil
}
