package device

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/netpolicy"
)

// ONVIF namespaces and the WS-Security token types.
const (
	nsSOAP12       = "http://www.w3.org/2003/05/soap-envelope"
	nsWSSE         = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU          = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	passwordDigest = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	base64Binary   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
	nsDevice       = "http://www.onvif.org/ver10/device/wsdl"
	nsMedia        = "http://www.onvif.org/ver10/media/wsdl"
	nsSchema       = "http://www.onvif.org/ver10/schema"
)

// onvifClient calls an ONVIF device's SOAP 1.2 services with a WS-Security
// UsernameToken (PasswordDigest); devices that also want HTTP Digest get it
// from the authClient underneath.
type onvifClient struct {
	ac     *authClient
	device string // device service URL
	media  string // media service URL, from GetCapabilities
	user   string
	pass   string
	clock  Clock
	offset time.Duration // device clock minus ours, from GetSystemDateAndTime
}

func newONVIFClient(env *Env, cfg Config, timeout time.Duration) *onvifClient {
	addr, user, pass := cfg.credentials()
	return &onvifClient{
		ac:     &authClient{hc: newHTTPClient(env.Outbound, timeout), user: user, pass: pass, mode: "auto"},
		device: addr, media: addr,
		user: user, pass: pass, clock: env.Clock,
	}
}

// usernameToken returns the WS-Security header: PasswordDigest =
// Base64(SHA1(nonce + created + password)), with created on the device's clock.
func usernameToken(user, pass string, now time.Time) string {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	created := now.UTC().Format("2006-01-02T15:04:05.000Z")
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(pass))
	digest := base64.StdEncoding.EncodeToString(h.Sum(nil))
	var b strings.Builder
	fmt.Fprintf(&b, `<wsse:Security s:mustUnderstand="1" xmlns:wsse="%s" xmlns:wsu="%s"><wsse:UsernameToken>`, nsWSSE, nsWSU)
	b.WriteString("<wsse:Username>")
	_ = xml.EscapeText(&b, []byte(user))
	fmt.Fprintf(&b, `</wsse:Username><wsse:Password Type="%s">%s</wsse:Password>`, passwordDigest, digest)
	fmt.Fprintf(&b, `<wsse:Nonce EncodingType="%s">%s</wsse:Nonce><wsu:Created>%s</wsu:Created>`,
		base64Binary, base64.StdEncoding.EncodeToString(nonce), created)
	b.WriteString("</wsse:UsernameToken></wsse:Security>")
	return b.String()
}

// soapFault is a SOAP 1.2 fault.
type soapFault struct {
	Code    string `xml:"Code>Value"`
	Subcode string `xml:"Code>Subcode>Value"`
	Reason  string `xml:"Reason>Text"`
}

// call posts one SOAP request and decodes the body's first element into out.
func (c *onvifClient) call(ctx context.Context, url, action, body string, auth bool, out any) error {
	var env strings.Builder
	fmt.Fprintf(&env, `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="%s"><s:Header>`, nsSOAP12)
	if auth && c.user != "" {
		env.WriteString(usernameToken(c.user, c.pass, c.clock.Now().Add(c.offset)))
	}
	fmt.Fprintf(&env, `</s:Header><s:Body>%s</s:Body></s:Envelope>`, body)
	h := http.Header{"Content-Type": {`application/soap+xml; charset=utf-8; action="` + action + `"`}}
	resp, err := c.ac.do(ctx, http.MethodPost, url, []byte(env.String()), h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return statusErr(classifyNetErr(err), err)
	}
	var doc struct {
		Body struct {
			Fault *soapFault `xml:"Fault"`
			Inner []byte     `xml:",innerxml"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		if resp.StatusCode != http.StatusOK {
			return statusErrf(ReasonBadResponse, "onvif %s: %s", action, resp.Status)
		}
		return statusErrf(ReasonBadResponse, "onvif %s: the answer is not a SOAP envelope", action)
	}
	if f := doc.Body.Fault; f != nil {
		reason := ReasonBadResponse
		if strings.Contains(f.Subcode, "NotAuthorized") || strings.Contains(f.Subcode, "FailedAuthentication") {
			reason = ReasonAuthFailed
		}
		return statusErrf(reason, "onvif %s: fault %s %s: %s", action, f.Code, f.Subcode, strings.TrimSpace(f.Reason))
	}
	if resp.StatusCode != http.StatusOK {
		return statusErrf(ReasonBadResponse, "onvif %s: %s", action, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := xml.Unmarshal(bytes.TrimSpace(doc.Body.Inner), out); err != nil {
		return statusErrf(ReasonBadResponse, "onvif %s: %v", action, err)
	}
	return nil
}

// syncClock reads the device's clock (unauthenticated, as ONVIF allows) so
// that UsernameTokens are not refused for clock skew. Failure is ignored.
func (c *onvifClient) syncClock(ctx context.Context) {
	var r struct {
		UTC struct {
			Y  int `xml:"Date>Year"`
			Mo int `xml:"Date>Month"`
			D  int `xml:"Date>Day"`
			H  int `xml:"Time>Hour"`
			Mi int `xml:"Time>Minute"`
			S  int `xml:"Time>Second"`
		} `xml:"SystemDateAndTime>UTCDateTime"`
	}
	if err := c.call(ctx, c.device, nsDevice+"/GetSystemDateAndTime", `<tds:GetSystemDateAndTime xmlns:tds="`+nsDevice+`"/>`, false, &r); err != nil || r.UTC.Y == 0 {
		return
	}
	dev := time.Date(r.UTC.Y, time.Month(r.UTC.Mo), r.UTC.D, r.UTC.H, r.UTC.Mi, r.UTC.S, 0, time.UTC)
	if off := dev.Sub(c.clock.Now()); off > 5*time.Second || off < -5*time.Second {
		c.offset = off
	}
}

// onvifProfile is one media profile.
type onvifProfile struct {
	Token    string `xml:"token,attr"`
	Name     string `xml:"Name"`
	Encoding string `xml:"VideoEncoderConfiguration>Encoding"`
	Width    int    `xml:"VideoEncoderConfiguration>Resolution>Width"`
	Height   int    `xml:"VideoEncoderConfiguration>Resolution>Height"`
	FPS      int    `xml:"VideoEncoderConfiguration>RateControl>FrameRateLimit"`
}

// onvifDevice is what resolve learnt about a device.
type onvifDevice struct {
	info        map[string]any
	profile     onvifProfile
	streamURI   string
	snapshotURI string
}

// resolve runs GetDeviceInformation, GetCapabilities (for the media
// service), GetProfiles, GetStreamUri and GetSnapshotUri for the chosen
// profile (the Options.profile token or name, else the first).
func (c *onvifClient) resolve(ctx context.Context, want string) (onvifDevice, error) {
	c.syncClock(ctx)
	var di struct {
		Manufacturer    string `xml:"Manufacturer"`
		Model           string `xml:"Model"`
		FirmwareVersion string `xml:"FirmwareVersion"`
		SerialNumber    string `xml:"SerialNumber"`
		HardwareID      string `xml:"HardwareId"`
	}
	if err := c.call(ctx, c.device, nsDevice+"/GetDeviceInformation", `<tds:GetDeviceInformation xmlns:tds="`+nsDevice+`"/>`, true, &di); err != nil {
		return onvifDevice{}, err
	}
	var caps struct {
		Media string `xml:"Capabilities>Media>XAddr"`
	}
	if err := c.call(ctx, c.device, nsDevice+"/GetCapabilities",
		`<tds:GetCapabilities xmlns:tds="`+nsDevice+`"><tds:Category>Media</tds:Category></tds:GetCapabilities>`, true, &caps); err == nil && caps.Media != "" {
		c.media = strings.TrimSpace(caps.Media)
	}
	var pr struct {
		Profiles []onvifProfile `xml:"Profiles"`
	}
	if err := c.call(ctx, c.media, nsMedia+"/GetProfiles", `<trt:GetProfiles xmlns:trt="`+nsMedia+`"/>`, true, &pr); err != nil {
		return onvifDevice{}, err
	}
	if len(pr.Profiles) == 0 {
		return onvifDevice{}, statusErrf(ReasonBadResponse, "onvif: the device has no media profile")
	}
	d := onvifDevice{profile: pr.Profiles[0]}
	if want != "" {
		found := false
		for _, p := range pr.Profiles {
			if p.Token == want || p.Name == want {
				d.profile, found = p, true
				break
			}
		}
		if !found {
			return onvifDevice{}, statusErrf(ReasonConfig, "onvif: no profile %q", want)
		}
	}
	tok := d.profile.Token
	var su struct {
		URI string `xml:"MediaUri>Uri"`
	}
	err := c.call(ctx, c.media, nsMedia+"/GetStreamUri", `<trt:GetStreamUri xmlns:trt="`+nsMedia+`" xmlns:tt="`+nsSchema+`">`+
		`<trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>`+
		`<trt:ProfileToken>`+xmlEscape(tok)+`</trt:ProfileToken></trt:GetStreamUri>`, true, &su)
	if err != nil && ReasonOf(err) == ReasonAuthFailed {
		return onvifDevice{}, err
	}
	d.streamURI = strings.TrimSpace(su.URI)
	var sn struct {
		URI string `xml:"MediaUri>Uri"`
	}
	err = c.call(ctx, c.media, nsMedia+"/GetSnapshotUri", `<trt:GetSnapshotUri xmlns:trt="`+nsMedia+`"><trt:ProfileToken>`+xmlEscape(tok)+`</trt:ProfileToken></trt:GetSnapshotUri>`, true, &sn)
	if err != nil && ReasonOf(err) == ReasonAuthFailed {
		return onvifDevice{}, err
	}
	d.snapshotURI = strings.TrimSpace(sn.URI)
	profiles := make([]any, len(pr.Profiles))
	for i, p := range pr.Profiles {
		profiles[i] = map[string]any{"token": p.Token, "name": p.Name, "encoding": p.Encoding, "width": p.Width, "height": p.Height, "fps": p.FPS}
	}
	d.info = map[string]any{
		"vendor": di.Manufacturer, "model": di.Model, "firmware": di.FirmwareVersion,
		"serial": di.SerialNumber, "hardware_id": di.HardwareID,
		"profiles": profiles, "profile": tok,
		"stream_uri": d.streamURI, "snapshot_uri": d.snapshotURI, "media_service": c.media,
	}
	return d, nil
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// wsDiscoveryGroup is where WS-Discovery probes go by default.
const wsDiscoveryGroup = "239.255.255.250:3702"

// DiscoverOptions bound a WS-Discovery probe.
type DiscoverOptions struct {
	// Timeout is how long to collect answers; default 3s, at most 30s.
	Timeout time.Duration
	// Target is the address probes go to; default the WS-Discovery
	// multicast group 239.255.255.250:3702. Tests point it at a responder
	// on loopback.
	Target string
	// Types filters devices by type; default dn:NetworkVideoTransmitter.
	Types string
	// Outbound checks Target; nil checks nothing.
	Outbound *netpolicy.Policy
}

// Discovered is one device that answered a WS-Discovery probe.
type Discovered struct {
	// Endpoint is the device's stable id (usually urn:uuid:…).
	Endpoint string
	// XAddrs are its device service URLs, the Address of an onvif Config.
	XAddrs []string
	Types  []string
	// Scopes carry name, hardware and location (onvif://www.onvif.org/name/…).
	Scopes []string
	// From is the address the answer came from.
	From string
}

// Discover sends a WS-Discovery Probe and collects ProbeMatches until the
// timeout or ctx ends, deduplicated by endpoint. Answers that are not
// ProbeMatches for this probe are ignored.
func Discover(ctx context.Context, opts DiscoverOptions) ([]Discovered, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	opts.Timeout = min(opts.Timeout, 30*time.Second)
	if opts.Target == "" {
		opts.Target = wsDiscoveryGroup
	}
	if opts.Types == "" {
		opts.Types = "dn:NetworkVideoTransmitter"
	}
	target, err := net.ResolveUDPAddr("udp4", opts.Target)
	if err != nil {
		return nil, fmt.Errorf("device: discover target: %w", err)
	}
	// The default multicast group is the platform's own choice; a target
	// given by a caller is an address like any other. The check is on the
	// resolved address the probe is sent to.
	if opts.Target != wsDiscoveryGroup {
		ap := target.AddrPort()
		if err := opts.Outbound.Check(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())); err != nil {
			return nil, fmt.Errorf("device: discover target: %w", err)
		}
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return nil, fmt.Errorf("device: discover: %w", err)
	}
	defer conn.Close()
	id := "uuid:" + newUUID()
	probe := `<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">` +
		`<e:Header><w:MessageID>` + id + `</w:MessageID><w:To e:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>` +
		`<w:Action e:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header>` +
		`<e:Body><d:Probe><d:Types>` + xmlEscape(opts.Types) + `</d:Types></d:Probe></e:Body></e:Envelope>`
	deadline := time.Now().Add(opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	// UDP may lose the probe: send it twice, as WS-Discovery suggests.
	for range 2 {
		if _, err := conn.WriteToUDP([]byte(probe), target); err != nil {
			return nil, fmt.Errorf("device: discover: %w", err)
		}
	}
	seen := map[string]int{}
	var out []Discovered
	buf := make([]byte, 64<<10)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if errorsAs(err, &ne) && ne.Timeout() {
				break
			}
			return out, fmt.Errorf("device: discover: %w", err)
		}
		var m struct {
			RelatesTo string `xml:"Header>RelatesTo"`
			Matches   []struct {
				Address string `xml:"EndpointReference>Address"`
				Types   string `xml:"Types"`
				Scopes  string `xml:"Scopes"`
				XAddrs  string `xml:"XAddrs"`
			} `xml:"Body>ProbeMatches>ProbeMatch"`
		}
		if xml.Unmarshal(buf[:n], &m) != nil || strings.TrimSpace(m.RelatesTo) != id {
			continue
		}
		for _, pm := range m.Matches {
			d := Discovered{Endpoint: strings.TrimSpace(pm.Address), XAddrs: strings.Fields(pm.XAddrs),
				Types: strings.Fields(pm.Types), Scopes: strings.Fields(pm.Scopes), From: from.String()}
			if d.Endpoint == "" {
				d.Endpoint = strings.Join(d.XAddrs, " ")
			}
			if _, dup := seen[d.Endpoint]; dup {
				continue
			}
			seen[d.Endpoint] = len(out)
			out = append(out, d)
		}
	}
	return out, ctx.Err()
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
