package appcenter_test

import (
	"context"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apitest"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// DescribeApps without ProjectId lists the apps of every project where the
// caller's roles grant it, and pages that union; a role scoped to tasks
// does not narrow apps.
func TestAppListUnion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		for _, p := range []string{apitest.ProjectB, apitest.ProjectC} {
			if _, err := iam.NewProjects(db, e.clk.now).Create(context.Background(), p, p, ""); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range []struct{ project, name string }{{apitest.ProjectA, "a1"}, {apitest.ProjectA, "a2"}, {apitest.ProjectB, "b1"},
			{apitest.ProjectB, "b2"}, {apitest.ProjectB, "b3"}, {apitest.ProjectC, "c1"}} {
			mustApp(t, e, a.project, a.name, api.RoleViewer)
		}
		apitest.CheckUnion(t, e.reg, apitest.Union{Action: "DescribeApps", Key: "Name", Scope: api.Scope{TaskIDs: []string{"tsk-1"}},
			WantA: []string{"a1", "a2"}, WantB: []string{"b1", "b2", "b3"}})
	})
}
