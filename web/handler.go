package web

import (
	"bytes"
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
	return &handler{files: files, index: index, reserved: reserved, started: time.Now()}
}

type handler struct {
	files    fs.FS
	index    []byte
	reserved []string
	started  time.Time
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
			// ServeContent sets Content-Type from the extension and
			// answers ranges and conditional requests.
			http.ServeContent(w, r, name, h.started, bytes.NewReader(b))
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
	http.ServeContent(w, r, "index.html", h.started, bytes.NewReader(h.index))
}
