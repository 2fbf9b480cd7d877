package task

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// The console's overview asks, every few seconds, how a project's tasks
// fare: how many are in each state, the counters of those that run, and
// the latest failures. DescribeTaskOverview answers that in one call and
// three queries instead of a DescribeTaskStats and a DescribeTaskEvents
// per task.

// errorEventTypes are the task events that report a failure: a task that
// failed (worker.go records the status lowercased) and a task whose node
// lapsed (scheduler.go).
var errorEventTypes = []string{"failed", "node_lost"}

// activeStatuses are the states of a task whose counters mean something
// now, and Failed, whose last counters tell what it did before it failed.
var activeStatuses = []string{StatusPending, StatusScheduled, StatusRunning, StatusStopping, StatusFailed}

// DescribeTaskOverviewRequest is the request of DescribeTaskOverview.
type DescribeTaskOverviewRequest struct {
	ProjectId string `json:"ProjectId" validate:"max=64"`
	// Limit bounds TaskSet (default 20); ErrorLimit bounds ErrorSet
	// (default 10).
	Limit      int `json:"Limit" validate:"min=0,max=100"`
	ErrorLimit int `json:"ErrorLimit" validate:"min=0,max=50"`
}

// TaskStatusCount is how many tasks are in one state.
type TaskStatusCount struct {
	Status string `json:"Status"`
	Count  int    `json:"Count"`
}

// TaskCounters is one active task with the counters its worker last
// reported.
type TaskCounters struct {
	TaskId      string  `json:"TaskId"`
	ProjectId   string  `json:"ProjectId"`
	Name        string  `json:"Name"`
	Status      string  `json:"Status"`
	NodeId      string  `json:"NodeId"`
	FpsIn       float64 `json:"FpsIn"`
	FpsOut      float64 `json:"FpsOut"`
	Received    int64   `json:"Received"`
	Dropped     int64   `json:"Dropped"`
	Failed      int64   `json:"Failed"`
	Records     int64   `json:"Records"`
	LastError   string  `json:"LastError"`
	UpdatedTime string  `json:"UpdatedTime"`
}

// TaskErrorEvent is a failure event of a task.
type TaskErrorEvent struct {
	TaskId   string `json:"TaskId"`
	TaskName string `json:"TaskName"`
	Time     string `json:"Time"`
	Type     string `json:"Type"`
	NodeId   string `json:"NodeId"`
	Message  string `json:"Message"`
}

// DescribeTaskOverviewResponse is the response of DescribeTaskOverview.
type DescribeTaskOverviewResponse struct {
	// TotalCount is how many tasks there are in all; StatusSet splits them
	// by state (states without tasks are left out).
	TotalCount int               `json:"TotalCount"`
	StatusSet  []TaskStatusCount `json:"StatusSet"`
	// ActiveCount is how many tasks are pending, scheduled, running,
	// stopping or failed; TaskSet holds the newest Limit of them.
	ActiveCount int              `json:"ActiveCount"`
	TaskSet     []TaskCounters   `json:"TaskSet"`
	ErrorSet    []TaskErrorEvent `json:"ErrorSet"`
}

func registerOverview(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "DescribeTaskOverview", Summary: "In one call: how many tasks are in each state, the fps in/out, drops, failures and records of the active ones (pending to failed, newest first, Limit), and the latest failure events (ErrorLimit). Without ProjectId: every project where the caller's roles grant it.", Permission: taskRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeTaskOverviewRequest) (*DescribeTaskOverviewResponse, error) {
			lim, errLim := r.Limit, r.ErrorLimit
			if lim == 0 {
				lim = 20
			}
			if errLim == 0 {
				errLim = 10
			}
			return s.Overview(ctx, func(col string) store.Projects { return c.ListIn(r.ProjectId, taskReach(col)) }, lim, errLim)
		})
}

// Overview answers DescribeTaskOverview for the tasks in(col) covers, col
// naming the tasks' id column (a caller's ListIn).
func (s *Service) Overview(ctx context.Context, in func(col string) store.Projects, limit, errorLimit int) (*DescribeTaskOverviewResponse, error) {
	out := &DescribeTaskOverviewResponse{StatusSet: []TaskStatusCount{}, TaskSet: []TaskCounters{}, ErrorSet: []TaskErrorEvent{}}
	var w store.Where
	w.InProjects("project_id", in("id"))
	cond, args := w.SQL()
	rows, err := s.db.Query(ctx, "SELECT status, COUNT(*) FROM tasks"+cond+" GROUP BY status ORDER BY status", args...)
	if err != nil {
		return nil, fmt.Errorf("task overview: count: %w", err)
	}
	for rows.Next() {
		var sc TaskStatusCount
		if err := rows.Scan(&sc.Status, &sc.Count); err != nil {
			rows.Close()
			return nil, err
		}
		out.TotalCount += sc.Count
		out.StatusSet = append(out.StatusSet, sc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ts, active, err := s.List(ctx, in("id"), nil, activeStatuses, nil, nil, 0, limit)
	if err != nil {
		return nil, err
	}
	out.ActiveCount = active
	for _, t := range ts {
		var st Stats
		_ = json.Unmarshal(t.Stats, &st) // a task never placed has no stats yet
		out.TaskSet = append(out.TaskSet, TaskCounters{TaskId: t.ID, ProjectId: t.ProjectID, Name: t.Name, Status: t.Status, NodeId: t.NodeID,
			FpsIn: st.FpsIn, FpsOut: st.FpsOut, Received: st.Received, Dropped: st.Dropped, Failed: st.Failed, Records: st.Records,
			LastError: st.LastError, UpdatedTime: st.UpdatedTime})
	}
	out.ErrorSet, err = s.errorEvents(ctx, in("t.id"), errorLimit)
	return out, err
}

// errorEvents returns the newest failure events of the tasks in covers
// (tasks joined as t).
// The index on (type, time_ms) lets the engine read failures newest first
// and stop at limit, however many other events the tasks have.
func (s *Service) errorEvents(ctx context.Context, in store.Projects, limit int) ([]TaskErrorEvent, error) {
	var w store.Where
	w.InProjects("t.project_id", in)
	w.In("e.type", errorEventTypes)
	cond, args := w.SQL()
	rows, err := s.db.Query(ctx, "SELECT e.task_id, t.name, e.time_ms, e.type, e.node_id, e.message FROM task_events e JOIN tasks t ON t.id = e.task_id"+
		cond+" ORDER BY e.time_ms DESC, e.id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("task overview: events: %w", err)
	}
	defer rows.Close()
	out := []TaskErrorEvent{}
	for rows.Next() {
		var e TaskErrorEvent
		var ms int64
		if err := rows.Scan(&e.TaskId, &e.TaskName, &ms, &e.Type, &e.NodeId, &e.Message); err != nil {
			return nil, err
		}
		e.Time = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
		out = append(out, e)
	}
	return out, rows.Err()
}
