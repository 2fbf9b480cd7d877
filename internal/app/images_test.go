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

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/imagebuild/imagebuildtest"
)

// A server configured with the built-in registry builds a container
// version's image from its install package into it: the platform admin
// gets the push login, pushes a base, creates the version through the
// gateway, and the image is pulled back anonymously from the registry's
// own listener.
func TestBuiltinRegistryThroughGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfgFile := filepath.Join(t.TempDir(), "tianshu.yaml")
	yaml := "images:\n  builtin_registry:\n    addr: " + addr + "\n  bases:\n    node: " + addr + "/base/node:test\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
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
