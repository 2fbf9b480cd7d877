package app_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// dashboardsDir holds the Grafana dashboards that ship with Tianshu.
var dashboardsDir = filepath.Join("..", "..", "deploy", "grafana")

// dashboardQuery is one PromQL expression of a dashboard: a panel target's
// expr or a query variable's label_values.
type dashboardQuery struct {
	where string // file, panel title and refId, or variable name
	expr  string
	// label is the label a label_values variable lists; expr is then its
	// series selector.
	label string
}

// grafanaDashboard is the part of a dashboard's JSON the test reads.
type grafanaDashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *grafanaDS      `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *grafanaDS     `json:"datasource"`
	Panels     []grafanaPanel `json:"panels"` // a row's, when collapsed
	Targets    []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource *grafanaDS `json:"datasource"`
	} `json:"targets"`
}

// minSchemaVersion is the dashboard schema of Grafana 11.
const minSchemaVersion = 39

// loadDashboards reads every dashboard in deploy/grafana, checks that it
// imports anywhere (its queries go to the Prometheus its datasource
// variable picks) and returns its PromQL queries.
func loadDashboards(t *testing.T) []dashboardQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dashboardsDir, err)
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	uids := map[string]string{}
	var queries []dashboardQuery
	for _, f := range files {
		name := filepath.Base(f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", name)
		}
		if other, ok := uids[d.UID]; ok {
			t.Errorf("%s: uid %q is %s's too", name, d.UID, other)
		}
		uids[d.UID] = name
		if d.SchemaVersion < minSchemaVersion {
			t.Errorf("%s: schemaVersion %d, want %d or later", name, d.SchemaVersion, minSchemaVersion)
		}
		checkDS := func(where string, ds *grafanaDS) {
			if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
				t.Errorf("%s: %s: datasource %+v, want prometheus ${datasource}", name, where, ds)
			}
		}
		hasDS := false
		for _, v := range d.Templating.List {
			switch v.Type {
			case "datasource":
				hasDS = hasDS || v.Name == "datasource" && string(v.Query) == `"prometheus"`
			case "query":
				checkDS("variable "+v.Name, v.Datasource)
				// Grafana stores a variable's query as a string or,
				// since 10, as an object holding it.
				var q string
				if json.Unmarshal(v.Query, &q) != nil {
					var o struct{ Query string }
					if err := json.Unmarshal(v.Query, &o); err != nil {
						t.Fatalf("%s: variable %s: query: %v", name, v.Name, err)
					}
					q = o.Query
				}
				m := labelValues.FindStringSubmatch(strings.TrimSpace(q))
				if m == nil {
					t.Errorf("%s: variable %s: %q is not label_values(selector, label)", name, v.Name, q)
					continue
				}
				queries = append(queries, dashboardQuery{where: name + ": variable " + v.Name, expr: m[1], label: m[2]})
			}
		}
		if !hasDS {
			t.Errorf("%s: no datasource variable of type prometheus", name)
		}
		var walk func([]grafanaPanel)
		walk = func(ps []grafanaPanel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				where := name + ": " + p.Title
				checkDS(where, p.Datasource)
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", where)
				}
				for _, tg := range p.Targets {
					checkDS(where+" "+tg.RefID, tg.Datasource)
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("%s %s: empty expr", where, tg.RefID)
						continue
					}
					queries = append(queries, dashboardQuery{where: where + " " + tg.RefID, expr: tg.Expr})
				}
			}
		}
		walk(d.Panels)
	}
	return queries
}

// grafanaVar matches a template variable in a query: $name, ${name},
// ${name:format} or [[name]].
var grafanaVar = regexp.MustCompile(`\$\{[a-zA-Z_][a-zA-Z0-9_]*(?::[a-z]+)?\}|\$[a-zA-Z_][a-zA-Z0-9_]*|\[\[[a-zA-Z_][a-zA-Z0-9_]*\]\]`)

// literalPromQL replaces the template variables of a dashboard query with
// literals, as Grafana does before sending it: the interval variables
// with a duration, the others with a label value.
func literalPromQL(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		switch strings.Trim(v, "${}[]") {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		}
		return "x"
	})
}

// scrapeLabels reads /metrics of a running platform and returns the label
// names of each series name (a histogram's _bucket, _sum and _count
// separately).
func scrapeLabels(t *testing.T, endpoint string) map[string]map[string]bool {
	t.Helper()
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	labelName := regexp.MustCompile(`(?:^|,)([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)
	out := map[string]map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		labels := ""
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name) {
			name = line[:i]
			if j := strings.LastIndexByte(line, '}'); j > i {
				labels = line[i+1 : j]
			}
		}
		set := out[name]
		if set == nil {
			set = map[string]bool{}
			out[name] = set
		}
		for _, m := range labelName.FindAllStringSubmatch(labels, -1) {
			set[m[1]] = true
		}
	}
	return out
}

// The Grafana dashboards in deploy/grafana import anywhere (a datasource
// variable, a current schema), each of their queries is PromQL that
// Debian's promtool parses (written as recording rules with the template
// variables made literal, checked by promtool check rules), and every
// metric a query names, every label it matches on and every label a
// variable lists is exported by a running platform (the demo's task
// running): no panel queries a name that does not exist. Without promtool
// the test skips, and fails under TIANSHU_CI.
func TestGrafanaDashboards(t *testing.T) {
	promtool := needPromtool(t)
	queries := loadDashboards(t)
	if len(queries) == 0 {
		t.Fatal("the dashboards hold no query")
	}

	// promtool has no plain PromQL check without a server; a recording
	// rule's expression is parsed by check rules. One group per query,
	// named after it, so that an error says which.
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	type group struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	}
	var doc struct {
		Groups []group `yaml:"groups"`
	}
	for i, q := range queries {
		doc.Groups = append(doc.Groups, group{Name: fmt.Sprintf("%d %s", i, q.where),
			Rules: []rule{{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: literalPromQL(q.expr)}}})
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(t.TempDir(), "dashboards.rules.yml")
	if err := os.WriteFile(rules, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the dashboards' queries: %v\n%s", err, out)
	}

	e := runningDemo(t)
	fams := scrapeFamilies(t, e.Endpoint)
	series := scrapeLabels(t, e.Endpoint)
	metric := regexp.MustCompile(`\b(?:tianshu|go|process|promhttp)_[a-zA-Z0-9_]+`)
	selector := regexp.MustCompile(`\b((?:tianshu|go|process|promhttp)_[a-zA-Z0-9_]+)\s*\{([^}]*)\}`)
	matcher := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	quoted := regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	used := map[string][]string{}
	var badLabels []string
	for _, q := range queries {
		expr := literalPromQL(q.expr)
		names := metric.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: %q names no Tianshu or process metric", q.where, q.expr)
		}
		for _, n := range names {
			used[n] = append(used[n], q.where)
		}
		for _, m := range selector.FindAllStringSubmatch(expr, -1) {
			// Strip quoted values so that a matcher's value is not read
			// as a label name.
			inner := quoted.ReplaceAllString(m[2], `""`)
			for _, l := range matcher.FindAllStringSubmatch(inner, -1) {
				if _, ok := series[m[1]]; ok && !series[m[1]][l[1]] {
					badLabels = append(badLabels, fmt.Sprintf("%s: %s has no label %s", q.where, m[1], l[1]))
				}
			}
		}
		if q.label != "" {
			n := metric.FindString(expr)
			if _, ok := series[n]; ok && !series[n][q.label] {
				badLabels = append(badLabels, fmt.Sprintf("%s: %s has no label %s", q.where, n, q.label))
			}
		}
	}
	if missing := notExported(fams, used); len(missing) > 0 {
		t.Errorf("dashboards query metrics a running platform does not export:\n%s", strings.Join(missing, "\n"))
	}
	sort.Strings(badLabels)
	if len(badLabels) > 0 {
		t.Errorf("dashboards match on labels the exported series do not have:\n%s", strings.Join(badLabels, "\n"))
	}
	t.Logf("%d queries name %d metrics", len(queries), len(used))
}
