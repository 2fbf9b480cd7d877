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
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("%w: %q is not key=value", ErrMalformed, part)
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 4 || f[3] != "tc3_request" || f[0] == "" || f[2] == "" {
				return a, fmt.Errorf("%w: Credential must be SecretId/date/service/tc3_request", ErrMalformed)
			}
			if _, err := time.Parse("2006-01-02", f[1]); err != nil {
				return a, fmt.Errorf("%w: Credential date %q is not YYYY-MM-DD", ErrMalformed, f[1])
			}
			a.SecretID, a.Date, a.Service = f[0], f[1], f[2]
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(strings.ToLower(v), ";")
		case "Signature":
			a.Signature = strings.ToLower(v)
		}
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
func Verify(r *http.Request, body []byte, a Authorization, secretKey string, timestamp int64) bool {
	if a.Date != Date(timestamp) {
		return false
	}
	want, err := hex.DecodeString(a.Signature)
	if err != nil {
		return false
	}
	headers := make(map[string]string, len(a.SignedHeaders))
	signsHost := false
	for _, n := range a.SignedHeaders {
		if n == "host" {
			signsHost = true
			continue
		}
		headers[n] = r.Header.Get(n)
	}
	hosts := []string{""}
	if signsHost {
		hosts = hostForms(r.Host)
	}
	key := SigningKey(secretKey, a.Date, a.Service)
	bodySum := sha256.Sum256(body)
	for _, h := range hosts {
		if signsHost {
			headers["host"] = h
		}
		c := canonicalRequest(r.Method, canonicalURI(r), r.URL.RawQuery, headers, a.SignedHeaders, hex.EncodeToString(bodySum[:]))
		// Which host form matched is no secret (the client chose it), so
		// stopping at the first match leaks nothing; each comparison is
		// constant-time.
		if hmac.Equal(signWithKey(key, a.Date, a.Service, timestamp, c), want) {
			return true
		}
	}
	return false
}

// SigningKey derives the per-day, per-service key of the specification:
// HMAC chained over "TC3"+secretKey, the date, the service, "tc3_request".
// The key changes once a day, so it is remembered: three HMACs fewer per
// request on both the signing and the verifying side.
func SigningKey(secretKey, date, service string) []byte {
	id := date + "\x00" + service + "\x00" + secretKey
	if k, ok := signingKeys.Load(id); ok {
		return k.([]byte)
	}
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "tc3_request")
	if signingKeyCount.Add(1) > maxSigningKeys {
		signingKeys.Clear() // bounded: yesterday's keys go too
		signingKeyCount.Store(0)
	}
	signingKeys.Store(id, k)
	return k
}

// signingKeys memoizes derived keys. It is package state only as a cache of
// a pure function: any process, any test sees the same keys it would have
// computed.
var (
	signingKeys     sync.Map
	signingKeyCount atomic.Int64
)

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

// hostForms returns the Host as sent and, when it carries a port, without it.
func hostForms(host string) []string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		if strings.Contains(h, ":") { // IPv6 literal: SDKs sign it bracketed
			h = "[" + h + "]"
		}
		return []string{host, h}
	}
	return []string{host}
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
	signed := []string{"content-type", "host", "x-tc-traceid"}
	values := map[string]string{"content-type": r.Header.Get("Content-Type"), "host": host, "x-tc-traceid": r.Header.Get("X-TC-TraceId")}
	if a := r.Header.Get("X-TC-Action"); a != "" {
		signed = append(signed, "x-tc-action")
		values["x-tc-action"] = a
	}
	for _, h := range s.Headers {
		if _, dup := values[h]; dup {
			continue
		}
		signed = append(signed, h)
		values[h] = r.Header.Get(h)
	}
	sort.Strings(signed)
	c := CanonicalRequest(r.Method, canonicalURI(r), r.URL.RawQuery, values, signed, body)
	date := Date(ts)
	sig := Signature(s.SecretKey, date, service, ts, c)
	r.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, Signature=%s",
		Algorithm, s.SecretID, date, service, strings.Join(signed, ";"), sig))
}
