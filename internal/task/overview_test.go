package task

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// DescribeTaskOverview counts tasks by state, gives the counters of the
// active ones (newest first) and the latest failure events, each within
// what the caller's roles reach, on every store.
func TestTaskOverview(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ms := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC).UnixMilli()
		now := func() time.Time { ms += 1000; return time.UnixMilli(ms).UTC() }
		// A task's project is its flow's: here the flow id names it.
		svc := NewService(db, func(_ context.Context, flow string, _ int64) (int64, string, error) { return 1, flow, nil }, nil, now)
		reg := api.NewRegistry()
		RegisterActions(reg, svc)
		id := map[string]string{}
		for _, x := range []struct{ name, project, status, stats string }{
			{"t1", "default", StatusRunning, `{"FpsIn": 2.5, "FpsOut": 2, "Received": 50, "Dropped": 3, "Records": 7}`},
			{"t2", "default", StatusFailed, `{"FpsIn": 1, "Failed": 4, "LastError": "algorithm down"}`},
			{"t3", "default", StatusStopped, `{}`},
			{"t4", "default", StatusPending, ``},
			{"u1", "prj-b", StatusRunning, `{"FpsIn": 9}`},
		} {
			tk := &Task{Name: x.name, ProjectID: x.project, FlowID: x.project, Sources: []pipeline.SourceSpec{{Type: "device", Id: "d"}}}
			if err := svc.Create(ctx, tk, false); err != nil {
				t.Fatal(err)
			}
			id[x.name] = tk.ID
			if _, err := db.Exec(ctx, "UPDATE tasks SET status = ?, stats = ? WHERE id = ?", x.status, x.stats, tk.ID); err != nil {
				t.Fatal(err)
			}
		}
		svc.Event(ctx, id["t2"], "failed", "node-1", "algorithm down")
		svc.Event(ctx, id["t1"], "running", "node-1", "started")
		svc.Event(ctx, id["t1"], "node_lost", "node-1", "node node-1 lease lapsed")
		svc.Event(ctx, id["u1"], "failed", "node-2", "other project")

		acts, err := reg.MatchActions("Actions", []string{"*Task*"})
		if err != nil {
			t.Fatal(err)
		}
		viewer, _ := reg.BuiltinRole(api.RoleViewer)
		overview := func(c *api.Caller, body string) *DescribeTaskOverviewResponse {
			t.Helper()
			a, _ := reg.Lookup("DescribeTaskOverview")
			r, err := a.Call(ctx, c, []byte(body))
			if err != nil {
				t.Fatalf("DescribeTaskOverview %s: %v", body, err)
			}
			return r.(*DescribeTaskOverviewResponse)
		}
		statuses := func(o *DescribeTaskOverviewResponse) string {
			var b []string
			for _, s := range o.StatusSet {
				b = append(b, s.Status+"="+strconv.Itoa(s.Count))
			}
			return strings.Join(b, ",")
		}
		names := func(o *DescribeTaskOverviewResponse) string {
			var b []string
			for _, c := range o.TaskSet {
				b = append(b, c.Name)
			}
			return strings.Join(b, ",")
		}
		errs := func(o *DescribeTaskOverviewResponse) string {
			var b []string
			for _, e := range o.ErrorSet {
				b = append(b, e.TaskName+":"+e.Type)
			}
			return strings.Join(b, ",")
		}

		// A viewer of default sees default's tasks only.
		c := &api.Caller{UserID: "usr-erin", UserName: "erin"}
		c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: "default", Role: viewer}}))
		o := overview(c, `{"ProjectId": "default"}`)
		if o.TotalCount != 4 || statuses(o) != "Failed=1,Pending=1,Running=1,Stopped=1" {
			t.Errorf("default: %d tasks %s", o.TotalCount, statuses(o))
		}
		if o.ActiveCount != 3 || names(o) != "t4,t2,t1" {
			t.Errorf("default: active %d %s; want 3 t4,t2,t1 (newest first, no stopped task)", o.ActiveCount, names(o))
		}
		if t1 := o.TaskSet[2]; t1.FpsIn != 2.5 || t1.FpsOut != 2 || t1.Dropped != 3 || t1.Received != 50 || t1.Records != 7 || t1.Status != StatusRunning {
			t.Errorf("t1 counters: %+v", t1)
		}
		if t2 := o.TaskSet[1]; t2.LastError != "algorithm down" || t2.Failed != 4 {
			t.Errorf("t2 counters: %+v", t2)
		}
		if errs(o) != "t1:node_lost,t2:failed" || o.ErrorSet[1].Message != "algorithm down" || o.ErrorSet[1].NodeId != "node-1" {
			t.Errorf("default errors: %+v", o.ErrorSet)
		}
		if o := overview(c, `{"ProjectId": "default", "Limit": 1, "ErrorLimit": 1}`); names(o) != "t4" || o.ActiveCount != 3 || errs(o) != "t1:node_lost" {
			t.Errorf("limits 1: %s (of %d), %s", names(o), o.ActiveCount, errs(o))
		}

		// A role narrowed to t2 reaches t2 alone, its counters and its failure.
		only := (&api.Role{Name: "t2-only", Actions: acts}).Narrow(api.Scope{TaskIDs: []string{id["t2"]}})
		n := &api.Caller{UserID: "usr-nina", UserName: "nina"}
		n.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: "default", Role: only}}))
		if o := overview(n, `{}`); o.TotalCount != 1 || statuses(o) != "Failed=1" || names(o) != "t2" || errs(o) != "t2:failed" {
			t.Errorf("narrowed to t2: %d %s %s %s", o.TotalCount, statuses(o), names(o), errs(o))
		}

		// A platform admin without ProjectId sees every project.
		admin := &api.Caller{Role: api.RoleAdmin}
		if o := overview(admin, `{}`); o.TotalCount != 5 || names(o) != "u1,t4,t2,t1" || errs(o) != "u1:failed,t1:node_lost,t2:failed" {
			t.Errorf("platform admin: %d %s %s", o.TotalCount, names(o), errs(o))
		}

		// Limits are checked.
		a, _ := reg.Lookup("DescribeTaskOverview")
		if _, err := a.Call(ctx, c, []byte(`{"ProjectId": "default", "ErrorLimit": 51}`)); err == nil || !strings.Contains(err.Error(), "ErrorLimit") {
			t.Errorf("ErrorLimit 51: %v", err)
		}
	})
}

// BenchmarkTaskOverview reads the overview of a project of 50 running tasks
// with 20 events each on SQLite: DescribeTaskOverview's one call against
// the baseline the console made before, measured in the same run: a
// DescribeTasks, then a DescribeTaskStats and a DescribeTaskEvents per
// task. It reports both per-overview times and their ratio.
func BenchmarkTaskOverview(b *testing.B) {
	ctx := context.Background()
	db := storetest.Open(b, "sqlite")
	svc := NewService(db, func(context.Context, string, int64) (int64, string, error) { return 1, "default", nil }, nil, time.Now)
	reg := api.NewRegistry()
	RegisterActions(reg, svc)
	for i := range 50 {
		tk := &Task{Name: "t" + strconv.Itoa(i), FlowID: "f", Sources: []pipeline.SourceSpec{{Type: "device", Id: "d"}}}
		if err := svc.Create(ctx, tk, false); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(ctx, "UPDATE tasks SET status = ?, stats = ? WHERE id = ?", StatusRunning, `{"FpsIn": 2, "FpsOut": 2}`, tk.ID); err != nil {
			b.Fatal(err)
		}
		for j := range 20 {
			typ := "running"
			if j%7 == 0 {
				typ = "failed"
			}
			svc.Event(ctx, tk.ID, typ, "node-1", "event")
		}
	}
	c := &api.Caller{Role: api.RoleAdmin}
	run := func(action, body string) any {
		a, _ := reg.Lookup(action)
		r, err := a.Call(ctx, c, []byte(body))
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	n := b.N
	start := time.Now()
	for range n {
		l := run("DescribeTasks", `{"ProjectId": "default", "Limit": 100}`).(*DescribeTasksResponse)
		for _, t := range l.TaskSet {
			run("DescribeTaskStats", `{"TaskId": "`+t.TaskId+`"}`)
			run("DescribeTaskEvents", `{"TaskId": "`+t.TaskId+`", "Limit": 10}`)
		}
	}
	perTask := time.Since(start)
	start = time.Now()
	for range n {
		run("DescribeTaskOverview", `{"ProjectId": "default", "Limit": 100}`)
	}
	overview := time.Since(start)
	b.ReportMetric(float64(perTask.Nanoseconds())/float64(n), "per-task-calls-ns/op")
	b.ReportMetric(float64(overview.Nanoseconds())/float64(n), "overview-ns/op")
	b.ReportMetric(float64(perTask)/float64(overview), "per-task/overview")
}
