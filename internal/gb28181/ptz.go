package gb28181

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// PTZ is one pan/tilt/zoom or preset command of GB/T 28181 (appendix A:
// the 8-byte PTZCmd a DeviceControl carries).
type PTZ struct {
	// Pan is -1 (left), 0 or 1 (right); Tilt -1 (down), 0 or 1 (up); Zoom
	// -1 (out), 0 or 1 (in). All 0 stops.
	Pan, Tilt, Zoom int
	// Speed (0-255) drives pan and tilt; zoom takes its top 4 bits.
	Speed int
	// Preset, with PresetOp set, addresses preset 1-255 instead.
	PresetOp PresetOp
	Preset   int
}

// PresetOp is what a PTZ command does with a preset.
type PresetOp byte

// Preset operations (the command byte).
const (
	PresetNone   PresetOp = 0
	PresetSet    PresetOp = 0x81
	PresetGoto   PresetOp = 0x82
	PresetDelete PresetOp = 0x83
)

// ErrPTZ is wrapped by an invalid PTZ command.
var ErrPTZ = errors.New("gb28181: invalid PTZ command")

// Bytes encodes the command: A5, version/checksum nibble, address, the
// instruction, two data bytes, zoom speed with the address's high
// nibble, and the sum of the first seven bytes.
func (p PTZ) Bytes() ([8]byte, error) {
	var b [8]byte
	b[0] = 0xA5
	b[1] = (0xA + 0x5 + 0x0) & 0x0F // version 0, checksum of byte 1's nibbles
	b[2] = 0x01                     // address: the channel the request names
	switch {
	case p.PresetOp != PresetNone:
		if p.Preset < 1 || p.Preset > 255 {
			return b, fmt.Errorf("%w: preset %d, want 1-255", ErrPTZ, p.Preset)
		}
		b[3], b[5] = byte(p.PresetOp), byte(p.Preset)
	default:
		if p.Pan < -1 || p.Pan > 1 || p.Tilt < -1 || p.Tilt > 1 || p.Zoom < -1 || p.Zoom > 1 {
			return b, fmt.Errorf("%w: pan, tilt and zoom are -1, 0 or 1", ErrPTZ)
		}
		if p.Speed < 0 || p.Speed > 255 {
			return b, fmt.Errorf("%w: speed %d, want 0-255", ErrPTZ, p.Speed)
		}
		var c byte
		switch p.Pan {
		case 1:
			c |= 0x01
		case -1:
			c |= 0x02
		}
		switch p.Tilt {
		case -1:
			c |= 0x04
		case 1:
			c |= 0x08
		}
		switch p.Zoom {
		case 1:
			c |= 0x10
		case -1:
			c |= 0x20
		}
		b[3] = c
		if p.Pan != 0 {
			b[4] = byte(p.Speed)
		}
		if p.Tilt != 0 {
			b[5] = byte(p.Speed)
		}
		if p.Zoom != 0 {
			b[6] = byte(p.Speed) & 0xF0
		}
	}
	sum := 0
	for _, x := range b[:7] {
		sum += int(x)
	}
	b[7] = byte(sum)
	return b, nil
}

// ParsePTZ decodes a PTZCmd hex string, checking its checksum.
func ParsePTZ(s string) (PTZ, error) {
	raw, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != 8 {
		return PTZ{}, fmt.Errorf("%w: %q is not 8 bytes of hex", ErrPTZ, s)
	}
	if raw[0] != 0xA5 {
		return PTZ{}, fmt.Errorf("%w: first byte %02X, want A5", ErrPTZ, raw[0])
	}
	sum := 0
	for _, x := range raw[:7] {
		sum += int(x)
	}
	if byte(sum) != raw[7] {
		return PTZ{}, fmt.Errorf("%w: checksum %02X, want %02X", ErrPTZ, raw[7], byte(sum))
	}
	c := raw[3]
	if op := PresetOp(c); op == PresetSet || op == PresetGoto || op == PresetDelete {
		return PTZ{PresetOp: op, Preset: int(raw[5])}, nil
	}
	if c&0xC0 != 0 {
		return PTZ{}, fmt.Errorf("%w: instruction %02X is not a PTZ or preset one", ErrPTZ, c)
	}
	var p PTZ
	switch {
	case c&0x01 != 0:
		p.Pan, p.Speed = 1, int(raw[4])
	case c&0x02 != 0:
		p.Pan, p.Speed = -1, int(raw[4])
	}
	switch {
	case c&0x08 != 0:
		p.Tilt, p.Speed = 1, int(raw[5])
	case c&0x04 != 0:
		p.Tilt, p.Speed = -1, int(raw[5])
	}
	switch {
	case c&0x10 != 0:
		p.Zoom = 1
	case c&0x20 != 0:
		p.Zoom = -1
	}
	if p.Zoom != 0 && p.Pan == 0 && p.Tilt == 0 {
		p.Speed = int(raw[6] & 0xF0)
	}
	return p, nil
}

// ControlPTZ sends a DeviceControl with cmd to channel of the registered
// device id; the device's 200 OK is the answer.
func (s *Server) ControlPTZ(ctx context.Context, id, channel string, cmd PTZ) error {
	if !ValidID(channel) {
		return fmt.Errorf("gb28181: channel %q is not a 20-digit id", clean(channel))
	}
	b, err := cmd.Bytes()
	if err != nil {
		return err
	}
	doc := fmt.Sprintf("<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Control>\r\n<CmdType>DeviceControl</CmdType>\r\n<SN>%d</SN>\r\n<DeviceID>%s</DeviceID>\r\n<PTZCmd>%s</PTZCmd>\r\n<Info>\r\n<ControlPriority>5</ControlPriority>\r\n</Info>\r\n</Control>\r\n",
		s.sn.Add(1), channel, strings.ToUpper(hex.EncodeToString(b[:])))
	return s.request(ctx, id, []byte(doc))
}
