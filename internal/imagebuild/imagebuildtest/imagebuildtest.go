// Package imagebuildtest runs a real OCI registry for tests:
// go-containerregistry's registry server (in memory) on loopback, with
// basic auth in front when asked, and pushes a tiny base image to it.
package imagebuildtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry starts a registry and returns its host:port. With a user,
// every request needs basic auth with user and pass, or with writeOnly
// only writes do (anonymous pulls, authenticated pushes).
func Registry(t testing.TB, user, pass string, writeOnly bool) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user != "" && !(writeOnly && (r.Method == http.MethodGet || r.Method == http.MethodHead)) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		reg.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// PushBase pushes a tiny OCI base image to host as base/node:test: two
// layers (an os-release and a stand-in for a node binary), PATH and a
// label in its config. It returns the reference and the image.
func PushBase(t testing.TB, host, user, pass string) (string, v1.Image) {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, f := range []struct{ name, body string }{
		{"etc/os-release", "ID=tianshu-test-base\n"},
		{"usr/local/bin/node", "#!/bin/sh\necho not node\n"},
	} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(f.body))
		_ = tw.Close()
		_ = zw.Close()
		var err error
		if img, err = mutate.AppendLayers(img, static.NewLayer(buf.Bytes(), types.OCILayer)); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=test"}
	cfg.Labels = map[string]string{"base.label": "kept"}
	if img, err = mutate.Config(img, cfg); err != nil {
		t.Fatal(err)
	}
	ref := host + "/base/node:test"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: pass}
	}
	if err := remote.Write(r, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("push base: %v", err)
	}
	return ref, img
}

// Pull reads an image back by reference (anonymously without a user).
func Pull(t testing.TB, ref, user, pass string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: pass}
	}
	img, err := remote.Image(r, remote.WithAuth(auth))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}
