package task

import (
	"context"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

type quotas map[string]int

func (q quotas) Quota(_ context.Context, projectID, kind string) (int, error) {
	return q[projectID+"/"+kind], nil
}

// A project holds at most its quota of tasks (issue #26, part 6).
func TestCreateTaskWithinProjectQuota(t *testing.T) {
	ctx := context.Background()
	svc := NewService(storetest.Open(t, "sqlite"), func(context.Context, string, int64) (int64, string, error) { return 1, "default", nil }, nil, time.Now)
	svc.UseQuotas(quotas{"default/tasks": 2})
	for range 2 {
		if err := svc.Create(ctx, &Task{Name: "t", FlowID: "f"}, false); err != nil {
			t.Fatal(err)
		}
	}
	err := svc.Create(ctx, &Task{Name: "t", FlowID: "f"}, false)
	if e, ok := api.AsError(err); !ok || e.Code != api.LimitExceeded || e.Message != "project default holds 2 tasks, its quota of tasks; a platform admin raises it with ModifyProjectQuota" {
		t.Fatalf("third task: %v", err)
	}
}
