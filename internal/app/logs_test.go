package app_test

import (
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// A request's lines are kept in memory and DescribeLogs finds them by the
// request's RequestId: the gateway's access line carries request_id and,
// with tracing on, the trace_id the handler read from the request's
// context. Only platform admins may read them, whatever a role grants.
func TestDescribeLogsShowsARequestsLines(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Args: []string{"--otel.recent-traces", "100", "--otel.sample-ratio", "1"}})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	rid := admin.mustCall("DescribeProjects", map[string]any{})["RequestId"].(string)

	r := admin.mustCall("DescribeLogs", map[string]any{"Component": "api", "Contains": rid, "Level": "info"})
	lines := r["LogSet"].([]any)
	if len(lines) != 1 {
		t.Fatalf("DescribeLogs: %d lines for request %s, want its one access line: %v", len(lines), rid, lines)
	}
	l := lines[0].(map[string]any)
	if l["Message"] != "action served" || l["Component"] != "api" || l["Level"] != "info" {
		t.Fatalf("line %v: want the api component's access line at info", l)
	}
	fields := l["Fields"].(string)
	for _, want := range []string{"action=DescribeProjects", "request_id=" + rid, "trace_id="} {
		if !strings.Contains(fields, want) {
			t.Errorf("fields %q lack %q", fields, want)
		}
	}
	comps := r["ComponentSet"].([]any)
	if !containsAny(comps, "api") {
		t.Errorf("ComponentSet %v lacks api", comps)
	}
	if _, code := admin.call("DescribeLogs", map[string]any{"Since": "yesterday"}); code != "InvalidParameterValue" {
		t.Errorf("Since yesterday: %q, want InvalidParameterValue", code)
	}
	if _, code := admin.call("DescribeLogs", map[string]any{"Limit": 1001}); code != "InvalidParameterValue" {
		t.Errorf("Limit 1001: %q, want InvalidParameterValue", code)
	}

	// A tenant project's owner and a role granting Describe* do not reach
	// them: the lines name every project.
	prj := admin.mustCall("CreateProject", map[string]any{"Name": "tenant"})["ProjectId"].(string)
	admin.mustCall("CreateRole", map[string]any{"ProjectId": prj, "Name": "reader", "Actions": []string{"Describe*"}})
	for _, role := range []string{"owner", "reader"} {
		appID := admin.mustCall("CreateApp", map[string]any{"ProjectId": prj, "Name": "logs-" + role, "Role": role})["AppId"].(string)
		k := admin.mustCall("CreateAppKey", map[string]any{"AppId": appID})
		c := newSDK(t, e.Host, k["SecretId"].(string), k["SecretKey"].(string))
		if _, code := c.call("DescribeLogs", map[string]any{}); code != "AuthFailure.UnauthorizedOperation" {
			t.Errorf("DescribeLogs as %s: %q, want AuthFailure.UnauthorizedOperation", role, code)
		}
	}
}

func containsAny(xs []any, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
