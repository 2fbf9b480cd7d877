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

// Replicas cache each caller's roles and bindings, and a role revoked
// through one is refused on the others at once, told over the bus: two
// platforms on one SQLite store and the real NATS, each trusting the grants
// (and app keys) it cached for a minute, past the waits below, so that only
// the bus's invalidation can make b refuse.
func TestGrantsCacheInvalidatedAcrossReplicas(t *testing.T) {
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	args := []string{"--db", "sqlite://" + t.TempDir() + "/shared.db", "--bus", testenv.NATSURL(),
		"--api.grants-cache-ttl", "1m", "--api.app-cache-ttl", "1m",
		"--api.project-rps", "0", "--api.default-read-rps", "0", "--api.default-write-rps", "0"}
	key := map[string]string{"TIANSHU_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	a := apptest.Start(t, apptest.Options{Args: args, Env: key})
	b := apptest.Start(t, apptest.Options{Args: args, Env: key})
	hc := &http.Client{Timeout: 30 * time.Second}
	admin := tc3.Signer{SecretID: apptest.AdminSecretID, SecretKey: apptest.AdminSecretKey}
	must := func(e *apptest.Env, action string, params map[string]any) map[string]any {
		t.Helper()
		r, code := signedCallAs(hc, e.Endpoint, admin, action, params)
		if code != "" {
			t.Fatalf("%s: %s", action, code)
		}
		return r
	}
	id := must(a, "CreateApp", map[string]any{"Name": "member", "Role": "viewer"})["AppId"].(string)
	k := must(a, "CreateAppKey", map[string]any{"AppId": id})
	member := tc3.Signer{SecretID: k["SecretId"].(string), SecretKey: k["SecretKey"].(string)}
	read := func() string {
		_, code := signedCallAs(hc, b.Endpoint, member, "DescribeApps", map[string]any{"Limit": 1})
		return code
	}
	if code := read(); code != "" { // b caches the member's grants
		t.Fatalf("the viewer's read on b: %s", code)
	}

	// The cache is real: the binding taken behind IAM's back (a raw write
	// to the store, announced to nobody) still grants on b.
	ctx := context.Background()
	if _, err := a.P.DB.Exec(ctx, "DELETE FROM role_bindings WHERE principal_id = ?", id); err != nil {
		t.Fatal(err)
	}
	if code := read(); code != "" {
		t.Fatalf("b refused at once a change nobody announced (%s): its grants are not cached", code)
	}
	if _, err := a.P.DB.Exec(ctx, "INSERT INTO role_bindings (principal_id, project_id, role, created_at) VALUES (?, 'default', 'viewer', 0)", id); err != nil {
		t.Fatal(err)
	}

	// The role revoked through a is refused on b, well before the TTL.
	must(a, "DeleteProjectMember", map[string]any{"ProjectId": "default", "PrincipalId": id, "Role": "viewer"})
	testenv.Eventually(t, 30*time.Second, "b to refuse the member whose role was revoked through a", func() bool {
		return strings.HasPrefix(read(), "AuthFailure.UnauthorizedOperation")
	})

	// And given back through a, granted on b again.
	must(a, "CreateProjectMember", map[string]any{"ProjectId": "default", "PrincipalId": id, "Role": "viewer"})
	testenv.Eventually(t, 30*time.Second, "b to grant the role given back through a", func() bool {
		return read() == ""
	})
}

// A session ended through one replica (its user disabled) is refused on
// the others at once, told over the bus: two platforms on one SQLite store
// and the real NATS, each trusting the sessions it looked up for a minute.
func TestSessionEndedAcrossReplicas(t *testing.T) {
	testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
	args := []string{"--db", "sqlite://" + t.TempDir() + "/shared.db", "--bus", testenv.NATSURL(),
		"--api.sessions.cache-ttl", "1m", "--api.sessions.idle-timeout", "10m"}
	key := map[string]string{"TIANSHU_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	a := apptest.Start(t, apptest.Options{Args: args, Env: key})
	b := apptest.Start(t, apptest.Options{Args: args, Env: key})
	admin := login(t, a.Endpoint, "admin", apptest.AdminPassword)
	id := admin.mustCall("CreateUser", map[string]any{"UserName": "leaver", "Password": "the leaver's phrase"})["UserId"].(string)
	u := login(t, b.Endpoint, "leaver", "the leaver's phrase")
	u.mustCall("DescribeMySessions", nil) // b caches the session

	// The cache is real: the session ended behind IAM's back (a raw
	// delete, announced to nobody) still works on b.
	if _, err := a.P.DB.Exec(context.Background(), "DELETE FROM sessions WHERE user_id = ?", id); err != nil {
		t.Fatal(err)
	}
	if _, code := u.call("DescribeMySessions", nil); code != "" {
		t.Fatalf("b refused at once a session ended behind its back (%s): its sessions are not cached", code)
	}
	admin.mustCall("ModifyUser", map[string]any{"UserId": id, "Status": "disabled"})
	testenv.Eventually(t, 30*time.Second, "b to refuse the session of the user disabled through a", func() bool {
		_, code := u.call("DescribeMySessions", nil)
		return strings.HasPrefix(code, "AuthFailure")
	})
}
