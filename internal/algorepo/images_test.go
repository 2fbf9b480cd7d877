package algorepo_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	"github.com/tianshu-ai/tianshu/internal/imagebuild"
	"github.com/tianshu-ai/tianshu/internal/imagebuild/imagebuildtest"
	"github.com/tianshu-ai/tianshu/internal/secrets"
)

// smallPackage is a tar.gz install package whose command is a script in
// it, in base64; extra changes the script.
func smallPackage(t *testing.T, extra string) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(tarGz(t, map[string]string{
		"manifest.json": `{"name":"plates","version":"2.1","command":"./bin/serve","args":["--port","$PORT"],"env":{"THREADS":"2"},"health":"/healthz"}`,
		"bin/serve":     "#!/bin/sh\n" + extra,
	}))
}

// imagesEnv is newEnv with the image builder over a real registry (basic
// auth in front), credentials sealed in the store and packages in a file
// blob store.
func imagesEnv(t *testing.T) (*env, string, string) {
	t.Helper()
	e := newEnv(t)
	box, err := secrets.New(bytes.Repeat([]byte{9}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	e.s.UseSecrets(box)
	host := imagebuildtest.Registry(t, "ci", "pa55", false)
	baseRef, _ := imagebuildtest.PushBase(t, host, "ci", "pa55")
	b, err := imagebuild.New(imagebuild.Config{Bases: map[string]string{"node": baseRef},
		Registries: []imagebuild.Registry{{Host: host, PlainHTTP: true}}},
		imagebuild.Deps{Box: box, Credentials: e.s.RegistryCredential})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := fileblob.New(t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.s.UseImages(b, func(ctx context.Context, key string) (io.ReadCloser, error) {
		rc, _, err := bs.Get(ctx, key)
		return rc, err
	})
	e.reg = api.NewRegistry()
	algorepo.RegisterActions(e.reg, e.s, algorepo.BlobPackages{Blob: bs})
	return e, host, baseRef
}

// TestCreateContainerVersionBuildsImage creates a container version from
// an install package through the API: the image is built, pushed with the
// sealed credentials and recorded by digest on the version.
func TestCreateContainerVersionBuildsImage(t *testing.T) {
	e, host, _ := imagesEnv(t)
	admin := &api.Caller{} // the platform itself
	appA := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAdmin}
	var created algorepo.CreateAlgorithmResponse
	if err := call(t, e, appA, "CreateAlgorithm", map[string]any{"Name": "plates"}, &created); err != nil {
		t.Fatal(err)
	}
	def := map[string]any{"runtime": "container", "contract": map[string]any{"inputs": []any{map[string]any{"name": "image", "type": "image"}}},
		"imageBuild": map[string]any{"base": "node", "repository": host + "/algorithms/plates"}}
	create := func(c *api.Caller, pkg string) (algorepo.CreateAlgorithmVersionResponse, error) {
		var v algorepo.CreateAlgorithmVersionResponse
		err := call(t, e, c, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId, "Definition": def, "PackageBase64": pkg}, &v)
		return v, err
	}

	// No credentials yet: the registry refuses, and the version says so.
	_, err := create(appA, smallPackage(t, ""))
	wantCode(t, err, api.InvalidParameterValue, "")
	if !strings.Contains(err.Error(), "Definition.imageBuild.base") || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("error %v", err)
	}

	// A project admin may not set credentials; the platform admin may,
	// and only for an allowed registry.
	wantCode(t, call(t, e, appA, "SetImageRegistryCredential", map[string]any{"Host": host, "Username": "ci", "Password": "pa55"}, nil), api.AuthFailureUnauthorizedOperation, "")
	wantCode(t, call(t, e, admin, "SetImageRegistryCredential", map[string]any{"Host": "elsewhere.example", "Username": "ci", "Password": "x"}, nil), api.InvalidParameterValue, "")
	if err := call(t, e, admin, "SetImageRegistryCredential", map[string]any{"Host": host, "Username": "ci", "Password": "pa55"}, nil); err != nil {
		t.Fatal(err)
	}
	var sealed string
	if err := e.db.QueryRow(context.Background(), "SELECT password_enc FROM image_registry_credentials WHERE host = ?", host).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealed, "v1:") || strings.Contains(sealed, "pa55") {
		t.Errorf("stored password %q is not sealed", sealed)
	}
	var settings algorepo.DescribeImageBuildSettingsResponse
	if err := call(t, e, appA, "DescribeImageBuildSettings", map[string]any{}, &settings); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(settings); !settings.Enabled || !slices.Equal(settings.Bases, []string{"node"}) ||
		len(settings.RegistrySet) != 1 || !settings.RegistrySet[0].HasCredential || settings.RegistrySet[0].Username != "ci" || strings.Contains(string(b), "pa55") {
		t.Errorf("settings %s", b)
	}

	v, err := create(appA, smallPackage(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	var vs algorepo.DescribeAlgorithmVersionsResponse
	if err := call(t, e, appA, "DescribeAlgorithmVersions", map[string]any{"AlgorithmId": created.AlgorithmId}, &vs); err != nil {
		t.Fatal(err)
	}
	var got algorithm.Version
	if err := json.Unmarshal(vs.VersionSet[0].Definition, &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != v.Version || !strings.HasPrefix(got.Image, host+"/algorithms/plates@sha256:") || got.ImageBuild == nil || !strings.HasPrefix(got.ImageBuild.BaseDigest, "sha256:") || got.Package == "" {
		t.Fatalf("version %+v", got)
	}
	img := imagebuildtest.Pull(t, got.Image, "ci", "pa55")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if c := cf.Config; !slices.Equal(c.Entrypoint, []string{imagebuild.AppDir + "/bin/serve"}) || !slices.Equal(c.Cmd, []string{"--port", "8080"}) ||
		c.Labels[imagebuild.LabelAlgorithm] != created.AlgorithmId || c.Labels[imagebuild.LabelVersion] != v.Version || c.Labels[imagebuild.LabelHealth] != "/healthz" {
		t.Errorf("config %+v", c)
	}

	// Bad requests name the field.
	wrong := map[string]any{"runtime": "container", "contract": def["contract"], "image": "x/y:1", "imageBuild": map[string]any{"base": "node", "repository": host + "/a"}}
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId, "Definition": wrong, "PackageBase64": smallPackage(t, "")}, nil)
	wantCode(t, err, api.InvalidParameterValue, "Definition.image: give image or imageBuild, not both")
	delete(wrong, "image")
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId, "Definition": wrong}, nil)
	wantCode(t, err, api.InvalidParameterValue, "PackageUploadId: imageBuild needs the install package (PackageUploadId or PackageBase64), or a model file (Definition.serving and ModelUploadId)")
	wrong["imageBuild"] = map[string]any{"base": "python", "repository": host + "/a"}
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId, "Definition": wrong, "PackageBase64": smallPackage(t, "")}, nil)
	wantCode(t, err, api.InvalidParameterValue, `Definition.imageBuild.base: "python" is not a base image of this installation (known: node)`)
	wrong["imageBuild"] = map[string]any{"base": "node", "repository": "registry.invalid/a"}
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId, "Definition": wrong, "PackageBase64": smallPackage(t, "")}, nil)
	wantCode(t, err, api.InvalidParameterValue, "")
	if !strings.Contains(err.Error(), "registry.invalid is not allowed") {
		t.Errorf("error %v", err)
	}
	// The definition is checked before anything is built.
	invalid := map[string]any{"runtime": "container", "contract": map[string]any{}, "imageBuild": map[string]any{"base": "node", "repository": host + "/algorithms/invalid"}}
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId, "Definition": invalid, "PackageBase64": smallPackage(t, "")}, nil)
	wantCode(t, err, api.InvalidParameterValue, "Definition.contract.inputs: declare at least one input")
	noCmd := base64.StdEncoding.EncodeToString(tarGz(t, map[string]string{"manifest.json": `{"name":"x"}`}))
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId, "Definition": def, "PackageBase64": noCmd}, nil)
	wantCode(t, err, api.InvalidParameterValue, "PackageBase64: manifest.command: required")

	// Forgetting the credentials: pulls are refused again.
	if err := call(t, e, admin, "DeleteImageRegistryCredential", map[string]any{"Host": host}, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, call(t, e, admin, "DeleteImageRegistryCredential", map[string]any{"Host": host}, nil), api.ResourceNotFound, "")
}

// TestImageBuildNotConfigured checks the answers of a server without
// base images or registries.
func TestImageBuildNotConfigured(t *testing.T) {
	e := newEnv(t)
	a, err := e.s.Create(context.Background(), "prj-a", "plates", "")
	if err != nil {
		t.Fatal(err)
	}
	def := map[string]any{"runtime": "container", "contract": map[string]any{}, "imageBuild": map[string]any{"base": "node", "repository": "r.example/a"}}
	e.reg = api.NewRegistry()
	bs, err := fileblob.New(t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	algorepo.RegisterActions(e.reg, e.s, algorepo.BlobPackages{Blob: bs})
	err = call(t, e, &api.Caller{}, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": a.ID, "Definition": def, "PackageBase64": smallPackage(t, "")}, nil)
	wantCode(t, err, api.FailedOperation, "")
	wantCode(t, call(t, e, &api.Caller{}, "SetImageRegistryCredential", map[string]any{"Host": "r.example", "Password": "x"}, nil), api.FailedOperation, "")
	var settings algorepo.DescribeImageBuildSettingsResponse
	if err := call(t, e, &api.Caller{}, "DescribeImageBuildSettings", map[string]any{}, &settings); err != nil || settings.Enabled {
		t.Fatalf("settings %+v, %v", settings, err)
	}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for n, body := range files {
		_ = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}
