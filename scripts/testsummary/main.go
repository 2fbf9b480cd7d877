// Command testsummary reads `go test -json` on stdin and writes what a CI
// log needs: each package's result line, the whole output of every test
// that failed, build errors, and at the end every skipped test by name
// with its reason. It exits 1 when a test, a package or a build failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
}

func main() {
	os.Exit(summarize(os.Stdin, os.Stdout))
}

func summarize(in io.Reader, out io.Writer) int {
	type key struct{ pkg, test string }
	buffered := map[key][]string{}
	var skipped []string
	failed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not an event (go vet's or the linker's own words): keep it.
			fmt.Fprintln(out, sc.Text())
			continue
		}
		k := key{e.Package, e.Test}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Test == "" && e.Action == "output":
			// The package's own lines: "ok  pkg 1.2s", "FAIL pkg", panics.
			if !strings.HasPrefix(e.Output, "=== ") && strings.TrimSpace(e.Output) != "PASS" {
				fmt.Fprint(out, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			failed = true
		case e.Test == "":
			// A package's pass, or skip for having no tests: its line says so.
		case e.Action == "output":
			buffered[k] = append(buffered[k], e.Output)
		case e.Action == "fail":
			failed = true
			fmt.Fprintf(out, "--- FAIL: %s (%s)\n", e.Test, e.Package)
			for _, l := range buffered[k] {
				fmt.Fprint(out, l)
			}
			delete(buffered, k)
		case e.Action == "skip":
			skipped = append(skipped, fmt.Sprintf("%s %s: %s", e.Package, e.Test, skipReason(buffered[k])))
			delete(buffered, k)
		case e.Action == "pass":
			delete(buffered, k)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testsummary: %v\n", err)
		return 1
	}
	sort.Strings(skipped)
	fmt.Fprintf(out, "== skipped tests: %d\n", len(skipped))
	for _, s := range skipped {
		fmt.Fprintln(out, "   "+s)
	}
	if failed {
		return 1
	}
	return 0
}

// skipReason is what the test said when it skipped: its output without the
// "=== RUN" and "--- SKIP" lines, on one line.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}
