package device

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// onvifResponder answers the Profile S messages the driver sends, checking
// the WS-Security UsernameToken on every call but GetSystemDateAndTime.
type onvifResponder struct {
	user, pass  string
	streamURI   string
	snapshotURI string
	mediaURL    string
	calls       atomic.Int64
}

func (o *onvifResponder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	var env struct {
		Header struct {
			Token struct {
				Username string `xml:"Username"`
				Password struct {
					Type  string `xml:"Type,attr"`
					Value string `xml:",chardata"`
				} `xml:"Password"`
				Nonce   string `xml:"Nonce"`
				Created string `xml:"Created"`
			} `xml:"Security>UsernameToken"`
		} `xml:"Header"`
		Body struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/soap+xml") {
		http.Error(w, "bad soap", http.StatusBadRequest)
		return
	}
	var op struct{ XMLName xml.Name }
	_ = xml.Unmarshal(env.Body.Inner, &op)
	name := op.XMLName.Local
	if op.XMLName.Space != nsDevice && op.XMLName.Space != nsMedia {
		http.Error(w, "bad namespace "+op.XMLName.Space, http.StatusBadRequest)
		return
	}
	if name != "GetSystemDateAndTime" {
		tok := env.Header.Token
		nonce, _ := base64.StdEncoding.DecodeString(tok.Nonce)
		h := sha1.Sum(append(append(nonce, tok.Created...), o.pass...))
		created, err := time.Parse(time.RFC3339Nano, tok.Created)
		if tok.Username != o.user || tok.Password.Type != passwordDigest || len(nonce) == 0 ||
			tok.Password.Value != base64.StdEncoding.EncodeToString(h[:]) || err != nil || time.Since(created).Abs() > time.Minute {
			w.Header().Set("Content-Type", "application/soap+xml")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="%s" xmlns:ter="http://www.onvif.org/ver10/error"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">Sender not Authorized</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`, nsSOAP12)
			return
		}
	}
	var resp string
	now := time.Now().UTC()
	switch name {
	case "GetSystemDateAndTime":
		resp = fmt.Sprintf(`<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute><tt:Second>%d</tt:Second></tt:Time><tt:Date><tt:Year>%d</tt:Year><tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`,
			now.Hour(), now.Minute(), now.Second(), now.Year(), now.Month(), now.Day())
	case "GetDeviceInformation":
		resp = `<tds:GetDeviceInformationResponse><tds:Manufacturer>Acme</tds:Manufacturer><tds:Model>FaceCam 3</tds:Model><tds:FirmwareVersion>1.2.3</tds:FirmwareVersion><tds:SerialNumber>SN42</tds:SerialNumber><tds:HardwareId>HW1</tds:HardwareId></tds:GetDeviceInformationResponse>`
	case "GetCapabilities":
		resp = `<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>` + o.mediaURL + `</tt:XAddr></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>`
	case "GetProfiles":
		if r.URL.Path != "/onvif/media_service" {
			http.Error(w, "media service is elsewhere", http.StatusNotFound)
			return
		}
		resp = `<trt:GetProfilesResponse>` +
			`<trt:Profiles token="main" fixed="true"><tt:Name>MainStream</tt:Name><tt:VideoEncoderConfiguration token="v0"><tt:Name>v0</tt:Name><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>1280</tt:Width><tt:Height>720</tt:Height></tt:Resolution><tt:RateControl><tt:FrameRateLimit>25</tt:FrameRateLimit></tt:RateControl></tt:VideoEncoderConfiguration></trt:Profiles>` +
			`<trt:Profiles token="sub" fixed="true"><tt:Name>SubStream</tt:Name><tt:VideoEncoderConfiguration token="v1"><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>640</tt:Width><tt:Height>360</tt:Height></tt:Resolution></tt:VideoEncoderConfiguration></trt:Profiles>` +
			`</trt:GetProfilesResponse>`
	case "GetStreamUri":
		if !strings.Contains(string(env.Body.Inner), "RTP-Unicast") || !strings.Contains(string(env.Body.Inner), ">sub<") {
			http.Error(w, "bad GetStreamUri", http.StatusBadRequest)
			return
		}
		resp = `<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>` + xmlEscape(o.streamURI) + `</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>`
	case "GetSnapshotUri":
		resp = `<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>` + xmlEscape(o.snapshotURI) + `</tt:Uri></trt:MediaUri></trt:GetSnapshotUriResponse>`
	default:
		http.Error(w, "unknown action "+name, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="%s" xmlns:tds="%s" xmlns:trt="%s" xmlns:tt="%s"><env:Body>%s</env:Body></env:Envelope>`,
		nsSOAP12, nsDevice, nsMedia, nsSchema, resp)
}

func startONVIF(t *testing.T, streamURI string) (*onvifResponder, string) {
	img := testJPEG(t, 64, 36, 3)
	cam := httptest.NewServer(newCamera("digest-md5", "admin", "12345", img))
	t.Cleanup(cam.Close)
	o := &onvifResponder{user: "admin", pass: "12345", streamURI: streamURI, snapshotURI: cam.URL + "/onvif-http/snapshot?Profile_1"}
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	o.mediaURL = srv.URL + "/onvif/media_service"
	return o, srv.URL + "/onvif/device_service"
}

func TestONVIFProbeAndSnapshot(t *testing.T) {
	_, addr := startONVIF(t, "rtsp://127.0.0.1:1/none")
	rt, _ := newTestRuntime(t)
	cfg := Config{ID: "o", Driver: "onvif", Address: addr, Username: "admin", Password: "12345",
		Options: map[string]any{"profile": "SubStream", "mode": "snapshot"}, FPS: 10}
	res, err := rt.Probe(context.Background(), cfg)
	if err != nil || !res.Online {
		t.Fatalf("probe %v", err)
	}
	if res.Info["vendor"] != "Acme" || res.Info["model"] != "FaceCam 3" || res.Info["profile"] != "sub" ||
		res.Info["stream_uri"] != "rtsp://127.0.0.1:1/none" || len(res.Info["profiles"].([]any)) != 2 || len(res.Snapshot) == 0 {
		t.Fatalf("info %v snapshot %d", res.Info, len(res.Snapshot))
	}

	bad := cfg
	bad.Password = "wrong"
	if _, err := rt.Probe(context.Background(), bad); ReasonOf(err) != ReasonAuthFailed || !strings.Contains(err.Error(), "NotAuthorized") {
		t.Fatalf("wrong password: %v", err)
	}
	src, err := rt.Open(context.Background(), bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rec := &recorder{}
	good, err := rt.Open(context.Background(), cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	waitStatus(t, src, waitLong, "auth_failed", func(s Status) bool { return s.Reason == ReasonAuthFailed })
	waitStatus(t, good, waitLong, "snapshots", func(s Status) bool { return s.FramesDelivered >= 3 })
	if f, _ := rec.lastFrame(); f.Width != 64 {
		t.Fatalf("frame %dx%d", f.Width, f.Height)
	}
}

func TestONVIFStream(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	rtsp := startRTSPServer(t, 0, "--width", "320", "--height", "240")
	_, addr := startONVIF(t, rtsp.URL)
	rt, _ := newTestRuntime(t)
	rec := &recorder{}
	src, err := rt.Open(context.Background(), Config{ID: "os", Driver: "onvif", Address: addr, Username: "admin", Password: "12345",
		Width: 160, FPS: 5, Options: map[string]any{"profile": "sub", "transport": "tcp"}}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waitStatus(t, src, waitLong, "stream frames", func(s Status) bool { return s.FramesDelivered >= 3 })
	if f, _ := rec.lastFrame(); f.Width != 160 || f.Height != 120 {
		t.Fatalf("frame %dx%d", f.Width, f.Height)
	}
}

func TestDiscover(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p struct {
				MessageID string `xml:"Header>MessageID"`
				Types     string `xml:"Body>Probe>Types"`
			}
			if xml.Unmarshal(buf[:n], &p) != nil || !strings.Contains(p.Types, "NetworkVideoTransmitter") {
				continue
			}
			// A stray answer to someone else's probe, then the real one (twice: duplicates are merged).
			stray := probeMatch("urn:uuid:other", "uuid:nobody")
			_, _ = pc.WriteTo([]byte(stray), from)
			_, _ = pc.WriteTo([]byte(probeMatch("urn:uuid:cam-1", p.MessageID)), from)
		}
	}()
	start := time.Now()
	got, err := Discover(context.Background(), DiscoverOptions{Timeout: time.Second, Target: pc.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Endpoint != "urn:uuid:cam-1" || got[0].XAddrs[0] != "http://10.0.0.9/onvif/device_service" ||
		len(got[0].Scopes) != 2 {
		t.Fatalf("%+v", got)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("discover took %v", el)
	}
	// Nobody answers: bounded, empty.
	dead, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer dead.Close()
	got, err = Discover(context.Background(), DiscoverOptions{Timeout: 200 * time.Millisecond, Target: dead.LocalAddr().String()})
	if err != nil || len(got) != 0 {
		t.Fatalf("%v %v", got, err)
	}
}

func probeMatch(endpoint, relatesTo string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">` +
		`<SOAP-ENV:Header><wsa:MessageID>uuid:` + newUUID() + `</wsa:MessageID><wsa:RelatesTo>` + relatesTo + `</wsa:RelatesTo><wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header>` +
		`<SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference><wsa:Address>` + endpoint + `</wsa:Address></wsa:EndpointReference>` +
		`<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/name/FaceCam onvif://www.onvif.org/hardware/HW1</d:Scopes>` +
		`<d:XAddrs>http://10.0.0.9/onvif/device_service</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>`
}
