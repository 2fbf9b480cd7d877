package device

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// authClient does HTTP requests with a device's credentials: Basic, or
// Digest (RFC 7616, and RFC 2617's MD5) with qop=auth, keeping the server's
// nonce across requests (counting nc) so a periodic snapshot costs one round
// trip, not two.
type authClient struct {
	hc   *http.Client
	user string
	pass string
	// mode is "auto" (answer whichever challenge the server sends), "basic"
	// (send Basic up front) or "digest" (never send the password in clear).
	mode string

	mu     sync.Mutex
	digest *digestChallenge
	nc     uint32
	basic  bool   // the server asked for Basic
	scheme string // the scheme that last worked, for probes
}

// do sends one request, answering one authentication challenge. A refusal
// after answering is a StatusError with ReasonAuthFailed.
func (a *authClient) do(ctx context.Context, method, rawURL string, body []byte, header http.Header) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, statusErr(ReasonConfig, err)
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(body))
		if err != nil {
			return nil, statusErr(ReasonConfig, err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		sent := a.authorize(req, method, u.RequestURI())
		resp, err := a.hc.Do(req)
		if err != nil {
			return nil, statusErr(classifyNetErr(err), err)
		}
		if resp.StatusCode != http.StatusUnauthorized {
			if resp.StatusCode < 300 {
				a.mu.Lock()
				a.scheme = sent
				a.mu.Unlock()
			}
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if a.user == "" {
			return nil, statusErrf(ReasonAuthFailed, "%s: 401 Unauthorized and no credentials configured", redactURL(u))
		}
		if attempt > 0 || !a.learn(resp.Header.Values("WWW-Authenticate"), sent) {
			return nil, statusErrf(ReasonAuthFailed, "%s: credentials refused (401 Unauthorized, %s)", redactURL(u), orNone(sent))
		}
	}
}

// authorize adds the Authorization header this client knows to send and
// returns its scheme ("" when none).
func (a *authClient) authorize(req *http.Request, method, uri string) string {
	if a.user == "" {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.digest != nil:
		a.nc++
		req.Header.Set("Authorization", a.digest.authorization(method, uri, a.user, a.pass, a.nc, newCnonce()))
		return "digest"
	case a.mode == "basic" || (a.basic && a.mode == "auto"):
		req.SetBasicAuth(a.user, a.pass)
		return "basic"
	}
	return ""
}

// learn reads the server's challenges and reports whether retrying can
// help: a new or stale Digest nonce, or a first Basic challenge.
func (a *authClient) learn(challenges []string, sent string) bool {
	var best *digestChallenge
	sawBasic := false
	for _, h := range challenges {
		for _, c := range splitChallenges(h) {
			scheme, params := parseChallenge(c)
			switch strings.ToLower(scheme) {
			case "digest":
				d, err := newDigestChallenge(params)
				if err == nil && (best == nil || d.strength() > best.strength()) {
					best = d
				}
			case "basic":
				sawBasic = true
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if best != nil && a.mode != "basic" {
		// Retry when we sent no digest, or the server says our nonce was
		// merely stale (the password was fine).
		if sent != "digest" || best.stale {
			a.digest, a.nc = best, 0
			return true
		}
		return false
	}
	if sawBasic && a.mode == "auto" && sent != "basic" {
		a.basic = true
		return true
	}
	return false
}

// lastScheme returns the authentication scheme of the last success.
func (a *authClient) lastScheme() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.scheme == "" {
		return "none"
	}
	return a.scheme
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// digestChallenge is a parsed WWW-Authenticate: Digest challenge.
type digestChallenge struct {
	realm, nonce, opaque string
	algorithm            string // MD5, MD5-sess, SHA-256, SHA-256-sess
	qopAuth              bool   // qop=auth offered
	stale                bool
}

func newDigestChallenge(p map[string]string) (*digestChallenge, error) {
	d := &digestChallenge{realm: p["realm"], nonce: p["nonce"], opaque: p["opaque"],
		algorithm: strings.ToUpper(p["algorithm"]), stale: strings.EqualFold(p["stale"], "true")}
	if d.algorithm == "" {
		d.algorithm = "MD5"
	}
	switch d.algorithm {
	case "MD5", "MD5-SESS", "SHA-256", "SHA-256-SESS":
	default:
		return nil, fmt.Errorf("unsupported digest algorithm %s", d.algorithm)
	}
	if d.nonce == "" {
		return nil, fmt.Errorf("digest challenge without nonce")
	}
	if q, ok := p["qop"]; ok {
		for _, o := range strings.Split(q, ",") {
			if strings.TrimSpace(o) == "auth" {
				d.qopAuth = true
			}
		}
		if !d.qopAuth {
			return nil, fmt.Errorf("digest qop %q: only auth is supported", q)
		}
	}
	return d, nil
}

func (d *digestChallenge) strength() int {
	if strings.HasPrefix(d.algorithm, "SHA-256") {
		return 2
	}
	return 1
}

func (d *digestChallenge) hash() func(string) string {
	var h func() hash.Hash = md5.New
	if strings.HasPrefix(d.algorithm, "SHA-256") {
		h = sha256.New
	}
	return func(s string) string {
		x := h()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
}

// authorization computes the Authorization header value (RFC 7616 §3.4).
func (d *digestChallenge) authorization(method, uri, user, pass string, nc uint32, cnonce string) string {
	H := d.hash()
	ha1 := H(user + ":" + d.realm + ":" + pass)
	if strings.HasSuffix(d.algorithm, "-SESS") {
		ha1 = H(ha1 + ":" + d.nonce + ":" + cnonce)
	}
	ha2 := H(method + ":" + uri)
	ncs := fmt.Sprintf("%08x", nc)
	var resp string
	if d.qopAuth {
		resp = H(ha1 + ":" + d.nonce + ":" + ncs + ":" + cnonce + ":auth:" + ha2)
	} else {
		resp = H(ha1 + ":" + d.nonce + ":" + ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, nonce=%s, uri=%s, algorithm=%s, response="%s"`,
		quote(user), quote(d.realm), quote(d.nonce), quote(uri), d.algorithm, resp)
	if d.opaque != "" {
		fmt.Fprintf(&b, `, opaque=%s`, quote(d.opaque))
	}
	if d.qopAuth {
		fmt.Fprintf(&b, `, qop=auth, nc=%s, cnonce="%s"`, ncs, cnonce)
	}
	return b.String()
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func newCnonce() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// splitChallenges splits one WWW-Authenticate value holding several
// challenges ("Digest ..., Basic realm=...") at the commas that start a new
// scheme.
func splitChallenges(h string) []string {
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if inQuote {
				continue
			}
			rest := strings.TrimLeft(h[i+1:], " \t")
			// A new challenge is a token followed by a space (not '=').
			j := strings.IndexAny(rest, " =")
			if j > 0 && rest[j] == ' ' && !strings.Contains(rest[:j], ",") {
				out = append(out, strings.TrimSpace(h[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(h[start:]))
}

// parseChallenge parses `Scheme k=v, k2="v 2"` into the scheme and its
// parameters (keys lower-cased).
func parseChallenge(c string) (string, map[string]string) {
	c = strings.TrimSpace(c)
	scheme, rest, _ := strings.Cut(c, " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(strings.TrimLeft(k, ", ")))
		after = strings.TrimLeft(after, " ")
		var v string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			v, rest = b.String(), after[min(i+1, len(after)):]
		} else {
			v, rest, _ = strings.Cut(after, ",")
			v = strings.TrimSpace(v)
		}
		params[k] = v
		rest = strings.TrimLeft(rest, ", \t")
	}
	return scheme, params
}
