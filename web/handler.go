package web

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Security headers of every console answer. The console loads nothing but
// its own bundled files and talks to the action API on the same origin;
// no inline script or style runs (React sets styles through the CSSOM,
// which style-src does not restrict).
const (
	contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
		"connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
	// hashedCache is for files under assets/, whose names carry a hash of
	// their content: a new build has new names, so they never change.
	hashedCache = "public, max-age=31536000, immutable"
)

// Handler serves the console from files (Dist() in the binary): GET and
// HEAD of an existing file answer it; any other path answers index.html, so
// that every page's URL can be opened directly and shared (the app routes
// on the client), except paths under assets/ and those starting with one of
// reserved (server routes such as "/files/" that may be absent in this
// process), which answer 404. Other methods answer 405.
func Handler(files fs.FS, reserved ...string) http.Handler {
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		index = []byte("<!doctype html><title>Tianshu</title><p>The console was not built: run make web.</p>")
	}
	h := &handler{files: files, index: index, reserved: reserved, started: time.Now(), gzipped: map[string][]byte{}}
	// Text files are compressed once, here: the bundle is a few hundred
	// kB, and browsers all take gzip.
	_ = fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !compressible(name) {
			return nil
		}
		if b, err := fs.ReadFile(files, name); err == nil && len(b) >= 1024 {
			h.gzipped[name] = Gzip(b)
		}
		return nil
	})
	if len(index) >= 1024 {
		h.gzipped["index.html"] = Gzip(index)
	}
	return h
}

type handler struct {
	files    fs.FS
	index    []byte
	reserved []string
	started  time.Time
	gzipped  map[string][]byte // by file name, for files worth it
}

func compressible(name string) bool {
	switch path.Ext(name) {
	case ".js", ".css", ".html", ".svg", ".json", ".txt", ".map":
		return true
	}
	return false
}

// Gzip compresses b at the default level, as the handler serves it.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b) // a bytes.Buffer does not fail
	_ = w.Close()
	return buf.Bytes()
}

// serve answers name's content b, gzipped when the client takes it.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, name string, b []byte) {
	w.Header().Add("Vary", "Accept-Encoding")
	if gz, ok := h.gzipped[name]; ok && acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		b = gz
	}
	// ServeContent sets Content-Type from the extension (when not set)
	// and answers ranges and conditional requests.
	http.ServeContent(w, r, name, h.started, bytes.NewReader(b))
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	for _, p := range h.reserved {
		if strings.HasPrefix("/"+name+"/", p) || "/"+name == strings.TrimSuffix(p, "/") {
			http.NotFound(w, r)
			return
		}
	}
	if name != "" && name != "index.html" {
		if b, err := fs.ReadFile(h.files, name); err == nil {
			if strings.HasPrefix(name, "assets/") {
				hdr.Set("Cache-Control", hashedCache)
			} else {
				hdr.Set("Cache-Control", "no-cache")
			}
			h.serve(w, r, name, b)
			return
		}
		if strings.HasPrefix(name, "assets/") {
			http.NotFound(w, r)
			return
		}
	}
	// index.html names the current build's assets: it is revalidated on
	// every load so that a new binary's console is picked up at once.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	h.serve(w, r, "index.html", h.index)
}
