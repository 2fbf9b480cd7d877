package gb28181

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"
)

func TestRTPRoundTripAndFraming(t *testing.T) {
	p := RTPPacket{PayloadType: 96, Marker: true, Seq: 65535, Timestamp: 90000, SSRC: 200000001, Payload: []byte("payload")}
	b := AppendRTP(nil, p)
	got, err := ParseRTP(b)
	if err != nil || got.Seq != p.Seq || got.SSRC != p.SSRC || !got.Marker || got.PayloadType != 96 || string(got.Payload) != "payload" {
		t.Fatalf("%+v, %v", got, err)
	}
	// CSRCs, an extension and padding are skipped.
	x := append([]byte{0xB1, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 9, 9, 9, 9, 0xBE, 0xDE, 0, 1, 7, 7, 7, 7}, 'h', 'i', 0, 0, 3)
	if got, err := ParseRTP(x); err != nil || string(got.Payload) != "hi" || got.SSRC != 2 {
		t.Fatalf("%+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, make([]byte, 11), append([]byte{0x40}, make([]byte, 11)...), {0x8F, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0xA0, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'x', 9}} {
		if _, err := ParseRTP(bad); !errors.Is(err, ErrRTP) {
			t.Errorf("%x: %v", bad, err)
		}
	}
	framed := AppendFramed(AppendFramed(AppendFramed(nil, b), nil), b)
	r := bytes.NewReader(framed)
	buf := make([]byte, MaxRTPPacket)
	for i := 0; i < 2; i++ {
		f, err := ReadFramed(r, buf)
		if err != nil || !bytes.Equal(f, b) {
			t.Fatalf("frame %d: %x, %v", i, f, err)
		}
	}
	if _, err := ReadFramed(r, buf); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if _, err := ReadFramed(bytes.NewReader(framed[:5]), buf); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut frame: %v", err)
	}
}

func TestReorder(t *testing.T) {
	var got []byte
	var lost atomic.Uint64
	var r reorder
	out := func(b []byte, _ bool) error { got = append(got, b...); return nil }
	for _, s := range []uint16{65534, 0, 65535, 1, 1, 0, 3} { // wraps, reordered, duplicated, 2 lost
		_ = r.push(RTPPacket{Seq: s, Payload: []byte{byte(s)}}, out, &lost)
	}
	if !bytes.Equal(got, []byte{0xFE, 0xFF, 0, 1}) {
		t.Fatalf("in order: %x", got)
	}
	for s := uint16(4); s < 4+reorderDepth; s++ {
		_ = r.push(RTPPacket{Seq: s, Payload: []byte{byte(s)}}, out, &lost)
	}
	if len(got) != 4+reorderDepth+1 || lost.Load() != 1 {
		t.Fatalf("after giving up on 2: %x, lost %d", got, lost.Load())
	}
}

func TestPSRoundTrip(t *testing.T) {
	au := bytes.Repeat([]byte{0, 0, 0, 1, 0x65, 1, 2, 3}, 20000) // > one PES
	ps := AppendPS(nil, au, StreamTypeH265, 123456789, true)
	in, err := ScanPS(ps)
	if err != nil || in.Packs != 1 || in.Maps != 1 || in.SystemHeaders != 1 || in.PES != 3 || in.VideoType != StreamTypeH265 || in.Truncated {
		t.Fatalf("%+v, %v", in, err)
	}
	if in, err := ScanPS(ps[:100]); err != nil || !in.Truncated || in.VideoType != StreamTypeH265 {
		t.Fatalf("cut: %+v, %v", in, err)
	}
	if _, err := ScanPS([]byte("garbage, not a program stream")); !errors.Is(err, ErrPS) {
		t.Fatalf("garbage: %v", err)
	}
	if crc32MPEG([]byte("123456789")) != 0x0376E6E7 { // CRC-32/MPEG-2 check value
		t.Fatal("crc")
	}
}

func TestSDP(t *testing.T) {
	d := SDP{Origin: "34020000002000000001", Session: "Play", IP: "10.0.0.5", Port: 30000, TCP: true, Setup: "passive", Direction: "recvonly", SSRC: "0200000001"}
	got, err := ParseSDP(d.Marshal())
	if err != nil || got != d {
		t.Fatalf("%+v, %v", got, err)
	}
	for _, bad := range []string{"v=0\r\n", "c=IN IP4 nohost\r\nm=video 1 RTP/AVP 96\r\n", "c=IN IP4 1.2.3.4\r\nm=video 99999 RTP/AVP 96\r\n",
		"c=IN IP4 1.2.3.4\r\nm=video 1 RTP/AVP 96\r\ny=12345678901\r\n", "c=IN IP4 1.2.3.4\r\nm=video 1 UDP/TLS 96\r\n"} {
		if _, err := ParseSDP([]byte(bad)); !errors.Is(err, ErrSDP) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseRTP(f *testing.F) {
	f.Add(AppendRTP(nil, RTPPacket{PayloadType: 96, Seq: 1, SSRC: 1, Payload: []byte{0, 0, 1, 0xBA}}))
	f.Add([]byte{0xB1, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 9, 9, 9, 9, 0xBE, 0xDE, 0, 1, 7, 7, 7, 7, 'h', 'i', 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseRTP(b)
		if err == nil && len(p.Payload) > len(b)-12 {
			t.Fatalf("payload of %d bytes from %d", len(p.Payload), len(b))
		}
		// The framing reader never reads past what a frame says.
		buf := make([]byte, MaxRTPPacket)
		r := bytes.NewReader(b)
		for i := 0; i < 100; i++ {
			if _, err := ReadFramed(r, buf); err != nil {
				break
			}
		}
	})
}

func FuzzScanPS(f *testing.F) {
	f.Add(AppendPS(nil, []byte{0, 0, 0, 1, 0x65, 1, 2, 3}, StreamTypeH264, 0, true))
	f.Add(AppendPS(nil, []byte{0, 0, 0, 1, 0x41}, StreamTypeH264, 3600, false))
	f.Add([]byte{0, 0, 1, 0xBC, 0, 6, 0xE0, 0xFF, 0xFF, 0xFF, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ScanPS(b)
		if err == nil && in.Packs+in.Maps+in.PES+in.SystemHeaders > len(b)/4+1 {
			t.Fatalf("%+v from %d bytes", in, len(b))
		}
	})
}

func FuzzParseSDP(f *testing.F) {
	f.Add(SDP{Origin: "1", Session: "Play", IP: "127.0.0.1", Port: 5000, SSRC: "0200000001"}.Marshal())
	f.Add(SDP{IP: "::1", Port: 1, TCP: true, Setup: "active"}.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseSDP(b)
		if err != nil {
			return
		}
		if d.Port < 0 || d.Port > 65535 || len(d.SSRC) > 10 {
			t.Fatalf("%+v", d)
		}
		if again, err := ParseSDP(d.Marshal()); err != nil || again.IP != d.IP || again.Port != d.Port || again.SSRC != d.SSRC || again.TCP != d.TCP {
			t.Fatalf("%+v → %+v, %v", d, again, err)
		}
	})
}

func FuzzParsePTZ(f *testing.F) {
	b, _ := PTZ{Pan: 1, Tilt: -1, Speed: 9}.Bytes()
	f.Add(string(hexBytes(b[:])))
	f.Add("A50F018200010038")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePTZ(s)
		if err != nil {
			return
		}
		if _, err := p.Bytes(); err != nil && p.PresetOp == PresetNone {
			t.Fatalf("%q parsed to %+v, which does not encode: %v", s, p, err)
		}
	})
}
