package task

import (
	"context"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// A role narrowed to named tasks lists only those, and other tasks of the
// project are "not found" to it.
func TestTaskScope(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	svc := NewService(db, func(context.Context, string, int64) (int64, string, error) { return 1, "default", nil }, nil, time.Now)
	reg := api.NewRegistry()
	RegisterActions(reg, svc)
	var ids []string
	for _, n := range []string{"t1", "t2", "t3"} {
		tk := &Task{Name: n, FlowID: "f", Sources: []pipeline.SourceSpec{{Type: "device", Id: "d"}}}
		if err := svc.Create(ctx, tk, false); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	acts, err := reg.MatchActions("Actions", []string{"*Task*"})
	if err != nil {
		t.Fatal(err)
	}
	role := (&api.Role{Name: "t1-only", Actions: acts}).Narrow(api.Scope{TaskIDs: []string{ids[0]}})
	c := &api.Caller{AppID: "app-t", ProjectID: "default"}
	c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: "default", Role: role}}))
	call := func(action, body string) (any, error) {
		a, _ := reg.Lookup(action)
		return a.Call(ctx, c, []byte(body))
	}
	r, err := call("DescribeTasks", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if l := r.(*DescribeTasksResponse); l.TotalCount != 1 || l.TaskSet[0].TaskId != ids[0] {
		t.Errorf("DescribeTasks = %+v, want t1 only", l)
	}
	if r, err := call("DescribeTasks", `{"TaskIds": ["`+ids[1]+`"]}`); err != nil || r.(*DescribeTasksResponse).TotalCount != 0 {
		t.Errorf("DescribeTasks naming t2 = %+v, %v; want none", r, err)
	}
	if _, err := call("DescribeTaskStats", `{"TaskId": "`+ids[0]+`"}`); err != nil {
		t.Errorf("DescribeTaskStats t1: %v", err)
	}
	_, err = call("DeleteTask", `{"TaskId": "`+ids[1]+`"}`)
	if e, _ := api.AsError(err); e == nil || e.Code != api.ResourceNotFound {
		t.Errorf("DeleteTask t2 outside the scope: %v, want ResourceNotFound", err)
	}
	if _, err := svc.Get(ctx, ids[1]); err != nil {
		t.Errorf("t2 after a refused delete: %v", err)
	}
}
