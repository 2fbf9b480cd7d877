package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// nextSecond waits until the wall clock's second changes, so that the
// next call is signed with another timestamp than the last.
func nextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
}

// sdk calls actions through the official Go SDK's common client, exactly as
// an application would. The SDK signs the body and the time in seconds,
// not the action or a nonce, so identical calls in one second share a
// signature, which the gateway accepts once (docs/security.md,
// Signatures); like any client that repeats a call (polling), call waits
// for the next second before sending one it sent in this second.
type sdk struct {
	t      testing.TB
	client *common.Client
	mu     sync.Mutex
	sent   map[string]int64 // action and params → Unix second last sent
}

func newSDK(t testing.TB, host, secretID, secretKey string) *sdk {
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = host
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.HttpProfile.ReqTimeout = 30
	return &sdk{t: t, client: common.NewCommonClient(common.NewCredential(secretID, secretKey), "", cpf)}
}

// call returns the Response object, or the error code.
func (s *sdk) call(action string, params map[string]any) (map[string]any, string) {
	s.t.Helper()
	req := tchttp.NewCommonRequest(api.Service, api.Version, action)
	if params == nil {
		params = map[string]any{}
	}
	if err := req.SetActionParameters(params); err != nil {
		s.t.Fatal(err)
	}
	s.spaceRepeat(action, params)
	resp := tchttp.NewCommonResponse()
	err := s.client.Send(req, resp)
	var se *tcerr.TencentCloudSDKError
	if errors.As(err, &se) {
		if se.GetRequestId() == "" && !strings.HasPrefix(se.GetCode(), "ClientError") {
			s.t.Errorf("%s: error %s without RequestId", action, se.GetCode())
		}
		return nil, se.GetCode()
	}
	if err != nil {
		s.t.Fatalf("%s: transport: %v", action, err)
	}
	var out struct {
		Response map[string]any `json:"Response"`
	}
	if err := json.Unmarshal(resp.GetBody(), &out); err != nil {
		s.t.Fatalf("%s: %v", action, err)
	}
	if out.Response["RequestId"] == "" || out.Response["RequestId"] == nil {
		s.t.Errorf("%s: response without RequestId", action)
	}
	return out.Response, ""
}

// spaceRepeat waits for the next second when action was called with the
// same params in this one.
func (s *sdk) spaceRepeat(action string, params map[string]any) {
	b, _ := json.Marshal(params)
	id := action + " " + string(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil {
		s.sent = map[string]int64{}
	}
	if s.sent[id] == time.Now().Unix() {
		nextSecond()
	}
	s.sent[id] = time.Now().Unix()
}

func (s *sdk) mustCall(action string, params map[string]any) map[string]any {
	s.t.Helper()
	r, code := s.call(action, params)
	if code != "" {
		s.t.Fatalf("%s: unexpected error %s", action, code)
	}
	return r
}

func countApps(t *testing.T, e *apptest.Env) int {
	var n int
	if err := e.P.DB.QueryRow(context.Background(), "SELECT COUNT(*) FROM apps").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rawCall signs a request with Tianshu's own signer, for bodies the SDK
// cannot produce (malformed JSON).
func rawCall(t *testing.T, endpoint, action string, body []byte) (code string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", api.Version)
	tc3.Signer{SecretID: apptest.AdminSecretID, SecretKey: apptest.AdminSecretKey}.Sign(req, body, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			Error     struct{ Code string }
			RequestId string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Response.RequestId == "" {
		t.Errorf("%s: no RequestId", action)
	}
	return out.Response.Error.Code
}

func TestGoSDK(t *testing.T) {
	var skew atomic.Int64 // the server's clock offset, for the expiry case
	e := apptest.Start(t, apptest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)

	r := admin.mustCall("DescribeApps", map[string]any{"Limit": 1})
	if r["TotalCount"].(float64) != 1 || len(r["AppSet"].([]any)) != 1 {
		t.Fatalf("DescribeApps = %v", r)
	}
	before := countApps(t, e)

	cases := []struct {
		name, want string
		call       func() string
	}{
		{"wrong SecretKey", "AuthFailure.SignatureFailure", func() string {
			_, c := newSDK(t, e.Host, apptest.AdminSecretID, "wrong-key").call("CreateApp", map[string]any{"Name": "x"})
			return c
		}},
		{"unknown SecretId", "AuthFailure.SecretIdNotFound", func() string {
			_, c := newSDK(t, e.Host, "AKIDnosuchkey", apptest.AdminSecretKey).call("CreateApp", map[string]any{"Name": "x"})
			return c
		}},
		{"timestamp 10 minutes old", "AuthFailure.SignatureExpire", func() string {
			skew.Store(int64(10 * time.Minute))
			defer skew.Store(0)
			_, c := admin.call("CreateApp", map[string]any{"Name": "x"})
			return c
		}},
		{"unknown action", "InvalidAction", func() string {
			_, c := admin.call("CreateNothing", nil)
			return c
		}},
		{"malformed JSON", "InvalidParameter", func() string {
			return rawCall(t, e.Endpoint, "CreateApp", []byte(`{"Name": "x",`))
		}},
		{"oversized body", "RequestSizeLimitExceeded", func() string {
			_, c := admin.call("CreateApp", map[string]any{"Name": "x", "Description": strings.Repeat("a", 5<<20)})
			return c
		}},
		{"missing field", "MissingParameter", func() string {
			_, c := admin.call("CreateApp", map[string]any{"Role": "viewer"})
			return c
		}},
		{"unknown field", "UnknownParameter", func() string {
			_, c := admin.call("CreateApp", map[string]any{"Name": "x", "Colour": "red"})
			return c
		}},
		{"wrong type", "InvalidParameterValue", func() string {
			_, c := admin.call("DescribeApps", map[string]any{"Limit": "ten"})
			return c
		}},
		{"out of range", "InvalidParameterValue", func() string {
			_, c := admin.call("CreateApp", map[string]any{"Name": strings.Repeat("n", 65)})
			return c
		}},
		{"unknown project", "ResourceNotFound", func() string {
			_, c := admin.call("CreateApp", map[string]any{"Name": "x", "ProjectId": "prj-none"})
			return c
		}},
	}
	for _, c := range cases {
		if got := c.call(); got != c.want {
			t.Errorf("%s: code %q, want %q", c.name, got, c.want)
		}
	}
	if after := countApps(t, e); after != before {
		t.Fatalf("failed calls changed the store: %d apps before, %d after", before, after)
	}

	// A viewer app reads but cannot write.
	vid := admin.mustCall("CreateApp", map[string]any{"Name": "dashboard", "Role": "viewer"})["AppId"].(string)
	k := admin.mustCall("CreateAppKey", map[string]any{"AppId": vid})
	viewer := newSDK(t, e.Host, k["SecretId"].(string), k["SecretKey"].(string))
	if r := viewer.mustCall("DescribeApps", map[string]any{"AppIds": []string{vid}}); r["TotalCount"].(float64) != 1 {
		t.Errorf("viewer DescribeApps = %v", r)
	}
	if _, c := viewer.call("CreateApp", map[string]any{"Name": "y"}); c != "AuthFailure.UnauthorizedOperation" {
		t.Errorf("viewer CreateApp: %q", c)
	}

	// Key lifecycle: two active keys at most; a deleted key stops working.
	k2 := admin.mustCall("CreateAppKey", map[string]any{"AppId": vid})
	if _, c := admin.call("CreateAppKey", map[string]any{"AppId": vid}); c != "LimitExceeded" {
		t.Errorf("third key: %q, want LimitExceeded", c)
	}
	admin.mustCall("DeleteAppKey", map[string]any{"AppId": vid, "SecretId": k["SecretId"]})
	if _, c := viewer.call("DescribeApps", nil); c != "AuthFailure.SecretIdNotFound" {
		t.Errorf("deleted key: %q", c)
	}
	newSDK(t, e.Host, k2["SecretId"].(string), k2["SecretKey"].(string)).mustCall("DescribeApps", nil)
	if _, c := admin.call("DeleteAppKey", map[string]any{"AppId": vid, "SecretId": k["SecretId"]}); c != "ResourceNotFound" {
		t.Errorf("delete twice: %q", c)
	}

	// Every audited call is in the chain, and the chain verifies.
	n, err := e.P.Audit.Verify(context.Background())
	if err != nil || n == 0 {
		t.Fatalf("audit chain: %d events, %v", n, err)
	}
	ev := admin.mustCall("DescribeAuditEvents", map[string]any{"Limit": 100})["AuditEventSet"].([]any)
	for _, x := range ev {
		if d := x.(map[string]any)["Detail"].(string); strings.Contains(d, k["SecretKey"].(string)) {
			t.Fatalf("audit detail leaks a SecretKey: %s", d)
		}
	}
}

// Deny by default: every action but Login is refused without a signature
// or session, and every write action is refused to a viewer app.
func TestEveryActionNeedsItsPermission(t *testing.T) {
	// One unsigned call per action from one address is a scan by design:
	// the failed-authentication hold would answer it before the checks
	// this test is about.
	e := apptest.Start(t, apptest.Options{Args: []string{"--api.auth-failures.address-failures", "100000"}})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	vid := admin.mustCall("CreateApp", map[string]any{"Name": "ro", "Role": "viewer"})["AppId"].(string)
	k := admin.mustCall("CreateAppKey", map[string]any{"AppId": vid})
	viewer := newSDK(t, e.Host, k["SecretId"].(string), k["SecretKey"].(string))
	for _, a := range e.P.Registry.Actions() {
		if a.Public {
			// Login is the one way in without a key or a session.
			if a.Name != "Login" {
				t.Errorf("%s is public; only Login may be", a.Name)
			}
			continue
		}
		req, _ := http.NewRequest(http.MethodPost, e.Endpoint+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", a.Name)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Response struct{ Error struct{ Code string } }
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out.Response.Error.Code != "AuthFailure.InvalidAuthorization" {
			t.Errorf("%s unsigned: %q", a.Name, out.Response.Error.Code)
		}
		if a.Permission.Access == api.Write {
			if _, c := viewer.call(a.Name, nil); c != "AuthFailure.UnauthorizedOperation" {
				t.Errorf("%s as viewer: %q, want AuthFailure.UnauthorizedOperation", a.Name, c)
			}
		}
	}
}

// The Node.js SDK signs the host without its port and takes the service
// name from the endpoint's first label; both must be accepted.
func TestNodeSDK(t *testing.T) {
	node := testenv.NeedCommand(t, "node")
	dir, _ := filepath.Abs("../../test/sdk-node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "tencentcloud-sdk-nodejs-common")); err != nil {
		testenv.Unavailable(t, "test/sdk-node/node_modules missing: run `npm ci --prefix test/sdk-node`")
	}
	e := apptest.Start(t, apptest.Options{})
	call := func(secretKey, action, params string) map[string]any {
		out, err := exec.Command(node, filepath.Join(dir, "call.js"), e.Host, apptest.AdminSecretID, secretKey, action, params).CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
		var r map[string]any
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("node output %q: %v", out, err)
		}
		return r
	}
	r := call(apptest.AdminSecretKey, "DescribeApps", `{"Limit": 1}`)
	ok, _ := r["ok"].(map[string]any)
	if ok == nil || ok["TotalCount"] != float64(1) {
		t.Fatalf("Node SDK DescribeApps = %v", r)
	}
	r = call("wrong-key", "DescribeApps", `{"Limit": 1}`)
	if e, _ := r["error"].(map[string]any); e == nil || e["code"] != "AuthFailure.SignatureFailure" {
		t.Fatalf("Node SDK wrong key = %v", r)
	}
}

// The docs in the repository are what the registry generates.
func TestRegistryTypesAreDocumented(t *testing.T) {
	for _, a := range apptestRegistry().Actions() {
		if a.Summary == "" {
			t.Errorf("%s has no summary", a.Name)
		}
		if a.Request.Kind() != reflect.Struct {
			t.Errorf("%s request is not a struct", a.Name)
		}
	}
}
