package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// DescribeServingRuntimes lists what the console's model-file form offers:
// each runtime's protocol, model formats, output kinds and detection
// layouts, and whether the answering node can run it, with why not in the
// words a version's start would fail with.
func TestDescribeServingRuntimes(t *testing.T) {
	runtime := func(c *sdk) map[string]any {
		t.Helper()
		r := c.mustCall("DescribeServingRuntimes", map[string]any{})
		set := r["RuntimeSet"].([]any)
		if r["TotalCount"] != float64(len(set)) || len(set) != 1 {
			t.Fatalf("DescribeServingRuntimes = %v", r)
		}
		return set[0].(map[string]any)
	}

	// A node without the runtime installed, then with it installed but
	// its command (node) not allowed by the exec policy.
	dir := t.TempDir()
	e := apptest.Start(t, apptest.Options{Args: []string{"--worker.serving-dir", dir}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	rt := runtime(c)
	if got := toJSON(rt); rt["Name"] != "onnx-cpu" || rt["Protocol"] != "oip-v2" ||
		!strings.Contains(got, `"ModelFormats":["onnx"]`) ||
		!strings.Contains(got, `"OutputKinds":["classification","detection","ocr"]`) ||
		!strings.Contains(got, `"DetectionFormats":["yolov8","yolov5"]`) {
		t.Errorf("onnx-cpu = %s", got)
	}
	if rt["Available"] != false || !strings.Contains(rt["Reason"].(string), "serving runtime onnx-cpu is not installed on this node: no directory "+filepath.Join(dir, "onnx-node")) {
		t.Errorf("no runtime directory: %v", rt)
	}
	pkg := filepath.Join(dir, "onnx-node")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if rt := runtime(c); rt["Available"] != false || !strings.Contains(rt["Reason"].(string), "has no node_modules/onnxruntime-node (npm ci") {
		t.Errorf("no node_modules: %v", rt)
	}
	man, err := os.ReadFile(filepath.Join("..", "..", "runtimes", "onnx-node", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "manifest.json"), man, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(pkg, "node_modules", "onnxruntime-node"), 0o755); err != nil {
		t.Fatal(err)
	}
	if rt := runtime(c); rt["Available"] != false || !strings.Contains(rt["Reason"].(string), `serving runtime onnx-cpu cannot start on this node: manifest.command: command "node" is not in the package`) {
		t.Errorf("node not allowed: %v", rt)
	}

	// Bad input names the field.
	if code, msg := c.callError("DescribeServingRuntimes", map[string]any{"Names": []string{"onnx-cpu", "tensorrt"}}); code != "InvalidParameterValue" ||
		!strings.Contains(msg, `Names[1]: unknown serving runtime "tensorrt"; known: onnx-cpu`) {
		t.Errorf("unknown name: %s %s", code, msg)
	}
	names := make([]string, 17)
	for i := range names {
		names[i] = "onnx-cpu"
	}
	if code, msg := c.callError("DescribeServingRuntimes", map[string]any{"Names": names}); code != "InvalidParameterValue" || !strings.Contains(msg, "Names") {
		t.Errorf("17 names: %s %s", code, msg)
	}

	// A node where it is installed and node is allowed.
	good, _ := servingPlatform(t)
	if rt := runtime(good); rt["Available"] != true || rt["Reason"] != "" {
		t.Errorf("installed: %v", rt)
	}
	if r := good.mustCall("DescribeServingRuntimes", map[string]any{"Names": []string{"onnx-cpu"}}); r["TotalCount"] != float64(1) {
		t.Errorf("by name: %v", r)
	}
}
