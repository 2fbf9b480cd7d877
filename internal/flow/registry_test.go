package flow

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Every node_<name>.go file registers the kind <name>, and nothing else
// adds built-in kinds: adding a kind is adding a file.
func TestBuiltinKindsMatchNodeFiles(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), "node_")
		if ok && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			files = append(files, strings.TrimSuffix(name, ".go"))
		}
	}
	var kinds []string
	for _, k := range NewRegistry().Kinds() {
		kinds = append(kinds, k.Name)
	}
	slices.Sort(files)
	if !slices.Equal(kinds, files) {
		t.Fatalf("registered kinds %v, node files %v", kinds, files)
	}
}

// Registries are independent: a kind added to one is not in another, and
// each gets its own Kind values.
func TestRegistriesAreIndependent(t *testing.T) {
	a, b := NewRegistry(), NewRegistry()
	a.Register(&Kind{Name: "custom", Compile: func(*Builder) Node { return nil }})
	if _, ok := b.Lookup("custom"); ok {
		t.Fatal("a kind registered on one registry appeared on another")
	}
	ka, _ := a.Lookup("noop")
	kb, _ := b.Lookup("noop")
	if ka == kb {
		t.Fatal("two registries share a *Kind")
	}
}
