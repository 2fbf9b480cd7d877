package push

import (
	"context"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apitest"
)

// DescribeSubscriptions without ProjectId lists, for a person, the
// subscriptions of every project where their roles grant it, and pages
// that union; an app still sees only its own.
func TestSubscriptionListUnion(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, s := range []struct{ project, app, name string }{{apitest.ProjectA, "app-a", "a1"}, {apitest.ProjectA, "app-a2", "a2"},
		{apitest.ProjectB, "app-b", "b1"}, {apitest.ProjectB, "app-b", "b2"}, {apitest.ProjectB, "app-b2", "b3"}, {apitest.ProjectC, "app-c", "c1"}} {
		if err := e.svc.Create(ctx, Scope{ProjectID: s.project, AppID: s.app}, &Subscription{Name: s.name, Channel: ChannelGRPC}); err != nil {
			t.Fatal(err)
		}
	}
	apitest.CheckUnion(t, e.reg, apitest.Union{Action: "DescribeSubscriptions", Key: "Name", Scope: api.Scope{DeviceIDs: []string{"dev-1"}},
		WantA: []string{"a1", "a2"}, WantB: []string{"b1", "b2", "b3"}})
	app := &api.Caller{AppID: "app-b", ProjectID: apitest.ProjectB, Role: api.RoleAdmin}
	if n, got, err := apitest.List(app, e.reg, "DescribeSubscriptions", "Name", ""); err != nil || n != 2 || len(got) != 2 {
		t.Errorf("DescribeSubscriptions of app-b = %d %v, %v; want its own b1, b2", n, got, err)
	}
}
