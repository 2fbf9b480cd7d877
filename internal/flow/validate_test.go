package flow

import (
	"context"
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
				for _, e := range Validate(t.Context(), spec, opts) {
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

// TestValidatePassesContextToContract checks that the contract lookup runs
// under Validate's ctx, so a store-backed lookup stops with its caller.
func TestValidatePassesContextToContract(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	spec, err := Parse([]byte(`{"nodes": [{"id": "d", "kind": "algorithm", "config": {"algorithm": "alg-detect"}, "inputs": {"image": "$input.image"}}]}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	errs := Validate(ctx, spec, testOptions())
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), context.Canceled.Error()) {
		t.Fatalf("errors %v, want one naming %v", errs, context.Canceled)
	}
}
