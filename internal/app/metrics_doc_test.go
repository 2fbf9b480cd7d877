package app_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// scrapeFamilies reads /metrics of a running platform and returns each
// metric family's type and help by name.
func scrapeFamilies(t *testing.T, endpoint string) map[string][2]string {
	t.Helper()
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	fams := map[string][2]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) < 4 || f[0] != "#" {
			continue
		}
		v := fams[f[2]]
		switch f[1] {
		case "TYPE":
			v[0] = f[3]
		case "HELP":
			v[1] = f[3]
		}
		fams[f[2]] = v
	}
	return fams
}

// documentedMetrics returns the metric names docs/metrics.md lists (in
// backquotes at the start of a table row) and the name prefixes it covers
// as a group (`go_*`).
func documentedMetrics(t *testing.T) (names map[string]bool, prefixes []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	names = map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| `([a-z_:][a-z0-9_:]*)(\\*?)`")
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		if m[2] == "*" {
			prefixes = append(prefixes, m[1])
		} else {
			names[m[1]] = true
		}
	}
	return names, prefixes
}

// runningDemo starts a platform with the demo set up and waits until its
// task has stored records, then has an algorithm call fail (a picture that
// does not decode), so that most metric families have samples, error
// counters included.
func runningDemo(t *testing.T) *apptest.Env {
	t.Helper()
	e := apptest.Start(t, apptest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := e.P.SetupDemo(ctx); err != nil {
		t.Fatal(err)
	}
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	testenv.Eventually(t, 90*time.Second, "demo records", func() bool {
		r := c.mustCall("DescribeRecords", map[string]any{"ProjectId": "demo", "Limit": 1})
		return r["TotalCount"].(float64) >= 1
	})
	algs := c.mustCall("DescribeAlgorithms", map[string]any{"ProjectId": "demo", "Limit": 1})["AlgorithmSet"].([]any)
	if len(algs) == 0 {
		t.Fatal("the demo has no algorithm")
	}
	algID := algs[0].(map[string]any)["AlgorithmId"].(string)
	if _, code := c.call("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": "bm90IGEgcGljdHVyZQ=="}); code == "" {
		t.Fatalf("InvokeAlgorithm %s with a picture that does not decode succeeded", algID)
	}
	return e
}

// Every metric family a running platform exports (the demo's task running)
// is listed in docs/metrics.md, so the list stays complete.
func TestMetricsDocumented(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo; skipped with -short")
	}
	e := runningDemo(t)
	names, prefixes := documentedMetrics(t)
	var missing []string
	fams := scrapeFamilies(t, e.Endpoint)
	t.Logf("/metrics exports %d families", len(fams))
	for name, v := range fams {
		covered := names[name]
		for _, p := range prefixes {
			covered = covered || strings.HasPrefix(name, p)
		}
		if !covered {
			missing = append(missing, name+" ("+v[0]+"): "+v[1])
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/metrics.md does not list %d metrics that /metrics exports:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}
