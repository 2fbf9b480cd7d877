package app_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

var updatePermissions = flag.Bool("update-permissions", false, "rewrite testdata/permissions.txt from the built-in role definitions")

const permissionsFile = "testdata/permissions.txt"

// readPermissions reads the table of which built-in roles run each action
// in their own project: "Action role role ...", "Action -", or, for actions
// outside roles, "Action public" (no key or session needed) and
// "Action self" (a person's own account, any signed-in person).
func readPermissions(t *testing.T) map[string][]string {
	f, err := os.Open(permissionsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		if _, dup := out[fs[0]]; dup {
			t.Fatalf("%s: %s twice", permissionsFile, fs[0])
		}
		out[fs[0]] = []string{}
		for _, r := range fs[1:] {
			if r == "public" || r == "self" {
				out[fs[0]] = append(out[fs[0]], r)
				continue
			}
			if r != "-" {
				if !api.IsBuiltinRole(r) {
					t.Fatalf("%s: %s: no built-in role %q", permissionsFile, fs[0], r)
				}
				out[fs[0]] = append(out[fs[0]], r)
			}
		}
	}
	return out
}

func writePermissions(t *testing.T, reg *api.Registry) {
	var b strings.Builder
	b.WriteString("# Which built-in roles may run each action in the project they are bound to\n" +
		"# (- for none: platform admins only). TestDenyByDefault holds the running\n" +
		"# gateway to this table; a new action fails it until it is added here.\n" +
		"# go test ./internal/app -run TestDenyByDefault -update-permissions rewrites it\n" +
		"# from api.BuiltinAllows: review the diff.\n")
	for _, a := range reg.Actions() {
		var rs []string
		switch {
		case a.Public:
			fmt.Fprintf(&b, "%-34s public\n", a.Name)
			continue
		case a.Self:
			fmt.Fprintf(&b, "%-34s self\n", a.Name)
			continue
		}
		for _, r := range api.Roles() {
			if api.BuiltinAllows(r, a.Permission) {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			rs = []string{"-"}
		}
		fmt.Fprintf(&b, "%-34s %s\n", a.Name, strings.Join(rs, " "))
	}
	if err := os.WriteFile(permissionsFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDenyByDefault walks every registered action × every built-in role ×
// {own project, other project} and checks allow/deny against
// testdata/permissions.txt, through the gateway with keys of apps holding
// each role in project A, and through the grants the IAM center resolves
// for them (which Caller.Sees consults for resources named by id).
func TestDenyByDefault(t *testing.T) {
	reg := app.NewRegistry(nil)
	if *updatePermissions {
		writePermissions(t, reg)
	}
	table := readPermissions(t)
	for _, a := range reg.Actions() {
		rs, ok := table[a.Name]
		if !ok {
			t.Errorf("%s is not in %s: say which built-in roles may run it", a.Name, permissionsFile)
			continue
		}
		// Public and self actions are outside roles; the table says so,
		// and nothing else is.
		public := len(rs) == 1 && rs[0] == "public"
		self := len(rs) == 1 && rs[0] == "self"
		if public != a.Public || self != a.Self {
			t.Errorf("%s: table says %v, registry says Public %v, Self %v", a.Name, rs, a.Public, a.Self)
		}
	}
	for name := range table {
		if _, ok := reg.Lookup(name); !ok {
			t.Errorf("%s: %s is not a registered action", permissionsFile, name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	e := apptest.Start(t, apptest.Options{})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	own := admin.mustCall("CreateProject", map[string]any{"Name": "perm-own"})["ProjectId"].(string)
	other := admin.mustCall("CreateProject", map[string]any{"Name": "perm-other"})["ProjectId"].(string)
	ctx := context.Background()
	type member struct {
		appID string
		sdk   *sdk
		c     *api.Caller
	}
	members := map[string]member{}
	for _, r := range api.Roles() {
		id := admin.mustCall("CreateApp", map[string]any{"ProjectId": own, "Name": "perm-" + r, "Role": r})["AppId"].(string)
		k := admin.mustCall("CreateAppKey", map[string]any{"AppId": id})
		c := &api.Caller{AppID: id, ProjectID: own}
		g, err := e.P.Access.Grants(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		c.SetGrants(g)
		members[r] = member{id, newSDK(t, e.Host, k["SecretId"].(string), k["SecretKey"].(string)), c}
	}
	const denied = "AuthFailure.UnauthorizedOperation"
	for _, a := range e.P.Registry.Actions() {
		if a.Public || a.Self {
			// Login needs nothing; self actions refuse every app's key.
			for _, r := range api.Roles() {
				_, code := members[r].sdk.call(a.Name, map[string]any{"NoSuchField": 1})
				if a.Self && code != denied {
					t.Errorf("%s (own account) with an app's key as %s: %q, want %s", a.Name, r, code, denied)
				}
			}
			continue
		}
		allowed := map[string]bool{}
		for _, r := range table[a.Name] {
			allowed[r] = true
		}
		_, hasProject := a.Request.FieldByName("ProjectId")
		for _, r := range api.Roles() {
			m := members[r]
			// The decision for each project, as Sees and scopeProject take it.
			if got := m.c.MayRunIn(a, own); got != allowed[r] {
				t.Errorf("%s as %s in its own project: allowed %v, table says %v", a.Name, r, got, allowed[r])
			}
			if m.c.MayRunIn(a, other) {
				t.Errorf("%s as %s of another project: allowed", a.Name, r)
			}
			// Through the gateway. An unknown field fails after the
			// permission check and before any handler runs.
			_, code := m.sdk.call(a.Name, map[string]any{"NoSuchField": 1})
			if (code == denied) == allowed[r] {
				t.Errorf("%s as %s (no project named): %q, table allows: %v", a.Name, r, code, allowed[r])
			}
			if !hasProject {
				continue
			}
			// Naming a project is checked before the request is
			// validated, so that an empty request shows the decision.
			if _, code := m.sdk.call(a.Name, map[string]any{"ProjectId": other}); code != denied {
				t.Errorf("%s as %s naming another project: %q, want %s", a.Name, r, code, denied)
			}
			if !strings.HasPrefix(a.Name, "Describe") {
				continue // a write with only a ProjectId may do something
			}
			if _, code := m.sdk.call(a.Name, map[string]any{"ProjectId": own}); (code == denied) == allowed[r] {
				t.Errorf("%s as %s naming its own project: %q, table allows: %v", a.Name, r, code, allowed[r])
			}
		}
	}
}
