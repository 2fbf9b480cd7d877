package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// Replicas cache app lists and keys, and a change through one reaches the
// others' caches over the bus: two platforms on one SQLite store and the
// real NATS, each trusting what it cached for a minute (past the waits below), so that only the
// bus's invalidation can make b see a's changes.
func TestAppCacheInvalidatedAcrossReplicas(t *testing.T) {
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	args := []string{"--db", "sqlite://" + t.TempDir() + "/shared.db", "--bus", testenv.NATSURL(), "--api.app-cache-ttl", "1m",
		"--api.project-rps", "0", "--api.default-read-rps", "0", "--api.default-write-rps", "0"}
	key := map[string]string{"TIANSHU_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	a := apptest.Start(t, apptest.Options{Args: args, Env: key})
	b := apptest.Start(t, apptest.Options{Args: args, Env: key})
	hc := &http.Client{Timeout: 30 * time.Second}
	admin := tc3.Signer{SecretID: apptest.AdminSecretID, SecretKey: apptest.AdminSecretKey}
	call := func(e *apptest.Env, s tc3.Signer, action string, params map[string]any) (map[string]any, string) {
		return signedCallAs(hc, e.Endpoint, s, action, params)
	}
	must := func(e *apptest.Env, action string, params map[string]any) map[string]any {
		t.Helper()
		r, code := call(e, admin, action, params)
		if code != "" {
			t.Fatalf("%s: %s", action, code)
		}
		return r
	}
	list := map[string]any{"Limit": 100}
	names := func(e *apptest.Env) string {
		var out []string
		for _, x := range must(e, "DescribeApps", list)["AppSet"].([]any) {
			out = append(out, x.(map[string]any)["Name"].(string))
		}
		return strings.Join(out, ",")
	}
	before := names(b) // b caches the list

	// The cache is real: a change behind the app center's back (a raw
	// write to the store) is not seen by b while its list is cached.
	ctx := context.Background()
	if _, err := a.P.DB.Exec(ctx, "UPDATE apps SET description = 'raw' WHERE name = 'admin'"); err != nil {
		t.Fatal(err)
	}
	// (The list holds names only here; the description shows the same.)
	for _, x := range must(b, "DescribeApps", list)["AppSet"].([]any) {
		if d := x.(map[string]any)["Description"]; d == "raw" {
			t.Fatalf("b answered a change that nobody announced: its list is not cached")
		}
	}

	// A change through a reaches b's cached list.
	id := must(a, "CreateApp", map[string]any{"Name": "made-on-a", "Role": "admin"})["AppId"].(string)
	testenv.Eventually(t, 30*time.Second, "b to list the app created through a", func() bool {
		return strings.Contains(names(b), "made-on-a")
	})
	if names(b) == before {
		t.Fatal("b's list did not change")
	}

	// A key disabled through a stops working on b, which had it cached.
	k := must(a, "CreateAppKey", map[string]any{"AppId": id})
	s := tc3.Signer{SecretID: k["SecretId"].(string), SecretKey: k["SecretKey"].(string)}
	if _, code := call(b, s, "DescribeApps", list); code != "" {
		t.Fatalf("the new key on b: %s", code)
	}
	must(a, "DisableAppKey", map[string]any{"AppId": id, "SecretId": s.SecretID})
	testenv.Eventually(t, 30*time.Second, "b to refuse the key disabled through a", func() bool {
		_, code := call(b, s, "DescribeApps", list)
		return strings.HasPrefix(code, "AuthFailure.SecretIdNotFound")
	})
}
