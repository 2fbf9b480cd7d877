package gb28181

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SDP is the part of a GB/T 28181 session description that matters for
// live video: where the media goes, over what, and its SSRC (the y= line
// GB/T 28181 adds).
type SDP struct {
	// Origin is the o= user (the sender's GB id).
	Origin string
	// Session is the s= name: Play for live video.
	Session string
	// IP and Port are where the sender wants media (offer) or sends it
	// from (answer).
	IP   string
	Port int
	// TCP selects RTP over TCP (RFC 4571); Setup is then active or
	// passive (who connects).
	TCP   bool
	Setup string
	// Direction is recvonly (our offer) or sendonly (the device's answer).
	Direction string
	// SSRC is the y= value: 10 digits, the first 0 for live video.
	SSRC string
}

// maxSDP bounds a session description.
const maxSDP = 4096

// Marshal writes the description.
func (d SDP) Marshal() []byte {
	proto := "RTP/AVP"
	if d.TCP {
		proto = "TCP/RTP/AVP"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=%s 0 0 IN IP4 %s\r\ns=%s\r\nc=IN IP4 %s\r\nt=0 0\r\nm=video %d %s 96\r\n", d.Origin, d.IP, d.Session, d.IP, d.Port, proto)
	if d.Direction != "" {
		b.WriteString("a=" + d.Direction + "\r\n")
	}
	b.WriteString("a=rtpmap:96 PS/90000\r\n")
	if d.TCP {
		fmt.Fprintf(&b, "a=setup:%s\r\na=connection:new\r\n", d.Setup)
	}
	if d.SSRC != "" {
		b.WriteString("y=" + d.SSRC + "\r\n")
	}
	return []byte(b.String())
}

// ErrSDP is wrapped by every session description parsing error.
var ErrSDP = errors.New("gb28181: bad SDP")

// ParseSDP reads the fields of SDP from a description, the video media
// section's where it has them.
func ParseSDP(b []byte) (SDP, error) {
	var d SDP
	if len(b) > maxSDP {
		return d, fmt.Errorf("%w: %d bytes, more than %d", ErrSDP, len(b), maxSDP)
	}
	video := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r ")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		v := line[2:]
		switch line[0] {
		case 'o':
			d.Origin, _, _ = strings.Cut(v, " ")
		case 's':
			d.Session = v
		case 'c':
			f := strings.Fields(v)
			if len(f) != 3 || f[0] != "IN" {
				return d, fmt.Errorf("%w: c=%s", ErrSDP, v)
			}
			if net.ParseIP(f[2]) == nil {
				return d, fmt.Errorf("%w: c= address %q is not an IP", ErrSDP, f[2])
			}
			d.IP = f[2]
		case 'm':
			f := strings.Fields(v)
			if len(f) < 3 || f[0] != "video" {
				video = false
				continue
			}
			video = true
			p, err := strconv.Atoi(f[1])
			if err != nil || p < 0 || p > 65535 {
				return d, fmt.Errorf("%w: m= port %q", ErrSDP, f[1])
			}
			d.Port = p
			switch strings.ToUpper(f[2]) {
			case "RTP/AVP":
			case "TCP/RTP/AVP", "RTP/AVP/TCP":
				d.TCP = true
			default:
				return d, fmt.Errorf("%w: m= protocol %q", ErrSDP, f[2])
			}
		case 'a':
			if !video {
				continue
			}
			switch {
			case v == "recvonly" || v == "sendonly" || v == "sendrecv":
				d.Direction = v
			case strings.HasPrefix(v, "setup:"):
				d.Setup = strings.TrimPrefix(v, "setup:")
			}
		case 'y':
			if len(v) > 10 {
				return d, fmt.Errorf("%w: y=%q longer than 10 digits", ErrSDP, v)
			}
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return d, fmt.Errorf("%w: y=%q is not a number", ErrSDP, v)
			}
			d.SSRC = v
		}
	}
	if !video && d.Port == 0 {
		return d, fmt.Errorf("%w: no video media line", ErrSDP)
	}
	if d.IP == "" {
		return d, fmt.Errorf("%w: no c= address", ErrSDP)
	}
	return d, nil
}

// ssrcValue is the RTP SSRC a y= string stands for (ParseSDP has
// checked it fits 32 bits).
func ssrcValue(y string) uint32 {
	n, _ := strconv.ParseUint(y, 10, 32)
	return uint32(n)
}
