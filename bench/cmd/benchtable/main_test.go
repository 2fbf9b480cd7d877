package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunMergesRecordedRowsAndGoTestOutput(t *testing.T) {
	dir := t.TempDir()
	rows := filepath.Join(dir, "rows.jsonl")
	write := func(name, s string) {
		if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// BenchmarkGateway recorded its metric twice (run again with a larger
	// b.N): the last value wins, in the first position.
	write(rows, `{"Metric":"gateway req/s","Unit":"req/s","Target":"≥ 0.7× direct","Tianshu":1,"Baseline":2,"Bench":"BenchmarkGateway"}
{"Metric":"flow per node","Unit":"ns/node","Tianshu":300,"Baseline":3,"Bench":"BenchmarkLinear10"}
{"Metric":"gateway req/s","Unit":"req/s","Target":"≥ 0.7× direct","Tianshu":800,"Baseline":1000,"Bench":"BenchmarkGateway"}
`)
	gotest := filepath.Join(dir, "gotest.txt")
	write(gotest, `pkg: github.com/tianshu-ai/tianshu/bench
BenchmarkLinear10/direct-2    	50652498	        23.99 ns/op	       0 B/op	       0 allocs/op
BenchmarkGateway-2   	       1	6004231916 ns/op	       683.5 direct-p50-µs
pkg: github.com/tianshu-ai/tianshu/internal/function
BenchmarkCall10FieldMapping-2   	  213274	      6139 ns/op	    3848 B/op	      39 allocs/op
ok  	github.com/tianshu-ai/tianshu/internal/function	1.314s
`)
	var out strings.Builder
	if err := run(rows, gotest, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"800 req/s", "0.80×", "300 ns/node", "function Call10FieldMapping", "6.14 µs/op"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"1.00 req/s", "Linear10/direct", "6.00 s/op"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("table has %q:\n%s", unwanted, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 5 {
		t.Errorf("got %d lines, want header, rule and 3 rows:\n%s", n, got)
	}
	if strings.Index(got, "gateway req/s") > strings.Index(got, "flow per node") {
		t.Errorf("a re-recorded metric moved:\n%s", got)
	}
}
