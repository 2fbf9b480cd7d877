package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var files = fstest.MapFS{
	"index.html":           {Data: []byte("<!doctype html><div id=root></div>")},
	"assets/index-Ab1.js":  {Data: []byte("console.log(1)")},
	"assets/index-Ab1.css": {Data: []byte("body{}")},
	"favicon.svg":          {Data: []byte("<svg xmlns='http://www.w3.org/2000/svg'/>")},
}

func TestHandlerServesFilesWithTypesAndCaching(t *testing.T) {
	h := Handler(files, "/files/", "/metrics/")
	for _, c := range []struct{ path, ctype, cache, body string }{
		{"/", "text/html; charset=utf-8", "no-cache", "<!doctype html>"},
		{"/index.html", "text/html; charset=utf-8", "no-cache", "<!doctype html>"},
		{"/assets/index-Ab1.js", "text/javascript; charset=utf-8", hashedCache, "console.log"},
		{"/assets/index-Ab1.css", "text/css; charset=utf-8", hashedCache, "body{}"},
		{"/favicon.svg", "image/svg+xml", "no-cache", "<svg"},
	} {
		r := get(t, h, http.MethodGet, c.path)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", c.path, r.StatusCode)
		}
		if got := r.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if got := r.Header.Get("Cache-Control"); got != c.cache {
			t.Errorf("GET %s: Cache-Control %q, want %q", c.path, got, c.cache)
		}
		if got := r.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") || !strings.Contains(got, "script-src 'self'") || strings.Contains(got, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, got)
		}
		if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", c.path, got)
		}
		if b := body(t, r); !strings.HasPrefix(b, c.body) {
			t.Errorf("GET %s: body %q", c.path, b)
		}
	}
}

func TestHandlerFallsBackToIndexForPages(t *testing.T) {
	h := Handler(files, "/files/", "/metrics/")
	for _, p := range []string{"/devices", "/devices?project=demo&offset=20", "/overview/", "/a/b/c"} {
		r := get(t, h, http.MethodGet, p)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(body(t, r), "<!doctype html>") {
			t.Errorf("GET %s: %d, want index.html", p, r.StatusCode)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", p, got)
		}
	}
	if r := get(t, h, http.MethodHead, "/devices"); r.StatusCode != http.StatusOK {
		t.Errorf("HEAD /devices: %d", r.StatusCode)
	}
}

func TestHandlerRefusesMissingAssetsReservedPathsAndWrites(t *testing.T) {
	h := Handler(files, "/files/", "/metrics/")
	for _, p := range []string{"/assets/gone-123.js", "/files/abc", "/files", "/metrics"} {
		if r := get(t, h, http.MethodGet, p); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.StatusCode)
		}
	}
	if r := get(t, h, http.MethodGet, "/filesystem"); r.StatusCode != http.StatusOK {
		t.Errorf("GET /filesystem: %d, want the console (only /files/ is reserved)", r.StatusCode)
	}
	r := get(t, h, http.MethodPut, "/devices")
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("PUT /devices: %d Allow %q, want 405 GET, HEAD", r.StatusCode, r.Header.Get("Allow"))
	}
}

func TestHandlerAnswersConditionalRequests(t *testing.T) {
	h := Handler(files)
	r := get(t, h, http.MethodGet, "/assets/index-Ab1.js")
	lm := r.Header.Get("Last-Modified")
	if lm == "" {
		t.Fatal("no Last-Modified")
	}
	req := httptest.NewRequest(http.MethodGet, "/assets/index-Ab1.js", nil)
	req.Header.Set("If-Modified-Since", lm)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("conditional GET: %d, want 304", rec.Code)
	}
}

// TestDistIsBuilt checks the embedded build: an index.html that loads its
// hashed assets by absolute path, with no inline script (the CSP forbids
// one) and nothing from another origin.
func TestDistIsBuilt(t *testing.T) {
	h := Handler(Dist())
	idx := body(t, get(t, h, http.MethodGet, "/"))
	if !strings.Contains(idx, `<script type="module" crossorigin src="/assets/`) {
		t.Fatalf("index.html does not load the bundle from /assets/:\n%s", idx)
	}
	if strings.Contains(idx, "<script>") || strings.Contains(idx, "<script type=\"module\">") {
		t.Errorf("index.html has an inline script:\n%s", idx)
	}
	if strings.Contains(idx, "http://") || strings.Contains(idx, "https://") || strings.Contains(idx, "//cdn") {
		t.Errorf("index.html names another origin:\n%s", idx)
	}
	src := idx[strings.Index(idx, `src="/assets/`)+len(`src="`):]
	src = src[:strings.Index(src, `"`)]
	r := get(t, h, http.MethodGet, src)
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || r.Header.Get("Cache-Control") != hashedCache {
		t.Errorf("GET %s: %d %q %q", src, r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"))
	}
}

func TestHandlerGzipsForClientsThatTakeIt(t *testing.T) {
	big := strings.Repeat("function f(){return 1}\n", 200)
	h := Handler(fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}, "assets/app-1.js": {Data: []byte(big)}})
	req := httptest.NewRequest(http.MethodGet, "/assets/app-1.js", nil)
	req.Header.Set("Accept-Encoding", "br, gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	r := rec.Result()
	if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || !strings.Contains(r.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip answer headers: %v", r.Header)
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != big {
		t.Errorf("gunzipped body differs")
	}
	req.Header.Set("Accept-Encoding", "gzip;q=0")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != big {
		t.Errorf("gzip;q=0: Content-Encoding %q", rec.Header().Get("Content-Encoding"))
	}
}
