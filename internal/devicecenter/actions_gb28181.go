package devicecenter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/gb28181"
)

// ControlDevicePTZRequest is the request of ControlDevicePTZ: a move
// (Direction and/or Zoom, at Speed; "stop" stops), or a preset operation.
type ControlDevicePTZRequest struct {
	DeviceId string `json:"DeviceId" validate:"required,max=64"`
	// Direction is up, down, left, right, upleft, upright, downleft,
	// downright or stop.
	Direction string `json:"Direction" validate:"max=16"`
	// Zoom is in or out.
	Zoom string `json:"Zoom" validate:"max=8"`
	// Speed is 1-255 (default 128); zoom uses its top 4 bits.
	Speed int `json:"Speed" validate:"min=0,max=255"`
	// PresetAction is set, goto or delete, on preset PresetIndex (1-255);
	// not with Direction or Zoom.
	PresetAction string `json:"PresetAction" validate:"max=8"`
	PresetIndex  int    `json:"PresetIndex" validate:"min=0,max=255"`
}

// ControlDevicePTZResponse says what was sent.
type ControlDevicePTZResponse struct {
	// PTZCmd is the 8-byte GB/T 28181 command sent, in hex.
	PTZCmd string `json:"PTZCmd"`
}

// DescribeDeviceDiagnosisRequest is the request of DescribeDeviceDiagnosis.
type DescribeDeviceDiagnosisRequest struct {
	DeviceId string `json:"DeviceId" validate:"required,max=64"`
}

// GBStreamDiagnosis is the last live stream of a GB/T 28181 channel.
type GBStreamDiagnosis struct {
	Active bool `json:"Active"`
	// Transport is UDP or TCP; MediaIp and LocalPort where the platform
	// asked for the RTP; Remote where it came from.
	Transport string `json:"Transport"`
	MediaIp   string `json:"MediaIp"`
	LocalPort int    `json:"LocalPort"`
	Remote    string `json:"Remote"`
	// SdpSent and SdpReceived are the INVITE's offer and the answer.
	SdpSent     string `json:"SdpSent"`
	SdpReceived string `json:"SdpReceived"`
	// SsrcExpected is the SSRC accepted; SsrcSeen others that arrived.
	SsrcExpected     string   `json:"SsrcExpected"`
	SsrcSeen         []string `json:"SsrcSeen"`
	RtpPackets       uint64   `json:"RtpPackets"`
	RtpBytes         uint64   `json:"RtpBytes"`
	WrongSsrcPackets uint64   `json:"WrongSsrcPackets"`
	MalformedPackets uint64   `json:"MalformedPackets"`
	LostPackets      uint64   `json:"LostPackets"`
	// Codec is what the program stream map names: h264, h265.
	Codec           string `json:"Codec"`
	InviteTime      string `json:"InviteTime"`
	AnswerTime      string `json:"AnswerTime"`
	FirstPacketTime string `json:"FirstPacketTime"`
	LastPacketTime  string `json:"LastPacketTime"`
	EndTime         string `json:"EndTime"`
	LastError       string `json:"LastError"`
	// Receiver is the worker that receives the stream when the platform
	// runs as separate processes (the SIP server invited the device for
	// it); empty: the SIP server's process. Its counters are as that
	// worker last reported them (every 2 s).
	Receiver string `json:"Receiver"`
}

// DescribeDeviceDiagnosisResponse is why a GB/T 28181 device or channel
// has (no) video: its registration, keepalives and last stream.
type DescribeDeviceDiagnosisResponse struct {
	DeviceId string `json:"DeviceId"`
	// GbId is the device's or channel's GB id; RegisteredAs the id that
	// registers (the parent, for a channel).
	GbId         string `json:"GbId"`
	RegisteredAs string `json:"RegisteredAs"`
	Registered   bool   `json:"Registered"`
	Online       bool   `json:"Online"`
	// SipTransport and RemoteAddr are how the device registered.
	SipTransport       string `json:"SipTransport"`
	RemoteAddr         string `json:"RemoteAddr"`
	LastRegisterTime   string `json:"LastRegisterTime"`
	RegisterExpireTime string `json:"RegisterExpireTime"`
	LastKeepaliveTime  string `json:"LastKeepaliveTime"`
	KeepaliveAgeMs     int64  `json:"KeepaliveAgeMs"`
	// InCatalog and ChannelOn: what the parent's catalog says (channels).
	InCatalog bool `json:"InCatalog"`
	ChannelOn bool `json:"ChannelOn"`
	// Stream is the last live stream; absent when none was asked for.
	Stream *GBStreamDiagnosis `json:"Stream,omitempty"`
	// Hints say, in words, what looks wrong.
	Hints []string `json:"Hints"`
}

var ptzDirections = map[string][2]int{"up": {0, 1}, "down": {0, -1}, "left": {-1, 0}, "right": {1, 0},
	"upleft": {-1, 1}, "upright": {1, 1}, "downleft": {-1, -1}, "downright": {1, -1}, "stop": {0, 0}}

// ptzCommand checks a request and returns its command.
func ptzCommand(r *ControlDevicePTZRequest) (gb28181.PTZ, error) {
	if r.PresetAction != "" {
		ops := map[string]gb28181.PresetOp{"set": gb28181.PresetSet, "goto": gb28181.PresetGoto, "delete": gb28181.PresetDelete}
		op, ok := ops[r.PresetAction]
		if !ok {
			return gb28181.PTZ{}, api.InvalidValue("PresetAction", "%q: want set, goto or delete", r.PresetAction)
		}
		if r.Direction != "" || r.Zoom != "" {
			return gb28181.PTZ{}, api.InvalidValue("PresetAction", "not together with Direction or Zoom")
		}
		if r.PresetIndex < 1 {
			return gb28181.PTZ{}, api.InvalidValue("PresetIndex", "%d: want 1-255", r.PresetIndex)
		}
		return gb28181.PTZ{PresetOp: op, Preset: r.PresetIndex}, nil
	}
	if r.Direction == "" && r.Zoom == "" {
		return gb28181.PTZ{}, api.Missing("Direction, Zoom or PresetAction")
	}
	var p gb28181.PTZ
	if r.Direction != "" {
		d, ok := ptzDirections[r.Direction]
		if !ok {
			return p, api.InvalidValue("Direction", "%q: want up, down, left, right, upleft, upright, downleft, downright or stop", r.Direction)
		}
		p.Pan, p.Tilt = d[0], d[1]
	}
	switch r.Zoom {
	case "":
	case "in":
		p.Zoom = 1
	case "out":
		p.Zoom = -1
	default:
		return p, api.InvalidValue("Zoom", "%q: want in or out", r.Zoom)
	}
	if r.Direction == "stop" && r.Zoom != "" {
		return p, api.InvalidValue("Zoom", "not together with Direction stop")
	}
	p.Speed = r.Speed
	if p.Speed == 0 {
		p.Speed = 128
	}
	return p, nil
}

// gbTarget returns the GB/T 28181 server and the ids a device is
// reached by: the registrant's, and the channel's (the device's own).
func (s *Service) gbTarget(ctx context.Context, c *api.Caller, deviceID string) (*GB28181, *Device, string, error) {
	if err := s.visible(ctx, c, deviceID); err != nil {
		return nil, nil, "", err
	}
	d, err := s.Get(ctx, deviceID)
	if err != nil {
		return nil, nil, "", err
	}
	if d.Config.Driver != "gb28181" {
		return nil, nil, "", api.InvalidValue("DeviceId", "device %s has driver %s; this action is for gb28181 devices", d.ID, d.Config.Driver)
	}
	g := s.gb.Load()
	if g == nil {
		return nil, nil, "", api.Errorf(api.FailedOperation, "the GB/T 28181 SIP server is off (start it with --gb28181.addr)")
	}
	id := d.Config.Address
	if p := parentOf(d); p != "" {
		id = p
	}
	return g, d, id, nil
}

func registerGB28181Actions(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "ControlDevicePTZ", Summary: "Move a GB/T 28181 camera (pan, tilt, zoom, stop) or set, go to or delete a preset, through a DeviceControl PTZCmd.", Permission: devWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ControlDevicePTZRequest) (*ControlDevicePTZResponse, error) {
			cmd, err := ptzCommand(r)
			if err != nil {
				return nil, err
			}
			g, d, id, err := s.gbTarget(ctx, c, r.DeviceId)
			if err != nil {
				return nil, err
			}
			c.SetResource(d.ID)
			b, err := cmd.Bytes()
			if err != nil {
				return nil, api.InvalidValue("Speed", "%v", err)
			}
			if err := g.srv.ControlPTZ(ctx, id, d.Config.Address, cmd); err != nil {
				if errors.Is(err, gb28181.ErrNotRegistered) {
					return nil, api.Errorf(api.FailedOperation, "device %s (GB id %s) is not registered", d.ID, id)
				}
				return nil, api.Errorf(api.FailedOperation, "%v", err)
			}
			return &ControlDevicePTZResponse{PTZCmd: fmt.Sprintf("%X", b[:])}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeDeviceDiagnosis", Summary: "Say why a GB/T 28181 device has no video: last REGISTER, keepalive age, the SDP sent and received, RTP packets and bytes, SSRC seen and expected, ports, last error.", Permission: devRead},
		func(ctx context.Context, c *api.Caller, r *DescribeDeviceDiagnosisRequest) (*DescribeDeviceDiagnosisResponse, error) {
			g, d, id, err := s.gbTarget(ctx, c, r.DeviceId)
			if err != nil {
				return nil, err
			}
			return g.diagnose(d, id), nil
		})
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// diagnose gathers what the server knows of device d (registering as id).
func (g *GB28181) diagnose(d *Device, id string) *DescribeDeviceDiagnosisResponse {
	out := &DescribeDeviceDiagnosisResponse{DeviceId: d.ID, GbId: d.Config.Address, RegisteredAs: id, Hints: []string{}}
	ss, ok := g.srv.Session(id)
	if ok {
		out.Registered, out.Online = true, ss.Online
		out.SipTransport, out.RemoteAddr = ss.Transport, ss.Addr
		out.LastRegisterTime, out.RegisterExpireTime, out.LastKeepaliveTime = stamp(ss.LastRegister), stamp(ss.Expires), stamp(ss.LastKeepalive)
		out.KeepaliveAgeMs = g.s.now().Sub(ss.LastKeepalive).Milliseconds()
		on, in := ss.Channels[d.Config.Address]
		out.InCatalog, out.ChannelOn = in, on
	}
	hint := func(f string, a ...any) { out.Hints = append(out.Hints, fmt.Sprintf(f, a...)) }
	switch {
	case !ok:
		hint("%s has not registered: check the device's SIP server id, address, port and password", id)
	case !ss.Online:
		hint("%s stopped sending keepalives", id)
	case id != d.Config.Address && !out.InCatalog:
		hint("channel %s is not in the catalog of %s", d.Config.Address, id)
	case id != d.Config.Address && !out.ChannelOn:
		hint("the catalog of %s says channel %s is off", id, d.Config.Address)
	}
	md, played := g.srv.MediaDiag(id, d.Config.Address)
	if !played {
		if ok {
			hint("no live video was asked for yet: start a task reading this device")
		}
		return out
	}
	out.Stream = &GBStreamDiagnosis{Active: md.Active, Transport: md.Transport, MediaIp: md.MediaIP, LocalPort: md.LocalPort, Remote: md.Remote,
		SdpSent: md.SDPSent, SdpReceived: md.SDPReceived, SsrcExpected: md.SSRCExpected, SsrcSeen: append([]string{}, md.SSRCSeen...),
		RtpPackets: md.Packets, RtpBytes: md.Bytes, WrongSsrcPackets: md.WrongSSRC, MalformedPackets: md.Malformed, LostPackets: md.Lost,
		Codec: md.Codec, InviteTime: stamp(md.Invited), AnswerTime: stamp(md.Answered), FirstPacketTime: stamp(md.FirstPacket),
		LastPacketTime: stamp(md.LastPacket), EndTime: stamp(md.Ended), LastError: md.LastError, Receiver: md.Receiver}
	switch {
	case md.Answered.IsZero():
		hint("the device did not accept the INVITE: %s", md.LastError)
	case md.Packets == 0 && md.WrongSSRC > 0:
		hint("RTP arrives with SSRC %v, but the INVITE asked for %s: the device ignores the SDP's y= line", md.SSRCSeen, md.SSRCExpected)
	case md.Packets == 0:
		hint("no RTP reached %s port %d/%s: the device must be able to reach that address (behind NAT set --gb28181.media-ip to the platform's public address and open the --gb28181.media-ports range)",
			md.MediaIP, md.LocalPort, md.Transport)
	case md.Codec != "" && md.Codec != "h264" && md.Codec != "h265":
		hint("the stream's codec is %s; H.264 and H.265 are decoded", md.Codec)
	}
	return out
}
