package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apiconfig"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// clock is a settable time source shared by the gateway, the app center,
// the audit log and the rate limiter, so tests move time instead of
// sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// gatewayEnv is a gateway over httptest backed by the real app center
// (keys sealed by a real secrets box) and the real audit log, on a fresh
// SQLite store.
type gatewayEnv struct {
	gw      *api.Gateway
	srv     *httptest.Server
	db      *store.DB
	clk     *clock
	apps    *appcenter.Service
	audit   *iam.Audit
	metrics *prometheus.Registry
	admin   tc3.Signer // admin app of the default project
	adminID string
	viewer  tc3.Signer // viewer app of the default project
	// BlockThing (an Invoke action) signals entered and waits for release
	// to close.
	entered chan struct{}
	release chan struct{}
}

const maxBody = 4096

func newGateway(t testing.TB) *gatewayEnv {
	t.Helper()
	return newGatewayWith(t, nil)
}

// withConfig makes newGatewayWith use cfg (with the tests' body limit).
func withConfig(cfg api.Config) func(*api.Config, *api.GatewayOptions) {
	return func(c *api.Config, _ *api.GatewayOptions) {
		maxBody := c.MaxBodyBytes
		*c = cfg
		c.MaxBodyBytes = maxBody
	}
}

// newGatewayWith is newGateway with change applied to the gateway's
// configuration and options before it is made.
func newGatewayWith(t testing.TB, change func(*api.Config, *api.GatewayOptions)) *gatewayEnv {
	t.Helper()
	db := storetest.Open(t, "sqlite")
	box, err := secrets.New(bytes.Repeat([]byte{9}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	e := &gatewayEnv{clk: &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}, metrics: prometheus.NewRegistry(), db: db,
		entered: make(chan struct{}, 16), release: make(chan struct{})}
	log := slog.New(slog.DiscardHandler)
	e.apps = appcenter.New(db, box, log, e.clk.now)
	e.audit = iam.NewAudit(db, e.clk.now)

	reg := api.NewRegistry()
	appcenter.RegisterActions(reg, e.apps)
	iam.RegisterActions(reg, e.audit)
	api.Register(reg, api.Spec{Name: "PanicThing", Summary: "Panics.", Permission: api.Permission{Resource: "thing", Access: api.Read}},
		func(context.Context, *api.Caller, *struct{}) (*struct{}, error) { panic("boom") })
	api.Register(reg, api.Spec{Name: "SlowThing", Summary: "Outlasts a short body read deadline.", Permission: api.Permission{Resource: "thing", Access: api.Read}},
		func(ctx context.Context, _ *api.Caller, _ *struct{}) (*struct{}, error) {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("context ended after the body was read: %w", ctx.Err())
			case <-time.After(600 * time.Millisecond):
				return &struct{}{}, nil
			}
		})
	api.Register(reg, api.Spec{Name: "BlockThing", Summary: "Runs until the test releases it.", Permission: api.Permission{Resource: "thing", Access: api.Write}, Invoke: true},
		func(ctx context.Context, _ *api.Caller, _ *struct{}) (*struct{}, error) {
			e.entered <- struct{}{}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-e.release:
				return &struct{}{}, nil
			}
		})
	api.Register(reg, api.Spec{Name: "NopThing", Summary: "Answers an empty response (the gateway's own cost).", Permission: api.Permission{Resource: "thing", Access: api.Read}},
		func(context.Context, *api.Caller, *struct{}) (*struct{}, error) { return &struct{}{}, nil })
	api.Register(reg, api.Spec{Name: "FailThing", Summary: "Fails with a plain error.", Permission: api.Permission{Resource: "thing", Access: api.Read}},
		func(context.Context, *api.Caller, *struct{}) (*struct{}, error) {
			return nil, errors.New("disk on fire")
		})

	cfg := api.DefaultConfig()
	cfg.MaxBodyBytes = maxBody
	lim := ratelimit.NewMemory(e.clk.now)
	opt := api.GatewayOptions{
		Keys: e.apps, Auditor: e.audit, Limiter: lim, Failures: lim, Replays: lim,
		Logger: log, Registerer: e.metrics, Now: e.clk.now,
	}
	if change != nil {
		change(&cfg, &opt)
	}
	e.gw = api.NewGateway(cfg, reg, opt)
	e.srv = httptest.NewServer(e.gw)
	t.Cleanup(e.srv.Close)

	e.admin, e.adminID = e.newApp(t, "root", api.RoleAdmin)
	e.viewer, _ = e.newApp(t, "watcher", api.RoleViewer)
	return e
}

func (e *gatewayEnv) newApp(t testing.TB, name, role string) (tc3.Signer, string) {
	t.Helper()
	ctx := context.Background()
	a, err := e.apps.CreateApp(ctx, "default", name, "", role)
	if err != nil {
		t.Fatal(err)
	}
	id, key, err := e.apps.CreateKey(ctx, a.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tc3.Signer{SecretID: id, SecretKey: key}, a.ID
}

// reply is a decoded answer of the gateway.
type reply struct {
	status int
	ctype  string
	raw    string
	resp   map[string]any // the "Response" object
}

func (r reply) code() string {
	if e, ok := r.resp["Error"].(map[string]any); ok {
		return e["Code"].(string)
	}
	return ""
}

func (r reply) message() string {
	if e, ok := r.resp["Error"].(map[string]any); ok {
		return e["Message"].(string)
	}
	return ""
}

// post sends an action signed by s at the env's clock; change, when given,
// alters the request after signing.
func (e *gatewayEnv) post(t *testing.T, s tc3.Signer, action, body string, change func(*http.Request)) reply {
	t.Helper()
	return e.postAt(t, s, action, body, e.clk.now(), change)
}

func (e *gatewayEnv) postAt(t *testing.T, s tc3.Signer, action, body string, signedAt time.Time, change func(*http.Request)) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if action != "" {
		req.Header.Set("X-TC-Action", action)
	}
	req.Header.Set("X-TC-Version", api.Version)
	s.Sign(req, []byte(body), signedAt)
	if change != nil {
		change(req)
	}
	return e.do(t, req)
}

func (e *gatewayEnv) do(t *testing.T, req *http.Request) reply {
	t.Helper()
	_, r := e.doRaw(t, req)
	return r
}

// doRaw is do returning the HTTP response too (its body read).
func (e *gatewayEnv) doRaw(t *testing.T, req *http.Request) (*http.Response, reply) {
	t.Helper()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: res.StatusCode, ctype: res.Header.Get("Content-Type"), raw: string(b)}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("answer is not JSON: %q", b)
	}
	if len(env) != 1 || env["Response"] == nil {
		t.Fatalf("answer %s: want exactly one top-level key, Response", b)
	}
	if err := json.Unmarshal(env["Response"], &r.resp); err != nil {
		t.Fatalf("Response is not an object: %s", b)
	}
	return res, r
}

var requestID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func wantCode(t *testing.T, r reply, code api.Code) {
	t.Helper()
	if r.code() != string(code) {
		t.Fatalf("answer %s; want error %s", r.raw, code)
	}
	// Errors are HTTP 200 with the error inside the envelope, and still
	// carry a RequestId.
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Errorf("status %d, Content-Type %q; want 200, application/json", r.status, r.ctype)
	}
	if id, _ := r.resp["RequestId"].(string); !requestID.MatchString(id) {
		t.Errorf("error answer lacks a RequestId: %s", r.raw)
	}
	if len(r.resp) != 2 {
		t.Errorf("error Response has keys beyond Error and RequestId: %s", r.raw)
	}
}

func TestGatewaySignedRequestSucceeds(t *testing.T) {
	e := newGateway(t)
	r := e.post(t, e.admin, "DescribeApps", `{"Limit": 10}`, nil)
	if r.code() != "" {
		t.Fatalf("DescribeApps: %s", r.raw)
	}
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Errorf("status %d, Content-Type %q", r.status, r.ctype)
	}
	// The response's own fields and the RequestId sit side by side.
	if id, _ := r.resp["RequestId"].(string); !requestID.MatchString(id) {
		t.Errorf("RequestId = %v", r.resp["RequestId"])
	}
	if r.resp["TotalCount"] != float64(2) {
		t.Errorf("TotalCount = %v, want 2: %s", r.resp["TotalCount"], r.raw)
	}
	if set, _ := r.resp["AppSet"].([]any); len(set) != 2 {
		t.Errorf("AppSet = %v", r.resp["AppSet"])
	}
	// Each answer has its own RequestId.
	if r2 := e.post(t, e.admin, "DescribeApps", `{}`, nil); r2.resp["RequestId"] == r.resp["RequestId"] {
		t.Error("two requests share a RequestId")
	}
	// An empty response is just the RequestId.
	_, appID := e.newApp(t, "spare", api.RoleViewer)
	r = e.post(t, e.admin, "ModifyApp", `{"AppId": "`+appID+`", "Description": "x"}`, nil)
	if r.code() != "" || len(r.resp) != 1 || !strings.HasPrefix(r.raw, `{"Response":{"RequestId":"`) {
		t.Errorf("empty response = %s; want only a RequestId", r.raw)
	}
}

func TestGatewayResponseIsNotHTMLEscaped(t *testing.T) {
	e := newGateway(t)
	r := e.post(t, e.admin, "CreateApp", `{"Name": "a&b<c>"}`, nil)
	if r.code() != "" {
		t.Fatal(r.raw)
	}
	r = e.post(t, e.admin, "DescribeApps", `{"Filters": [{"Name": "Name", "Values": ["a&b<c>"]}]}`, nil)
	if !strings.Contains(r.raw, `"Name":"a&b<c>"`) {
		t.Errorf("answer escapes HTML: %s", r.raw)
	}
}

func TestGatewayAuthentication(t *testing.T) {
	e := newGateway(t)
	now := e.clk.now()
	cases := []struct {
		name   string
		signer tc3.Signer
		at     time.Time
		change func(*http.Request)
		code   api.Code
		msg    string
	}{
		{name: "wrong secret key", signer: tc3.Signer{SecretID: e.admin.SecretID, SecretKey: "not-the-key"},
			code: api.AuthFailureSignatureFailure, msg: "signature does not match for SecretId " + e.admin.SecretID},
		{name: "header changed after signing", signer: e.admin, change: func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") },
			code: api.AuthFailureSignatureFailure},
		{name: "timestamp changed after signing", signer: e.admin, change: func(r *http.Request) {
			r.Header.Set("X-TC-Timestamp", strconv.FormatInt(now.Unix()-1, 10))
		}, code: api.AuthFailureSignatureFailure},
		{name: "other service", signer: tc3.Signer{SecretID: e.admin.SecretID, SecretKey: e.admin.SecretKey, Service: "cvm"},
			code: api.AuthFailureSignatureFailure, msg: `credential scope "2026-11-28/cvm/tc3_request": service "cvm" is not "tianshu"`},
		{name: "expired", signer: e.admin, at: now.Add(-301 * time.Second), code: api.AuthFailureSignatureExpire,
			msg: "X-TC-Timestamp " + strconv.FormatInt(now.Unix()-301, 10) + " is 5m1s from the server's clock; the window is ±5m0s"},
		{name: "from the future", signer: e.admin, at: now.Add(301 * time.Second), code: api.AuthFailureSignatureExpire},
		{name: "old but inside the window", signer: e.admin, at: now.Add(-299 * time.Second), code: ""},
		{name: "ahead but inside the window", signer: e.admin, at: now.Add(299 * time.Second), code: ""},
		{name: "unknown SecretId", signer: tc3.Signer{SecretID: "AKIDnobody", SecretKey: "k"},
			code: api.AuthFailureSecretIDNotFound, msg: `SecretId "AKIDnobody" not found`},
		{name: "no Authorization", signer: e.admin, change: func(r *http.Request) { r.Header.Del("Authorization") },
			code: api.AuthFailureInvalidAuthorization, msg: "Authorization: required (TC3-HMAC-SHA256), or the session cookie from Login"},
		{name: "other algorithm", signer: e.admin, change: func(r *http.Request) { r.Header.Set("Authorization", "Basic YTpi") },
			code: api.AuthFailureInvalidAuthorization},
		{name: "no timestamp", signer: e.admin, change: func(r *http.Request) { r.Header.Del("X-TC-Timestamp") },
			code: api.AuthFailureInvalidAuthorization, msg: "X-TC-Timestamp: want Unix seconds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := c.at
			if at.IsZero() {
				at = now
			}
			r := e.postAt(t, c.signer, "DescribeApps", `{}`, at, c.change)
			if c.code == "" {
				if r.code() != "" {
					t.Fatalf("refused: %s", r.raw)
				}
				return
			}
			wantCode(t, r, c.code)
			if c.msg != "" && r.message() != c.msg {
				t.Errorf("message %q, want %q", r.message(), c.msg)
			}
		})
	}
}

func TestGatewayDeletedAndDisabledKeys(t *testing.T) {
	e := newGateway(t)
	ctx := context.Background()
	s, appID := e.newApp(t, "cam", api.RoleViewer)
	if r := e.post(t, s, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatal(r.raw)
	}
	// The key is cached by now; disabling and deleting it must still take
	// effect at once on this replica.
	if err := e.apps.SetKeyStatus(ctx, appID, s.SecretID, "disabled"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.post(t, s, "DescribeApps", `{}`, nil), api.AuthFailureSecretIDNotFound)
	if err := e.apps.SetKeyStatus(ctx, appID, s.SecretID, "active"); err != nil {
		t.Fatal(err)
	}
	if r := e.post(t, s, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatalf("re-enabled key: %s", r.raw)
	}
	if err := e.apps.DeleteKey(ctx, appID, s.SecretID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.post(t, s, "DescribeApps", `{}`, nil), api.AuthFailureSecretIDNotFound)
}

func TestGatewayRequestChecks(t *testing.T) {
	e := newGateway(t)
	t.Run("unknown action", func(t *testing.T) {
		r := e.post(t, e.admin, "DescribeNothing", `{}`, nil)
		wantCode(t, r, api.InvalidAction)
		if r.message() != `X-TC-Action: no action named "DescribeNothing"` {
			t.Errorf("message %q", r.message())
		}
	})
	t.Run("no action", func(t *testing.T) {
		r := e.post(t, e.admin, "", `{}`, nil)
		wantCode(t, r, api.MissingParameter)
		if r.message() != "X-TC-Action: required" {
			t.Errorf("message %q", r.message())
		}
	})
	t.Run("other version", func(t *testing.T) {
		r := e.post(t, e.admin, "DescribeApps", `{}`, func(r *http.Request) { r.Header.Set("X-TC-Version", "2017-03-12") })
		wantCode(t, r, api.NoSuchVersion)
	})
	t.Run("no version", func(t *testing.T) {
		// Signed calls must name the version (the official SDKs do);
		// session calls may leave it out (TestGatewaySessions).
		r := e.post(t, e.admin, "DescribeApps", `{}`, func(r *http.Request) { r.Header.Del("X-TC-Version") })
		wantCode(t, r, api.MissingParameter)
	})
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
		req.Header.Set("X-TC-Action", "DescribeApps")
		wantCode(t, e.do(t, req), api.UnsupportedProtocol)
	})
	t.Run("form body", func(t *testing.T) {
		r := e.post(t, e.admin, "DescribeApps", `{}`, func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") })
		wantCode(t, r, api.UnsupportedProtocol)
	})
	t.Run("body over the limit", func(t *testing.T) {
		body := `{"Name": "` + strings.Repeat("x", maxBody) + `"}`
		r := e.post(t, e.admin, "CreateApp", body, nil)
		wantCode(t, r, api.RequestSizeLimitExceeded)
		if r.message() != "body: larger than 4096 bytes" {
			t.Errorf("message %q", r.message())
		}
	})
	t.Run("body at the limit", func(t *testing.T) {
		body := `{"Description": "` + strings.Repeat("x", maxBody) + `"}`
		body = body[:maxBody-2] + `"}`
		if len(body) != maxBody {
			t.Fatalf("body is %d bytes", len(body))
		}
		// Refused by validation, not by size: the size check let it through.
		wantCode(t, e.post(t, e.admin, "CreateApp", body, nil), api.MissingParameter)
	})
	t.Run("validation through the gateway", func(t *testing.T) {
		r := e.post(t, e.admin, "CreateApp", `{"Description": "no name"}`, nil)
		wantCode(t, r, api.MissingParameter)
		if r.message() != "Name: required" {
			t.Errorf("message %q", r.message())
		}
		r = e.post(t, e.admin, "CreateApp", `{"Name": ["x"]}`, nil)
		wantCode(t, r, api.InvalidParameterValue)
		if r.message() != "Name: want a string, got JSON array" {
			t.Errorf("message %q", r.message())
		}
		r = e.post(t, e.admin, "CreateApp", `{"Name": "x", "Role": "root"}`, nil)
		wantCode(t, r, api.InvalidParameterValue)
		if r.message() != `Role: "root" is not one of owner, admin, operator, viewer, auditor` {
			t.Errorf("message %q", r.message())
		}
		wantCode(t, e.post(t, e.admin, "DescribeApps", `{"Limit": 101}`, nil), api.InvalidParameterValue)
		wantCode(t, e.post(t, e.admin, "DescribeApps", `{"Colour": "red"}`, nil), api.UnknownParameter)
	})
	t.Run("panic", func(t *testing.T) {
		r := e.post(t, e.admin, "PanicThing", `{}`, nil)
		wantCode(t, r, api.InternalError)
		if want := "internal error; quote RequestId " + r.resp["RequestId"].(string); r.message() != want {
			t.Errorf("message %q, want %q", r.message(), want)
		}
		// The server survives it.
		if r := e.post(t, e.admin, "DescribeApps", `{}`, nil); r.code() != "" {
			t.Fatal(r.raw)
		}
	})
	t.Run("plain error", func(t *testing.T) {
		r := e.post(t, e.admin, "FailThing", `{}`, nil)
		wantCode(t, r, api.InternalError)
		if strings.Contains(r.raw, "disk on fire") {
			t.Errorf("internal error text leaked to the caller: %s", r.raw)
		}
	})
}

func TestGatewayPermissionAndAudit(t *testing.T) {
	e := newGateway(t)
	ctx := context.Background()
	// A viewer reads but cannot write.
	if r := e.post(t, e.viewer, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatalf("viewer read: %s", r.raw)
	}
	denied := e.post(t, e.viewer, "CreateApp", `{"Name": "sneaky", "Description": "x"}`, nil)
	wantCode(t, denied, api.AuthFailureUnauthorizedOperation)
	if want := `role "viewer" does not grant app:write (needed by CreateApp)`; denied.message() != want {
		t.Errorf("message %q, want %q", denied.message(), want)
	}
	ok := e.post(t, e.admin, "CreateApp", `{"Name": "cam", "Description": "lobby"}`, nil)
	if ok.code() != "" {
		t.Fatal(ok.raw)
	}
	failed := e.post(t, e.admin, "CreateApp", `{"Name": "cam", "ProjectId": "prj-nowhere"}`, nil)
	wantCode(t, failed, api.ResourceNotFound)

	// Audited actions are recorded whatever their result; reads are not.
	recs, err := e.audit.List(ctx, "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("audit has %d events, want 3: %+v", len(recs), recs)
	}
	// Each event is the project's the call named (the failed one named a
	// project that does not exist).
	for i, c := range []struct {
		r       reply
		result  string
		project string
	}{{denied, "AuthFailure.UnauthorizedOperation", "default"}, {ok, "OK", "default"}, {failed, "ResourceNotFound", "prj-nowhere"}} {
		ev := recs[i]
		if ev.Action != "CreateApp" || ev.Result != c.result || ev.RequestID != c.r.resp["RequestId"] ||
			ev.SourceIP != "127.0.0.1" || ev.ProjectID != c.project || !ev.Time.Equal(e.clk.now()) {
			t.Errorf("event %d = %+v; want CreateApp %s with the answer's RequestId", i, ev, c.result)
		}
	}
	if recs[1].Actor != "app:"+e.adminID || recs[1].Resource != ok.resp["AppId"] {
		t.Errorf("event of the created app: actor %q resource %q", recs[1].Actor, recs[1].Resource)
	}
	if recs[1].Detail != `{"Description":"lobby","Name":"cam"}` {
		t.Errorf("detail %q", recs[1].Detail)
	}
	if n, err := e.audit.Verify(ctx); err != nil || n != 3 {
		t.Errorf("audit chain: %d events, %v", n, err)
	}
}

func TestGatewayRedactsSecretsInAudit(t *testing.T) {
	e := newGateway(t)
	_, appID := e.newApp(t, "cam", api.RoleViewer)
	r := e.post(t, e.admin, "CreateAppKey", `{"AppId": "`+appID+`"}`, nil)
	if r.code() != "" {
		t.Fatal(r.raw)
	}
	// The SecretKey is in the answer, never in the audit log.
	key := r.resp["SecretKey"].(string)
	recs, err := e.audit.List(context.Background(), "", 0, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("audit: %v, %v", recs, err)
	}
	if strings.Contains(recs[0].Detail, key) || recs[0].Resource != appID+"/"+r.resp["SecretId"].(string) {
		t.Errorf("audit event %+v", recs[0])
	}
}

func TestGatewayRateLimit(t *testing.T) {
	e := newGateway(t)
	ctx := context.Background()
	s, appID := e.newApp(t, "limited", api.RoleAdmin)
	read, write, burst := 1.0, 0.5, 2
	if err := e.apps.ModifyApp(ctx, appID, appcenter.AppChange{ReadRPS: &read, WriteRPS: &write, Burst: &burst}); err != nil {
		t.Fatal(err)
	}
	// The clock stands still: a burst of 2 reads, then refusals.
	for i := range burst {
		if r := e.post(t, s, "DescribeApps", `{}`, nil); r.code() != "" {
			t.Fatalf("read %d within the burst: %s", i, r.raw)
		}
	}
	r := e.post(t, s, "DescribeApps", `{}`, nil)
	wantCode(t, r, api.RequestLimitExceeded)
	if want := "app " + appID + " exceeded 1 read requests/s (burst 2); retry after 1001 ms"; r.message() != want {
		t.Errorf("message %q, want %q", r.message(), want)
	}
	// Writes have their own bucket.
	if r := e.post(t, s, "ModifyApp", `{"AppId": "`+appID+`", "Description": "x"}`, nil); r.code() != "" {
		t.Fatalf("write after reads ran out: %s", r.raw)
	}
	// Another app is not limited by this one.
	if r := e.post(t, e.admin, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatal(r.raw)
	}
	// One interval later, one more read is allowed.
	e.clk.add(time.Second)
	if r := e.post(t, s, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatalf("read after a second: %s", r.raw)
	}
	wantCode(t, e.post(t, s, "DescribeApps", `{}`, nil), api.RequestLimitExceeded)
}

func TestGatewayMetrics(t *testing.T) {
	e := newGateway(t)
	e.post(t, e.admin, "DescribeApps", `{}`, nil)
	e.post(t, e.admin, "Junk"+strings.Repeat("x", 20), `{}`, nil)
	e.post(t, e.viewer, "CreateApp", `{"Name": "x"}`, nil)
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "tianshu_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["action"]+" "+labels["code"]] += m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"DescribeApps OK": 1, "unknown InvalidAction": 1, "CreateApp AuthFailure.UnauthorizedOperation": 1}
	if len(got) != len(want) {
		t.Errorf("requests_total = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requests_total{%s} = %v, want %v", k, got[k], v)
		}
	}
}

// Refusals are audited for every action, read or write, and failed
// authentications that present a SecretId are audited under it.
func TestGatewayAuditsDenialsAndAuthFailures(t *testing.T) {
	e := newGateway(t)
	ctx := context.Background()
	viewer, viewerID := e.newApp(t, "peeker", api.RoleViewer)
	// Not an audited action, but refused: recorded.
	denied := e.post(t, viewer, "DescribeAuditEvents", `{"ProjectId": "prj-other"}`, nil)
	wantCode(t, denied, api.AuthFailureUnauthorizedOperation)
	// A write refused by role: recorded (CreateApp is audited anyway).
	wantCode(t, e.post(t, viewer, "CreateApp", `{"Name": "x"}`, nil), api.AuthFailureUnauthorizedOperation)
	// Reads that succeed are not.
	if r := e.post(t, viewer, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatal(r.raw)
	}
	unknown := e.post(t, tc3.Signer{SecretID: "AKIDnobody", SecretKey: "k"}, "DescribeApps", `{}`, nil)
	wantCode(t, unknown, api.AuthFailureSecretIDNotFound)
	badSig := e.post(t, tc3.Signer{SecretID: e.admin.SecretID, SecretKey: "guess"}, "DeleteApp", `{"AppId": "x"}`, nil)
	wantCode(t, badSig, api.AuthFailureSignatureFailure)
	// No principal named: nothing to attribute, not recorded.
	wantCode(t, e.post(t, e.admin, "DescribeApps", `{}`, func(r *http.Request) { r.Header.Del("Authorization") }), api.AuthFailureInvalidAuthorization)

	recs, err := e.audit.List(ctx, "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ actor, action, result, project, requestID string }
	var got []row
	for _, r := range recs {
		got = append(got, row{r.Actor, r.Action, r.Result, r.ProjectID, r.RequestID})
		if r.SourceIP != "127.0.0.1" {
			t.Errorf("event %d from %q", r.Seq, r.SourceIP)
		}
	}
	want := []row{
		{"app:" + viewerID, "DescribeAuditEvents", "AuthFailure.UnauthorizedOperation", "default", denied.resp["RequestId"].(string)},
		{"app:" + viewerID, "CreateApp", "AuthFailure.UnauthorizedOperation", "default", ""},
		{"secret:AKIDnobody", "DescribeApps", "AuthFailure.SecretIdNotFound", "default", unknown.resp["RequestId"].(string)},
		{"secret:" + e.admin.SecretID, "DeleteApp", "AuthFailure.SignatureFailure", "default", badSig.resp["RequestId"].(string)},
	}
	if len(got) != len(want) {
		t.Fatalf("audit events %+v; want %+v", got, want)
	}
	for i := range want {
		if want[i].requestID == "" {
			want[i].requestID = got[i].requestID
		}
		if got[i] != want[i] {
			t.Errorf("event %d = %+v; want %+v", i, got[i], want[i])
		}
	}
	if recs[2].Detail != `{"Message":"SecretId \"AKIDnobody\" not found"}` {
		t.Errorf("detail %q", recs[2].Detail)
	}
}

// A flood of failed authentications from one address adds a bounded number
// of events; the ones left out are counted in the next one recorded.
func TestGatewayCoalescesAuthFailures(t *testing.T) {
	// The subject is the audit log's allowance, not the failure holds
	// (TestGatewayHolds*): they are off here.
	cfg := api.DefaultConfig()
	cfg.AuthFailures.AddressFailures, cfg.AuthFailures.SecretFailures = 1000, 0
	e := newGatewayWith(t, withConfig(cfg))
	ctx := context.Background()
	junk := tc3.Signer{SecretID: "AKIDjunk", SecretKey: "k"}
	for range 25 {
		wantCode(t, e.post(t, junk, "DescribeApps", `{}`, nil), api.AuthFailureSecretIDNotFound)
	}
	recs, err := e.audit.List(ctx, "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 10 {
		t.Fatalf("%d events for 25 failures in a minute; want 10", len(recs))
	}
	// Permission denials are not bounded by it.
	for range 12 {
		wantCode(t, e.post(t, e.viewer, "CreateApp", `{"Name": "x"}`, nil), api.AuthFailureUnauthorizedOperation)
	}
	e.clk.add(time.Minute)
	wantCode(t, e.post(t, junk, "DescribeApps", `{}`, nil), api.AuthFailureSecretIDNotFound)
	recs, err = e.audit.List(ctx, "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 23 {
		t.Fatalf("%d events; want 10 + 12 denials + 1", len(recs))
	}
	if last := recs[22]; last.Actor != "secret:AKIDjunk" || last.Detail != `{"Message":"SecretId \"AKIDjunk\" not found","Suppressed":15}` {
		t.Errorf("first event of the next minute: %+v", last)
	}
	if n, err := e.audit.Verify(ctx); err != nil || n != 23 {
		t.Errorf("Verify = %d, %v", n, err)
	}
}

// With no limits of its own an app is still limited: the gateway's
// defaults are not "unlimited" (issue #26, part 6).
func TestGatewayDefaultRateLimit(t *testing.T) {
	cfg := api.DefaultConfig()
	if cfg.DefaultReadRPS <= 0 || cfg.DefaultWriteRPS <= 0 || cfg.ProjectRPS <= 0 {
		t.Fatalf("default limits read %g/s, write %g/s, project %g/s: want all limited", cfg.DefaultReadRPS, cfg.DefaultWriteRPS, cfg.ProjectRPS)
	}
	e := newGateway(t)
	s, appID := e.newApp(t, "plain", api.RoleViewer)
	// The clock stands still: the default burst (two seconds' worth of
	// reads) passes, the next read is refused.
	burst := int(2 * cfg.DefaultReadRPS)
	for i := range burst + 1 {
		r := e.post(t, s, "FailThing", `{}`, nil)
		if r.code() == string(api.RequestLimitExceeded) {
			if i != burst {
				t.Fatalf("refused after %d reads; want %d", i, burst)
			}
			if want := fmt.Sprintf("app %s exceeded %g read requests/s (burst %d)", appID, cfg.DefaultReadRPS, burst); !strings.HasPrefix(r.message(), want) {
				t.Errorf("message %q, want prefix %q", r.message(), want)
			}
			return
		}
	}
	t.Fatalf("%d reads at one instant all passed the default limit", burst+1)
}

// A project's apps share one project-wide limit: more apps do not buy a
// project more requests (issue #26, part 6).
func TestGatewayProjectRateLimit(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.ProjectRPS, cfg.ProjectBurst = 1, 3
	e := newGatewayWith(t, withConfig(cfg))
	a, _ := e.newApp(t, "a", api.RoleViewer)
	b, _ := e.newApp(t, "b", api.RoleViewer)
	for i, s := range []tc3.Signer{a, b, a} {
		if r := e.post(t, s, "DescribeApps", `{}`, nil); r.code() != "" {
			t.Fatalf("request %d within the project's burst: %s", i, r.raw)
		}
	}
	// Setup used no requests; the fourth of either app is refused.
	for _, s := range []tc3.Signer{a, b} {
		r := e.post(t, s, "DescribeApps", `{}`, nil)
		wantCode(t, r, api.RequestLimitExceeded)
		if want := "project default exceeded 1 requests/s (burst 3); retry after 1001 ms"; r.message() != want {
			t.Errorf("message %q, want %q", r.message(), want)
		}
	}
	// Another project has its own allowance.
	if _, err := iam.NewProjects(e.db, e.clk.now).Create(context.Background(), "prj-other", "Other", ""); err != nil {
		t.Fatal(err)
	}
	other, err := e.apps.CreateApp(context.Background(), "prj-other", "o", "", api.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	id, key, err := e.apps.CreateKey(context.Background(), other.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if r := e.post(t, tc3.Signer{SecretID: id, SecretKey: key}, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatalf("app of another project: %s", r.raw)
	}
	e.clk.add(time.Second)
	if r := e.post(t, b, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatalf("a second later: %s", r.raw)
	}
}

// badSignature breaks a request's signature after signing: its last hex
// digit changes.
func badSignature(r *http.Request) {
	h := r.Header.Get("Authorization")
	last := byte('0')
	if h[len(h)-1] == '0' {
		last = '1'
	}
	r.Header.Set("Authorization", h[:len(h)-1]+string(last))
}

// Failed authentications are limited per SecretId: past the threshold the
// SecretId is held, good signature or not, until the hold ends (issue
// #26, part 6).
func TestGatewayHoldsSecretIdAfterFailedSignatures(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.AuthFailures = apiconfig.AuthFailures{AddressFailures: 100, SecretFailures: 2, FailureWindow: time.Minute, LockBase: 10 * time.Second, LockMax: time.Minute}
	e := newGatewayWith(t, withConfig(cfg))
	s, _ := e.newApp(t, "victim", api.RoleViewer)
	bad := badSignature
	// Two free failures and the one that starts the hold.
	for range 3 {
		wantCode(t, e.post(t, s, "DescribeApps", `{}`, bad), api.AuthFailureSignatureFailure)
	}
	for _, change := range []func(*http.Request){bad, nil} {
		r := e.post(t, s, "DescribeApps", `{}`, change)
		wantCode(t, r, api.RequestLimitExceeded)
		if want := "SecretId " + s.SecretID + ": too many failed authentications; retry after 10000 ms"; r.message() != want {
			t.Errorf("message %q, want %q", r.message(), want)
		}
	}
	// The same address with another key is not held.
	if r := e.post(t, e.viewer, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatalf("another SecretId from the same address: %s", r.raw)
	}
	e.clk.add(10 * time.Second)
	if r := e.post(t, s, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatalf("after the hold: %s", r.raw)
	}
}

// Failed authentications are limited per source address, whatever
// SecretIds they name: unknown ones, expired timestamps, no Authorization.
func TestGatewayHoldsAddressAfterFailedAuthentications(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.AuthFailures = apiconfig.AuthFailures{AddressFailures: 3, SecretFailures: 100, FailureWindow: time.Minute, LockBase: 5 * time.Second, LockMax: time.Minute}
	e := newGatewayWith(t, withConfig(cfg))
	for i := range 4 {
		ghost := tc3.Signer{SecretID: fmt.Sprintf("AKIDghost%d", i), SecretKey: "x"}
		wantCode(t, e.post(t, ghost, "DescribeApps", `{}`, nil), api.AuthFailureSecretIDNotFound)
	}
	r := e.post(t, e.admin, "DescribeApps", `{}`, nil)
	wantCode(t, r, api.RequestLimitExceeded)
	if want := "source address 127.0.0.1: too many failed authentications; retry after 5000 ms"; r.message() != want {
		t.Errorf("message %q, want %q", r.message(), want)
	}
	e.clk.add(5 * time.Second)
	if r := e.post(t, e.admin, "DescribeApps", `{}`, nil); r.code() != "" {
		t.Fatalf("after the hold: %s", r.raw)
	}
	// The next failure doubles the hold.
	wantCode(t, e.post(t, e.admin, "DescribeApps", `{}`, badSignature), api.AuthFailureSignatureFailure)
	r = e.post(t, e.admin, "DescribeApps", `{}`, nil)
	wantCode(t, r, api.RequestLimitExceeded)
	if want := "source address 127.0.0.1: too many failed authentications; retry after 10000 ms"; r.message() != want {
		t.Errorf("message %q, want %q", r.message(), want)
	}
}

// A client that sends its headers and then trickles the body is cut off
// after api.body-read-timeout, not held open indefinitely (issue #26,
// part 6).
func TestGatewayBodyReadDeadline(t *testing.T) {
	cfg := api.DefaultConfig()
	if cfg.BodyReadTimeout <= 0 || cfg.BodyReadTimeout > time.Minute {
		t.Errorf("default body read timeout %v: want a bound of at most a minute", cfg.BodyReadTimeout)
	}
	cfg.BodyReadTimeout = 300 * time.Millisecond
	e := newGatewayWith(t, withConfig(cfg))
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-TC-Action: DescribeApps\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	// One byte every 100 ms: always something coming, never the whole body.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer %v after the headers: %v", time.Since(start).Round(time.Millisecond), err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answered after %v; want about the 300ms deadline", d)
	}
	if !strings.Contains(string(b), `"Code":"InvalidParameter"`) || !strings.Contains(string(b), "body: not received within 300ms") {
		t.Errorf("answer %s", b)
	}
	// The deadline bounds the body, not the action: one that runs past it
	// keeps its context.
	if r := e.post(t, e.admin, "SlowThing", `{}`, nil); r.code() != "" {
		t.Errorf("action outlasting the body deadline: %s", r.raw)
	}
}
