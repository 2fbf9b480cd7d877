package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
)

// BenchmarkConsoleBundle reports what a browser downloads to open the
// console's shell, gzipped as Handler serves it: index.html and the
// assets it loads (code loaded on demand, such as a later flow editor, is
// not counted here: the flow editor's chunk is reported on its own row).
// The target is issue #16's.
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

	// The flow editor (pages/flows/FlowEditor.tsx with @xyflow/react) is
	// loaded when a flow is opened, as its own script and stylesheet.
	entries, err := fs.ReadDir(files, "assets")
	if err != nil {
		b.Fatal(err)
	}
	var edRaw, edGz int
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "FlowEditor-") {
			continue
		}
		f, err := fs.ReadFile(files, "assets/"+e.Name())
		if err != nil {
			b.Fatal(err)
		}
		edRaw += len(f)
		edGz += len(Gzip(f))
	}
	if edRaw == 0 {
		b.Fatal("no FlowEditor-* chunk in assets/: is the editor still loaded on demand?")
	}
	benchtable.Record(b, benchtable.Row{Metric: "flow editor chunk loaded on demand, gzipped (uncompressed beside)", Unit: "B",
		Tianshu: float64(edGz), Baseline: float64(edRaw)})
}
