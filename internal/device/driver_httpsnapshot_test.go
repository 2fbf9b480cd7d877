package device

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// camera is an HTTP camera emulator enforcing Basic or Digest auth on its
// snapshot URL, verifying digests independently of the client code.
type camera struct {
	user, pass string
	scheme     string // basic, digest-md5, digest-sha256, digest-both, none
	body       []byte
	delay      time.Duration
	staleEvery int // rotate the nonce (stale=true) every n requests

	mu          sync.Mutex
	nonce       string
	nonceN      int
	lastNC      map[string]uint64 // nonce → highest nc seen
	challenges  atomic.Int64
	served      atomic.Int64
	authRefused atomic.Int64
}

func newCamera(scheme, user, pass string, body []byte) *camera {
	return &camera{scheme: scheme, user: user, pass: pass, body: body, nonce: "n0", lastNC: map[string]uint64{}}
}

func (c *camera) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-r.Context().Done():
			return
		}
	}
	if !c.authorized(w, r) {
		return
	}
	c.served.Add(1)
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(c.body)
}

func (c *camera) authorized(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	switch c.scheme {
	case "none":
		return true
	case "basic":
		u, p, ok := r.BasicAuth()
		if ok && u == c.user && p == c.pass {
			return true
		}
		if ok {
			c.authRefused.Add(1)
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="cam"`)
		c.challenges.Add(1)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	stale := false
	if strings.HasPrefix(h, "Digest ") {
		_, p := parseChallenge(h)
		var H func() hash.Hash = md5.New
		if strings.HasPrefix(p["algorithm"], "SHA-256") {
			H = sha256.New
		}
		hx := func(s string) string { x := H(); x.Write([]byte(s)); return hex.EncodeToString(x.Sum(nil)) }
		var nc uint64
		_, _ = fmt.Sscanf(p["nc"], "%x", &nc)
		want := hx(hx(c.user+":cam:"+c.pass) + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + hx(r.Method+":"+p["uri"]))
		switch {
		case p["response"] != want || p["username"] != c.user || p["uri"] != r.URL.RequestURI() || p["qop"] != "auth" || p["opaque"] != "op":
			c.authRefused.Add(1)
		case p["nonce"] != c.nonce:
			stale = true
		case nc <= c.lastNC[p["nonce"]]:
			c.authRefused.Add(1) // replayed nc
		default:
			c.lastNC[p["nonce"]] = nc
			c.nonceN++
			if c.staleEvery > 0 && c.nonceN%c.staleEvery == 0 {
				c.nonce = fmt.Sprintf("n%d", c.nonceN)
			}
			return true
		}
	}
	// Each challenge hands out a fresh nonce, as cameras do, so two clients
	// never count nc on the same nonce.
	n := c.challenges.Add(1)
	c.nonce = fmt.Sprintf("c%d", n)
	st := ""
	if stale {
		st = ", stale=true"
	}
	var hs []string
	if c.scheme == "digest-sha256" || c.scheme == "digest-both" {
		hs = append(hs, fmt.Sprintf(`Digest realm="cam", qop="auth", algorithm=SHA-256, nonce="%s", opaque="op"%s`, c.nonce, st))
	}
	if c.scheme == "digest-md5" || c.scheme == "digest-both" {
		hs = append(hs, fmt.Sprintf(`Digest realm="cam", qop="auth,auth-int", algorithm=MD5, nonce="%s", opaque="op"%s`, c.nonce, st))
	}
	for _, v := range hs {
		w.Header().Add("WWW-Authenticate", v)
	}
	http.Error(w, "unauthorized", http.StatusUnauthorized)
	return false
}

func TestHTTPSnapshotAuth(t *testing.T) {
	img := testJPEG(t, 64, 48, 9)
	rt, _ := newTestRuntime(t)
	for _, scheme := range []string{"basic", "digest-md5", "digest-sha256", "digest-both"} {
		t.Run(scheme, func(t *testing.T) {
			cam := newCamera(scheme, "admin", "pa\"ss", img)
			cam.staleEvery = 4
			srv := httptest.NewServer(cam)
			defer srv.Close()
			cfg := Config{ID: "cam-" + scheme, Driver: "http-snapshot", Address: srv.URL + "/snap.jpg?ch=1", Username: "admin", Password: "pa\"ss", FPS: 20}
			res, err := rt.Probe(context.Background(), cfg)
			if err != nil || !res.Online || res.Info["width"] != 64 {
				t.Fatalf("probe %+v %v", res, err)
			}
			wantScheme := "basic"
			if scheme != "basic" {
				wantScheme = "digest"
			}
			if res.Info["auth"] != wantScheme {
				t.Fatalf("auth %v", res.Info["auth"])
			}
			rec := &recorder{}
			src, err := rt.Open(context.Background(), cfg, rec)
			if err != nil {
				t.Fatal(err)
			}
			st := waitStatus(t, src, waitLong, "frames", func(s Status) bool { return s.FramesDelivered >= 10 })
			_ = src.Close()
			if st.Reconnects != 0 || cam.authRefused.Load() != 0 {
				t.Fatalf("reconnects %d, refused %d", st.Reconnects, cam.authRefused.Load())
			}
			// The nonce is reused: one challenge per nonce rotation, not per frame.
			if ch, served := cam.challenges.Load(), cam.served.Load(); ch > served/2+2 {
				t.Fatalf("%d challenges for %d snapshots", ch, served)
			}
			f, _ := rec.lastFrame()
			if string(f.Image) != string(img) {
				t.Fatal("wrong image")
			}
		})
	}
}

// TestHTTPSnapshotBadInput runs misbehaving cameras side by side with a good
// one: each gets a clear status in bounded time, and the good one keeps
// delivering.
func TestHTTPSnapshotBadInput(t *testing.T) {
	img := testJPEG(t, 32, 32, 1)
	rt, _ := newTestRuntime(t)

	good := httptest.NewServer(newCamera("digest-md5", "u", "p", img))
	defer good.Close()
	wrongPass := httptest.NewServer(newCamera("digest-sha256", "u", "right", img))
	defer wrongPass.Close()
	basicWrong := httptest.NewServer(newCamera("basic", "u", "right", img))
	defer basicWrong.Close()
	garbage := httptest.NewServer(newCamera("none", "", "", []byte("<html>login</html>")))
	defer garbage.Close()
	slowCam := newCamera("none", "", "", img)
	slowCam.delay = 3 * time.Second
	slow := httptest.NewServer(slowCam)
	defer slow.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	cases := []struct {
		name   string
		cfg    Config
		state  State
		reason string
	}{
		{"wrong digest password", Config{Address: wrongPass.URL, Username: "u", Password: "wrong"}, StateError, ReasonAuthFailed},
		{"wrong basic password", Config{Address: basicWrong.URL, Username: "u", Password: "wrong"}, StateError, ReasonAuthFailed},
		{"no credentials", Config{Address: wrongPass.URL}, StateError, ReasonAuthFailed},
		{"digest only refuses basic", Config{Address: basicWrong.URL, Username: "u", Password: "right", Options: map[string]any{"auth": "digest"}}, StateError, ReasonAuthFailed},
		{"garbage", Config{Address: garbage.URL}, StateError, ReasonBadImage},
		{"slow", Config{Address: slow.URL, Options: map[string]any{"timeout": "300ms"}}, StateOffline, ReasonTimeout},
		{"unreachable", Config{Address: deadURL, Options: map[string]any{"timeout": "2s"}}, StateOffline, ReasonUnreachable},
		{"not found", Config{Address: notFound.URL + "/snap.jpg"}, StateError, ReasonBadResponse},
	}
	rec := &recorder{}
	gsrc, err := rt.Open(context.Background(), Config{ID: "good", Driver: "http-snapshot", Address: good.URL, Username: "u", Password: "p", FPS: 10}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer gsrc.Close()
	var srcs []Source
	for i, c := range cases {
		c.cfg.ID, c.cfg.Driver, c.cfg.FPS = fmt.Sprint("bad", i), "http-snapshot", 5
		start := time.Now()
		_, err := rt.Probe(context.Background(), c.cfg)
		if err == nil || (c.reason != "" && ReasonOf(err) != c.reason) || time.Since(start) > 30*time.Second {
			t.Errorf("%s: probe %v (%s) after %v", c.name, err, ReasonOf(err), time.Since(start))
		}
		src, err := rt.Open(context.Background(), c.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		srcs = append(srcs, src)
	}
	for i, c := range cases {
		st := waitStatus(t, srcs[i], waitLong, c.name, func(s Status) bool { return s.State != StateConnecting })
		if st.State != c.state || (c.reason != "" && st.Reason != c.reason) || st.LastError == "" {
			t.Errorf("%s: status %s %s %q", c.name, st.State, st.Reason, st.LastError)
		}
	}
	before := gsrc.Status().FramesDelivered
	st := waitStatus(t, gsrc, waitLong, "good camera keeps going", func(s Status) bool { return s.FramesDelivered > before+3 })
	if st.State != StateOnline {
		t.Fatalf("good camera %+v", st)
	}
}

func TestSplitChallenges(t *testing.T) {
	got := splitChallenges(`Digest realm="a, b", nonce="x", qop="auth,auth-int", Basic realm="c"`)
	if len(got) != 2 || !strings.HasPrefix(got[1], "Basic") {
		t.Fatalf("%q", got)
	}
	s, p := parseChallenge(got[0])
	if s != "Digest" || p["realm"] != "a, b" || p["qop"] != "auth,auth-int" || p["nonce"] != "x" {
		t.Fatalf("%s %v", s, p)
	}
}

// TestDigestRFC7616Example checks the SHA-256 and MD5 examples of RFC 7616 §3.9.1.
func TestDigestRFC7616Example(t *testing.T) {
	for alg, want := range map[string]string{
		"MD5":     "8ca523f5e9506fed4657c9700eebdbec",
		"SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
	} {
		d, err := newDigestChallenge(map[string]string{"realm": "http-auth@example.org", "qop": "auth, auth-int",
			"algorithm": alg, "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"})
		if err != nil {
			t.Fatal(err)
		}
		h := d.authorization("GET", "/dir/index.html", "Mufasa", "Circle of Life", 1, "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
		if !strings.Contains(h, `response="`+want+`"`) {
			t.Errorf("%s: %s", alg, h)
		}
	}
}
