package appcenter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// clock is a settable time source, so tests move time instead of sleeping.
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

type env struct {
	db  *store.DB
	box *secrets.Box
	clk *clock
	s   *appcenter.Service
	reg *api.Registry
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	box, err := secrets.New(bytes.Repeat([]byte{1}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, box: box, clk: &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}}
	e.s = e.replica()
	e.reg = api.NewRegistry()
	appcenter.RegisterActions(e.reg, e.s)
	if _, err := iam.NewProjects(db, e.clk.now).Create(context.Background(), "prj-a", "A", ""); err != nil {
		t.Fatal(err)
	}
	return e
}

// replica returns another app center over the same store and clock, as a
// second gateway process would run.
func (e *env) replica() *appcenter.Service {
	return appcenter.New(e.db, e.box, slog.New(slog.DiscardHandler), e.clk.now)
}

func wantCode(t *testing.T, err error, code api.Code, msg string) {
	t.Helper()
	e, ok := api.AsError(err)
	if !ok {
		t.Fatalf("error %v; want %s", err, code)
	}
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Errorf("error %s %q; want %s %q", e.Code, e.Message, code, msg)
	}
}

func mustApp(t *testing.T, e *env, project, name, role string) *appcenter.App {
	t.Helper()
	a, err := e.s.CreateApp(context.Background(), project, name, "", role)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Millisecond) // distinct creation times order the lists
	return a
}

var (
	secretIDPattern  = regexp.MustCompile(`^AKID[A-Za-z0-9]{32}$`)
	secretKeyPattern = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
)

func TestAppsAndKeys(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)

		a, err := e.s.CreateApp(ctx, "", "cam", "lobby", "")
		if err != nil {
			t.Fatal(err)
		}
		if a.ProjectID != "default" || a.Role != api.RoleViewer || a.Status != "active" || !strings.HasPrefix(a.ID, "app-") {
			t.Errorf("CreateApp defaults: %+v", a)
		}
		_, err = e.s.CreateApp(ctx, "prj-nowhere", "cam", "", "")
		wantCode(t, err, api.ResourceNotFound, `ProjectId "prj-nowhere" not found`)

		id1, key1, err := e.s.CreateKey(ctx, a.ID, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if !secretIDPattern.MatchString(id1) || !secretKeyPattern.MatchString(key1) {
			t.Errorf("generated pair %q / %q", id1, key1)
		}
		// The SecretKey is stored sealed, never in clear.
		var enc string
		if err := db.QueryRow(ctx, "SELECT secret_key_enc FROM app_keys WHERE secret_id = ?", id1).Scan(&enc); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(enc, key1) {
			t.Fatal("SecretKey stored in clear")
		}
		if pt, err := e.box.Open(enc); err != nil || pt != key1 {
			t.Errorf("stored key opens to %q, %v", pt, err)
		}

		// Two pairs, and a disabled one still counts.
		e.clk.add(time.Millisecond) // Keys lists oldest first
		id2, _, err := e.s.CreateKey(ctx, a.ID, "AKIDfixed", "fixed-secret")
		if err != nil || id2 != "AKIDfixed" {
			t.Fatalf("fixed pair: %q, %v", id2, err)
		}
		if err := e.s.SetKeyStatus(ctx, a.ID, id2, "disabled"); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.s.CreateKey(ctx, a.ID, "", "")
		wantCode(t, err, api.LimitExceeded, "AppId: app "+a.ID+" already has 2 key pairs; delete one first")

		keys, err := e.s.Keys(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 || keys[0].SecretID != id1 || keys[0].Status != "active" || keys[1].SecretID != id2 || keys[1].Status != "disabled" {
			t.Errorf("Keys = %+v", keys)
		}
		apps, total, err := e.s.ListApps(ctx, "", []string{a.ID}, nil, nil, 0, 10)
		if err != nil || total != 1 || apps[0].ActiveKeys != 1 {
			t.Errorf("ListApps: %+v, total %d, %v; want one app with 1 active key", apps, total, err)
		}

		// Deleting frees a slot; a taken SecretId is refused.
		if err := e.s.DeleteKey(ctx, a.ID, id2); err != nil {
			t.Fatal(err)
		}
		other := mustApp(t, e, "default", "other", "")
		_, _, err = e.s.CreateKey(ctx, other.ID, id1, "")
		wantCode(t, err, api.ResourceInUse, "SecretId: "+id1+" already exists")
		if _, _, err := e.s.CreateKey(ctx, a.ID, "", ""); err != nil {
			t.Fatalf("key after deleting one: %v", err)
		}

		// Unknown things are ResourceNotFound naming the field.
		_, _, err = e.s.CreateKey(ctx, "app-none", "", "")
		wantCode(t, err, api.ResourceNotFound, `AppId "app-none" not found`)
		wantCode(t, e.s.DeleteKey(ctx, other.ID, id1), api.ResourceNotFound, `SecretId "`+id1+`" not found`)
		wantCode(t, e.s.SetKeyStatus(ctx, a.ID, "AKIDnone", "disabled"), api.ResourceNotFound, `SecretId "AKIDnone" not found`)
		_, err = e.s.Keys(ctx, "app-none")
		wantCode(t, err, api.ResourceNotFound, `AppId "app-none" not found`)
		wantCode(t, e.s.ModifyApp(ctx, "app-none", appcenter.AppChange{}), api.ResourceNotFound, `AppId "app-none" not found`)
		wantCode(t, e.s.DeleteApp(ctx, "app-none"), api.ResourceNotFound, `AppId "app-none" not found`)

		// Setting a key's status to the one it has is not an error (MySQL
		// reports no affected row for it).
		if err := e.s.SetKeyStatus(ctx, a.ID, id1, "active"); err != nil {
			t.Errorf("re-activating an active key: %v", err)
		}
	})
}

func TestResolveKey(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	ctx := context.Background()
	e := newEnv(t, db)
	a := mustApp(t, e, "prj-a", "cam", api.RoleAdmin)
	read, write, burst := 5.0, 1.5, 7
	if err := e.s.ModifyApp(ctx, a.ID, appcenter.AppChange{ReadRPS: &read, WriteRPS: &write, Burst: &burst}); err != nil {
		t.Fatal(err)
	}
	id, key, err := e.s.CreateKey(ctx, a.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.s.ResolveKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := api.Credential{SecretKey: key, AppID: a.ID, ProjectID: "prj-a", Role: api.RoleAdmin, ReadRPS: 5, WriteRPS: 1.5, Burst: 7}
	if c != want {
		t.Errorf("ResolveKey = %+v\nwant %+v", c, want)
	}
	if _, err := e.s.ResolveKey(ctx, "AKIDnobody"); !errors.Is(err, api.ErrKeyNotFound) {
		t.Errorf("unknown SecretId: %v; want ErrKeyNotFound", err)
	}

	// Changes made through this replica apply at once.
	viewer := api.RoleViewer
	if err := e.s.ModifyApp(ctx, a.ID, appcenter.AppChange{Role: &viewer}); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.s.ResolveKey(ctx, id); c.Role != api.RoleViewer {
		t.Errorf("role after ModifyApp = %q", c.Role)
	}
	if err := e.s.SetKeyStatus(ctx, a.ID, id, "disabled"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.ResolveKey(ctx, id); !errors.Is(err, api.ErrKeyNotFound) {
		t.Errorf("disabled key: %v; want ErrKeyNotFound", err)
	}
	if err := e.s.SetKeyStatus(ctx, a.ID, id, "active"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.ResolveKey(ctx, id); err != nil {
		t.Errorf("re-enabled key: %v", err)
	}

	// Another replica that is not told over the bus keeps its cached
	// credential at most the cache TTL (DefaultCacheTTL, 2 s) after this
	// one deletes the key.
	other := e.replica()
	if _, err := other.ResolveKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteKey(ctx, a.ID, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.ResolveKey(ctx, id); !errors.Is(err, api.ErrKeyNotFound) {
		t.Errorf("deleted key on the deleting replica: %v", err)
	}
	if _, err := other.ResolveKey(ctx, id); err != nil {
		t.Errorf("other replica within the cache TTL: %v; want the cached credential", err)
	}
	e.clk.add(2 * time.Second)
	if _, err := other.ResolveKey(ctx, id); !errors.Is(err, api.ErrKeyNotFound) {
		t.Errorf("other replica after the cache TTL: %v; want ErrKeyNotFound", err)
	}

	// Deleting an app deletes its keys.
	id2, _, err := e.s.CreateKey(ctx, a.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteApp(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.ResolveKey(ctx, id2); !errors.Is(err, api.ErrKeyNotFound) {
		t.Errorf("key of a deleted app: %v", err)
	}
	var n int
	if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM app_keys WHERE app_id = ?", a.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d keys left of the deleted app (%v)", n, err)
	}
}

func TestListApps(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, storetest.Open(t, "sqlite"))
	a1 := mustApp(t, e, "default", "one", api.RoleAdmin)
	a2 := mustApp(t, e, "default", "two", api.RoleViewer)
	a3 := mustApp(t, e, "prj-a", "three", api.RoleViewer)
	ids := func(apps []appcenter.App) []string {
		var out []string
		for _, a := range apps {
			out = append(out, a.ID)
		}
		return out
	}
	for _, c := range []struct {
		name                string
		project             string
		appIDs, names, role []string
		offset, limit       int
		want                []string
		total               int
	}{
		{name: "all, newest first", limit: 10, want: []string{a3.ID, a2.ID, a1.ID}, total: 3},
		{name: "project", project: "default", limit: 10, want: []string{a2.ID, a1.ID}, total: 2},
		{name: "ids", appIDs: []string{a1.ID, a3.ID}, limit: 10, want: []string{a3.ID, a1.ID}, total: 2},
		{name: "names", names: []string{"two"}, limit: 10, want: []string{a2.ID}, total: 1},
		{name: "roles", role: []string{api.RoleViewer}, project: "prj-a", limit: 10, want: []string{a3.ID}, total: 1},
		{name: "page", offset: 1, limit: 1, want: []string{a2.ID}, total: 3},
		{name: "past the end", offset: 5, limit: 10, want: nil, total: 3},
	} {
		apps, total, err := e.s.ListApps(ctx, c.project, c.appIDs, c.names, c.role, c.offset, c.limit)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := ids(apps); total != c.total || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %v (total %d), want %v (total %d)", c.name, got, total, c.want, c.total)
		}
	}
}

// call runs an action in-process as the gateway would after
// authentication, and decodes its response into out.
func call(t *testing.T, e *env, c *api.Caller, action string, req any, out any) error {
	t.Helper()
	a, ok := e.reg.Lookup(action)
	if !ok {
		t.Fatalf("no action %s", action)
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Call(context.Background(), c, body)
	if err != nil {
		return err
	}
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

func TestActionsAndProjectScoping(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"))
	root := &api.Caller{AppID: "app-root", ProjectID: "default", Role: api.RoleAdmin}

	var created appcenter.CreateAppResponse
	if err := call(t, e, root, "CreateApp", map[string]any{"ProjectId": "prj-a", "Name": "a-admin", "Role": "admin"}, &created); err != nil {
		t.Fatal(err)
	}
	var k appcenter.CreateAppKeyResponse
	if err := call(t, e, root, "CreateAppKey", map[string]any{"AppId": created.AppId}, &k); err != nil {
		t.Fatal(err)
	}
	if k.AppId != created.AppId || !secretIDPattern.MatchString(k.SecretId) || !secretKeyPattern.MatchString(k.SecretKey) {
		t.Errorf("CreateAppKey = %+v", k)
	}
	defaultApp := mustApp(t, e, "default", "d", api.RoleViewer)

	// The app of prj-a, calling with its own key.
	cred, err := e.s.ResolveKey(context.Background(), k.SecretId)
	if err != nil {
		t.Fatal(err)
	}
	a := &api.Caller{AppID: cred.AppID, ProjectID: cred.ProjectID, Role: cred.Role, SecretID: k.SecretId}

	// It sees and creates apps of its own project only.
	var list appcenter.DescribeAppsResponse
	if err := call(t, e, a, "DescribeApps", map[string]any{}, &list); err != nil {
		t.Fatal(err)
	}
	if list.TotalCount != 1 || list.AppSet[0].AppId != created.AppId || list.AppSet[0].ActiveKeyCount != 1 || list.AppSet[0].ProjectId != "prj-a" {
		t.Errorf("DescribeApps in prj-a = %+v", list)
	}
	err = call(t, e, a, "DescribeApps", map[string]any{"ProjectId": "default"}, nil)
	wantCode(t, err, api.AuthFailureUnauthorizedOperation, "ProjectId: app "+a.AppID+" belongs to project prj-a and cannot act on project default")
	var mine appcenter.CreateAppResponse
	if err := call(t, e, a, "CreateApp", map[string]any{"Name": "child"}, &mine); err != nil {
		t.Fatal(err)
	}
	if apps, _, _ := e.s.ListApps(context.Background(), "", []string{mine.AppId}, nil, nil, 0, 1); len(apps) != 1 || apps[0].ProjectID != "prj-a" {
		t.Errorf("app created without ProjectId landed in %+v", apps)
	}
	// Apps of other projects are indistinguishable from missing ones.
	for _, action := range []string{"DescribeAppKeys", "CreateAppKey", "ModifyApp", "DeleteApp"} {
		err := call(t, e, a, action, map[string]any{"AppId": defaultApp.ID}, nil)
		wantCode(t, err, api.ResourceNotFound, `AppId "`+defaultApp.ID+`" not found`)
	}
	err = call(t, e, a, "DeleteAppKey", map[string]any{"AppId": defaultApp.ID, "SecretId": "AKIDx"}, nil)
	wantCode(t, err, api.ResourceNotFound, `AppId "`+defaultApp.ID+`" not found`)

	// The SecretKey is shown once: DescribeAppKeys lists ids and status only.
	var keys appcenter.DescribeAppKeysResponse
	if err := call(t, e, a, "DescribeAppKeys", map[string]any{"AppId": created.AppId}, &keys); err != nil {
		t.Fatal(err)
	}
	if keys.TotalCount != 1 || keys.KeySet[0].SecretId != k.SecretId || keys.KeySet[0].Status != "active" {
		t.Errorf("DescribeAppKeys = %+v", keys)
	}
	raw, _ := json.Marshal(keys)
	if strings.Contains(string(raw), k.SecretKey) {
		t.Fatalf("DescribeAppKeys shows the SecretKey: %s", raw)
	}

	// An app cannot disable the key that signs, nor delete itself.
	err = call(t, e, a, "DisableAppKey", map[string]any{"AppId": created.AppId, "SecretId": k.SecretId}, nil)
	wantCode(t, err, api.ResourceInUse, "SecretId: "+k.SecretId+" signs this request; disable it with another key")
	err = call(t, e, a, "DeleteApp", map[string]any{"AppId": created.AppId}, nil)
	wantCode(t, err, api.ResourceInUse, "AppId: "+created.AppId+" signs this request; delete it with another admin app's key")

	// At most two keys through the API too.
	if err := call(t, e, a, "CreateAppKey", map[string]any{"AppId": created.AppId}, nil); err != nil {
		t.Fatal(err)
	}
	err = call(t, e, a, "CreateAppKey", map[string]any{"AppId": created.AppId}, nil)
	wantCode(t, err, api.LimitExceeded, "")

	// ModifyApp changes only what it names.
	if err := call(t, e, root, "ModifyApp", map[string]any{"AppId": mine.AppId, "Description": "new", "RateLimit": map[string]any{"ReadRps": 2.5}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := call(t, e, root, "DescribeApps", map[string]any{"AppIds": []string{mine.AppId}}, &list); err != nil {
		t.Fatal(err)
	}
	if got := list.AppSet[0]; got.Name != "child" || got.Description != "new" || got.Role != "viewer" || got.RateLimit != (appcenter.RateLimit{ReadRps: 2.5}) {
		t.Errorf("after ModifyApp: %+v", got)
	}
	err = call(t, e, root, "ModifyApp", map[string]any{"AppId": mine.AppId, "RateLimit": map[string]any{"Burst": -1}}, nil)
	wantCode(t, err, api.InvalidParameterValue, "RateLimit.Burst: -1 is less than the minimum 0")

	// Filters.
	if err := call(t, e, root, "DescribeApps", map[string]any{"Filters": []map[string]any{{"Name": "Role", "Values": []string{"admin"}}}}, &list); err != nil {
		t.Fatal(err)
	}
	if list.TotalCount != 1 || list.AppSet[0].AppId != created.AppId {
		t.Errorf("Role filter = %+v", list)
	}
	err = call(t, e, root, "DescribeApps", map[string]any{"Filters": []map[string]any{{"Name": "Status", "Values": []string{"x"}}}}, nil)
	wantCode(t, err, api.InvalidParameterValue, `Filters[0].Name: unknown filter "Status"; known: Name, Role`)

	// Deleting a key through the API, then the app by the platform admin.
	if err := call(t, e, root, "DeleteAppKey", map[string]any{"AppId": created.AppId, "SecretId": k.SecretId}, nil); err != nil {
		t.Fatal(err)
	}
	if err := call(t, e, root, "DeleteApp", map[string]any{"AppId": created.AppId}, nil); err != nil {
		t.Fatal(err)
	}
	err = call(t, e, root, "DescribeAppKeys", map[string]any{"AppId": created.AppId}, nil)
	wantCode(t, err, api.ResourceNotFound, "")
}

// ModifyApp's Name is `validate:"min=1,max=64"`: a rename to the empty
// string must be refused, not stored.
func TestModifyAppRefusesEmptyName(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"))
	root := &api.Caller{AppID: "app-root", ProjectID: "default", Role: api.RoleAdmin}
	a := mustApp(t, e, "default", "cam", api.RoleViewer)
	err := call(t, e, root, "ModifyApp", map[string]any{"AppId": a.ID, "Name": ""}, nil)
	wantCode(t, err, api.InvalidParameterValue, "Name: 0 characters; at least 1 required")
	apps, _, _ := e.s.ListApps(context.Background(), "", []string{a.ID}, nil, nil, 0, 1)
	if len(apps) != 1 || apps[0].Name != "cam" {
		t.Errorf("app after the refused rename: %+v", apps)
	}
}

// Rate limits are the platform's to set (issue #26, part 6): a project
// admin may rename its apps but not lift their limits.
func TestRateLimitsOnlyByPlatformAdmin(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"))
	root := &api.Caller{AppID: "app-root", ProjectID: "default", Role: api.RoleAdmin}
	admin := mustApp(t, e, "prj-a", "a-admin", api.RoleAdmin)
	child := mustApp(t, e, "prj-a", "child", api.RoleViewer)
	a := &api.Caller{AppID: admin.ID, ProjectID: "prj-a", Role: api.RoleAdmin}

	for _, id := range []string{admin.ID, child.ID} {
		err := call(t, e, a, "ModifyApp", map[string]any{"AppId": id, "RateLimit": map[string]any{"ReadRps": 1e6, "WriteRps": 1e6, "Burst": 1e7}}, nil)
		wantCode(t, err, api.AuthFailureUnauthorizedOperation, "RateLimit: only a platform admin sets an app's rate limits")
	}
	if err := call(t, e, a, "ModifyApp", map[string]any{"AppId": child.ID, "Description": "fine"}, nil); err != nil {
		t.Errorf("project admin's ModifyApp without RateLimit: %v", err)
	}
	if err := call(t, e, root, "ModifyApp", map[string]any{"AppId": child.ID, "RateLimit": map[string]any{"ReadRps": 5}}, nil); err != nil {
		t.Fatal(err)
	}
	apps, _, _ := e.s.ListApps(context.Background(), "", []string{admin.ID, child.ID}, nil, nil, 0, 10)
	for _, x := range apps {
		want := 0.0
		if x.ID == child.ID {
			want = 5
		}
		if x.ReadRPS != want || x.WriteRPS != 0 || x.Burst != 0 {
			t.Errorf("app %s limits %g/%g/%d after the refused changes", x.Name, x.ReadRPS, x.WriteRPS, x.Burst)
		}
	}
}

// quotas is a fixed table of project quotas.
type quotas map[string]int

func (q quotas) Quota(_ context.Context, projectID, kind string) (int, error) {
	return q[projectID+"/"+kind], nil
}

// A project holds at most its quota of apps (issue #26, part 6): admin
// apps cannot multiply a project's allowance without bound.
func TestCreateAppWithinProjectQuota(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"))
	e.s.UseQuotas(quotas{"prj-a/apps": 2})
	a := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAdmin}
	for i := range 2 {
		if err := call(t, e, a, "CreateApp", map[string]any{"Name": fmt.Sprintf("a%d", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	err := call(t, e, a, "CreateApp", map[string]any{"Name": "a2"}, nil)
	wantCode(t, err, api.LimitExceeded, "project prj-a holds 2 apps, its quota of apps; a platform admin raises it with ModifyProjectQuota")
	// Other projects are not counted against it (default: no quota here).
	if _, err := e.s.CreateApp(context.Background(), "default", "d", "", api.RoleViewer); err != nil {
		t.Fatal(err)
	}
	// Deleting one makes room.
	apps, _, _ := e.s.ListApps(context.Background(), "prj-a", nil, nil, nil, 0, 10)
	if err := e.s.DeleteApp(context.Background(), apps[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := call(t, e, a, "CreateApp", map[string]any{"Name": "a2"}, nil); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}
