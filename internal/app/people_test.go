package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// browser calls the action API as the console does: a session cookie and
// the CSRF header, no signature.
type browser struct {
	t        *testing.T
	endpoint string
	cookie   *http.Cookie
	csrf     string
}

func (b *browser) post(action string, params map[string]any, change func(*http.Request)) (*http.Response, map[string]any, string) {
	b.t.Helper()
	body := []byte("{}")
	if params != nil {
		body, _ = json.Marshal(params)
	}
	req, _ := http.NewRequest(http.MethodPost, b.endpoint+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	if b.csrf != "" {
		req.Header.Set(api.CSRFHeader, b.csrf)
	}
	if change != nil {
		change(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Response map[string]any `json:"Response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		b.t.Fatal(err)
	}
	code := ""
	if e, ok := env.Response["Error"].(map[string]any); ok {
		code = e["Code"].(string)
	}
	return resp, env.Response, code
}

func (b *browser) call(action string, params map[string]any) (map[string]any, string) {
	b.t.Helper()
	_, r, code := b.post(action, params, nil)
	return r, code
}

func (b *browser) mustCall(action string, params map[string]any) map[string]any {
	b.t.Helper()
	r, code := b.call(action, params)
	if code != "" {
		b.t.Fatalf("%s: %s", action, r["Error"])
	}
	return r
}

// login logs in and returns a browser holding the session.
func login(t *testing.T, endpoint, user, password string) *browser {
	t.Helper()
	b := &browser{t: t, endpoint: endpoint}
	resp, r, code := b.post("Login", map[string]any{"UserName": user, "Password": password}, nil)
	if code != "" {
		t.Fatalf("Login %s: %v", user, r["Error"])
	}
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			b.cookie = &http.Cookie{Name: c.Name, Value: c.Value}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", c)
			}
		}
	}
	b.csrf, _ = r["CsrfToken"].(string)
	if b.cookie == nil || b.csrf == "" {
		t.Fatalf("Login set no cookie or CSRF token: %v", r)
	}
	return b
}

func wantCall(t *testing.T, b *browser, action string, params map[string]any, want string) {
	t.Helper()
	if r, code := b.call(action, params); code != want {
		t.Fatalf("%s: %q %v; want %s", action, code, r["Error"], want)
	}
}

// People log in and call the same actions as apps, with a cookie and a
// CSRF token; each bad input has its code and leaves an audit event.
func TestPeopleSessions(t *testing.T) {
	clk := &struct {
		sync.Mutex
		off time.Duration
	}{}
	now := func() time.Time { clk.Lock(); defer clk.Unlock(); return time.Now().Add(clk.off) }
	e := apptest.Start(t, apptest.Options{Now: now, Args: []string{"--api.sessions.idle-timeout", "10m"}})
	admin := login(t, e.Endpoint, "admin", apptest.AdminPassword)
	if r := admin.mustCall("DescribeApps", nil); r["TotalCount"].(float64) < 1 {
		t.Fatalf("DescribeApps as admin: %v", r)
	}

	// CSRF: missing and wrong tokens are refused.
	noCSRF := *admin
	noCSRF.csrf = ""
	wantCall(t, &noCSRF, "CreateUser", map[string]any{"UserName": "x", "Password": "a long unusual phrase"}, "AuthFailure.InvalidCSRFToken")
	badCSRF := *admin
	badCSRF.csrf = "forged"
	wantCall(t, &badCSRF, "DescribeApps", nil, "AuthFailure.InvalidCSRFToken")
	forged := &browser{t: t, endpoint: e.Endpoint, cookie: &http.Cookie{Name: api.SessionCookie, Value: "forged"}, csrf: "x"}
	wantCall(t, forged, "DescribeApps", nil, "AuthFailure.InvalidSession")
	anon := &browser{t: t, endpoint: e.Endpoint}
	wantCall(t, anon, "DescribeApps", nil, "AuthFailure.InvalidAuthorization")

	// Users: policy, creation, roles.
	wantCall(t, admin, "CreateUser", map[string]any{"UserName": "erin", "Password": "password123"}, "InvalidParameterValue")
	wantCall(t, admin, "CreateUser", map[string]any{"UserName": "erin", "Password": "short"}, "InvalidParameterValue")
	id := admin.mustCall("CreateUser", map[string]any{"UserName": "erin", "DisplayName": "Erin", "Password": "erin's first phrase"})["UserId"].(string)
	wantCall(t, admin, "CreateUser", map[string]any{"UserName": "erin", "Password": "another long phrase"}, "ResourceInUse")
	erin := login(t, e.Endpoint, "erin", "erin's first phrase")
	// A person who is not a platform admin holds no project role until
	// one is bound.
	wantCall(t, erin, "DescribeApps", nil, "AuthFailure.UnauthorizedOperation")
	admin.mustCall("CreateProjectMember", map[string]any{"ProjectId": "default", "PrincipalId": id, "Role": "viewer"})
	testenv.Eventually(t, 10*time.Second, "erin's viewer role applies", func() bool {
		_, code := erin.call("DescribeApps", nil)
		return code == ""
	})
	wantCall(t, erin, "CreateUser", map[string]any{"UserName": "frank", "Password": "a long unusual phrase"}, "AuthFailure.UnauthorizedOperation")
	// Viewers manage their own account all the same.
	wantCall(t, erin, "ModifyMyPassword", map[string]any{"CurrentPassword": "wrong one!!", "NewPassword": "erin's second phrase"}, "InvalidParameterValue")
	erin.mustCall("ModifyMyPassword", map[string]any{"CurrentPassword": "erin's first phrase", "NewPassword": "erin's second phrase"})
	wantCall(t, anon, "Login", map[string]any{"UserName": "erin", "Password": "erin's first phrase"}, "AuthFailure.LoginFailed")
	wantCall(t, anon, "Login", map[string]any{"UserName": "nobody", "Password": "erin's first phrase"}, "AuthFailure.LoginFailed")
	erin2 := login(t, e.Endpoint, "erin", "erin's second phrase")
	if r := erin.mustCall("DescribeMySessions", nil); r["TotalCount"].(float64) != 2 {
		t.Fatalf("DescribeMySessions: %v", r)
	}
	// Apps have no sessions of their own to manage.
	appSDK := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	if _, code := appSDK.call("Logout", nil); code != "AuthFailure.UnauthorizedOperation" {
		t.Fatalf("Logout by an app: %q", code)
	}
	// Logout clears the cookie and ends the session; the other stays.
	resp, _, code := erin2.post("Logout", nil, nil)
	if code != "" || !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("Logout: %q, Set-Cookie %q", code, resp.Header.Get("Set-Cookie"))
	}
	wantCall(t, erin2, "DescribeApps", nil, "AuthFailure.InvalidSession")
	erin.mustCall("DescribeApps", nil)
	// Disabling a user ends their sessions.
	admin.mustCall("ModifyUser", map[string]any{"UserId": id, "Status": "disabled"})
	wantCall(t, erin, "DescribeApps", nil, "AuthFailure.InvalidSession")
	wantCall(t, anon, "Login", map[string]any{"UserName": "erin", "Password": "erin's second phrase"}, "AuthFailure.LoginFailed")
	admin.mustCall("ModifyUser", map[string]any{"UserId": id, "Status": "active"})
	admin.mustCall("ResetUserPassword", map[string]any{"UserId": id, "Password": "set by the admin"})
	erin = login(t, e.Endpoint, "erin", "set by the admin")
	erin.mustCall("LogoutEverywhere", nil)
	wantCall(t, erin, "DescribeApps", nil, "AuthFailure.InvalidSession")
	wantCall(t, admin, "DeleteUser", map[string]any{"UserId": admin.mustCall("DescribeUsers", map[string]any{"UserNames": []string{"admin"}})["UserSet"].([]any)[0].(map[string]any)["UserId"]}, "InvalidParameterValue")
	admin.mustCall("DeleteUser", map[string]any{"UserId": id})

	// Idle expiry.
	clk.Lock()
	clk.off = 11 * time.Minute
	clk.Unlock()
	wantCall(t, admin, "DescribeApps", nil, "AuthFailure.SessionExpired")

	// Each of these left an audit event naming the person.
	evs, err := e.P.Audit.List(t.Context(), "", 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.Actor+" "+ev.Action+" "+ev.Result] = true
		if strings.Contains(ev.Detail, "phrase") {
			t.Errorf("a password reached the audit log: %s", ev.Detail)
		}
	}
	for _, want := range []string{
		"user:admin Login OK", "user:erin Login AuthFailure.LoginFailed", "user:nobody Login AuthFailure.LoginFailed",
		"user:admin CreateUser AuthFailure.InvalidCSRFToken", "user:admin DescribeApps AuthFailure.InvalidCSRFToken",
		"user:admin CreateUser InvalidParameterValue", "user:erin CreateUser AuthFailure.UnauthorizedOperation",
		"user:erin ModifyMyPassword OK", "user:erin Logout OK", "user:erin LogoutEverywhere OK",
		"user:admin DescribeApps AuthFailure.SessionExpired", "anonymous DescribeApps AuthFailure.InvalidSession",
	} {
		if !seen[want] {
			t.Errorf("no audit event %q", want)
		}
	}
}

// A brute-force burst of logins split over two replicas sharing
// PostgreSQL and Redis gets only the free attempts (plus the one that
// starts the hold) to a password check, and the lock holds on both.
func TestLoginLockoutAcrossReplicas(t *testing.T) {
	testenv.NeedTCP(t, "Redis", "127.0.0.1:6379")
	dbURL := storetest.URL(t, "postgres")
	key := map[string]string{"TIANSHU_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	args := []string{"--db", dbURL, "--cache", testenv.RedisURL(), "--api.sessions.user-failures", "5", "--api.sessions.lock-base", "1m",
		"--api.sessions.address-failures", "1000"}
	// Every guess comes from 127.0.0.1; forget that address's count in the
	// shared Redis before and after, so other runs and tests start clean.
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	forget := func() { rc.Del(context.Background(), "tianshu:rl:att:login:addr:127.0.0.1") }
	forget()
	t.Cleanup(func() { forget(); rc.Close() })
	a := apptest.Start(t, apptest.Options{Args: args, Env: key})
	b := apptest.Start(t, apptest.Options{Args: args, Env: key})
	admin := login(t, a.Endpoint, "admin", apptest.AdminPassword)
	victim := fmt.Sprintf("victim-%d", rand.Int64())
	admin.mustCall("CreateUser", map[string]any{"UserName": victim, "Password": "the victim's phrase"})

	var failed, lockedN atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(endpoint string, i int) {
			defer wg.Done()
			br := &browser{t: t, endpoint: endpoint}
			// Vary the address-independent part only: the user key is what locks.
			switch _, code := br.call("Login", map[string]any{"UserName": victim, "Password": "guess number " + string(rune('a'+i%26))}); code {
			case "AuthFailure.LoginFailed":
				failed.Add(1)
			case "AuthFailure.LoginLocked":
				lockedN.Add(1)
			default:
				t.Errorf("guess %d: %q", i, code)
			}
		}([]string{a.Endpoint, b.Endpoint}[i%2], i)
	}
	wg.Wait()
	t.Logf("burst of 40 over two replicas: %d checked and failed, %d locked out", failed.Load(), lockedN.Load())
	if failed.Load() != 6 || lockedN.Load() != 34 {
		t.Fatalf("%d failed, %d locked; want 6 password checks (5 free + the one that starts the hold) and 34 locked", failed.Load(), lockedN.Load())
	}
	// The right password is refused on either replica while the hold lasts.
	for _, ep := range []string{b.Endpoint, a.Endpoint} {
		br := &browser{t: t, endpoint: ep}
		r, code := br.call("Login", map[string]any{"UserName": victim, "Password": "the victim's phrase"})
		if code != "AuthFailure.LoginLocked" || !strings.Contains(r["Error"].(map[string]any)["Message"].(string), "retry after") {
			t.Fatalf("right password during the hold on %s: %q %v", ep, code, r["Error"])
		}
	}
	// Other users are not affected.
	login(t, b.Endpoint, "admin", apptest.AdminPassword)
}

// TestPersonAuditedInTheProjectActedOn: a person's call is audited under
// the project it acted on, not the person's first project.
func TestPersonAuditedInTheProjectActedOn(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	admin := login(t, e.Endpoint, "admin", apptest.AdminPassword)
	prj := admin.mustCall("CreateProject", map[string]any{"Name": "site-b"})["ProjectId"].(string)
	id := admin.mustCall("CreateUser", map[string]any{"UserName": "gail", "Password": "gail's first phrase"})["UserId"].(string)
	admin.mustCall("CreateProjectMember", map[string]any{"ProjectId": "default", "PrincipalId": id, "Role": "operator"})
	admin.mustCall("CreateProjectMember", map[string]any{"ProjectId": prj, "PrincipalId": id, "Role": "operator"})
	gail := login(t, e.Endpoint, "gail", "gail's first phrase")
	var dev string
	testenv.Eventually(t, 10*time.Second, "gail's role in site-b applies", func() bool {
		r, code := gail.call("CreateDevice", map[string]any{"ProjectId": prj, "Name": "cam-b", "Driver": "http-snapshot",
			"Address": "http://192.0.2.10/snapshot.jpg"})
		if code == "" {
			dev = r["DeviceId"].(string)
		}
		return code == ""
	})
	for _, project := range []string{prj, "default"} {
		r := admin.mustCall("DescribeAuditEvents", map[string]any{"ProjectId": project,
			"Filters": []map[string]any{{"Name": "Action", "Values": []string{"CreateDevice"}}}})
		n := 0
		for _, ev := range r["AuditEventSet"].([]any) {
			if ev.(map[string]any)["Resource"] == dev {
				n++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[project == prj]; n != want {
			t.Errorf("CreateDevice of %s audited %d times under project %s, want %d: %v", dev, n, project, want, r["AuditEventSet"])
		}
	}
}
