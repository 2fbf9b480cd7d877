package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// viewerOfDefault grants every caller the built-in viewer role in project
// default, compiled against the gateway's registry once it exists.
type viewerOfDefault struct{ gw *api.Gateway }

func (v *viewerOfDefault) Grants(context.Context, *api.Caller) (*api.Grants, error) {
	role, _ := v.gw.Registry().BuiltinRole(api.RoleViewer)
	return api.NewGrants(false, []api.Binding{{ProjectID: "default", Role: role}}), nil
}

// A person's requests are charged to the project they act on, beside its
// apps' (issue #26, part 6): people do not get a project more requests.
func TestGatewayProjectRateLimitCountsPeople(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.ProjectRPS, cfg.ProjectBurst = 1, 3
	authz := &viewerOfDefault{}
	e := newGatewayWith(t, func(c *api.Config, o *api.GatewayOptions) {
		withConfig(cfg)(c, o)
		o.Sessions = fakeSessions{csrf: "tok"}
		o.Authorizer = authz
	})
	authz.gw = e.srv.Config.Handler.(*api.Gateway)
	app, _ := e.newApp(t, "a", api.RoleViewer)
	person := func(body string) reply {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", "DescribeApps")
		req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: "good"})
		req.Header.Set(api.CSRFHeader, "tok")
		return e.do(t, req)
	}
	if r := e.post(t, app, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatalf("app's first request: %s", r.raw)
	}
	// The person names the project, then leaves it to be resolved.
	for _, body := range []string{`{"ProjectId":"default"}`, `{}`} {
		if r := person(body); r.code() != "" {
			t.Fatalf("person's request %s within the project's burst: %s", body, r.raw)
		}
	}
	// Three requests used the burst, the person's two among them.
	r := person(`{}`)
	wantCode(t, r, api.RequestLimitExceeded)
	if want := "project default exceeded 1 requests/s (burst 3); retry after 1001 ms"; r.message() != want {
		t.Errorf("person: message %q, want %q", r.message(), want)
	}
	wantCode(t, e.post(t, app, "DescribeApps", `{}`, nil), api.RequestLimitExceeded)
}
