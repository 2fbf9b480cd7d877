// Package tc3 signs and verifies requests with TC3-HMAC-SHA256, the signature
// of the "API 3.0" cloud API style whose official SDKs Tianshu accepts as
// clients unchanged. It follows the public specification of the algorithm:
// a canonical request, a credential scope date/service/tc3_request, and a
// signing key derived by chained HMAC-SHA256 from "TC3"+SecretKey.
package tc3

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Algorithm is the only signature algorithm accepted.
const Algorithm = "TC3-HMAC-SHA256"

// ErrMalformed is returned by ParseAuthorization for a header that is not a
// well-formed TC3-HMAC-SHA256 authorization.
var ErrMalformed = errors.New("tc3: malformed Authorization header")

// Authorization is a parsed Authorization header.
type Authorization struct {
	SecretID      string
	Date          string // YYYY-MM-DD, UTC, from the credential scope
	Service       string // from the credential scope
	SignedHeaders []string
	Signature     string // lower-case hex
}

// Signs reports whether the lower-case header name is among SignedHeaders.
func (a Authorization) Signs(name string) bool {
	for _, h := range a.SignedHeaders {
		if h == name {
			return true
		}
	}
	return false
}

// Scope returns the credential scope "date/service/tc3_request".
func (a Authorization) Scope() string { return a.Date + "/" + a.Service + "/tc3_request" }

// ParseAuthorization parses
//
//	TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=HEX
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	rest, ok := strings.CutPrefix(h, Algorithm+" ")
	if !ok {
		return a, fmt.Errorf("%w: want algorithm %s", ErrMalformed, Algorithm)
	}
	for {
		part, more, again := strings.Cut(rest, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("%w: %q is not key=value", ErrMalformed, part)
		}
		switch k {
		case "Credential":
			id, r1, ok1 := strings.Cut(v, "/")
			date, r2, ok2 := strings.Cut(r1, "/")
			service, last, ok3 := strings.Cut(r2, "/")
			if !ok1 || !ok2 || !ok3 || last != "tc3_request" || id == "" || service == "" {
				return a, fmt.Errorf("%w: Credential must be SecretId/date/service/tc3_request", ErrMalformed)
			}
			if _, err := time.Parse("2006-01-02", date); err != nil {
				return a, fmt.Errorf("%w: Credential date %q is not YYYY-MM-DD", ErrMalformed, date)
			}
			a.SecretID, a.Date, a.Service = id, date, service
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(strings.ToLower(v), ";")
		case "Signature":
			a.Signature = strings.ToLower(v)
		}
		if !again {
			break
		}
		rest = more
	}
	if a.SecretID == "" || len(a.SignedHeaders) == 0 || a.Signature == "" {
		return a, fmt.Errorf("%w: Credential, SignedHeaders and Signature are all required", ErrMalformed)
	}
	if len(a.Signature) != 64 {
		return a, fmt.Errorf("%w: Signature must be 64 hex characters", ErrMalformed)
	}
	return a, nil
}

// Date returns the credential-scope date for a Unix timestamp.
func Date(ts int64) string { return time.Unix(ts, 0).UTC().Format("2006-01-02") }

// CanonicalRequest builds the canonical request of the specification.
// headers maps lower-case names to values; signed lists the names to sign.
func CanonicalRequest(method, uri, query string, headers map[string]string, signed []string, body []byte) string {
	sum := sha256.Sum256(body)
	return canonicalRequest(method, uri, query, headers, signed, hex.EncodeToString(sum[:]))
}

func canonicalRequest(method, uri, query string, headers map[string]string, signed []string, bodyHash string) string {
	names := append([]string(nil), signed...)
	sort.Strings(names)
	var b strings.Builder
	b.Grow(256)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(strings.TrimSpace(headers[n]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(names, ";"))
	b.WriteByte('\n')
	b.WriteString(bodyHash)
	return b.String()
}

// Signature computes the hex signature of a canonical request.
func Signature(secretKey, date, service string, timestamp int64, canonical string) string {
	return hex.EncodeToString(signWithKey(SigningKey(secretKey, date, service), date, service, timestamp, canonical))
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Verify checks a's signature over r (whose body has been read into body)
// with secretKey, comparing in constant time. Official SDKs disagree about
// the Host they sign — with the port (Go) or without (Node.js) — so both
// forms are tried when host is signed. The timestamp window is the caller's
// business; Verify only checks that the scope date matches the timestamp.
//
// Verify runs on every signed request, so it builds the canonical request
// and the string to sign in a pooled buffer and computes the HMAC from the
// derived key's precomputed pads: no allocation on the common path.
func Verify(r *http.Request, body []byte, a Authorization, secretKey string, timestamp int64) bool {
	var date [16]byte
	if string(time.Unix(timestamp, 0).UTC().AppendFormat(date[:0], "2006-01-02")) != a.Date {
		return false
	}
	var want [sha256.Size]byte
	if len(a.Signature) != 2*len(want) {
		return false
	}
	if _, err := hex.Decode(want[:], []byte(a.Signature)); err != nil {
		return false
	}
	names := a.SignedHeaders
	if !sort.StringsAreSorted(names) {
		names = append([]string(nil), names...)
		sort.Strings(names)
	}
	signsHost := false
	for _, n := range names {
		if n == "host" {
			signsHost = true
		}
	}
	key := signingKeyOf(secretKey, a.Date, a.Service)
	bodyHash := hexSum(body)
	// Which host form matched is no secret (the client chose it), so
	// stopping at the first match leaks nothing; each comparison is
	// constant-time.
	forms := [2]string{r.Host, ""}
	if signsHost {
		forms[1] = hostWithoutPort(r.Host)
	}
	for i, h := range forms {
		if i > 0 && h == "" {
			break
		}
		if mac := requestMAC(r, names, h, bodyHash[:], key, timestamp, a.Date, a.Service); hmac.Equal(mac[:], want[:]) {
			return true
		}
	}
	return false
}

// hexSum is the hex SHA-256 of body, as canonical requests carry it.
func hexSum(body []byte) [2 * sha256.Size]byte {
	var out [2 * sha256.Size]byte
	sum := sha256.Sum256(body)
	hex.Encode(out[:], sum[:])
	return out
}

// requestMAC is the signature (unencoded) of r under key: the HMAC of the
// string to sign of its canonical request, with the signed header names
// (sorted) and host as the value of "host". Signing and verifying share
// it, in a pooled buffer: no allocation per request.
func requestMAC(r *http.Request, names []string, host string, bodyHash []byte, key *derivedKey, timestamp int64, date, service string) [sha256.Size]byte {
	bp := bufPool.Get().(*[]byte)
	defer putBuf(bp)
	buf := appendCanonical((*bp)[:0], r, names, host, bodyHash)
	n := len(buf)
	buf = append(buf, key.ipad[:]...)
	buf = appendStringToSign(buf, timestamp, date, service, buf[:n])
	*bp = buf[:0]
	return key.macPadded(buf[n:])
}

// appendCanonical appends the canonical request of r to b, with the signed
// header names (sorted), host as the value of "host", and the hex body hash.
func appendCanonical(b []byte, r *http.Request, names []string, host string, bodyHash []byte) []byte {
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = append(b, canonicalURI(r)...)
	b = append(b, '\n')
	b = append(b, r.URL.RawQuery...)
	b = append(b, '\n')
	for _, n := range names {
		v := host
		if n != "host" {
			v = headerValue(r.Header, n)
		}
		b = append(b, n...)
		b = append(b, ':')
		b = append(b, strings.TrimSpace(v)...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	for i, n := range names {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, n...)
	}
	b = append(b, '\n')
	return append(b, bodyHash...)
}

// appendStringToSign appends the string to sign of a canonical request.
func appendStringToSign(b []byte, timestamp int64, date, service string, canonical []byte) []byte {
	h := sha256.Sum256(canonical)
	b = append(b, Algorithm...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, timestamp, 10)
	b = append(b, '\n')
	b = append(b, date...)
	b = append(b, '/')
	b = append(b, service...)
	b = append(b, "/tc3_request\n"...)
	return hex.AppendEncode(b, h[:])
}

// headerValue is h.Get(name) for a lower-case name, without allocating for
// the headers signed in practice.
func headerValue(h http.Header, name string) string {
	canonical := name
	switch name {
	case "content-type":
		canonical = "Content-Type"
	case "x-tc-action":
		canonical = "X-Tc-Action"
	case "x-tc-traceid":
		canonical = "X-Tc-Traceid"
	case "x-tc-timestamp":
		canonical = "X-Tc-Timestamp"
	case "x-tc-version":
		canonical = "X-Tc-Version"
	case "x-tc-region":
		canonical = "X-Tc-Region"
	case "x-tc-language":
		canonical = "X-Tc-Language"
	default:
		return h.Get(name)
	}
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// putBuf returns a buffer to the pool unless a request with huge signed
// headers grew it.
func putBuf(bp *[]byte) {
	if cap(*bp) <= 16<<10 {
		bufPool.Put(bp)
	}
}

// SigningKey derives the per-day, per-service key of the specification:
// HMAC chained over "TC3"+secretKey, the date, the service, "tc3_request".
// The key changes once a day, so it is remembered: three HMACs fewer per
// request on both the signing and the verifying side.
func SigningKey(secretKey, date, service string) []byte {
	return signingKeyOf(secretKey, date, service).key[:]
}

// derivedKey is a signing key with its HMAC pads, ready to sign.
type derivedKey struct {
	key        [sha256.Size]byte
	ipad, opad [sha256.BlockSize]byte
}

// macPadded returns HMAC-SHA256 under k of the message that follows the
// inner pad at the start of padded (ipad || message).
func (k *derivedKey) macPadded(padded []byte) [sha256.Size]byte {
	inner := sha256.Sum256(padded)
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

type keyID struct{ date, service, secret string }

func signingKeyOf(secretKey, date, service string) *derivedKey {
	id := keyID{date, service, secretKey}
	signingKeys.RLock()
	k, ok := signingKeys.m[id]
	signingKeys.RUnlock()
	if ok {
		return k
	}
	raw := hmacSHA256([]byte("TC3"+secretKey), date)
	raw = hmacSHA256(raw, service)
	raw = hmacSHA256(raw, "tc3_request")
	k = &derivedKey{}
	copy(k.key[:], raw)
	for i := range k.ipad {
		var b byte
		if i < len(k.key) {
			b = k.key[i]
		}
		k.ipad[i], k.opad[i] = b^0x36, b^0x5c
	}
	signingKeys.Lock()
	if signingKeys.m == nil || len(signingKeys.m) >= maxSigningKeys {
		signingKeys.m = map[keyID]*derivedKey{} // bounded: yesterday's keys go too
	}
	signingKeys.m[id] = k
	signingKeys.Unlock()
	return k
}

// signingKeys memoizes derived keys. It is package state only as a cache of
// a pure function: any process, any test sees the same keys it would have
// computed.
var signingKeys struct {
	sync.RWMutex
	m map[keyID]*derivedKey
}

const maxSigningKeys = 10000

func signWithKey(key []byte, date, service string, timestamp int64, canonical string) []byte {
	h := sha256.Sum256([]byte(canonical))
	sts := Algorithm + "\n" + strconv.FormatInt(timestamp, 10) + "\n" + date + "/" + service + "/tc3_request\n" + hex.EncodeToString(h[:])
	return hmacSHA256(key, sts)
}

func canonicalURI(r *http.Request) string {
	if p := r.URL.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// hostWithoutPort returns the Host without its port, or "" when it has
// none (then only the form as sent is tried).
func hostWithoutPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		if strings.Contains(h, ":") { // IPv6 literal: SDKs sign it bracketed
			h = "[" + h + "]"
		}
		return h
	}
	return ""
}

// Signer signs outgoing requests, for Tianshu's own CLI and benchmarks.
type Signer struct {
	SecretID, SecretKey string
	Service             string // "tianshu" when empty
	// Headers names more headers to sign, lower case, besides those Sign
	// always signs.
	Headers []string
}

// Sign sets X-TC-Timestamp and Authorization on r for body. It signs
// content-type and host as the official SDKs do, and more: X-TC-Action
// when r has one, binding the signature to the action (keys created with
// RequireSignedAction need it), and X-TC-TraceId, set to a random value
// when r has none, so that identical requests signed in one second do not
// share a signature, which the gateway accepts once. s.Headers are signed
// too.
func (s Signer) Sign(r *http.Request, body []byte, now time.Time) {
	service := s.Service
	if service == "" {
		service = "tianshu"
	}
	ts := now.Unix()
	r.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	if r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", "application/json")
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if r.Header.Get("X-TC-TraceId") == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		r.Header.Set("X-TC-TraceId", hex.EncodeToString(b[:]))
	}
	var fixed [8]string
	signed := append(fixed[:0], "content-type", "host", "x-tc-traceid")
	if r.Header.Get("X-TC-Action") != "" {
		signed = append(signed, "x-tc-action")
	}
	for _, h := range s.Headers {
		if !slices.Contains(signed, h) {
			signed = append(signed, h)
		}
	}
	sort.Strings(signed)
	date := Date(ts)
	bodyHash := hexSum(body)
	mac := requestMAC(r, signed, host, bodyHash[:], signingKeyOf(s.SecretKey, date, service), ts, date, service)
	a := make([]byte, 0, 256)
	a = append(a, Algorithm+" Credential="...)
	a = append(a, s.SecretID...)
	a = append(a, '/')
	a = append(a, date...)
	a = append(a, '/')
	a = append(a, service...)
	a = append(a, "/tc3_request, SignedHeaders="...)
	for i, n := range signed {
		if i > 0 {
			a = append(a, ';')
		}
		a = append(a, n...)
	}
	a = append(a, ", Signature="...)
	a = hex.AppendEncode(a, mac[:])
	r.Header.Set("Authorization", string(a))
}
