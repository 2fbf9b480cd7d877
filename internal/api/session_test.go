package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// fakeSessions resolves one token; other tokens are unknown, "old" expired.
type fakeSessions struct{ csrf string }

func (f fakeSessions) ResolveSession(_ context.Context, token string) (api.Session, error) {
	switch token {
	case "good":
		return api.Session{ID: "ses-1", UserID: "usr-1", UserName: "ann", Role: api.RoleViewer, CSRFHash: sha256.Sum256([]byte(f.csrf))}, nil
	case "old":
		return api.Session{ID: "ses-0", UserID: "usr-1", UserName: "ann"}, api.ErrSessionExpired
	}
	return api.Session{}, api.ErrSessionNotFound
}

type memAudit struct {
	mu  sync.Mutex
	evs []api.AuditEvent
}

func (m *memAudit) Record(_ context.Context, e api.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evs = append(m.evs, e)
	return nil
}

type startResp struct {
	Csrf string `json:"CsrfToken"`
}

func (startResp) StartedSession() (string, time.Time) { return "good", time.Now().Add(time.Hour) }

type endResp struct{}

func (endResp) EndedSession() bool { return true }

type whoResp struct{ User, Role, Session string }

type empty struct{}

// The gateway's session path: cookie flags, CSRF, the codes of bad
// sessions, their audit events, and the Public and Self markers.
func TestGatewaySessions(t *testing.T) {
	reg := api.NewRegistry()
	own := api.Permission{Resource: "session", Access: api.Write}
	api.Register(reg, api.Spec{Name: "StartThing", Summary: "s", Permission: own, Public: true},
		func(context.Context, *api.Caller, *empty) (*startResp, error) { return &startResp{Csrf: "tok"}, nil })
	api.Register(reg, api.Spec{Name: "EndThing", Summary: "e", Permission: own, Self: true},
		func(context.Context, *api.Caller, *empty) (*endResp, error) { return &endResp{}, nil })
	api.Register(reg, api.Spec{Name: "DescribeWho", Summary: "w", Permission: api.Permission{Resource: "x", Access: api.Read}},
		func(_ context.Context, c *api.Caller, _ *empty) (*whoResp, error) {
			return &whoResp{User: c.UserName, Role: c.Role, Session: c.SessionID}, nil
		})
	api.Register(reg, api.Spec{Name: "CreateThing", Summary: "c", Permission: api.Permission{Resource: "x", Access: api.Write}},
		func(context.Context, *api.Caller, *empty) (*empty, error) { return &empty{}, nil })
	audit := &memAudit{}
	g := api.NewGateway(api.DefaultConfig(), reg, api.GatewayOptions{Sessions: fakeSessions{csrf: "tok"}, Auditor: audit})
	tls := httptest.NewTLSServer(g)
	defer tls.Close()
	plain := httptest.NewServer(g)
	defer plain.Close()
	// Behind a TLS-terminating proxy: the public URL is https.
	proxied := httptest.NewServer(api.NewGateway(api.DefaultConfig(), reg, api.GatewayOptions{Sessions: fakeSessions{csrf: "tok"}, SecureCookies: true}))
	defer proxied.Close()

	call := func(srv *httptest.Server, action, cookie, csrf string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader("{}"))
		req.Header.Set("X-TC-Action", action)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: cookie})
		}
		if csrf != "" {
			req.Header.Set(api.CSRFHeader, csrf)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct{ Response map[string]any }
		_ = json.NewDecoder(resp.Body).Decode(&env)
		return resp, env.Response
	}
	code := func(r map[string]any) string {
		if e, ok := r["Error"].(map[string]any); ok {
			return e["Code"].(string)
		}
		return ""
	}

	for _, c := range []struct {
		srv    *httptest.Server
		secure bool
	}{{plain, false}, {tls, true}, {proxied, true}} {
		resp, r := call(c.srv, "StartThing", "", "")
		ck := resp.Cookies()
		if code(r) != "" || len(ck) != 1 || ck[0].Value != "good" || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Secure != c.secure {
			t.Fatalf("StartThing (TLS %v): %v, cookies %+v", c.secure, r, ck)
		}
	}
	if _, r := call(plain, "DescribeWho", "good", "tok"); r["User"] != "ann" || r["Role"] != "viewer" || r["Session"] != "ses-1" {
		t.Fatalf("DescribeWho: %v", r)
	}
	for _, c := range []struct{ action, cookie, csrf, code string }{
		{"DescribeWho", "good", "", "AuthFailure.InvalidCSRFToken"},
		{"DescribeWho", "good", "nope", "AuthFailure.InvalidCSRFToken"},
		{"DescribeWho", "old", "tok", "AuthFailure.SessionExpired"},
		{"DescribeWho", "forged", "tok", "AuthFailure.InvalidSession"},
		{"DescribeWho", "", "", "AuthFailure.InvalidAuthorization"},
		{"CreateThing", "good", "tok", "AuthFailure.UnauthorizedOperation"}, // a viewer
		{"EndThing", "good", "tok", ""},                                     // Self: any person
	} {
		if _, r := call(plain, c.action, c.cookie, c.csrf); code(r) != c.code {
			t.Errorf("%s with cookie %q, csrf %q: %q; want %q", c.action, c.cookie, c.csrf, code(r), c.code)
		}
	}
	if resp, _ := call(plain, "EndThing", "good", "tok"); !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("EndThing did not clear the cookie: %q", resp.Header.Get("Set-Cookie"))
	}
	// Session failures are audited even for actions that are not.
	audit.mu.Lock()
	defer audit.mu.Unlock()
	got := map[string]int{}
	for _, e := range audit.evs {
		got[e.Actor+" "+e.Result]++
	}
	for k, n := range map[string]int{"user:ann AuthFailure.InvalidCSRFToken": 2, "user:ann AuthFailure.SessionExpired": 1, "anonymous AuthFailure.InvalidSession": 1} {
		if got[k] != n {
			t.Errorf("audit %q: %d events, want %d (all: %v)", k, got[k], n, got)
		}
	}
}
