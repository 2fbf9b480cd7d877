package builtinreg_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	"github.com/tianshu-ai/tianshu/internal/imagebuild"
	"github.com/tianshu-ai/tianshu/internal/imagebuild/builtinreg"
	"github.com/tianshu-ai/tianshu/internal/imagebuild/imagebuildtest"
	"github.com/tianshu-ai/tianshu/internal/secrets"
)

func serve(t *testing.T, r http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func pkgDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"name":"s","command":"./serve"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "serve"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBuiltinRegistryKeepsImages pushes a base and a built image to the
// built-in registry over a real listener, checks that pulls are anonymous
// and pushes are not, then starts a second registry over the same blob
// store (a restart) and pulls the image back from it.
func TestBuiltinRegistryKeepsImages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := fileblob.New(t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := builtinreg.Options{PushUser: "tianshu", PushPassword: "derived"}
	reg, err := builtinreg.New(ctx, store, o)
	if err != nil {
		t.Fatal(err)
	}
	host := serve(t, reg)
	baseRef, _ := imagebuildtest.PushBase(t, host, "tianshu", "derived")

	box, _ := secrets.New(bytes.Repeat([]byte{3}, secrets.KeySize))
	sealed := box.Seal("derived")
	b, err := imagebuild.New(imagebuild.Config{Bases: map[string]string{"node": baseRef}, Registries: []imagebuild.Registry{{Host: host, PlainHTTP: true}}},
		imagebuild.Deps{Box: box, Credentials: func(context.Context, string) (string, string, error) { return "tianshu", sealed, nil }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(ctx, imagebuild.Request{AlgorithmID: "alg-s", Version: "1", PackageDir: pkgDir(t), Base: "node", Repository: host + "/algorithms/s"})
	if err != nil {
		t.Fatal(err)
	}
	imagebuildtest.Pull(t, res.Image, "", "") // anonymous

	// Anonymous pushes are refused.
	ref, _ := name.ParseReference(host+"/algorithms/other:1", name.Insecure)
	if err := remote.Write(ref, imagebuildtest.Pull(t, res.Image, "", ""), remote.WithAuth(authn.Anonymous)); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("anonymous push: %v, want UNAUTHORIZED", err)
	}

	// A restart: a new registry over the same store has the images.
	again, err := builtinreg.New(ctx, store, o)
	if err != nil {
		t.Fatal(err)
	}
	host2 := serve(t, again)
	img := imagebuildtest.Pull(t, strings.Replace(res.Image, host, host2, 1), "", "")
	if d, _ := img.Digest(); d.String() != res.Digest {
		t.Fatalf("after restart: digest %s, want %s", d, res.Digest)
	}
	byTag := imagebuildtest.Pull(t, strings.Replace(res.Tag, host, host2, 1), "", "")
	if d, _ := byTag.Digest(); d.String() != res.Digest {
		t.Fatalf("after restart, by tag: digest %s, want %s", d, res.Digest)
	}
	if _, err := byTag.Layers(); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer after restart: %v", err)
		}
		rc.Close()
	}
}

// TestBuiltinRegistryInProcess builds into the built-in registry through
// its in-process transport: no listener, the host only a name.
func TestBuiltinRegistryInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := fileblob.New(t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := builtinreg.New(ctx, store, builtinreg.Options{PushUser: "tianshu", PushPassword: "p"})
	if err != nil {
		t.Fatal(err)
	}
	// The base goes in over a listener; the build uses the transport.
	host := serve(t, reg)
	baseRef, _ := imagebuildtest.PushBase(t, host, "tianshu", "p")
	const name = "tianshu-registry.tianshu.svc:5000"
	box, _ := secrets.New(bytes.Repeat([]byte{3}, secrets.KeySize))
	sealed := box.Seal("p")
	b, err := imagebuild.New(imagebuild.Config{Bases: map[string]string{"node": strings.Replace(baseRef, host, name, 1)}, Registries: []imagebuild.Registry{{Host: name, PlainHTTP: true}}},
		imagebuild.Deps{Box: box, Credentials: func(context.Context, string) (string, string, error) { return "tianshu", sealed, nil },
			Transports: map[string]http.RoundTripper{name: reg.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(ctx, imagebuild.Request{AlgorithmID: "alg-s", Version: "1", PackageDir: pkgDir(t), Base: "node", Repository: name + "/algorithms/s"})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := imagebuildtest.Pull(t, strings.Replace(res.Image, name, host, 1), "", "").Digest(); d.String() != res.Digest {
		t.Fatalf("pulled %s, built %s", d, res.Digest)
	}
}
