package algorepo_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apitest"
	"github.com/tianshu-ai/tianshu/internal/iam"
)

// DescribeAlgorithms without ProjectId lists the built-in algorithms once
// and the own algorithms of every project where the caller's roles grant
// it, and pages that union.
func TestAlgorithmListUnion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, p := range []string{apitest.ProjectB, apitest.ProjectC} {
		if _, err := iam.NewProjects(e.db, e.clk.now).Create(ctx, p, p, ""); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"a1", "a2", "b1", "b2", "b3", "c1"}
	for i, p := range []string{apitest.ProjectA, apitest.ProjectA, apitest.ProjectB, apitest.ProjectB, apitest.ProjectB, apitest.ProjectC} {
		if _, err := e.s.Create(ctx, p, names[i], ""); err != nil {
			t.Fatal(err)
		}
	}
	own := `"Filters": [{"Name": "Name", "Values": ["a1", "a2", "b1", "b2", "b3", "c1"]}]`
	apitest.CheckUnion(t, e.reg, apitest.Union{Action: "DescribeAlgorithms", Key: "Name", Body: own, Scope: api.Scope{DeviceIDs: []string{"dev-1"}},
		WantA: []string{"a1", "a2"}, WantB: []string{"b1", "b2", "b3"}})
	c := &api.Caller{UserID: "usr-b", UserName: "b"}
	viewer, _ := e.reg.BuiltinRole(api.RoleViewer)
	c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: apitest.ProjectA, Role: viewer}, {ProjectID: apitest.ProjectB, Role: viewer}}))
	n, got, err := apitest.List(c, e.reg, "DescribeAlgorithms", "Name", `"Limit": 100`)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := append(append([]string(nil), builtinNames...), "a1", "a2", "b1", "b2", "b3")
	slices.Sort(want)
	if n != len(want) || !slices.Equal(got, want) {
		t.Errorf("DescribeAlgorithms without ProjectId = %d %v; want the built-ins once and the projects' own: %v", n, got, want)
	}
}
