// Command benchtable prints the rows benchmarks recorded with
// benchtable.Record as one table:
//
//	benchtable [-gotest go-test-output.txt] rows.jsonl
//
// When a metric was recorded more than once (a benchmark the testing
// package ran again with a larger b.N), the last value wins. With -gotest,
// benchmarks in that `go test -bench` output that recorded no row of their
// own are added from their ns/op, so the table covers every benchmark.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
)

func main() {
	gotest := flag.String("gotest", "", "`file` of go test -bench output; benchmarks without recorded rows are added from it")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: benchtable [-gotest FILE] ROWS.jsonl")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *gotest, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "benchtable: %v\n", err)
		os.Exit(1)
	}
}

func run(rowsPath, gotestPath string, w io.Writer) error {
	rows, benches, err := readRows(rowsPath)
	if err != nil {
		return err
	}
	if gotestPath != "" {
		f, err := os.Open(gotestPath)
		if err != nil {
			return err
		}
		defer f.Close()
		more, err := goTestRows(f, benches)
		if err != nil {
			return fmt.Errorf("%s: %w", gotestPath, err)
		}
		rows = append(rows, more...)
	}
	return benchtable.Print(w, rows)
}

// readRows reads JSON lines, keeping the first position and the last value
// of each metric, and returns the top-level benchmarks that recorded rows.
// A missing file is no rows: nothing recorded.
func readRows(name string) ([]benchtable.Row, map[string]bool, error) {
	benches := map[string]bool{}
	f, err := os.Open(name)
	if os.IsNotExist(err) {
		return nil, benches, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var rows []benchtable.Row
	index := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var l benchtable.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		top, _, _ := strings.Cut(l.Bench, "/")
		benches[top] = true
		if i, ok := index[l.Metric]; ok {
			rows[i] = l.Row
			continue
		}
		index[l.Metric] = len(rows)
		rows = append(rows, l.Row)
	}
	return rows, benches, sc.Err()
}

// benchLine matches a result line of go test -bench: name-GOMAXPROCS, N,
// then value/unit pairs.
var benchLine = regexp.MustCompile(`^(Benchmark\S*?)(?:-\d+)?\s+\d+\s+(.*)$`)

// goTestRows returns a row for each benchmark result in out whose top-level
// benchmark is not in skip, named with its package.
func goTestRows(out io.Reader, skip map[string]bool) ([]benchtable.Row, error) {
	var rows []benchtable.Row
	pkg := ""
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = path.Base(strings.TrimSpace(p))
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		top, _, _ := strings.Cut(m[1], "/")
		if skip[top] {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			if f[i+1] != "ns/op" {
				continue
			}
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			name := strings.TrimPrefix(m[1], "Benchmark")
			if pkg != "" {
				name = pkg + " " + name
			}
			rows = append(rows, benchtable.Row{Metric: name, Unit: "ns/op", Tianshu: v})
		}
	}
	return rows, sc.Err()
}
