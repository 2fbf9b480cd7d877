package archtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The package list that scripts/test.sh gives go vet, staticcheck and go
// test leaves out whatever npm put under node_modules, .go files included.
func TestPackageListSkipsNodeModules(t *testing.T) {
	script, err := filepath.Abs("../../scripts/packages.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":                        "module example.com/m\n\ngo 1.22\n",
		"m.go":                          "package m\n",
		"sub/node_modules/dep/dep.go":   "package dep\n",
		"node_modules/some-pkg/x/of.go": "package x\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := exec.Command("bash", script)
	c.Dir = dir
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	if got := strings.Fields(string(out)); len(got) != 1 || got[0] != "example.com/m" {
		t.Fatalf("packages: %q, want only example.com/m", got)
	}
}
