package algorepo

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
)

// The algorithms a flow document calls are found at top level and in
// foreach bodies, with the version each node names.
func TestFlowDocAlgorithms(t *testing.T) {
	doc := `{"name": "f", "nodes": [
		{"id": "a", "kind": "algorithm", "config": {"algorithm": "alg-x", "version": "2"}},
		{"id": "s", "kind": "switch", "config": {"cases": [{"when": "True", "next": "a"}]}},
		{"id": "each", "kind": "foreach", "config": {"body": {"nodes": [
			{"id": "b", "kind": "algorithm", "config": {"algorithm": "alg-y"}},
			{"id": "inner", "kind": "foreach", "config": {"body": {"nodes": [{"id": "c", "kind": "algorithm", "config": {"algorithm": "alg-z", "version": "1"}}]}}}
		]}}}]}`
	var d flowDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatal(err)
	}
	got := d.algorithms(nil)
	want := []algorithm.Ref{{ID: "alg-x", Version: "2"}, {ID: "alg-y"}, {ID: "alg-z", Version: "1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("algorithms = %v, want %v", got, want)
	}
}
