package web

import (
	"io/fs"
	"regexp"
	"testing"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
)

// BenchmarkConsoleBundle reports what a browser downloads to open the
// console's shell, gzipped as Handler serves it: index.html and the
// assets it loads (code loaded on demand, such as a later flow editor, is
// not counted). The target is issue #16's.
func BenchmarkConsoleBundle(b *testing.B) {
	files := Dist()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		b.Fatal(err)
	}
	var raw, gz int
	for i := 0; i < b.N; i++ {
		raw, gz = len(index), len(Gzip(index))
		for _, m := range regexp.MustCompile(`(?:src|href)="/(assets/[^"]+)"`).FindAllSubmatch(index, -1) {
			f, err := fs.ReadFile(files, string(m[1]))
			if err != nil {
				b.Fatal(err)
			}
			raw += len(f)
			gz += len(Gzip(f))
		}
	}
	benchtable.Record(b, benchtable.Row{Metric: "console shell download, gzipped (uncompressed beside)", Unit: "B",
		Target: "≤ 400 kB gzipped", Tianshu: float64(gz), Baseline: float64(raw)})
}
