package task

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
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

// Of 20 concurrent creates at a project's quota-1, exactly one succeeds,
// on every dialect (issue #26, part 6).
func TestConcurrentCreateTaskAtQuota(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := NewService(db, func(context.Context, string, int64) (int64, string, error) { return 1, "default", nil }, nil, time.Now)
		svc.UseQuotas(quotas{"default/tasks": 3})
		for range 2 {
			if err := svc.Create(ctx, &Task{Name: "t", FlowID: "f"}, false); err != nil {
				t.Fatal(err)
			}
		}
		const racers = 20
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := svc.Create(ctx, &Task{Name: "t", FlowID: "f"}, false)
				if e, is := api.AsError(err); err != nil && (!is || e.Code != api.LimitExceeded) {
					t.Errorf("racing create: %v", err)
				}
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				}
			}()
		}
		wg.Wait()
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM tasks WHERE project_id = 'default'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if ok != 1 || n != 3 {
			t.Fatalf("%d of %d racing creates succeeded, project holds %d tasks; want 1 and 3", ok, racers, n)
		}
	})
}
