package iam_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apitest"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// DescribeAuditEvents without ProjectId shows an auditor of two projects
// the events of both, oldest first and paged as one list, and none of a
// project where they hold no role that grants it.
func TestAuditListUnion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		a := iam.NewAudit(db, newClock().now)
		reg := api.NewRegistry()
		iam.RegisterActions(reg, a)
		for i, p := range []string{apitest.ProjectA, apitest.ProjectB, apitest.ProjectC, apitest.ProjectC, apitest.ProjectB, apitest.ProjectA, apitest.ProjectB} {
			if err := a.Record(context.Background(), event(i, p)); err != nil {
				t.Fatal(err)
			}
		}
		apitest.CheckUnion(t, reg, apitest.Union{Action: "DescribeAuditEvents", Key: "Resource", Scope: api.Scope{DeviceIDs: []string{"dev-1"}},
			WantA: []string{"thing-0", "thing-5"}, WantB: []string{"thing-1", "thing-4", "thing-6"}})
		// The audit log is its readers' only: a viewer of prj-b (viewers
		// read all but audit) who audits default sees default's events.
		auditor, _ := reg.BuiltinRole(api.RoleAuditor)
		viewer, _ := reg.BuiltinRole(api.RoleViewer)
		c := &api.Caller{UserID: "usr-aud", UserName: "aud"}
		c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: apitest.ProjectA, Role: auditor}, {ProjectID: apitest.ProjectB, Role: viewer}}))
		if n, got, err := apitest.List(c, reg, "DescribeAuditEvents", "Resource", ""); err != nil || n != 2 || len(got) != 2 {
			t.Errorf("DescribeAuditEvents of an auditor of default, viewer of prj-b = %d %v, %v; want default's 2", n, got, err)
		}
	})
}

// DescribeProjectMembers without ProjectId lists the members of every
// project where the caller's roles grant it, one entry per project and
// principal, and pages that union.
func TestMemberListUnion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a, reg := unionAccess(t, db)
		for _, u := range []string{"usr-a1", "usr-a2", "usr-b2", "usr-c1"} {
			exec(t, db, "INSERT INTO users (id, name, password_hash, role, status, created_at, updated_at) VALUES (?, ?, 'x', 'user', 'active', 0, 0)", u, u)
		}
		exec(t, db, "INSERT INTO apps (id, project_id, name, description, role, status, created_at, updated_at) VALUES ('app-b3', 'prj-b', 'b3', '', 'viewer', 'active', 0, 0)")
		for _, m := range []struct{ project, principal, role string }{{apitest.ProjectA, "usr-a1", api.RoleViewer}, {apitest.ProjectA, "usr-a1", api.RoleOperator},
			{apitest.ProjectA, "usr-a2", api.RoleAdmin}, {apitest.ProjectB, "usr-a1", api.RoleViewer}, {apitest.ProjectB, "usr-b2", api.RoleViewer},
			{apitest.ProjectB, "app-b3", api.RoleViewer}, {apitest.ProjectC, "usr-c1", api.RoleViewer}} {
			if err := a.AddRole(ctx, m.principal, m.project, m.role); err != nil {
				t.Fatal(err)
			}
		}
		apitest.CheckUnion(t, reg, apitest.Union{Action: "DescribeProjectMembers", Key: "PrincipalId", Scope: api.Scope{TaskIDs: []string{"tsk-1"}},
			WantA: []string{"usr-a1", "usr-a2"}, WantB: []string{"app-b3", "usr-a1", "usr-b2"}})
	})
}

// DescribeRoles without ProjectId lists the built-in roles once (ProjectId
// "*", every project) and the custom roles of every project where the
// caller's roles grant it; with ProjectId, that project's.
func TestRoleListUnion(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	ctx := context.Background()
	a, reg := unionAccess(t, db)
	for _, r := range []struct{ project, name string }{{apitest.ProjectA, "a1"}, {apitest.ProjectB, "b1"}, {apitest.ProjectB, "b2"}, {apitest.ProjectC, "c1"}} {
		if err := a.CreateRole(ctx, &iam.CustomRole{ProjectID: r.project, Name: r.name, Actions: []string{"Describe*"}}); err != nil {
			t.Fatal(err)
		}
	}
	c := roleReader(t, reg)
	for _, x := range []struct{ body, project, want string }{
		{``, "*", "a1,b1,b2"},
		{`"ProjectId": "` + apitest.ProjectB + `"`, apitest.ProjectB, "b1,b2"},
	} {
		_, projects, err := apitest.List(c, reg, "DescribeRoles", "ProjectId", x.body)
		if err != nil {
			t.Fatal(err)
		}
		n, names, _ := apitest.List(c, reg, "DescribeRoles", "Name", x.body)
		builtins := len(api.Roles())
		if n != len(names) || len(names) < builtins || strings.Join(names[builtins:], ",") != x.want {
			t.Errorf("DescribeRoles {%s} = %d %v; want the %d built-ins, then %s", x.body, n, names, builtins, x.want)
			continue
		}
		for i := range builtins {
			if projects[i] != x.project {
				t.Errorf("DescribeRoles {%s}: built-in %s has ProjectId %q, want %q", x.body, names[i], projects[i], x.project)
			}
		}
	}
}

// unionAccess is the access center of a union check, with its projects.
func unionAccess(t *testing.T, db *store.DB) (*iam.Access, *api.Registry) {
	a := iam.NewAccess(db, newClock().now)
	reg := api.NewRegistry()
	iam.RegisterAccessActions(reg, a)
	a.UseRegistry(reg)
	for _, p := range []string{apitest.ProjectB, apitest.ProjectC} {
		exec(t, db, "INSERT INTO projects (id, name, description, created_at, updated_at) VALUES (?, ?, '', 0, 0)", p, p)
	}
	return a, reg
}

// roleReader is a person who may list roles in ProjectA (narrowed to a
// device, which does not narrow roles) and in ProjectB, and not in ProjectC.
func roleReader(t *testing.T, reg *api.Registry) *api.Caller {
	t.Helper()
	acts, err := reg.MatchActions("Actions", []string{"DescribeRoles"})
	if err != nil {
		t.Fatal(err)
	}
	role := &api.Role{Name: "roles", Actions: acts}
	c := &api.Caller{UserID: "usr-r", UserName: "r"}
	c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: apitest.ProjectA, Role: role.Narrow(api.Scope{DeviceIDs: []string{"dev-1"}})}, {ProjectID: apitest.ProjectB, Role: role}}))
	return c
}
