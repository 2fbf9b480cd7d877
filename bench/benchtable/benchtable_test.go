package benchtable

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{1230, "ns/node", "1.23 µs/node"},
		{0.42, "s", "420 ms"},
		{1.5, "s", "1.50 s"},
		{12.3, "ns", "12.3 ns"},
		{25 << 20, "B", "25.0 MiB"},
		{512, "B", "512 B"},
		{12345.6, "req/s", "12,346 req/s"},
		{0.834, "", "0.83"},
		{-1234567, "", "-1,234,567"},
		{99.97 * 1024 * 1024, "B", "100 MiB"},
		{999.7, "", "1,000"},
		{9.996, "ms", "10.0 ms"},
		{0.0042, "", "0.0042"},
	} {
		if got := Format(c.v, c.unit); got != c.want {
			t.Errorf("Format(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func TestRatio(t *testing.T) {
	if got := Ratio(Row{Tianshu: 83, Baseline: 100}); got != "0.83×" {
		t.Errorf("Ratio = %q, want 0.83×", got)
	}
	if got := Ratio(Row{Tianshu: 83}); got != "—" {
		t.Errorf("Ratio without baseline = %q, want —", got)
	}
}

func TestPrintAligns(t *testing.T) {
	var b strings.Builder
	if err := Print(&b, []Row{
		{Metric: "gateway DescribeApps req/s", Unit: "req/s", Target: "≥ 0.7× direct", Tianshu: 8300, Baseline: 10000, Load: 3.25},
		{Metric: "idle RSS", Unit: "B", Tianshu: 30 << 20},
	}); err != nil {
		t.Fatal(err)
	}
	want := `metric                          tianshu      baseline  ratio  load  target
---------------------------------------------------------------------------------
gateway DescribeApps req/s  8,300 req/s  10,000 req/s  0.83×   3.2  ≥ 0.7× direct
idle RSS                       30.0 MiB             —      —     —  —
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestRecordConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	t.Setenv(EnvOut, path)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { Record(t, Row{Metric: fmt.Sprint("m", i), Unit: "s", Tianshu: float64(i)}) })
	}
	wg.Wait()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if l.Bench != t.Name() {
			t.Errorf("Bench = %q, want %q", l.Bench, t.Name())
		}
		seen[l.Metric] = true
	}
	if len(seen) != 50 {
		t.Errorf("read %d distinct rows, want 50", len(seen))
	}
}
