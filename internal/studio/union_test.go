package studio_test

import (
	"context"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apitest"
	"github.com/tianshu-ai/tianshu/internal/iam"
)

// DescribeFlows without ProjectId lists the flows of every project where
// the caller's roles grant it, and pages that union; a role scoped to
// devices does not narrow flows.
func TestFlowListUnion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, p := range []string{apitest.ProjectB, apitest.ProjectC} {
		if _, err := iam.NewProjects(e.db, e.clk.now).Create(ctx, p, p, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct{ project, name string }{{apitest.ProjectA, "a1"}, {apitest.ProjectA, "a2"}, {apitest.ProjectB, "b1"},
		{apitest.ProjectB, "b2"}, {apitest.ProjectB, "b3"}, {apitest.ProjectC, "c1"}} {
		if _, err := e.s.Create(ctx, f.project, f.name, "", []byte(doubleDoc), "test"); err != nil {
			t.Fatal(err)
		}
		e.clk.add(time.Millisecond) // distinct update times: the order is by them
	}
	apitest.CheckUnion(t, e.reg, apitest.Union{Action: "DescribeFlows", Key: "Name", Scope: api.Scope{DeviceGroups: []string{"site-a"}},
		WantA: []string{"a1", "a2"}, WantB: []string{"b1", "b2", "b3"}})
}
