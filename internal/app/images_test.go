package app_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/imagebuild"
	"github.com/tianshu-ai/tianshu/internal/imagebuild/imagebuildtest"
)

// A server configured with the built-in registry builds a container
// version's image from its install package into it: the platform admin
// gets the push login, pushes a base, creates the version through the
// gateway, and the image is pulled back anonymously from the registry's
// own listener.
func TestBuiltinRegistryThroughGateway(t *testing.T) {
	addr, cfgFile := builtinRegistryConfig(t)
	e := apptest.Start(t, apptest.Options{Args: []string{"--config", cfgFile}})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)

	login := admin.mustCall("DescribeBuiltinRegistryLogin", map[string]any{})
	if login["Host"] != addr || login["Username"] == "" || len(login["Password"].(string)) < 32 {
		t.Fatalf("login %v", login)
	}
	imagebuildtest.PushBase(t, addr, login["Username"].(string), login["Password"].(string))
	settings := admin.mustCall("DescribeImageBuildSettings", map[string]any{})
	if b, _ := json.Marshal(settings); !strings.Contains(string(b), `"Builtin":true`) || strings.Contains(string(b), login["Password"].(string)) {
		t.Errorf("settings %s", b)
	}

	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range map[string]string{"manifest.json": `{"name":"p","command":"./serve"}`, "serve": "#!/bin/sh\n"} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = zw.Close()
	algID := admin.mustCall("CreateAlgorithm", map[string]any{"Name": "built"})["AlgorithmId"].(string)
	if out := signedRaw(t, e, apptest.AdminSecretID, apptest.AdminSecretKey, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "PackageBase64": base64.StdEncoding.EncodeToString(buf.Bytes()),
		"Definition": map[string]any{"runtime": "container", "contract": map[string]any{"inputs": []any{map[string]any{"name": "image", "type": "image"}}},
			"imageBuild": map[string]any{"base": "node", "repository": addr + "/algorithms/built"}}}); strings.Contains(out, `"Error"`) {
		t.Fatalf("CreateAlgorithmVersion: %s", out)
	}
	vs := admin.mustCall("DescribeAlgorithmVersions", map[string]any{"AlgorithmId": algID})["VersionSet"].([]any)
	raw, _ := json.Marshal(vs[0].(map[string]any)["Definition"])
	var def algorithm.Version
	if err := json.Unmarshal(raw, &def); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(def.Image, addr+"/algorithms/built@sha256:") {
		t.Fatalf("definition %s", raw)
	}
	img := imagebuildtest.Pull(t, def.Image, "", "")
	cf, err := img.ConfigFile()
	if err != nil || cf.Config.Labels["io.tianshu.algorithm"] != algID {
		t.Fatalf("config %+v, %v", cf, err)
	}
}

// A model file becomes a container image with no code written: the model
// uploaded over tus, a descriptor, runtime container and imageBuild give an
// image on the operator's base with the serving runtime as a layer of its
// own (shared by every model-file version: registries keep it once) and
// the model in a layer of the version's, whose process starts the runtime
// on the model. Pulled back from the built-in registry and checked.
func TestModelFileContainerImage(t *testing.T) {
	addr, cfgFile := builtinRegistryConfig(t)
	servingDir, allow := algotest.ServingDir(t)
	e := apptest.Start(t, apptest.Options{Args: []string{"--config", cfgFile, "--worker.serving-dir", servingDir, "--exec.allow", strings.Join(allow, ",")}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	login := c.mustCall("DescribeBuiltinRegistryLogin", map[string]any{})
	_, base := imagebuildtest.PushBase(t, addr, login["Username"].(string), login["Password"].(string))
	baseLayers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	upload := func(name string, body []byte) string {
		tok := c.mustCall("CreateUploadToken", map[string]any{})
		return tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), name, "application/octet-stream", body)
	}
	def := func(withBuild bool) map[string]any {
		d := map[string]any{"runtime": "container", "protocol": "oip-v2",
			"serving": map[string]any{"runtime": "onnx-cpu", "threads": 2, "input": map[string]any{"width": 8, "height": 8},
				"output": map[string]any{"kind": "classification", "topK": 1}}}
		if withBuild {
			d["imageBuild"] = map[string]any{"base": "node", "repository": addr + "/algorithms/tiny"}
		}
		return d
	}
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "tiny-in-a-box"})["AlgorithmId"].(string)
	if code, msg := c.callError("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": def(false),
		"ModelUploadId": upload("tiny.onnx", algotest.TinyClassifier())}); code != "InvalidParameterValue" || !strings.Contains(msg, "imageBuild") {
		t.Errorf("a model-file container version without imageBuild: %s %s", code, msg)
	}
	image := func(version string) (algorithm.Version, v1.Image) {
		t.Helper()
		if _, code := c.call("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Version": version, "Definition": def(true),
			"ModelUploadId": upload("tiny.onnx", algotest.TinyClassifier())}); code != "" {
			_, msg := c.callError("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Version": version, "Definition": def(true),
				"ModelUploadId": upload("tiny.onnx", algotest.TinyClassifier())})
			t.Fatalf("CreateAlgorithmVersion: %s %s", code, msg)
		}
		vs := c.mustCall("DescribeAlgorithmVersions", map[string]any{"AlgorithmId": algID})["VersionSet"].([]any)
		raw, _ := json.Marshal(vs[0].(map[string]any)["Definition"])
		var got algorithm.Version
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got.Image, addr+"/algorithms/tiny@sha256:") || got.Serving == nil {
			t.Fatalf("definition %s", raw)
		}
		return got, imagebuildtest.Pull(t, got.Image, "", "")
	}
	_, img := image("1")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(cf.Config.Env, " ")
	if cf.Config.Entrypoint[0] != "node" || cf.Config.Cmd[0] != "server.js" || cf.Config.WorkingDir != imagebuild.AppDir ||
		!strings.Contains(env, "MODEL_PATH="+imagebuild.AppDir+"/models/model.onnx") || !strings.Contains(env, "THREADS=2") || !strings.Contains(env, "PORT=8080") {
		t.Errorf("config: entrypoint %v cmd %v workdir %s env %v", cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.WorkingDir, cf.Config.Env)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(baseLayers)+2 {
		t.Fatalf("%d layers, want the base's %d, the runtime's and the model's", len(layers), len(baseLayers))
	}
	files := func(l v1.Layer) map[string]int64 {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		out := map[string]int64{}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			out[h.Name] = h.Size
		}
		return out
	}
	root := strings.TrimPrefix(imagebuild.AppDir, "/") + "/"
	rt, model := files(layers[len(layers)-2]), files(layers[len(layers)-1])
	if _, ok := rt[root+"server.js"]; !ok {
		t.Errorf("the runtime layer has no server.js")
	}
	if _, ok := rt[root+"node_modules/onnxruntime-node/package.json"]; !ok {
		t.Errorf("the runtime layer has no onnxruntime-node")
	}
	if n := model[root+"models/model.onnx"]; n != int64(len(algotest.TinyClassifier())) {
		t.Errorf("the model layer's model.onnx has %d bytes, want %d", n, len(algotest.TinyClassifier()))
	}
	if _, ok := model[root+"manifest.json"]; !ok || len(model) > 8 {
		t.Errorf("the model layer holds %v", model)
	}
	// A second version shares the runtime's layer by digest.
	_, img2 := image("2")
	layers2, err := img2.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := layers[len(layers)-2].Digest()
	d2, _ := layers2[len(layers2)-2].Digest()
	if d1 != d2 {
		t.Errorf("the runtime layer differs between versions: %s, %s", d1, d2)
	}
}

// builtinRegistryConfig returns a free address for the built-in registry
// and a config file that serves it there with a "node" base in it.
func builtinRegistryConfig(t *testing.T) (addr, cfgFile string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	cfgFile = filepath.Join(t.TempDir(), "tianshu.yaml")
	yaml := "images:\n  builtin_registry:\n    addr: " + addr + "\n  bases:\n    node: " + addr + "/base/node:test\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return addr, cfgFile
}
