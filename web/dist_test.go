package web

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestDistIsFresh rebuilds the console into a temporary folder and compares
// it, file by file, with the committed dist/: `make run` serves dist/ without
// Node.js, so a change under src/ must come with its build. The build is
// deterministic (content-hashed names, no timestamps).
func TestDistIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the console with Node.js; skipped with -short")
	}
	node := testenv.NeedCommand(t, "node")
	vite := filepath.Join("node_modules", "vite", "bin", "vite.js")
	if _, err := os.Stat(vite); err != nil {
		testenv.Unavailable(t, "web/node_modules is not installed (run: npm ci --prefix web): "+err.Error())
		return
	}
	out := t.TempDir()
	cmd := exec.Command(node, vite, "build", "--outDir", out, "--emptyOutDir", "--logLevel", "error")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vite build: %v\n%s", err, b)
	}
	want, got := tree(t, os.DirFS(out)), tree(t, Dist())
	var stale []string
	for name, b := range want {
		if g, ok := got[name]; !ok {
			stale = append(stale, "missing "+name)
		} else if !bytes.Equal(g, b) {
			stale = append(stale, "differs "+name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			stale = append(stale, "extra "+name)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Fatalf("web/dist is stale: run make web (%v)", stale)
	}
}

func tree(t *testing.T, fsys fs.FS) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		m[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
