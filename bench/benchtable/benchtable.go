// Package benchtable collects benchmark results as rows of one table —
// metric, Tianshu, baseline, ratio, target — and prints it. Benchmarks call
// Record; scripts/bench.sh points TIANSHU_BENCH_OUT at a file, runs every
// benchmark, and prints the rows with cmd/benchtable.
package benchtable

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// EnvOut names the environment variable holding the file Record appends to.
const EnvOut = "TIANSHU_BENCH_OUT"

// Row is one measurement beside the baseline it is compared against.
type Row struct {
	// Metric names what was measured, e.g. "gateway DescribeApps req/s".
	Metric string
	// Unit of Tianshu and Baseline: "s", "ns", "ns/node" and the like are
	// durations; "B" is bytes; anything else ("req/s") is printed as is.
	Unit string
	// Target is the goal in words, e.g. "≥ 0.7× direct"; empty when the
	// metric is only reported.
	Target string
	// Tianshu is the value measured through Tianshu.
	Tianshu float64
	// Baseline is the same work done directly, measured in the same run;
	// 0 means there is no baseline and the ratio is not shown.
	Baseline float64
	// Load is the machine's one-minute load average when the row was
	// recorded (Record fills it in from /proc/loadavg); 0 is unknown. On a
	// shared machine it says how much other work the figures competed with.
	Load float64 `json:",omitempty"`
}

// Line is the JSON form of a recorded row: the row and the name of the
// benchmark that recorded it.
type Line struct {
	Row
	// Bench is the recording benchmark's full name, e.g. "BenchmarkGateway".
	Bench string `json:",omitempty"`
}

// Record appends r as one JSON line to the file named by TIANSHU_BENCH_OUT,
// or only logs it when that is unset. Each row is a single O_APPEND write,
// so goroutines, and the test binaries of several packages, may record to
// the same file at once.
func Record(tb testing.TB, r Row) {
	tb.Helper()
	if r.Load == 0 {
		r.Load = LoadAverage()
	}
	tb.Log(r.String())
	path := os.Getenv(EnvOut)
	if path == "" {
		return
	}
	b, err := json.Marshal(Line{Row: r, Bench: tb.Name()})
	if err != nil {
		tb.Fatalf("benchtable: %v", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		tb.Fatalf("benchtable: %v", err)
	}
	_, werr := f.Write(append(b, '\n'))
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		tb.Fatalf("benchtable: %s: %v", path, werr)
	}
}

// LoadAverage returns the one-minute load average from /proc/loadavg, or 0
// where it cannot be read (not Linux).
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return 0
	}
	return v
}

// Print writes rows as an aligned text table: metric, tianshu, baseline,
// ratio, target, and the load average when the row was recorded. Names are
// left-aligned, figures right-aligned.
func Print(w io.Writer, rows []Row) error {
	cells := [][]string{{"metric", "tianshu", "baseline", "ratio", "load", "target"}}
	for _, r := range rows {
		cells = append(cells, []string{r.Metric, Format(r.Tianshu, r.Unit), orDash(r.Baseline, r.Unit), Ratio(r), loadCell(r.Load), orNone(r.Target)})
	}
	width := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for n, row := range cells {
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case i == 0 || i == len(row)-1:
				b.WriteString(c)
				if i < len(row)-1 {
					b.WriteString(pad)
				}
			default:
				b.WriteString(pad)
				b.WriteString(c)
			}
			if i < len(row)-1 {
				b.WriteString("  ")
			}
		}
		b.WriteString("\n")
		if n == 0 {
			total := 2 * (len(width) - 1)
			for _, x := range width {
				total += x
			}
			b.WriteString(strings.Repeat("-", total))
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Ratio returns Tianshu/Baseline as "0.83×", or "—" without a baseline.
func Ratio(r Row) string {
	if r.Baseline == 0 || math.IsNaN(r.Baseline) || math.IsNaN(r.Tianshu) {
		return "—"
	}
	return number(r.Tianshu/r.Baseline) + "×"
}

// Format returns v in unit scaled for reading: durations pick ns, µs, ms or
// s ("1.23 µs/node" for 1230 ns/node), bytes pick B, KiB, MiB or GiB, and
// other figures get three significant digits or thousands separators.
func Format(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	base, per, _ := strings.Cut(unit, "/")
	if per != "" {
		per = "/" + per
	}
	if sec, ok := seconds(base); ok {
		s := v * sec
		a := math.Abs(s)
		switch {
		case a == 0:
			return "0 s" + per
		case a < 1e-6:
			return number(s*1e9) + " ns" + per
		case a < 1e-3:
			return number(s*1e6) + " µs" + per
		case a < 1:
			return number(s*1e3) + " ms" + per
		}
		return number(s) + " s" + per
	}
	if base == "B" {
		units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
		i := 0
		for math.Abs(v) >= 1024 && i < len(units)-1 {
			v /= 1024
			i++
		}
		return number(v) + " " + units[i] + per
	}
	if unit == "" {
		return number(v)
	}
	return number(v) + " " + unit
}

// seconds returns the length of a duration unit in seconds.
func seconds(unit string) (float64, bool) {
	switch unit {
	case "ns":
		return 1e-9, true
	case "us", "µs":
		return 1e-6, true
	case "ms":
		return 1e-3, true
	case "s":
		return 1, true
	}
	return 0, false
}

// number formats x with three significant digits, or as an integer with
// thousands separators from 1000 up.
func number(x float64) string {
	a := math.Abs(x)
	switch {
	case a >= 999.5:
		return group(strconv.FormatFloat(math.Round(x), 'f', 0, 64))
	case a == 0:
		return "0"
	case a < 0.01:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
	// Round to three significant digits first, so 99.97 prints as "100"
	// rather than "100.0".
	r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 3, 64), 64)
	switch a := math.Abs(r); {
	case a >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

// group inserts thousands separators into an integer string.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func orDash(v float64, unit string) string {
	if v == 0 {
		return "—"
	}
	return Format(v, unit)
}

func loadCell(v float64) string {
	if v == 0 {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func orNone(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// String returns the row as one line, for logs.
func (r Row) String() string {
	return fmt.Sprintf("%s: %s (baseline %s, ratio %s, target %s, load %s)", r.Metric, Format(r.Tianshu, r.Unit),
		orDash(r.Baseline, r.Unit), Ratio(r), orNone(r.Target), loadCell(r.Load))
}
