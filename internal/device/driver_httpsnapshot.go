package device

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/tianshu-ai/tianshu/internal/netpolicy"
)

// httpSnapshotDriver polls a JPEG snapshot URL at Config.FPS (default 1/s)
// with Basic or Digest authentication. An answer that is not a JPEG is a
// bad_image error, a refused password auth_failed, a slow camera a timeout:
// each bounded by the timeout option, never a hang.
//
// Address: http(s)://host/path.
// Options: auth (auto, basic, digest; default auto), timeout (per request,
// default 5s), max_bytes (default 16 MiB).
type httpSnapshotDriver struct{}

func init() { Register("http-snapshot", httpSnapshotDriver{}) }

var httpSnapshotOptions = []Option{optAuth, snapTimeout, optMaxBytes, optStallEventAfter}

func (httpSnapshotDriver) Spec() DriverSpec {
	return DriverSpec{Description: "Polls a JPEG snapshot URL with Basic or Digest authentication.",
		Fields:  []Option{address("http(s)://host/path of the snapshot."), fieldUsername, fieldPassword, fieldFps, fieldWidth},
		Options: httpSnapshotOptions}
}

func (httpSnapshotDriver) Validate(cfg Config) error {
	if err := validateHTTPURL(cfg.Address); err != nil {
		return err
	}
	if err := cfg.checkOptions(optionNames(httpSnapshotOptions)...); err != nil {
		return err
	}
	return validateSnapshotOptions(cfg)
}

func validateHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fieldErr("Address", "must be an http:// or https:// URL")
	}
	return nil
}

func validateSnapshotOptions(cfg Config) error {
	if _, err := cfg.optOneOf("auth", "auto", "basic", "digest"); err != nil {
		return err
	}
	if _, err := cfg.optDuration("timeout", 5*time.Second, 100*time.Millisecond, 5*time.Minute); err != nil {
		return err
	}
	_, err := cfg.optInt("max_bytes", 16<<20, 1024, 256<<20)
	return err
}

// snapshotter fetches one device's snapshots.
type snapshotter struct {
	ac       *authClient
	url      string
	timeout  time.Duration
	maxBytes int
	width    int
}

func newSnapshotter(env *Env, cfg Config) *snapshotter {
	mode, _ := cfg.optOneOf("auth", "auto", "basic", "digest")
	timeout, _ := cfg.optDuration("timeout", 5*time.Second, 100*time.Millisecond, 5*time.Minute)
	maxBytes, _ := cfg.optInt("max_bytes", 16<<20, 1024, 256<<20)
	addr, user, pass := cfg.credentials()
	return &snapshotter{
		ac:       &authClient{hc: newHTTPClient(env.Outbound, timeout), user: user, pass: pass, mode: mode},
		url:      addr,
		timeout:  timeout,
		maxBytes: maxBytes,
		width:    cfg.Width,
	}
}

// newHTTPClient returns a client whose every phase is bounded by timeout
// and whose connections p checks. With a policy no proxy is used: the
// policy would see the proxy's address instead of the camera's.
func newHTTPClient(p *netpolicy.Policy, timeout time.Duration) *http.Client {
	proxy := http.ProxyFromEnvironment
	if p != nil {
		proxy = nil
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 proxy,
			DialContext:           p.Guard(&net.Dialer{Timeout: timeout}).DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		},
		// Cameras redirect to login pages; following them only yields HTML.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (s *snapshotter) close() { s.ac.hc.CloseIdleConnections() }

// fetch GETs one snapshot and checks that it is a JPEG.
func (s *snapshotter) fetch(ctx context.Context) (Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.ac.do(ctx, http.MethodGet, s.url, nil, http.Header{"Accept": {"image/jpeg"}})
	if err != nil {
		return Frame{}, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return Frame{}, statusErrf(ReasonAuthFailed, "snapshot: %s", resp.Status)
	case resp.StatusCode != http.StatusOK:
		return Frame{}, statusErrf(ReasonBadResponse, "snapshot: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(s.maxBytes)+1))
	if err != nil {
		return Frame{}, statusErr(classifyNetErr(err), fmt.Errorf("snapshot body: %w", err))
	}
	if len(body) > s.maxBytes {
		return Frame{}, statusErrf(ReasonBadImage, "snapshot larger than %d bytes", s.maxBytes)
	}
	return jpegFrame(body, s.width)
}

// jpegFrame checks that data is a JPEG and makes a frame of it, scaled to
// width when set and different. The error says what failed and nothing of
// what the peer sent: a probe must not read other services for a caller.
func jpegFrame(data []byte, width int) (Frame, error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return Frame{}, statusErrf(ReasonBadImage, "the answer is not a JPEG")
	}
	c, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return Frame{}, statusErrf(ReasonBadImage, "broken JPEG: %v", err)
	}
	if width == 0 || width == c.Width {
		return Frame{Image: data, Width: c.Width, Height: c.Height}, nil
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return Frame{}, statusErrf(ReasonBadImage, "broken JPEG: %v", err)
	}
	return encodeFrame(scaleNearest(img, width))
}

func encodeFrame(img image.Image) (Frame, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		return Frame{}, statusErr(ReasonBadImage, err)
	}
	b := img.Bounds()
	return Frame{Image: buf.Bytes(), Width: b.Dx(), Height: b.Dy()}, nil
}

func (httpSnapshotDriver) Probe(ctx context.Context, env *Env, cfg Config) (ProbeResult, error) {
	s := newSnapshotter(env, cfg)
	defer s.close()
	f, err := s.fetch(ctx)
	if err != nil {
		return ProbeResult{}, err
	}
	return ProbeResult{Online: true, Snapshot: f.Image, Info: map[string]any{
		"width": f.Width, "height": f.Height, "auth": s.ac.lastScheme(), "snapshot_uri": cfg.Address,
	}}, nil
}

func (httpSnapshotDriver) Open(_ context.Context, env *Env, cfg Config, sink Sink) (Source, error) {
	return startStream(env, cfg, sink, snapshotSession(env, cfg)), nil
}

// snapshotSession polls until a fetch fails; the stream then backs off and
// starts a new session (keeping nothing but the learnt challenge).
func snapshotSession(env *Env, cfg Config) session {
	s := newSnapshotter(env, cfg)
	fps := cfg.FPS
	if fps == 0 {
		fps = 1
	}
	return func(ctx context.Context, em *emitter) error {
		defer s.close()
		pace := newPacer(env.Clock, fps)
		for {
			if err := pace.wait(ctx); err != nil {
				return err
			}
			f, err := s.fetch(ctx)
			if err != nil {
				return err
			}
			em.frame(f)
		}
	}
}
