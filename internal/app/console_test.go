package app_test

import (
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// The console is served at GET / and every page path beside the action
// gateway, which still answers POST /; server routes keep their answers.
func TestConsoleServedBesideTheGateway(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	get := func(path string) (*http.Response, string) {
		t.Helper()
		r, err := http.Get(e.Endpoint + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r, string(b)
	}
	r, index := get("/")
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(index, `<div id="root">`) {
		t.Fatalf("GET /: %d %q\n%s", r.StatusCode, r.Header.Get("Content-Type"), index)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("GET /: Content-Security-Policy %q", csp)
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("GET /: X-Content-Type-Options %q, Cache-Control %q", r.Header.Get("X-Content-Type-Options"), r.Header.Get("Cache-Control"))
	}
	for _, page := range []string{"/devices?project=demo", "/overview", "/tasks/tsk-1"} {
		if r, b := get(page); r.StatusCode != http.StatusOK || b != index {
			t.Errorf("GET %s: %d, want the console's index.html", page, r.StatusCode)
		}
	}
	for _, src := range regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(index, -1) {
		r, _ := get(src[1])
		if r.StatusCode != http.StatusOK || !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("GET %s: %d Cache-Control %q", src[1], r.StatusCode, r.Header.Get("Cache-Control"))
		}
	}
	if r, b := get("/healthz"); r.StatusCode != http.StatusOK || b != "ok\n" {
		t.Errorf("GET /healthz: %d %q", r.StatusCode, b)
	}
	if r, b := get("/metrics"); r.StatusCode != http.StatusOK || !strings.Contains(b, "go_goroutines") {
		t.Errorf("GET /metrics: %d", r.StatusCode)
	}
	if r, _ := get("/assets/missing-0000.js"); r.StatusCode != http.StatusNotFound {
		t.Errorf("GET a missing asset: %d, want 404", r.StatusCode)
	}
	// POST / is still the action gateway.
	b := &browser{t: t, endpoint: e.Endpoint}
	if _, code := b.call("DescribeDevices", nil); code != "AuthFailure.InvalidAuthorization" && code != "AuthFailure.InvalidSession" {
		t.Errorf("POST / without credentials: %q, want an authentication error", code)
	}
	wantCall(t, b, "NoSuchAction", nil, "InvalidAction")
	// Other methods at / stay the gateway's answer too.
	req, _ := http.NewRequest(http.MethodPut, e.Endpoint+"/", strings.NewReader("{}"))
	req.Header.Set("X-TC-Action", "DescribeDevices")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(pb), "UnsupportedProtocol") {
		t.Errorf("PUT /: %s, want the gateway's UnsupportedProtocol", pb)
	}
}

// DescribeMyPermissions tells the console what a person may do per project:
// a platform admin everything everywhere, a viewer the reads of their
// project only, and an app may not call it.
func TestDescribeMyPermissions(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	admin := login(t, e.Endpoint, "admin", apptest.AdminPassword)
	admin.mustCall("CreateProject", map[string]any{"Name": "site-a"})
	var siteA string
	for _, p := range admin.mustCall("DescribeProjects", nil)["ProjectSet"].([]any) {
		if m := p.(map[string]any); m["Name"] == "site-a" {
			siteA = m["ProjectId"].(string)
		}
	}
	me := admin.mustCall("DescribeMyPermissions", nil)
	if me["PlatformAdmin"] != true || me["UserName"] != "admin" {
		t.Fatalf("admin: %v", me)
	}
	projects := map[string][]string{}
	for _, p := range me["ProjectSet"].([]any) {
		m := p.(map[string]any)
		for _, a := range m["Actions"].([]any) {
			projects[m["ProjectId"].(string)] = append(projects[m["ProjectId"].(string)], a.(string))
		}
	}
	if len(projects) < 2 || !slices.Contains(projects[siteA], "CreateDevice") || !slices.Contains(projects["default"], "CreateUser") {
		t.Fatalf("admin's projects: %v", projects)
	}
	if slices.Contains(projects["default"], "Login") || slices.Contains(projects["default"], "Logout") {
		t.Errorf("public and self actions listed: %v", projects["default"])
	}

	u := admin.mustCall("CreateUser", map[string]any{"UserName": "vera", "Password": "vera-viewer-password-1", "Role": "viewer"})
	admin.mustCall("CreateProjectMember", map[string]any{"ProjectId": siteA, "PrincipalId": u["UserId"], "Role": "viewer"})
	viewer := login(t, e.Endpoint, "vera", "vera-viewer-password-1")
	me = viewer.mustCall("DescribeMyPermissions", nil)
	set := me["ProjectSet"].([]any)
	if me["PlatformAdmin"] != false || len(set) != 1 {
		t.Fatalf("viewer: %v", me)
	}
	p := set[0].(map[string]any)
	var actions []string
	for _, a := range p["Actions"].([]any) {
		actions = append(actions, a.(string))
	}
	if p["ProjectId"] != siteA || !slices.Equal(toStrings(p["Roles"]), []string{"viewer"}) ||
		!slices.Contains(actions, "DescribeDevices") || slices.Contains(actions, "CreateDevice") || slices.Contains(actions, "DescribeAuditEvents") {
		t.Fatalf("viewer's project: %v", p)
	}
	// The gateway agrees: the write the console hides is refused.
	wantCall(t, viewer, "CreateDevice", map[string]any{"ProjectId": siteA, "Name": "x", "Driver": "replay", "Address": "/x"}, "AuthFailure.UnauthorizedOperation")
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}
