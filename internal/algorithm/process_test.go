package algorithm

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func processVersion(id, pkg string, replicas int) Version {
	return Version{AlgorithmID: id, Version: "1", Contract: imageContract(), Runtime: RuntimeProcess,
		Package: pkg, Replicas: replicas, Idempotent: true}
}

func v1Manifest(env map[string]string) map[string]any {
	return map[string]any{
		"name": "v1server", "command": "./bin/v1server", "env": env,
		"models": []string{"models/weights.bin"}, "startupTimeout": "30s",
	}
}

func TestProcessReplicasRestartAfterKill(t *testing.T) {
	m := newManager(t, Options{GPUs: []int{0, 1}})
	v := processVersion("proc", v1Package(t, v1Manifest(nil)), 2)
	v.Resources.GPU = 1
	applyReady(t, m, v)
	r := ref("proc", "1")
	img := pngImage(t, 32, 16)

	// Both replicas get traffic, each with its own GPU.
	pids := map[float64]bool{}
	cuda := map[string]bool{}
	testenv.Eventually(t, 30*time.Second, "both replicas answering", func() bool {
		out, err := m.Invoke(context.Background(), r, map[string]any{"image": img})
		if err != nil {
			t.Fatal(err)
		}
		pids[out["pid"].(float64)] = true
		cuda[out["cuda"].(string)] = true
		return len(pids) == 2
	})
	if !cuda["0"] || !cuda["1"] {
		t.Fatalf("CUDA_VISIBLE_DEVICES per replica: %v", cuda)
	}
	st := statuses(t, m, r)
	if len(st) != 2 || st[0].PID == 0 || st[0].Address == "" || !strings.Contains(joinLogs(st[0].Logs), "v1server starting") {
		t.Fatalf("status %+v", st)
	}

	// kill -9 one replica: calls keep succeeding while it restarts.
	victim := st[0]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var callErr error
	calls := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := m.Invoke(context.Background(), r, map[string]any{"image": img}); err != nil && callErr == nil {
				callErr = err
			}
			calls++
		}
	}()
	testenv.Eventually(t, 60*time.Second, "killed replica restarted and ready", func() bool {
		for _, s := range statuses(t, m, r) {
			if s.ID == victim.ID {
				return s.Restarts >= 1 && s.Status == StatusReady && s.PID != victim.PID
			}
		}
		return false
	})
	close(stop)
	wg.Wait()
	if callErr != nil {
		t.Fatalf("a call failed during the restart (%d calls): %v", calls, callErr)
	}
	for _, s := range statuses(t, m, r) {
		if s.ID == victim.ID && !strings.Contains(s.LastError, "signal: killed") {
			t.Errorf("last error %q", s.LastError)
		}
	}

	// Stop kills every replica.
	st = statuses(t, m, r)
	if err := m.Stop(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if syscall.Kill(s.PID, 0) == nil {
			t.Errorf("pid %d alive after Stop", s.PID)
		}
	}
}

func joinLogs(ls []LogLine) string {
	var sb strings.Builder
	for _, l := range ls {
		sb.WriteString(l.Stream + ": " + l.Text + "\n")
	}
	return sb.String()
}

func TestProcessBadPackages(t *testing.T) {
	m := newManager(t, Options{StartupTimeout: 2 * time.Second, MaxStartFailures: 3})
	// A healthy builtin keeps answering throughout.
	if err := m.RegisterBuiltin("echo", Builtin{Func: func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil }}); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(context.Background(), Version{AlgorithmID: "echo", Version: "1", Runtime: RuntimeBuiltin,
		Contract: Contract{Inputs: []Field{{Name: "x", Type: TypeJSON}}}}); err != nil {
		t.Fatal(err)
	}
	echo := func() {
		t.Helper()
		if out, err := m.Invoke(context.Background(), ref("echo", ""), map[string]any{"x": 1.0}); err != nil || out["x"] != 1.0 {
			t.Fatalf("builtin stalled: %v %v", out, err)
		}
	}

	t.Run("no manifest", func(t *testing.T) {
		pkg := tarGz(t, t.TempDir(), []tarEntry{{name: "server.py", body: "print(1)"}})
		err := m.Apply(context.Background(), processVersion("nomanifest", pkg, 1))
		if !errors.Is(err, ErrNoManifest) {
			t.Fatalf("got %v", err)
		}
		echo()
	})
	t.Run("command missing", func(t *testing.T) {
		pkg := tarGz(t, t.TempDir(), []tarEntry{{name: "manifest.yaml", body: "command: ./bin/nothing\nportEnv: HTTP_PORT\n"}})
		err := m.Apply(context.Background(), processVersion("nocmd", pkg, 1))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "manifest.command" || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("got %v", err)
		}
		pkg = tarGz(t, t.TempDir(), []tarEntry{{name: "manifest.json", body: `{"command": "no-such-program-xyz"}`}})
		if err := m.Apply(context.Background(), processVersion("nocmd", pkg, 1)); !errors.As(err, &fe) || fe.Field != "manifest.command" {
			t.Fatalf("PATH lookup: %v", err)
		}
		man := v1Manifest(nil)
		man["models"] = []string{"models/missing.onnx"}
		if err := m.Apply(context.Background(), processVersion("nomodel", v1Package(t, man), 1)); !errors.As(err, &fe) || fe.Field != "manifest.models[0]" {
			t.Fatalf("missing model: %v", err)
		}
		echo()
	})
	t.Run("exits at once", func(t *testing.T) {
		v := processVersion("crash", v1Package(t, v1Manifest(map[string]string{"EXIT_AT_ONCE": "1"})), 1)
		if err := m.Apply(context.Background(), v); err != nil {
			t.Fatal(err)
		}
		echo()
		testenv.Eventually(t, 60*time.Second, "crash reported", func() bool {
			s := statuses(t, m, ref("crash", "1"))[0]
			return (s.Status == StatusRestarting || s.Status == StatusFailed) && strings.Contains(s.LastError, "model weights missing") && strings.Contains(s.LastError, "exit status 3")
		})
		testenv.Eventually(t, 60*time.Second, "gave up", func() bool {
			s := statuses(t, m, ref("crash", "1"))[0]
			return s.Status == StatusFailed && s.Restarts == 2
		})
		_, err := m.Invoke(context.Background(), ref("crash", ""), map[string]any{"image": pngImage(t, 2, 2)})
		if !errors.Is(err, ErrNoInstance) || !strings.Contains(err.Error(), "model weights missing") {
			t.Fatalf("invoke: %v", err)
		}
		echo()
	})
	t.Run("never healthy", func(t *testing.T) {
		v := processVersion("sick", v1Package(t, map[string]any{
			"command": "bin/v1server", "env": map[string]string{"NEVER_HEALTHY": "1"}, "startupTimeout": "1s",
		}), 1)
		if err := m.Apply(context.Background(), v); err != nil {
			t.Fatal(err)
		}
		// Calls made while it starts wait, bounded by their deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := m.Invoke(ctx, ref("sick", ""), map[string]any{"image": pngImage(t, 2, 2)})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("invoke while starting: %v", err)
		}
		echo()
		testenv.Eventually(t, 60*time.Second, "unhealthy reported", func() bool {
			s := statuses(t, m, ref("sick", "1"))[0]
			return s.Status != StatusReady && strings.Contains(s.LastError, "not healthy within 1s") && strings.Contains(s.LastError, "not ready")
		})
		echo()
	})
}

func TestUnpackRefusesEscapes(t *testing.T) {
	cases := map[string][]tarEntry{
		"parent":       {{name: "../evil", body: "x"}},
		"absolute":     {{name: "/tmp/evil", body: "x"}},
		"symlink out":  {{name: "link", typ: tar.TypeSymlink, link: "../../etc"}},
		"symlink abs":  {{name: "link", typ: tar.TypeSymlink, link: "/etc/passwd"}},
		"hard link":    {{name: "a", body: "x"}, {name: "b", typ: tar.TypeLink, link: "a"}},
		"through link": {{name: "d", typ: tar.TypeSymlink, link: "."}, {name: "d/../../x", body: "x"}},
		"link chain": {{name: "a/", typ: tar.TypeDir, mode: 0o755}, {name: "a/b", typ: tar.TypeSymlink, link: ".."},
			{name: "a/b/b2", typ: tar.TypeSymlink, link: ".."}, {name: "a/b/b2/evil", body: "x"}},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "pkg")
			err := UnpackFile(tarGz(t, t.TempDir(), entries), dst, PackageLimits{})
			if err == nil {
				t.Fatal("unpacked")
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 1 {
				t.Fatalf("wrote outside the package: %v", ents)
			}
		})
	}
	t.Run("size limit", func(t *testing.T) {
		err := UnpackFile(tarGz(t, t.TempDir(), []tarEntry{{name: "big", body: strings.Repeat("x", 5000)}}), filepath.Join(t.TempDir(), "p"), PackageLimits{MaxBytes: 1000})
		if err == nil || !strings.Contains(err.Error(), "more than 1000 bytes (1000 bytes)") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("file limit", func(t *testing.T) {
		err := UnpackFile(tarGz(t, t.TempDir(), []tarEntry{{name: "a", body: "1"}, {name: "b", body: "2"}}), filepath.Join(t.TempDir(), "p"), PackageLimits{MaxFiles: 1})
		if err == nil {
			t.Fatal("file limit not enforced")
		}
	})
	t.Run("zip", func(t *testing.T) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("manifest.json")
		w.Write([]byte(`{"command": "run.sh"}`))
		h := &zip.FileHeader{Name: "run.sh"}
		h.SetMode(0o755)
		w, _ = zw.CreateHeader(h)
		w.Write([]byte("#!/bin/sh\n"))
		w, _ = zw.Create("sub/model.bin")
		w.Write([]byte("m"))
		zw.Close()
		dst := filepath.Join(t.TempDir(), "p")
		if err := Unpack(bytes.NewReader(buf.Bytes()), dst, PackageLimits{}); err != nil {
			t.Fatal(err)
		}
		if man, err := ReadManifest(dst); err != nil || man.PortEnv != "PORT" {
			t.Fatalf("manifest %+v %v", man, err)
		}
		buf.Reset()
		zw = zip.NewWriter(&buf)
		w, _ = zw.Create("../../evil")
		w.Write([]byte("x"))
		zw.Close()
		if err := Unpack(bytes.NewReader(buf.Bytes()), filepath.Join(t.TempDir(), "q"), PackageLimits{}); err == nil {
			t.Fatal("zip traversal unpacked")
		}
	})
	t.Run("garbage", func(t *testing.T) {
		if err := Unpack(strings.NewReader("this is not an archive at all"), filepath.Join(t.TempDir(), "g"), PackageLimits{}); err == nil {
			t.Fatal("garbage unpacked")
		}
	})
	t.Run("safe symlink", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "p")
		err := UnpackFile(tarGz(t, t.TempDir(), []tarEntry{{name: "bin/", typ: tar.TypeDir, mode: 0o755}, {name: "bin/real", body: "x"}, {name: "bin/alias", typ: tar.TypeSymlink, link: "real"}}), dst, PackageLimits{})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestGPUAllocator(t *testing.T) {
	a := newGPUAllocator([]int{0, 1})
	g1, err := a.alloc(1)
	if err != nil || len(g1) != 1 {
		t.Fatal(g1, err)
	}
	h1, _ := a.alloc(0.5)
	h2, _ := a.alloc(0.5)
	if h1[0] != h2[0] || h1[0] == g1[0] {
		t.Fatalf("fractions %v %v whole %v", h1, h2, g1)
	}
	if _, err := a.alloc(0.5); err == nil {
		t.Fatal("over-allocated")
	}
	a.free(g1, 1)
	if g, err := a.alloc(1); err != nil || g[0] != g1[0] {
		t.Fatal(g, err)
	}
	if _, err := newGPUAllocator(nil).alloc(1); err == nil {
		t.Fatal("allocated a GPU on a node without")
	}
}

func TestProcessFromBlobStore(t *testing.T) {
	pkg, err := os.ReadFile(v1Package(t, v1Manifest(nil)))
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, Options{OpenPackage: func(_ context.Context, key string) (io.ReadCloser, error) {
		if key != "algorithms/det/1.tar.gz" {
			return nil, fs.ErrNotExist
		}
		return io.NopCloser(bytes.NewReader(pkg)), nil
	}})
	v := processVersion("blob", "algorithms/det/1.tar.gz", 1)
	applyReady(t, m, v)
	out, err := m.Invoke(context.Background(), ref("blob", ""), map[string]any{"image": pngImage(t, 7, 3)})
	if err != nil || out["width"] != 7.0 {
		t.Fatalf("invoke: %v %v", out, err)
	}
	v.AlgorithmID, v.Package = "blob2", "algorithms/none.tar.gz"
	var fe *FieldError
	if err := m.Apply(context.Background(), v); !errors.As(err, &fe) || fe.Field != "package" {
		t.Fatalf("missing blob: %v", err)
	}
}
