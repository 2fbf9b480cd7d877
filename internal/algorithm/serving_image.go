package algorithm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
)

// ServingImage lays out, in pkgDir, the package part of a container image
// that runs a model-file version (v.Serving) with its serving runtime: the
// model files under models/ and a manifest that starts the runtime on them
// as the process runtime would, for an image whose package and runtime
// files are at appDir. It returns the runtime's package directory, which
// goes into the image as a layer of its own (the same for every version,
// so registries keep it once).
func (m *Manager) ServingImage(ctx context.Context, v *Version, pkgDir, appDir string) (string, error) {
	rt, ok := LookupServingRuntime(v.Serving.Runtime)
	if !ok {
		return "", &FieldError{Field: "serving.runtime", Msg: fmt.Sprintf("unknown serving runtime %q", v.Serving.Runtime)}
	}
	if m.opts.ServingDir == "" {
		return "", &FieldError{Field: "serving.runtime", Msg: "the node that builds images has no serving runtimes directory (--worker.serving-dir)"}
	}
	dir := filepath.Join(m.opts.ServingDir, rt.Dir)
	for _, r := range append([]string{""}, rt.Requires...) {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(r))); err != nil {
			return "", &FieldError{Field: "serving.runtime", Msg: fmt.Sprintf("serving runtime %s is not installed on the node that builds images: no %s", rt.Name, filepath.Join(dir, r))}
		}
	}
	man, err := readManifest(dir, nil, true)
	if err != nil {
		return "", fmt.Errorf("serving runtime %s: %w", rt.Name, err)
	}
	mdir := filepath.Join(pkgDir, "models")
	model := "model." + rt.Format
	if _, err := m.modelFile(ctx, v.Serving.Model, "serving.model", mdir, model); err != nil {
		return "", err
	}
	env := map[string]string{}
	for k, val := range man.Env {
		env[k] = val
	}
	env["MODEL_PATH"] = path.Join(appDir, "models", model)
	env["MODEL_NAME"] = servingModelID
	env["THREADS"] = strconv.Itoa(max(v.Serving.Threads, 1))
	if r := v.Serving.Recognition; r != nil {
		rec := "recognition." + rt.Format
		if _, err := m.modelFile(ctx, r.Model, "serving.recognition.model", mdir, rec); err != nil {
			return "", err
		}
		env["EXTRA_MODELS"] = ocrRecModelID + "=" + path.Join(appDir, "models", rec)
	}
	out := *man
	out.Env = env
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(pkgDir, "manifest.json"), b, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}
