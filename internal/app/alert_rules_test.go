package app_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// rulesDir holds the Prometheus alert rules that ship with Tianshu.
var rulesDir = filepath.Join("..", "..", "deploy", "prometheus")

// The alert rules in deploy/prometheus pass Debian's promtool (syntax and
// PromQL: check rules; their unit tests: test rules), and every Tianshu
// metric they name is exported by a running platform (the demo's task
// running), so that no rule watches a name that does not exist. Without
// promtool the test skips, and fails under TIANSHU_CI.
func TestAlertRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo; skipped with -short")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Unavailable(t, "no promtool: install Debian's prometheus")
	}
	files, err := filepath.Glob(filepath.Join(rulesDir, "*.rules.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in %s: %v", rulesDir, err)
	}
	if out, err := exec.Command(promtool, append([]string{"check", "rules"}, files...)...).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests, _ := filepath.Glob(filepath.Join(rulesDir, "*.rules.test.yml"))
	if len(tests) > 0 {
		if out, err := exec.Command(promtool, append([]string{"test", "rules"}, tests...)...).CombinedOutput(); err != nil {
			t.Fatalf("promtool test rules: %v\n%s", err, out)
		}
	}

	used := map[string][]string{} // metric name → alerts using it
	name := regexp.MustCompile(`\btianshu_[a-z0-9_]+`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Rules []struct {
					Alert, Record, Expr string
				}
			}
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				for _, n := range name.FindAllString(r.Expr, -1) {
					used[n] = append(used[n], r.Alert+r.Record)
				}
			}
		}
	}
	if len(used) == 0 {
		t.Fatal("the rules name no tianshu_ metric")
	}

	e := runningDemo(t)
	fams := scrapeFamilies(t, e.Endpoint)
	var missing []string
	for n, alerts := range used {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && (fams[b][0] == "histogram" || fams[b][0] == "summary") {
				base = b
			}
		}
		if _, ok := fams[base]; !ok {
			missing = append(missing, n+" (in "+strings.Join(alerts, ", ")+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("alert rules name metrics a running platform does not export:\n%s", strings.Join(missing, "\n"))
	}
	t.Logf("the rules name %d metrics", len(used))
}
