package app_test

import (
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func TestAppLifecycle(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	id := admin.mustCall("CreateApp", map[string]any{"Name": "cam-wall", "Role": "admin"})["AppId"].(string)
	k := admin.mustCall("CreateAppKey", map[string]any{"AppId": id})
	app := newSDK(t, e.Host, k["SecretId"].(string), k["SecretKey"].(string))
	app.mustCall("CreateApp", map[string]any{"Name": "child"})

	// Role changes apply at once.
	admin.mustCall("ModifyApp", map[string]any{"AppId": id, "Role": "viewer", "Description": "wall"})
	if _, c := app.call("CreateApp", map[string]any{"Name": "child2"}); c != "AuthFailure.UnauthorizedOperation" {
		t.Errorf("after demotion: %q", c)
	}
	// Keys are listed without secrets; disabled keys sign nothing until enabled.
	keys := admin.mustCall("DescribeAppKeys", map[string]any{"AppId": id})
	if keys["TotalCount"].(float64) != 1 || toJSON(keys["KeySet"]) == "" || strings.Contains(toJSON(keys), k["SecretKey"].(string)) {
		t.Fatalf("DescribeAppKeys = %v", keys)
	}
	admin.mustCall("DisableAppKey", map[string]any{"AppId": id, "SecretId": k["SecretId"]})
	if _, c := app.call("DescribeApps", nil); c != "AuthFailure.SecretIdNotFound" {
		t.Errorf("disabled key: %q", c)
	}
	admin.mustCall("EnableAppKey", map[string]any{"AppId": id, "SecretId": k["SecretId"]})
	app.mustCall("DescribeApps", nil)
	if _, c := admin.call("DisableAppKey", map[string]any{"AppId": "app-x", "SecretId": apptest.AdminSecretID}); c != "ResourceInUse" {
		t.Errorf("disabling the signing key: %q", c)
	}
	// An app cannot delete itself; another admin app can.
	admin.mustCall("ModifyApp", map[string]any{"AppId": id, "Role": "admin"})
	if _, c := app.call("DeleteApp", map[string]any{"AppId": id}); c != "ResourceInUse" {
		t.Errorf("self delete: %q", c)
	}
	admin.mustCall("DeleteApp", map[string]any{"AppId": id})
	if _, c := app.call("DescribeApps", nil); c != "AuthFailure.SecretIdNotFound" {
		t.Errorf("key of a deleted app: %q", c)
	}
	if _, c := admin.call("ModifyApp", map[string]any{"AppId": id, "Name": "x"}); c != "ResourceNotFound" {
		t.Errorf("modify deleted app: %q", c)
	}
}

// rateLimited makes an app limited to 0.2 reads/s with a burst of 3, and
// returns a client for it.
func rateLimited(t *testing.T, admin *sdk, host string) (*sdk, string) {
	t.Helper()
	id := admin.mustCall("CreateApp", map[string]any{"Name": "limited", "Role": "viewer"})["AppId"].(string)
	admin.mustCall("ModifyApp", map[string]any{"AppId": id, "RateLimit": map[string]any{"ReadRps": 0.2, "Burst": 3}})
	k := admin.mustCall("CreateAppKey", map[string]any{"AppId": id})
	return newSDK(t, host, k["SecretId"].(string), k["SecretKey"].(string)), k["SecretId"].(string)
}

func TestRateLimitInMemory(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	c, _ := rateLimited(t, admin, e.Host)
	for i := 0; i < 3; i++ { // distinct calls: identical ones in a second share a signature
		c.mustCall("DescribeApps", map[string]any{"Limit": i + 1})
	}
	if _, code := c.call("DescribeApps", nil); code != "RequestLimitExceeded" {
		t.Fatalf("4th call in a burst of 3: %q", code)
	}
	admin.mustCall("DescribeApps", nil) // other apps are not affected
}

// With --cache redis://, replicas share one limit.
func TestRateLimitSharedInRedis(t *testing.T) {
	testenv.NeedTCP(t, "Redis", "127.0.0.1:6379")
	args := []string{"--cache", testenv.RedisURL()}
	db := []string{"--db", "sqlite://" + t.TempDir() + "/shared.db"}
	key := map[string]string{"TIANSHU_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	a := apptest.Start(t, apptest.Options{Args: append(args, db...), Env: key})
	b := apptest.Start(t, apptest.Options{Args: append(args, db...), Env: key})
	admin := newSDK(t, a.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	ca, _ := rateLimited(t, admin, a.Host)
	// Distinct calls: identical ones in one second share a signature.
	ca.mustCall("DescribeApps", map[string]any{"Limit": 1})
	ca.mustCall("DescribeApps", map[string]any{"Limit": 2})
	ca.mustCall("DescribeApps", map[string]any{"Limit": 3})
	// The same app through replica b is over the shared limit.
	cred := ca.client.GetCredential()
	cb := newSDK(t, b.Host, cred.GetSecretId(), cred.GetSecretKey())
	if _, code := cb.call("DescribeApps", nil); code != "RequestLimitExceeded" {
		t.Fatalf("through replica b: %q, want RequestLimitExceeded", code)
	}
}

// An app acts within its own project: lists default to it, other projects
// are refused, and only the default project's admin apps see everything.
func TestProjectScope(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	prj := admin.mustCall("CreateProject", map[string]any{"Name": "site-b"})["ProjectId"].(string)
	id := admin.mustCall("CreateApp", map[string]any{"ProjectId": prj, "Name": "site-b-admin", "Role": "admin"})["AppId"].(string)
	k := admin.mustCall("CreateAppKey", map[string]any{"AppId": id})
	b := newSDK(t, e.Host, k["SecretId"].(string), k["SecretKey"].(string))

	r := b.mustCall("DescribeApps", nil)
	for _, a := range r["AppSet"].([]any) {
		if a.(map[string]any)["ProjectId"] != prj {
			t.Fatalf("app of %s sees another project's app: %v", prj, a)
		}
	}
	if _, c := b.call("DescribeApps", map[string]any{"ProjectId": "default"}); c != "AuthFailure.UnauthorizedOperation" {
		t.Errorf("listing another project: %q", c)
	}
	if _, c := b.call("CreateFlow", map[string]any{"ProjectId": "default", "Document": echoFlow}); c != "AuthFailure.UnauthorizedOperation" {
		t.Errorf("creating in another project: %q", c)
	}
	f := b.mustCall("CreateFlow", map[string]any{"Document": echoFlow})
	if fl := admin.mustCall("DescribeFlows", map[string]any{"FlowIds": []string{f["FlowId"].(string)}})["FlowSet"].([]any); len(fl) != 1 || fl[0].(map[string]any)["ProjectId"] != prj {
		t.Fatalf("a flow created without ProjectId lands in the app's project: %v", fl)
	}
	// Resources of another project are "not found" to it, by id too.
	other := admin.mustCall("CreateFlow", map[string]any{"Document": strings.Replace(echoFlow, `"echo"`, `"echo-default"`, 1)})["FlowId"].(string)
	for action, req := range map[string]map[string]any{
		"DescribeFlowVersion": {"FlowId": other},
		"DeleteFlow":          {"FlowId": other},
		"InvokeFlow":          {"FlowId": other},
		"CreateAppKey":        {"AppId": firstAppOf(t, admin, "default")},
	} {
		if _, c := b.call(action, req); c != "ResourceNotFound" {
			t.Errorf("%s on another project's resource: %q", action, c)
		}
	}
	// A flow cannot call another project's algorithm; built-ins it can.
	alg := admin.mustCall("CreateAlgorithm", map[string]any{"Name": "default-only"})["AlgorithmId"].(string)
	admin.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": alg, "Definition": map[string]any{"runtime": "endpoint",
		"endpoints": []string{"http://127.0.0.1:9"}, "contract": map[string]any{"inputs": []any{map[string]any{"name": "image", "type": "image"}}}}})
	uses := func(id string) string {
		return `{"nodes": [{"id": "a", "kind": "algorithm", "config": {"algorithm": "` + id + `"}, "inputs": {"image": "$input.image"}}]}`
	}
	if v := b.mustCall("ValidateFlow", map[string]any{"Document": uses(alg)}); v["Valid"] != false {
		t.Errorf("a flow of %s validated with another project's algorithm", prj)
	}
	if v := b.mustCall("ValidateFlow", map[string]any{"Document": uses("alg-face-detect")}); v["Valid"] != true {
		t.Errorf("built-in algorithm refused: %v", v["ErrorSet"])
	}
	if n := admin.mustCall("DescribeApps", nil)["TotalCount"].(float64); n < 2 {
		t.Errorf("the platform admin sees every project: %v apps", n)
	}
}

func firstAppOf(t *testing.T, c *sdk, project string) string {
	t.Helper()
	return c.mustCall("DescribeApps", map[string]any{"ProjectId": project, "Limit": 1})["AppSet"].([]any)[0].(map[string]any)["AppId"].(string)
}
