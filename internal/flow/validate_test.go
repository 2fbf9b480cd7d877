package flow

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/validate")

// TestValidateGolden validates every testdata/validate/*.json and compares
// the errors, one per line, with the .golden file beside it.
func TestValidateGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/validate/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	opts := testOptions()
	opts.Flows = fakeFlows{"flow-loop@1": `{"nodes": [{"id": "again", "kind": "subflow", "config": {"flow": "flow-loop", "version": "1"}}]}`}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			spec, err := Parse(data, Limits{})
			if err != nil {
				got = "parse: " + err.Error() + "\n"
			} else {
				for _, e := range Validate(spec, opts) {
					got += e.Error() + "\n"
				}
			}
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestValidateGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}
