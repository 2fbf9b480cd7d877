package flow

import (
	"fmt"
	"maps"
	"testing"
)

// Store and publish nodes hand their outputs with the origin of the call:
// the node's path and the index of each foreach item it ran for, so a
// rerun of the message, whose concurrent items run in another order, gives
// every output the origin it had before. Subflows add no index.
func TestSinkOutputsCarryTheirOrigin(t *testing.T) {
	doc := `{"nodes": [
  {"id": "top", "kind": "store", "config": {"type": "t"}, "inputs": {"v": "top"}},
  {"id": "each", "kind": "foreach", "inputs": {"items": "$input.l"}, "config": {"concurrency": 4, "body": {"nodes": [
    {"id": "save", "kind": "store", "config": {"type": "t"}, "inputs": {"v": "$item.name"}},
    {"id": "sf", "kind": "subflow", "config": {"flow": "sub"}, "inputs": {"v": "$item.name"}},
    {"id": "inner", "kind": "foreach", "inputs": {"items": "$item.l"}, "config": {"concurrency": 4, "body": {"nodes": [
      {"id": "pub", "kind": "publish", "config": {"type": "e"}, "inputs": {"v": "$item"}}]}}}]}}}]}`
	opts := testOptions()
	opts.Flows = fakeFlows{"sub@": `{"nodes": [{"id": "s", "kind": "store", "config": {"type": "t"}, "inputs": {"v": "$input.v"}}]}`}
	p := compileDoc(t, doc, opts)
	want := map[string]any{"top": "top"}
	var l []any
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		var inner []any
		for j := range 3 {
			v := fmt.Sprintf("%s%d", name, j)
			inner = append(inner, v)
			want[fmt.Sprintf("each/inner/pub[%d][%d]", i, j)] = v
		}
		l = append(l, map[string]any{"name": name, "l": inner})
		want[fmt.Sprintf("each/save[%d]", i)] = name
		want[fmt.Sprintf("each/sf/s[%d]", i)] = name
	}
	for run := range 5 {
		s := &fakeSinks{}
		runMsg(t, p, Input{Data: map[string]any{"l": l}, Sinks: s})
		got := map[string]any{}
		for _, r := range s.records {
			got[r.Origin] = r.Data["v"]
		}
		for _, e := range s.events {
			got[e.Origin] = e.Data["v"]
		}
		if n := len(s.records) + len(s.events); n != len(got) || !maps.Equal(got, want) {
			t.Fatalf("run %d: %d outputs, origins\n%v\nwant\n%v", run, n, got, want)
		}
	}
}
