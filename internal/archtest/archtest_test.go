package archtest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDependencyRules checks the module against rules.txt.
func TestDependencyRules(t *testing.T) {
	rules, err := ParseFile("rules.txt")
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	_, g, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g["internal/archtest"]; !ok {
		t.Fatalf("found no internal/archtest under %s: the module was not read", root)
	}
	unexpected, tolerated, stale := rules.Reconcile(Check(rules.Rules, g))
	for _, v := range tolerated {
		t.Logf("known violation: %s", v)
	}
	for _, v := range unexpected {
		t.Error(v)
	}
	for _, k := range stale {
		t.Errorf("known violation no longer occurs; delete its line from rules.txt: %s", k)
	}
}

// fixtureRules are the rules the fixture modules in testdata are checked
// against; internal/queue does not exist there and must simply match
// nothing.
const fixtureRules = `
# a comment
rule 1: backends know no domain
  packages: internal/store/...
            internal/queue/...
  forbid:   internal/task/...
  transitive: yes
`

func checkFixture(t *testing.T, dir string, rulesText string) []string {
	t.Helper()
	rules, err := Parse(strings.NewReader(rulesText))
	if err != nil {
		t.Fatal(err)
	}
	module, g, err := Load(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	if module != "example.com/fake" {
		t.Fatalf("module %q, want example.com/fake", module)
	}
	unexpected, tolerated, stale := rules.Reconcile(Check(rules.Rules, g))
	var got []string
	for _, v := range unexpected {
		got = append(got, v.String())
	}
	for _, v := range tolerated {
		got = append(got, "tolerated: "+v.String())
	}
	for _, k := range stale {
		got = append(got, "stale: "+k.String())
	}
	return got
}

func TestCheckFixtures(t *testing.T) {
	const known = "known: internal/store imports internal/task (rule 1) TODO(#1): remove when the fixture is fixed\n"
	for _, tc := range []struct {
		name, dir, rules string
		want             []string
	}{
		{"forbidden import", "badmod", fixtureRules, []string{
			"internal/store imports forbidden internal/task (rule 1: backends know no domain)",
		}},
		{"indirect import", "indirect", fixtureRules, []string{
			"internal/store imports forbidden internal/task through internal/gpu (rule 1: backends know no domain)",
		}},
		// Test files, "//go:build ignore" files and imports in the
		// allowed direction do not count.
		{"clean", "goodmod", fixtureRules, nil},
		{"known violation", "badmod", fixtureRules + known, []string{
			"tolerated: internal/store imports forbidden internal/task (rule 1: backends know no domain)",
		}},
		{"stale known violation", "goodmod", fixtureRules + known, []string{
			"stale: internal/store imports internal/task (rule 1) TODO(#1): remove when the fixture is fixed",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := checkFixture(t, tc.dir, tc.rules)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestCheckOwnTreeAndAllow(t *testing.T) {
	g := Graph{
		"internal/push":        {"internal/push/sse", "internal/studio"},
		"internal/push/sse":    {"internal/bus"},
		"internal/function":    {"internal/function/re"},
		"internal/function/re": {"internal/ids"},
		"internal/studio":      nil,
	}
	rules := []Rule{
		{N: 1, Why: "centers", Packages: []string{"internal/push/...", "internal/studio/..."}, Forbid: []string{"internal/push/...", "internal/studio/..."}},
		{N: 2, Why: "leaf", Packages: []string{"internal/function/..."}, Forbid: []string{"..."}, Allow: []string{"internal/function/..."}},
	}
	var got []string
	for _, v := range Check(rules, g) {
		got = append(got, v.String())
	}
	want := []string{
		"internal/push imports forbidden internal/studio (rule 1: centers)",
		"internal/function/re imports forbidden internal/ids (rule 2: leaf)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseRefuses(t *testing.T) {
	for _, text := range []string{
		"packages: internal/x\n", // outside a rule
		"rule 1: a\n  packages: x\n  forbid: y\nrule 1: b\n  packages: x\n  forbid: y\n", // duplicate
		"rule 1: a\n  packages: x\n", // no forbid
		"rule 1: a\n  packages: x\n  forbid: y\n  transitive: maybe\n",
		"rule 1: a\n  packages: x\n  forbid: y\nknown: x imports y (rule 1)\n",                        // no TODO note
		"rule 1: a\n  packages: x\n  forbid: y\nknown: x imports y (rule 2) TODO(#14): remove when\n", // no such rule
	} {
		if _, err := Parse(strings.NewReader(text)); err == nil {
			t.Errorf("accepted:\n%s", text)
		}
	}
}
