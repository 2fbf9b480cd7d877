package iam_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apiconfig"
	"github.com/tianshu-ai/tianshu/internal/api/apitest"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// platformAdminApp is a caller that sees every project.
var platformAdminApp = &api.Caller{AppID: "app-root", ProjectID: "default", Role: api.RoleAdmin}

// DescribeRoles pages one list, the built-in roles first and then the
// custom ones by project and name, across the seam between the two; a
// person with roles in two projects pages the union of their custom roles.
func TestRolesPage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a, reg := unionAccess(t, db)
		for _, r := range []struct{ project, name string }{{apitest.ProjectB, "b2"}, {apitest.ProjectA, "a1"}, {apitest.ProjectC, "c1"}, {apitest.ProjectB, "b1"}, {apitest.ProjectA, "a2"}} {
			if err := a.CreateRole(ctx, &iam.CustomRole{ProjectID: r.project, Name: r.name, Actions: []string{"Describe*"}}); err != nil {
				t.Fatal(err)
			}
		}
		builtins := api.Roles()
		with := func(names ...string) []string { return append(append([]string(nil), builtins...), names...) }
		apitest.CheckPaging(t, platformAdminApp, reg, "DescribeRoles", "Name", ``, with("a1", "a2", "b1", "b2", "c1"))
		apitest.CheckPaging(t, platformAdminApp, reg, "DescribeRoles", "Name", `"ProjectId": "`+apitest.ProjectB+`"`, with("b1", "b2"))

		c := roleReader(t, reg)
		apitest.CheckPaging(t, c, reg, "DescribeRoles", "Name", ``, with("a1", "a2", "b1", "b2"))
	})
}

// DescribeProjects pages the projects the caller sees, oldest first, and
// ProjectIds picks some of them (never one the caller does not see).
func TestProjectsPage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := newClock()
		p := iam.NewProjects(db, clk.now)
		reg := api.NewRegistry()
		iam.RegisterProjectActions(reg, p)
		all := []string{"default"}
		for i := range 5 {
			clk.add(time.Second)
			id := fmt.Sprintf("prj-%d", 5-i) // ids against the creation order: the order is by time
			if _, err := p.Create(ctx, id, id, ""); err != nil {
				t.Fatal(err)
			}
			all = append(all, id)
		}
		apitest.CheckPaging(t, platformAdminApp, reg, "DescribeProjects", "ProjectId", ``, all)
		apitest.CheckPaging(t, platformAdminApp, reg, "DescribeProjects", "ProjectId", `"ProjectIds": ["prj-1", "prj-3", "prj-9"]`, []string{"prj-3", "prj-1"})

		viewer, _ := reg.BuiltinRole(api.RoleViewer)
		c := &api.Caller{UserID: "usr-1", UserName: "bob"}
		c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: "prj-4", Role: viewer}, {ProjectID: "prj-2", Role: viewer}, {ProjectID: "prj-1", Role: viewer}}))
		apitest.CheckPaging(t, c, reg, "DescribeProjects", "ProjectId", ``, []string{"prj-4", "prj-2", "prj-1"})
		apitest.CheckPaging(t, c, reg, "DescribeProjects", "ProjectId", `"ProjectIds": ["prj-3", "prj-2"]`, []string{"prj-2"})
	})
}

// DescribeMySessions pages the caller's live sessions, newest first, and
// counts only those (not another person's, not expired ones).
func TestMySessionsPage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := newClock()
		cfg := apiconfig.DefaultSessions()
		cfg.CacheTTL = 0
		users := iam.NewUsers(db, clk.now)
		sessions := iam.NewSessions(db, cfg, clk.now)
		l := iam.NewLogins(users, sessions, ratelimit.NewMemory(clk.now), cfg, nil)
		reg := api.NewRegistry()
		iam.RegisterUserActions(reg, l)
		for _, name := range []string{"dana", "erin"} {
			if _, err := users.Create(ctx, name, "correct horse battery", "viewer"); err != nil {
				t.Fatal(err)
			}
		}
		login := func(name string) iam.NewSession {
			t.Helper()
			_, s, err := l.Login(ctx, name, "correct horse battery", "10.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		var want []string // newest first
		for range 5 {
			clk.add(time.Second)
			want = append([]string{login("dana").ID}, want...)
			login("erin")
		}
		s := login("dana") // at the same time as the one before: the id orders them
		if s.ID < want[0] {
			want = append([]string{s.ID}, want...)
		} else {
			want = append([]string{want[0], s.ID}, want[1:]...)
		}
		c := &api.Caller{UserID: s.UserID, UserName: "dana", SessionID: s.ID}
		apitest.CheckPaging(t, c, reg, "DescribeMySessions", "SessionId", ``, want)
		// The oldest ones expire: they leave the count and the pages.
		clk.add(cfg.IdleTimeout - 3*time.Second + time.Millisecond)
		apitest.CheckPaging(t, c, reg, "DescribeMySessions", "SessionId", ``, want[:4])
	})
}
