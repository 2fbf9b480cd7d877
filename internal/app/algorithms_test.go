package app_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// v1Package builds the tianshu-v1 test server of the algorithm runtime and
// packs it with a manifest, as a vendor would.
func v1Package(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "v1server")
	if out, err := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "../algorithm/testdata/v1server").CombinedOutput(); err != nil {
		t.Fatalf("build v1server: %v\n%s", err, out)
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{
		{"manifest.json", 0o644, []byte(`{"name": "v1server", "command": "./bin/v1server"}`)},
		{"bin/v1server", 0o755, body},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(f.body)
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}

func pngImage(w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	img.Set(1, 1, color.Gray{Y: 255})
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

// An install package goes through the action API, runs as a supervised
// process, answers calls, survives kill -9, is called from a flow, and
// stops.
func TestAlgorithmPackageEndToEnd(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	pkg := v1Package(t)
	if len(pkg) > 3<<20 {
		t.Fatalf("package is %d bytes, over the request limit", len(pkg))
	}
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "vendor-detector"})["AlgorithmId"].(string)
	def := map[string]any{"runtime": "process", "protocol": "tianshu-v1", "replicas": 1,
		"contract": map[string]any{"inputs": []any{map[string]any{"name": "image", "type": "image", "required": true}},
			"outputs": []any{map[string]any{"name": "objects", "type": "objects"}}}}
	if _, code := c.call("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": map[string]any{"runtime": "teleport"}}); code != "InvalidParameterValue" {
		t.Errorf("bad runtime: %q", code)
	}
	if _, code := c.call("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": map[string]any{"colour": 1}}); code != "UnknownParameter" {
		t.Errorf("unknown definition field: %q", code)
	}
	r := c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": def,
		"PackageBase64": base64.StdEncoding.EncodeToString(pkg), "Start": true})
	if r["Version"] != "1" {
		t.Fatalf("CreateAlgorithmVersion = %v", r)
	}

	instances := func() []any {
		return c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)
	}
	ready := func() (float64, bool) {
		is := instances()
		if len(is) != 1 {
			return 0, false
		}
		i := is[0].(map[string]any)
		return i["Pid"].(float64), i["Status"] == "ready"
	}
	t0 := time.Now()
	testenv.Eventually(t, 60*time.Second, "instance ready", func() bool { _, ok := ready(); return ok })
	t.Logf("ready after %s", time.Since(t0))

	img := base64.StdEncoding.EncodeToString(pngImage(64, 48))
	out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": img})
	if objs, _ := out["Outputs"].(map[string]any)["objects"].([]any); len(objs) == 0 {
		t.Fatalf("InvokeAlgorithm = %v", out)
	}

	// A flow calls it; validation knows its contract.
	flowDoc := `{"name": "detect", "nodes": [{"id": "det", "kind": "algorithm", "config": {"algorithm": "` + algID + `"},
	  "inputs": {"image": "$input.image"}}], "output": {"objects": "$det.objects"}}`
	if v := c.mustCall("ValidateFlow", map[string]any{"Document": flowDoc}); v["Valid"] != true {
		t.Fatalf("flow with the algorithm: %v", v)
	}
	bad := `{"nodes": [{"id": "det", "kind": "algorithm", "config": {"algorithm": "alg-nothere"}, "inputs": {"image": "$input.image"}}]}`
	if v := c.mustCall("ValidateFlow", map[string]any{"Document": bad}); v["Valid"] != false {
		t.Fatalf("flow with an unknown algorithm validated: %v", v)
	}
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": flowDoc})["FlowId"].(string)
	if _, code := c.call("DeleteAlgorithm", map[string]any{"AlgorithmId": algID}); code != "ResourceInUse" {
		t.Errorf("DeleteAlgorithm while a flow calls it: %q", code)
	}

	// kill -9 the instance: it is restarted and serves again.
	pid, _ := ready()
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	testenv.Eventually(t, 60*time.Second, "instance restarted", func() bool {
		p, ok := ready()
		return ok && p != pid
	})
	t.Logf("restarted after %s", time.Since(t0))
	c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": img})

	c.mustCall("StopAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Version": "1"})
	t0 = time.Now()
	testenv.Eventually(t, 30*time.Second, "instances gone", func() bool { return len(instances()) == 0 })
	t.Logf("stopped after %s", time.Since(t0))
	if _, code := c.call("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": img}); code != "ResourceUnavailable" {
		t.Errorf("invoking a stopped version: %q", code)
	}

	// The same package uploaded with tus makes version 2 (packages of any
	// size), which becomes the current version.
	tok := c.mustCall("CreateUploadToken", map[string]any{})
	up := tusUpload(t, tok["Endpoint"].(string), tok["Token"].(string), "v1server.tar.gz", pkg)
	if r := c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": def, "PackageUploadId": up, "Start": true}); r["Version"] != "2" {
		t.Fatalf("CreateAlgorithmVersion from an upload = %v", r)
	}
	testenv.Eventually(t, 60*time.Second, "version 2 ready", func() bool { _, ok := ready(); return ok })
	c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": img})
	c.mustCall("StopAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Version": "2"})

	c.mustCall("DeleteFlow", map[string]any{"FlowId": flowID})
	c.mustCall("DeleteAlgorithm", map[string]any{"AlgorithmId": algID})
}
