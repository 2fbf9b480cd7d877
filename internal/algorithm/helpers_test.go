package algorithm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/media"
)

// v1serverBin is the test program built once by TestMain.
var v1serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "algorithm-test-")
	if err != nil {
		panic(err)
	}
	v1serverBin = filepath.Join(dir, "v1server")
	out, err := exec.Command("go", "build", "-o", v1serverBin, "./testdata/v1server").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building v1server: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newManager(t *testing.T, opts Options) *Manager {
	t.Helper()
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.WorkDir == "" {
		opts.WorkDir = t.TempDir()
	}
	if opts.HealthInterval == 0 {
		opts.HealthInterval = 200 * time.Millisecond
	}
	if opts.RestartBackoff == 0 {
		opts.RestartBackoff = 100 * time.Millisecond
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

func pngImage(t testing.TB, w, h int) media.Image {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return media.Image{Bytes: buf.Bytes(), ContentType: "image/png"}
}

func ref(id, ver string) Ref { return Ref{ID: id, Version: ver} }

func imageContract() Contract {
	return Contract{
		Inputs:  []Field{{Name: "image", Type: TypeImage, Required: true}},
		Outputs: []Field{{Name: "objects", Type: TypeObjects}},
	}
}

// v1Endpoint starts an in-process tianshu-v1 server.
func v1Endpoint(t *testing.T, s *algotest.V1Server) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

type tarEntry struct {
	name, body, link string
	mode             int64
	typ              byte
}

// tarGz writes a .tar.gz package into dir and returns its path.
func tarGz(t *testing.T, dir string, entries []tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: e.typ, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("pkg-%d.tar.gz", time.Now().UnixNano()))
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// v1Package packages the v1server binary with a manifest.
func v1Package(t *testing.T, manifest map[string]any) string {
	t.Helper()
	bin, err := os.ReadFile(v1serverBin)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := json.Marshal(manifest)
	return tarGz(t, t.TempDir(), []tarEntry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/v1server", body: string(bin), mode: 0o755},
		{name: "models/weights.bin", body: "weights"},
		{name: "manifest.json", body: string(mb)},
	})
}

func statuses(t *testing.T, m *Manager, r Ref) []InstanceStatus {
	t.Helper()
	st, err := m.Instances(r)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func allReady(t *testing.T, m *Manager, r Ref) func() bool {
	return func() bool {
		for _, s := range statuses(t, m, r) {
			if s.Status != StatusReady {
				return false
			}
		}
		return true
	}
}
