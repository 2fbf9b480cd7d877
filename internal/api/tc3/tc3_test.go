package tc3

import (
	"bytes"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// The worked example of the public TC3-HMAC-SHA256 specification (a CVM
// DescribeInstances call with the documentation's sample key) must produce
// the signature the specification prints.
func TestSpecificationExample(t *testing.T) {
	const (
		secretKey = "Gu5t9xGARNpq86cd98joQYCN3*******"
		ts        = int64(1551113065)
		body      = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	)
	c := CanonicalRequest("POST", "/", "", map[string]string{
		"content-type": "application/json; charset=utf-8",
		"host":         "cvm.tencentcloudapi.com",
	}, []string{"content-type", "host"}, []byte(body))
	got := Signature(secretKey, Date(ts), "cvm", ts, c)
	const want = "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
	if got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

// Signer (which builds its canonical request in a pooled buffer, as Verify
// does) signs what the specification's functions above compute: the check
// that signing and verifying are not merely consistent with each other.
func TestSignerMatchesSpecification(t *testing.T) {
	body := []byte(`{"Limit":1}`)
	ts := time.Unix(1764979200, 0)
	r := httptest.NewRequest("POST", "http://tianshu.example.com:8080/", bytes.NewReader(body))
	r.Host = ""
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Action", "DescribeApps")
	r.Header.Set("X-TC-TraceId", "0123456789abcdef")
	r.Header.Set("X-TC-Region", " ap-x ")
	Signer{SecretID: "AKIDx", SecretKey: "k", Headers: []string{"x-tc-region", "host"}}.Sign(r, body, ts)
	c := CanonicalRequest("POST", "/", "", map[string]string{
		"content-type": "application/json", "host": "tianshu.example.com:8080", "x-tc-action": "DescribeApps",
		"x-tc-traceid": "0123456789abcdef", "x-tc-region": "ap-x",
	}, []string{"content-type", "host", "x-tc-action", "x-tc-region", "x-tc-traceid"}, body)
	want := "TC3-HMAC-SHA256 Credential=AKIDx/" + Date(ts.Unix()) + "/tianshu/tc3_request, SignedHeaders=content-type;host;x-tc-action;x-tc-region;x-tc-traceid, Signature=" +
		Signature("k", Date(ts.Unix()), "tianshu", ts.Unix(), c)
	if got := r.Header.Get("Authorization"); got != want {
		t.Fatalf("Authorization\n got %s\nwant %s", got, want)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	body := []byte(`{"Limit":1}`)
	now := time.Now()
	for _, host := range []string{"127.0.0.1:8080", "tianshu.example.com", "[::1]:9000"} {
		r := httptest.NewRequest("POST", "http://"+host+"/", bytes.NewReader(body))
		r.Host = host
		Signer{SecretID: "AKIDx", SecretKey: "k"}.Sign(r, body, now)
		a, err := ParseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		if !Verify(r, body, a, "k", now.Unix()) {
			t.Errorf("%s: own signature rejected", host)
		}
		if Verify(r, body, a, "wrong", now.Unix()) {
			t.Errorf("%s: wrong key accepted", host)
		}
		if Verify(r, append(body, ' '), a, "k", now.Unix()) {
			t.Errorf("%s: changed body accepted", host)
		}
	}
}

// A client that signs the host without its port (as the Node.js SDK does)
// is accepted when the request arrives with the port.
func TestHostWithoutPort(t *testing.T) {
	body := []byte(`{}`)
	now := time.Now()
	r := httptest.NewRequest("POST", "http://localhost/", bytes.NewReader(body))
	r.Host = "localhost"
	Signer{SecretID: "AKIDx", SecretKey: "k", Service: "localhost"}.Sign(r, body, now)
	r.Host = "localhost:8080"
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if !Verify(r, body, a, "k", now.Unix()) {
		t.Fatal("port-less host signature rejected")
	}
}

func TestParseAuthorizationErrors(t *testing.T) {
	for _, h := range []string{
		"",
		"Basic abc",
		"TC3-HMAC-SHA256 Credential=AKID/2026-01-01/tianshu, SignedHeaders=host, Signature=" + string(bytes.Repeat([]byte("a"), 64)),
		"TC3-HMAC-SHA256 Credential=AKID/20260101/tianshu/tc3_request, SignedHeaders=host, Signature=" + string(bytes.Repeat([]byte("a"), 64)),
		"TC3-HMAC-SHA256 Credential=AKID/2026-01-01/tianshu/tc3_request, SignedHeaders=host, Signature=abc",
		"TC3-HMAC-SHA256 Credential=AKID/2026-01-01/tianshu/tc3_request, Signature=" + string(bytes.Repeat([]byte("a"), 64)),
	} {
		if _, err := ParseAuthorization(h); err == nil {
			t.Errorf("ParseAuthorization(%q) = nil error", h)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("TC3-HMAC-SHA256 Credential=AKID/2026-01-01/tianshu/tc3_request, SignedHeaders=content-type;host, Signature=" + string(bytes.Repeat([]byte("a"), 64)))
	f.Add("TC3-HMAC-SHA256 ,,,=")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err == nil && (a.SecretID == "" || len(a.Signature) != 64) {
			t.Fatalf("accepted incomplete header %q", h)
		}
	})
}

// Signer.Headers are signed besides content-type and host: changing one
// after signing breaks the signature.
func TestSignerSignsMoreHeaders(t *testing.T) {
	body := []byte(`{}`)
	r := httptest.NewRequest("POST", "http://127.0.0.1:8080/", bytes.NewReader(body))
	r.Header.Set("X-TC-Action", "DescribeApps")
	Signer{SecretID: "AKIDx", SecretKey: "k", Headers: []string{"x-tc-action"}}.Sign(r, body, time.Now())
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Signs("x-tc-action") || !a.Signs("host") || !a.Signs("content-type") || a.Signs("x-tc-version") {
		t.Fatalf("SignedHeaders = %v", a.SignedHeaders)
	}
	ts := mustTimestamp(t, r.Header.Get("X-TC-Timestamp"))
	if !Verify(r, body, a, "k", ts) {
		t.Fatal("signed request does not verify")
	}
	r.Header.Set("X-TC-Action", "CreateAppKey")
	if Verify(r, body, a, "k", ts) {
		t.Fatal("re-aimed request verifies")
	}
}

func mustTimestamp(t *testing.T, s string) int64 {
	t.Helper()
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// BenchmarkVerify measures the server's check of one signed request (the
// derived key already cached, as for every request after a key's first).
func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"Limit":1}`)
	now := time.Now()
	r := httptest.NewRequest("POST", "http://127.0.0.1:8080/", bytes.NewReader(body))
	r.Header.Set("X-TC-Action", "DescribeApps")
	Signer{SecretID: "AKIDx", SecretKey: "k"}.Sign(r, body, now)
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !Verify(r, body, a, "k", now.Unix()) {
			b.Fatal("own signature rejected")
		}
	}
}

// BenchmarkParseAuthorization measures parsing the Authorization header.
func BenchmarkParseAuthorization(b *testing.B) {
	h := "TC3-HMAC-SHA256 Credential=AKIDx/2026-12-06/tianshu/tc3_request, SignedHeaders=content-type;host;x-tc-action;x-tc-traceid, Signature=" + string(bytes.Repeat([]byte("a"), 64))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorization(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign measures what a client pays per signed call: a new request
// with the headers a call carries, signed.
func BenchmarkSign(b *testing.B) {
	s := Signer{SecretID: "AKIDbenchmark0000000000000000000", SecretKey: "benchmark-secret-key-000000000000"}
	body := []byte(`{"Limit":1}`)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "http://127.0.0.1:8080/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-TC-Action", "DescribeApps")
		r.Header.Set("X-TC-Version", "2026-11-28")
		s.Sign(r, body, now)
	}
}
