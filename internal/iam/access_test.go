package iam_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

type thingReq struct {
	ProjectId string `json:"ProjectId"`
	DeviceId  string `json:"DeviceId"`
	Group     string `json:"Group"`
}

// accessRegistry has device actions that answer as the device center
// does (ResourceNotFound for a device the caller does not reach), beside
// the role and membership actions.
func accessRegistry(a *iam.Access) *api.Registry {
	reg := api.NewRegistry()
	h := func(_ context.Context, c *api.Caller, r *thingReq) (*thingReq, error) {
		if r.DeviceId != "" && !c.SeesDevice(r.ProjectId, r.DeviceId, r.Group) {
			return nil, api.NotFound("DeviceId", r.DeviceId)
		}
		return r, nil
	}
	api.Register(reg, api.Spec{Name: "DescribeDevices", Summary: "s", Permission: api.Permission{Resource: "device", Access: api.Read}}, h)
	api.Register(reg, api.Spec{Name: "ModifyDevice", Summary: "s", Permission: api.Permission{Resource: "device", Access: api.Write}}, h)
	api.Register(reg, api.Spec{Name: "CreateFlow", Summary: "s", Permission: api.Permission{Resource: "flow", Access: api.Write}}, h)
	iam.RegisterAccessActions(reg, a)
	a.UseRegistry(reg)
	return reg
}

// TestAccess runs roles, bindings and the grants they resolve to on every
// store engine: a member of project A naming project B, a viewer calling a
// write, a role narrowed to one site's cameras.
func TestAccess(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := newClock()
		a := iam.NewAccess(db, clk.now)
		reg := accessRegistry(a)
		for _, p := range []string{"prj-a", "prj-b"} {
			exec(t, db, "INSERT INTO projects (id, name, description, created_at, updated_at) VALUES (?, ?, '', 0, 0)", p, p)
		}
		for _, id := range []string{"app-owner", "app-x", "app-cam"} {
			exec(t, db, "INSERT INTO apps (id, project_id, name, description, role, status, created_at, updated_at) VALUES (?, 'prj-a', ?, '', 'viewer', 'active', 0, 0)", id, id)
		}
		exec(t, db, "INSERT INTO users (id, name, password_hash, role, status, created_at, updated_at) VALUES ('usr-root', 'root', 'x', 'admin', 'active', 0, 0)")
		if err := a.SetAppRole(ctx, "app-owner", "prj-a", api.RoleOwner); err != nil {
			t.Fatal(err)
		}
		caller := func(app string) *api.Caller {
			c := &api.Caller{AppID: app, ProjectID: "prj-a"}
			g, err := a.Grants(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			c.SetGrants(g)
			return c
		}
		call := func(c *api.Caller, action, body string) (any, error) {
			return callAction(reg, c, action, body)
		}
		owner := caller("app-owner")

		// x: viewer of A, operator of B.
		for _, b := range [][2]string{{"prj-a", api.RoleViewer}, {"prj-b", api.RoleOperator}} {
			if _, err := call(owner, "CreateProjectMember", fmt.Sprintf(`{"ProjectId": %q, "PrincipalId": "app-x", "Role": %q}`, b[0], b[1])); err != nil {
				if b[0] == "prj-b" {
					wantCode(t, err, api.AuthFailureUnauthorizedOperation, `ProjectId: app:app-owner holds no role in project "prj-b" that grants CreateProjectMember`)
					if err := a.SetRoles(ctx, "app-x", "prj-b", []string{b[1]}); err != nil {
						t.Fatal(err)
					}
					continue
				}
				t.Fatal(err)
			}
		}
		x := caller("app-x")
		_, err := call(x, "CreateFlow", `{"ProjectId": "prj-a"}`)
		wantCode(t, err, api.AuthFailureUnauthorizedOperation, `ProjectId: app:app-x holds no role in project "prj-a" that grants CreateFlow`)
		if _, err := call(x, "CreateFlow", `{"ProjectId": "prj-b"}`); err != nil {
			t.Errorf("operator of prj-b: %v", err)
		}
		_, err = call(x, "CreateRole", `{"ProjectId": "prj-b", "Name": "r", "Actions": ["*"]}`)
		wantCode(t, err, api.AuthFailureUnauthorizedOperation, "")

		// A custom role narrowed to one site's cameras.
		r, err := call(owner, "CreateRole", `{"ProjectId": "prj-a", "Name": "site-a-cameras", "Actions": ["*Device*"], "DeviceGroups": ["site-a"], "DeviceIds": ["dev-9"]}`)
		if err != nil {
			t.Fatal(err)
		}
		roleID := r.(*iam.CreateRoleResponse).RoleId
		_, err = call(owner, "CreateRole", `{"ProjectId": "prj-a", "Name": "bad", "Actions": ["*Devise*"]}`)
		wantCode(t, err, api.InvalidParameterValue, `Actions[0]: "*Devise*" matches no action a role may grant`)
		_, err = call(owner, "CreateRole", `{"ProjectId": "prj-a", "Name": "viewer", "Actions": ["*"]}`)
		wantCode(t, err, api.ResourceInUse, `Name: "viewer" is a built-in role`)
		if _, err := call(owner, "CreateProjectMember", `{"ProjectId": "prj-a", "PrincipalId": "app-cam", "Role": "site-a-cameras"}`); err != nil {
			t.Fatal(err)
		}
		_, err = call(owner, "CreateProjectMember", `{"ProjectId": "prj-a", "PrincipalId": "app-nope", "Role": "viewer"}`)
		wantCode(t, err, api.ResourceNotFound, "")
		_, err = call(owner, "CreateProjectMember", `{"ProjectId": "prj-a", "PrincipalId": "app-cam", "Role": "nope"}`)
		wantCode(t, err, api.InvalidParameterValue, "")
		// A person is added by user name, named in the member list by it.
		_, err = call(owner, "CreateProjectMember", `{"ProjectId": "prj-b", "UserName": "nobody", "Role": "viewer"}`)
		wantCode(t, err, api.AuthFailureUnauthorizedOperation, "")
		_, err = call(owner, "CreateProjectMember", `{"ProjectId": "prj-a", "UserName": "nobody", "Role": "viewer"}`)
		wantCode(t, err, api.ResourceNotFound, "")
		_, err = call(owner, "CreateProjectMember", `{"ProjectId": "prj-a", "UserName": "root", "PrincipalId": "usr-root", "Role": "viewer"}`)
		wantCode(t, err, api.InvalidParameterValue, "UserName: give PrincipalId or UserName, not both")
		_, err = call(owner, "CreateProjectMember", `{"ProjectId": "prj-a", "Role": "viewer"}`)
		wantCode(t, err, api.MissingParameter, "")
		if r, err := call(owner, "CreateProjectMember", `{"ProjectId": "prj-a", "UserName": "root", "Role": "auditor"}`); err != nil {
			t.Fatal(err)
		} else if id := r.(*iam.CreateProjectMemberResponse).PrincipalId; id != "usr-root" {
			t.Errorf("added %s, want usr-root", id)
		}
		if r, err := call(owner, "DescribeProjectMembers", `{"ProjectId": "prj-a", "PrincipalIds": ["usr-root"]}`); err != nil {
			t.Fatal(err)
		} else if got := fmt.Sprint(r.(*iam.DescribeProjectMembersResponse).MemberSet); got != "[{prj-a usr-root root [auditor]}]" {
			t.Errorf("member by name = %s", got)
		}
		if _, err := call(owner, "DeleteProjectMember", `{"ProjectId": "prj-a", "PrincipalId": "usr-root"}`); err != nil {
			t.Fatal(err)
		}
		// app-cam's apps.role was never made a binding (SetAppRole), so the
		// custom role is its one binding.
		cam := caller("app-cam")
		for _, c := range []struct {
			body string
			code api.Code
		}{{`{"ProjectId": "prj-a", "DeviceId": "dev-1", "Group": "site-a"}`, ""}, {`{"ProjectId": "prj-a", "DeviceId": "dev-9", "Group": "site-b"}`, ""},
			{`{"ProjectId": "prj-a", "DeviceId": "dev-2", "Group": "site-b"}`, api.ResourceNotFound}, {`{"ProjectId": "prj-b", "DeviceId": "dev-1", "Group": "site-a"}`, api.AuthFailureUnauthorizedOperation}} {
			_, err := call(cam, "ModifyDevice", c.body)
			if c.code == "" && err != nil {
				t.Errorf("ModifyDevice %s: %v", c.body, err)
			} else if c.code != "" {
				wantCode(t, err, c.code, "")
			}
		}
		_, err = call(cam, "CreateFlow", `{}`)
		wantCode(t, err, api.AuthFailureUnauthorizedOperation, "")

		// Changing the role applies at once on this replica.
		if _, err := call(owner, "ModifyRole", fmt.Sprintf(`{"RoleId": %q, "DeviceGroups": ["site-b"], "DeviceIds": []}`, roleID)); err != nil {
			t.Fatal(err)
		}
		cam = caller("app-cam")
		if _, err := call(cam, "ModifyDevice", `{"ProjectId": "prj-a", "DeviceId": "dev-2", "Group": "site-b"}`); err != nil {
			t.Errorf("after ModifyRole: %v", err)
		}
		// Roles of other projects are not found; bound roles are not deleted.
		_, err = call(x, "DeleteRole", fmt.Sprintf(`{"RoleId": %q}`, roleID))
		wantCode(t, err, api.ResourceNotFound, "")
		_, err = call(owner, "DeleteRole", fmt.Sprintf(`{"RoleId": %q}`, roleID))
		wantCode(t, err, api.ResourceInUse, "")

		// Members, owners and the admin of the default project.
		var ms *iam.DescribeProjectMembersResponse
		if r, err := call(owner, "DescribeProjectMembers", `{"ProjectId": "prj-a"}`); err != nil {
			t.Fatal(err)
		} else {
			ms = r.(*iam.DescribeProjectMembersResponse)
		}
		if got := fmt.Sprint(ms.TotalCount, ms.MemberSet); got != "3 [{prj-a app-cam app-cam [site-a-cameras]} {prj-a app-owner app-owner [owner]} {prj-a app-x app-x [viewer]}]" {
			t.Errorf("members = %s", got)
		}
		if err := a.SetRoles(ctx, "app-x", "prj-a", []string{api.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		x = caller("app-x")
		_, err = call(x, "ModifyProjectMember", `{"ProjectId": "prj-a", "PrincipalId": "app-cam", "Roles": ["owner"]}`)
		wantCode(t, err, api.AuthFailureUnauthorizedOperation, "Role: only an owner of project prj-a binds or unbinds owners")
		_, err = call(x, "DeleteProjectMember", `{"ProjectId": "prj-a", "PrincipalId": "app-owner"}`)
		wantCode(t, err, api.AuthFailureUnauthorizedOperation, "")
		if _, err := call(x, "DeleteProjectMember", `{"ProjectId": "prj-a", "PrincipalId": "app-cam", "Role": "site-a-cameras"}`); err != nil {
			t.Fatal(err)
		}
		if _, err := call(owner, "DeleteRole", fmt.Sprintf(`{"RoleId": %q}`, roleID)); err != nil {
			t.Errorf("DeleteRole after its member left: %v", err)
		}
		if x.PlatformAdmin() {
			t.Error("an admin of prj-a is no platform admin")
		}
		if err := a.SetRoles(ctx, "app-x", "default", []string{api.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		if !caller("app-x").PlatformAdmin() {
			t.Error("an admin of the default project is a platform admin")
		}
		root := &api.Caller{UserID: "usr-root"}
		if g, err := a.Grants(ctx, root); err != nil || !g.PlatformAdmin() {
			t.Errorf("a user with account role admin: %v, %v", g, err)
		}

		// Another replica's change is seen within the TTL.
		exec(t, db, "DELETE FROM role_bindings WHERE principal_id = 'app-x'")
		if g, _ := a.Grants(ctx, &api.Caller{AppID: "app-x"}); !g.PlatformAdmin() {
			t.Error("cached grants expired early")
		}
		clk.add(iam.DefaultGrantsTTL + time.Millisecond)
		if g, _ := a.Grants(ctx, &api.Caller{AppID: "app-x"}); g.PlatformAdmin() || len(g.Projects()) != 0 {
			t.Errorf("after the TTL: %v", g.Projects())
		}

		// An account role changed through the user store is forgotten at
		// once: grants hold who is a platform admin.
		users := iam.NewUsers(db, clk.now)
		users.OnRoleChange(a.Changed)
		if g, _ := a.Grants(ctx, root); !g.PlatformAdmin() { // cached anew
			t.Fatal("root is no platform admin")
		}
		viewer := api.RoleViewer
		if err := users.Modify(ctx, "usr-root", iam.UserChange{Role: &viewer}); err != nil {
			t.Fatal(err)
		}
		if g, _ := a.Grants(ctx, root); g.PlatformAdmin() {
			t.Error("a user demoted from admin is still a platform admin")
		}
	})
}

// BenchmarkGrantsCached measures what a call pays to get its caller's
// grants from the cache and check them, for a principal bound to 1,000
// custom roles (10 in each of 100 projects) holding 10,000 device grants;
// the baseline is the pre-project-roles check on the caller's Role alone,
// measured in the same run.
func BenchmarkGrantsCached(b *testing.B) {
	ctx := context.Background()
	db := storetest.Open(b, "sqlite")
	a := iam.NewAccess(db, nil)
	reg := accessRegistry(a)
	err := db.InTx(ctx, func(tx *store.Tx) error {
		for i := range 1000 {
			p := fmt.Sprintf("prj-%d", i%100)
			if i < 100 {
				if _, err := tx.Exec(ctx, "INSERT INTO projects (id, name, description, created_at, updated_at) VALUES (?, ?, '', 0, 0)", p, p); err != nil {
					return err
				}
			}
			devs, _ := json.Marshal(map[string][]string{"DeviceIds": {fmt.Sprint("dev-", i, "-0"), fmt.Sprint("dev-", i, "-1"), fmt.Sprint("dev-", i, "-2"),
				fmt.Sprint("dev-", i, "-3"), fmt.Sprint("dev-", i, "-4"), fmt.Sprint("dev-", i, "-5"), fmt.Sprint("dev-", i, "-6"), fmt.Sprint("dev-", i, "-7"),
				fmt.Sprint("dev-", i, "-8"), fmt.Sprint("dev-", i, "-9")}})
			if _, err := tx.Exec(ctx, `INSERT INTO roles (id, project_id, name, description, actions, scopes, created_at, updated_at)
				VALUES (?, ?, ?, '', '["Describe*","ModifyDevice"]', ?, 0, 0)`, fmt.Sprint("role-", i), p, fmt.Sprint("r", i), string(devs)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO role_bindings (principal_id, project_id, role, created_at) VALUES ('app-x', ?, ?, 0)", p, fmt.Sprint("r", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	act, _ := reg.Lookup("ModifyDevice")
	c := &api.Caller{AppID: "app-x", ProjectID: "prj-7"}
	if g, err := a.Grants(ctx, c); err != nil || len(g.Projects()) != 100 {
		b.Fatalf("grants: %v", err)
	}
	legacy := &api.Caller{AppID: "app-x", ProjectID: "prj-7", Role: api.RoleOperator}
	var base float64
	b.Run("baseline", func(b *testing.B) {
		for range b.N {
			if !legacy.Allowed(act.Permission) || !legacy.MayRunIn(act, "prj-7") {
				b.Fatal("refused")
			}
		}
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			g, err := a.Grants(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			c.SetGrants(g)
			if !c.MayRun(act) || !c.MayRunIn(act, "prj-7") {
				b.Fatal("refused")
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(base, "baseline-ns/op")
		b.ReportMetric(ns/max(base, 0.01), "x-baseline")
	})
}
