// Package builtinreg is the built-in OCI registry, for sites without one:
// go-containerregistry's registry server (pkg/registry, the OCI
// distribution API) with its blobs and manifests kept in the platform's
// blob store (the data dir's files, or S3), so that pushed images survive
// a restart.
//
// The upstream server keeps manifests in memory; here every manifest it
// accepts is written to the store before the push is answered, and the
// stored manifests are put back into a fresh server when one starts.
// Blobs go to the store directly (the server checks their digests). Pulls
// are anonymous (the cluster's nodes pull from it); pushes and deletes
// need the push login, which only the platform's image builder holds.
package builtinreg

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tianshu-ai/tianshu/internal/blob"
)

// PushUser is the user name of the push login.
const PushUser = "tianshu"

// MaxManifestBytes bounds a manifest (the distribution spec's own
// suggestion is 4 MiB).
const MaxManifestBytes = 4 << 20

// Options configure a registry.
type Options struct {
	// Prefix is where in the store the registry keeps its objects
	// (default "registry/").
	Prefix string
	// PushUser and PushPassword are the login that pushes and deletes;
	// both are required.
	PushUser, PushPassword string
	// MaxBlobBytes bounds one uploaded blob (the upstream server holds an
	// upload in memory until it completes); default 2 GiB.
	MaxBlobBytes int64
	Logger       *slog.Logger
}

// Registry is the built-in registry, an http.Handler to serve at the root
// of its own listener (the API lives under /v2/).
type Registry struct {
	store blob.Store
	o     Options
	h     http.Handler
	log   *slog.Logger
}

// New returns a registry over store, with the manifests the store holds
// put back.
func New(ctx context.Context, store blob.Store, o Options) (*Registry, error) {
	if o.Prefix == "" {
		o.Prefix = "registry/"
	}
	if o.PushUser == "" || o.PushPassword == "" {
		return nil, errors.New("builtinreg: a push user and password are required")
	}
	if o.MaxBlobBytes <= 0 {
		o.MaxBlobBytes = 2 << 30
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{store: store, o: o, log: o.Logger}
	r.h = registry.New(registry.WithBlobHandler(blobs{r}), registry.Logger(log.New(io.Discard, "", 0)))
	n, err := r.restore(ctx)
	if err != nil {
		return nil, fmt.Errorf("builtinreg: restore manifests: %w", err)
	}
	r.log.Info("built-in registry ready", "manifests", n)
	return r, nil
}

// Transport is how the builder reaches the registry in-process: a transport
// that calls the handler directly, so no connection (and no outbound
// policy) is involved.
func (r *Registry) Transport() http.RoundTripper { return handlerTransport{r} }

type handlerTransport struct{ r *Registry }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if req.Body == nil {
		req.Body = http.NoBody
	}
	t.r.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// ServeHTTP serves the distribution API.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	write := req.Method != http.MethodGet && req.Method != http.MethodHead
	if write {
		u, p, ok := req.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(r.o.PushUser)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(r.o.PushPassword)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="tianshu registry"`)
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "pushing needs the platform's login")
			return
		}
	}
	repo, kind, ref := parse(req.URL.Path)
	if kind != "manifests" || !write {
		if write {
			req.Body = http.MaxBytesReader(w, req.Body, r.o.MaxBlobBytes)
		}
		r.h.ServeHTTP(w, req)
		return
	}
	// A manifest change is answered only once the store holds it.
	var body []byte
	if req.Method == http.MethodPut {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, req.Body, MaxManifestBytes))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", fmt.Sprintf("a manifest is at most %d bytes", MaxManifestBytes))
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	var err error
	switch {
	case req.Method == http.MethodPut && rec.Code == http.StatusCreated:
		err = r.saveManifest(req.Context(), repo, ref, req.Header.Get("Content-Type"), body)
	case req.Method == http.MethodDelete && rec.Code == http.StatusAccepted:
		err = r.store.Delete(req.Context(), r.manifestKey(repo, ref))
	}
	if err != nil {
		r.log.Error("built-in registry manifest not stored", "repository", repo, "reference", ref, "err", err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "the manifest could not be stored")
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// saveManifest stores a manifest under its reference and its digest.
func (r *Registry) saveManifest(ctx context.Context, repo, ref, contentType string, body []byte) error {
	h, _, err := v1.SHA256(bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, k := range []string{r.manifestKey(repo, h.String()), r.manifestKey(repo, ref)} {
		if _, err := r.store.Put(ctx, k, bytes.NewReader(body), blob.PutOptions{ContentType: contentType, Size: int64(len(body))}); err != nil {
			return err
		}
	}
	return nil
}

// manifestKey is <prefix>manifests/<repo>/digests/<alg>/<hex> for a
// digest and <prefix>manifests/<repo>/tags/<tag> for a tag; read from
// the end, the two cannot be taken for each other.
func (r *Registry) manifestKey(repo, ref string) string {
	if alg, hex, ok := strings.Cut(ref, ":"); ok {
		return r.o.Prefix + "manifests/" + repo + "/digests/" + alg + "/" + hex
	}
	return r.o.Prefix + "manifests/" + repo + "/tags/" + ref
}

// restore puts the stored manifests back: by digest first (images, then
// indexes, which need their images), then tags.
func (r *Registry) restore(ctx context.Context) (int, error) {
	type stored struct {
		key, repo, ref string
		rank           int
	}
	var all []stored
	prefix := r.o.Prefix + "manifests/"
	err := r.store.List(ctx, prefix, func(info blob.Info) error {
		segs := strings.Split(strings.TrimPrefix(info.Key, prefix), "/")
		n := len(segs)
		switch {
		case n >= 3 && segs[n-2] == "tags":
			all = append(all, stored{info.Key, strings.Join(segs[:n-2], "/"), segs[n-1], 3})
		case n >= 4 && segs[n-3] == "digests":
			all = append(all, stored{info.Key, strings.Join(segs[:n-3], "/"), segs[n-2] + ":" + segs[n-1], 1})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	bodies := make([][]byte, len(all))
	ctypes := make([]string, len(all))
	for i, s := range all {
		rc, info, err := r.store.Get(ctx, s.key)
		if err != nil {
			return 0, err
		}
		bodies[i], err = io.ReadAll(io.LimitReader(rc, MaxManifestBytes+1))
		rc.Close()
		if err != nil {
			return 0, err
		}
		ctypes[i] = info.ContentType
		if s.rank == 1 && types.MediaType(info.ContentType).IsIndex() {
			all[i].rank = 2
		}
	}
	order := make([]int, len(all))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return all[order[a]].rank < all[order[b]].rank })
	for _, i := range order {
		s := all[i]
		req := httptest.NewRequestWithContext(ctx, http.MethodPut, "/v2/"+s.repo+"/manifests/"+s.ref, bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", ctypes[i])
		rec := httptest.NewRecorder()
		r.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			return 0, fmt.Errorf("%s: the registry answered %d: %s", s.key, rec.Code, strings.TrimSpace(rec.Body.String()))
		}
	}
	return len(all), nil
}

// parse splits /v2/<repo>/<kind>/<ref>.
func parse(p string) (repo, kind, ref string) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", "", ""
	}
	segs := strings.Split(rest, "/")
	if len(segs) < 3 {
		return "", "", ""
	}
	n := len(segs)
	return strings.Join(segs[:n-2], "/"), segs[n-2], segs[n-1]
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

// blobs keeps the registry's blobs in the store.
type blobs struct{ r *Registry }

func (b blobs) key(h v1.Hash) string { return b.r.o.Prefix + "blobs/" + h.Algorithm + "/" + h.Hex }

func (b blobs) Stat(ctx context.Context, _ string, h v1.Hash) (int64, error) {
	info, err := b.r.store.Stat(ctx, b.key(h))
	if err != nil {
		return 0, notFound(err)
	}
	return info.Size, nil
}

func (b blobs) Get(ctx context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	rc, _, err := b.r.store.Get(ctx, b.key(h))
	return rc, notFound(err)
}

func (b blobs) Put(ctx context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	// rc checks the digest as it is read: a mismatch fails the Put, which
	// then leaves nothing behind.
	_, err := b.r.store.Put(ctx, b.key(h), rc, blob.PutOptions{ContentType: "application/octet-stream", Size: -1})
	return err
}

func (b blobs) Delete(ctx context.Context, _ string, h v1.Hash) error {
	return b.r.store.Delete(ctx, b.key(h))
}

// notFound maps the store's "no such object" to the registry's.
func notFound(err error) error {
	if errors.Is(err, blob.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return registry.ErrNotFound
	}
	return err
}
