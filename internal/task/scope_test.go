package task

import (
	"context"
	"sort"
	"strings"
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

// A person with a role narrowed to one task in default and viewer in
// prj-b lists, without ProjectId, that task and every task of prj-b, and
// none of prj-c where they hold no role; paging walks that union.
func TestTaskListUnion(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	// A task's project is its flow's: here the flow id names it.
	svc := NewService(db, func(_ context.Context, flow string, _ int64) (int64, string, error) { return 1, flow, nil }, nil, time.Now)
	reg := api.NewRegistry()
	RegisterActions(reg, svc)
	names := map[string]string{}
	for _, x := range []struct{ name, project string }{{"t1", "default"}, {"t2", "default"}, {"u1", "prj-b"}, {"u2", "prj-b"}, {"v1", "prj-c"}} {
		tk := &Task{Name: x.name, ProjectID: x.project, FlowID: x.project, Sources: []pipeline.SourceSpec{{Type: "device", Id: "d"}}}
		if err := svc.Create(ctx, tk, false); err != nil {
			t.Fatal(err)
		}
		names[tk.ID] = x.name
	}
	var t1 string
	for id, n := range names {
		if n == "t1" {
			t1 = id
		}
	}
	acts, err := reg.MatchActions("Actions", []string{"*Task*"})
	if err != nil {
		t.Fatal(err)
	}
	only := (&api.Role{Name: "t1-only", Actions: acts}).Narrow(api.Scope{TaskIDs: []string{t1}})
	viewer, _ := reg.BuiltinRole(api.RoleViewer)
	c := &api.Caller{UserID: "usr-erin", UserName: "erin"}
	c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: "default", Role: only}, {ProjectID: "prj-b", Role: viewer}}))
	list := func(body string) (int, []string) {
		t.Helper()
		a, _ := reg.Lookup("DescribeTasks")
		r, err := a.Call(ctx, c, []byte(body))
		if err != nil {
			t.Fatalf("DescribeTasks %s: %v", body, err)
		}
		l := r.(*DescribeTasksResponse)
		var got []string
		for _, tk := range l.TaskSet {
			got = append(got, names[tk.TaskId])
		}
		sort.Strings(got)
		return l.TotalCount, got
	}
	if n, got := list(`{}`); n != 3 || strings.Join(got, ",") != "t1,u1,u2" {
		t.Errorf("DescribeTasks without ProjectId = %d %v; want t1 (its role's one task) and u1, u2 (all of prj-b)", n, got)
	}
	var paged []string
	for _, off := range []string{"0", "2"} {
		n, got := list(`{"Offset": ` + off + `, "Limit": 2}`)
		if n != 3 {
			t.Errorf("page at %s: TotalCount %d, want 3", off, n)
		}
		paged = append(paged, got...)
	}
	if sort.Strings(paged); strings.Join(paged, ",") != "t1,u1,u2" {
		t.Errorf("pages of 2 = %v; want each of the 3 once", paged)
	}
}
