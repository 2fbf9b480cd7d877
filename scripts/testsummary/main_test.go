package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Real `go test -json` output of a small module: the skipped test is
// listed by name with its reason, a passing test's log is not shown, a
// failing test's is, and the exit status says whether anything failed.
func TestSummaryListsSkippedTestsByName(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	if err := os.Mkdir(filepath.Join(dir, "notests"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("notests/n.go", "package notests\n")
	write("m_test.go", `package m

import (
	"os"
	"testing"
)

func TestPasses(t *testing.T) { t.Log("chatter of a passing test") }

func TestNeedsWidget(t *testing.T) { t.Skip("no widget on this machine") }

func TestMaybeFails(t *testing.T) {
	if os.Getenv("FAIL_IT") != "" {
		t.Fatal("it failed as asked")
	}
}
`)
	run := func(env ...string) (string, int) {
		c := exec.Command("go", "test", "-json", "-count=1", "./...")
		c.Dir = dir
		c.Env = append(os.Environ(), env...)
		raw, _ := c.Output() // a failing test exits 1; the events say so
		var out bytes.Buffer
		code := summarize(bytes.NewReader(raw), &out)
		return out.String(), code
	}
	out, code := run()
	if code != 0 || !strings.Contains(out, "== skipped tests: 1\n") ||
		!strings.Contains(out, "example.com/m TestNeedsWidget: ") || !strings.Contains(out, "no widget on this machine") ||
		strings.Contains(out, "chatter of a passing test") || !strings.Contains(out, "ok  \texample.com/m") {
		t.Fatalf("exit %d, summary:\n%s", code, out)
	}
	out, code = run("FAIL_IT=1")
	if code != 1 || !strings.Contains(out, "--- FAIL: TestMaybeFails") || !strings.Contains(out, "it failed as asked") {
		t.Fatalf("with a failing test: exit %d, summary:\n%s", code, out)
	}
}
