package task

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
)

var (
	taskRead  = api.Permission{Resource: "task", Access: api.Read}
	taskWrite = api.Permission{Resource: "task", Access: api.Write}
)

// CreateTaskRequest is the request of CreateTask.
type CreateTaskRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	Name        string `json:"Name" validate:"required,max=128"`
	Description string `json:"Description" validate:"max=1024"`
	FlowId      string `json:"FlowId" validate:"required,max=64"`
	// FlowVersion 0 (or absent) pins the flow's latest version now.
	FlowVersion int64                 `json:"FlowVersion" validate:"min=0"`
	Sources     []pipeline.SourceSpec `json:"Sources" validate:"required,max=64"`
	Parameters  map[string]any        `json:"Parameters"`
	Constraints *Constraints          `json:"Constraints"`
	// Start places the task at once (otherwise call StartTask).
	Start bool `json:"Start"`
	// EdgeNodeId places the task on an edge node of the project: that
	// site runs it, never a cloud worker. A task reading from devices of
	// an edge node goes there without it.
	EdgeNodeId string `json:"EdgeNodeId" validate:"max=64"`
}

// CreateTaskResponse is the response of CreateTask.
type CreateTaskResponse struct {
	TaskId      string `json:"TaskId"`
	FlowVersion int64  `json:"FlowVersion"`
}

// ModifyTaskFlowVersionRequest is the request of ModifyTaskFlowVersion.
type ModifyTaskFlowVersionRequest struct {
	TaskId string `json:"TaskId" validate:"required,max=64"`
	// FlowVersion 0 (or absent) means the flow's latest version.
	FlowVersion int64 `json:"FlowVersion" validate:"min=0"`
	// Parameters, when given, replace the task's parameters in the same
	// step (for a version that declares other parameters).
	Parameters map[string]any `json:"Parameters"`
}

// ModifyTaskFlowVersionResponse is the response of ModifyTaskFlowVersion.
type ModifyTaskFlowVersionResponse struct {
	TaskId string `json:"TaskId"`
	// PreviousFlowVersion is the version the task ran before.
	PreviousFlowVersion int64 `json:"PreviousFlowVersion"`
	FlowVersion         int64 `json:"FlowVersion"`
}

// TaskIdRequest names one task.
type TaskIdRequest struct {
	TaskId string `json:"TaskId" validate:"required,max=64"`
}

// DescribeTasksRequest is the request of DescribeTasks.
type DescribeTasksRequest struct {
	ProjectId string       `json:"ProjectId" validate:"max=64"`
	TaskIds   []string     `json:"TaskIds" validate:"max=100"`
	Filters   []api.Filter `json:"Filters" validate:"max=10"`
	api.Paging
}

// TaskInfo is a task as DescribeTasks returns it.
type TaskInfo struct {
	TaskId      string `json:"TaskId"`
	ProjectId   string `json:"ProjectId"`
	Name        string `json:"Name"`
	Description string `json:"Description"`
	FlowId      string `json:"FlowId"`
	FlowVersion int64  `json:"FlowVersion"`
	// LatestFlowVersion is the flow's newest version: a task on an older
	// one can move to it (ModifyTaskFlowVersion).
	LatestFlowVersion int64                 `json:"LatestFlowVersion"`
	Sources           []pipeline.SourceSpec `json:"Sources"`
	Parameters        map[string]any        `json:"Parameters"`
	Constraints       Constraints           `json:"Constraints"`
	DesiredState      string                `json:"DesiredState"`
	Status            string                `json:"Status"`
	Reason            string                `json:"Reason"`
	NodeId            string                `json:"NodeId"`
	// EdgeNodeId is the edge node that runs the task ("" for the
	// cloud's workers). Status and Reason are then what that node last
	// reported, EdgeFlowVersion the flow version it runs (it keeps the
	// previous one while FlowVersion does not compile there) and
	// EdgeError its last error applying the task.
	EdgeNodeId      string `json:"EdgeNodeId"`
	EdgeFlowVersion int64  `json:"EdgeFlowVersion"`
	EdgeError       string `json:"EdgeError"`
	CreatedTime     string `json:"CreatedTime"`
	UpdatedTime     string `json:"UpdatedTime"`
}

// DescribeTasksResponse is the response of DescribeTasks.
type DescribeTasksResponse struct {
	TotalCount int        `json:"TotalCount"`
	TaskSet    []TaskInfo `json:"TaskSet"`
}

// DescribeTaskStatsResponse is the response of DescribeTaskStats.
type DescribeTaskStatsResponse struct {
	TaskId string `json:"TaskId"`
	Status string `json:"Status"`
	Stats
}

// DescribeTaskEventsRequest is the request of DescribeTaskEvents.
type DescribeTaskEventsRequest struct {
	TaskId string `json:"TaskId" validate:"required,max=64"`
	Limit  int    `json:"Limit" validate:"min=0,max=100"`
}

// TaskEventInfo is one task event.
type TaskEventInfo struct {
	Time    string `json:"Time"`
	Type    string `json:"Type"`
	NodeId  string `json:"NodeId"`
	Message string `json:"Message"`
}

// DescribeTaskEventsResponse is the response of DescribeTaskEvents.
type DescribeTaskEventsResponse struct {
	EventSet []TaskEventInfo `json:"EventSet"`
}

// Empty is the response of actions that return only a RequestId.
type Empty struct{}

func taskInfo(t *Task) TaskInfo {
	if t.Parameters == nil {
		t.Parameters = map[string]any{}
	}
	return TaskInfo{TaskId: t.ID, ProjectId: t.ProjectID, Name: t.Name, Description: t.Description, FlowId: t.FlowID,
		FlowVersion: t.FlowVersion, Sources: t.Sources, Parameters: t.Parameters, Constraints: t.Constraints,
		DesiredState: t.Desired, Status: t.Status, Reason: t.Reason, NodeId: t.NodeID,
		EdgeNodeId: t.EdgeNode, EdgeFlowVersion: t.EdgeVersion, EdgeError: t.EdgeError,
		CreatedTime: t.CreatedAt.Format(time.RFC3339), UpdatedTime: t.UpdatedAt.Format(time.RFC3339)}
}

// RegisterActions adds the task actions to reg; s may be nil for docs.
func RegisterActions(reg *api.Registry, s *Service) {
	registerOverview(reg, s)
	api.Register(reg, api.Spec{Name: "CreateTask", Summary: "Create a task: a flow version bound to sources (device, upload, topic), parameters and placement constraints.", Permission: taskWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateTaskRequest) (*CreateTaskResponse, error) {
			if err := s.checkDevices(ctx, c, r.Sources); err != nil {
				return nil, err
			}
			t := &Task{ProjectID: r.ProjectId, Name: r.Name, Description: r.Description, FlowID: r.FlowId, FlowVersion: r.FlowVersion,
				Sources: r.Sources, Parameters: api.NormalizeMap(r.Parameters), EdgeNode: r.EdgeNodeId}
			if r.Constraints != nil {
				t.Constraints = *r.Constraints
			}
			if err := s.Create(ctx, t, r.Start); err != nil {
				return nil, err
			}
			c.SetResource(t.ID)
			return &CreateTaskResponse{TaskId: t.ID, FlowVersion: t.FlowVersion}, nil
		})
	api.Register(reg, api.Spec{Name: "ModifyTaskFlowVersion", Summary: "Move a task to another version of its flow. A running task keeps running: its worker finishes the messages in flight and continues on the new version from the sources' saved positions.", Permission: taskWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyTaskFlowVersionRequest) (*ModifyTaskFlowVersionResponse, error) {
			c.SetResource(r.TaskId)
			if _, err := s.visible(ctx, c, r.TaskId); err != nil {
				return nil, err
			}
			var params map[string]any
			if r.Parameters != nil {
				params = api.NormalizeMap(r.Parameters)
			}
			from, to, err := s.MoveToVersion(ctx, r.TaskId, r.FlowVersion, params)
			if err != nil {
				return nil, err
			}
			return &ModifyTaskFlowVersionResponse{TaskId: r.TaskId, PreviousFlowVersion: from, FlowVersion: to}, nil
		})
	api.Register(reg, api.Spec{Name: "StartTask", Summary: "Ask for a task to run; the scheduler places it on a worker.", Permission: taskWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *TaskIdRequest) (*Empty, error) {
			c.SetResource(r.TaskId)
			if _, err := s.visible(ctx, c, r.TaskId); err != nil {
				return nil, err
			}
			return &Empty{}, s.Start(ctx, r.TaskId)
		})
	api.Register(reg, api.Spec{Name: "StopTask", Summary: "Ask for a task to stop; its worker stops it (Stopping, then Stopped).", Permission: taskWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *TaskIdRequest) (*Empty, error) {
			c.SetResource(r.TaskId)
			if _, err := s.visible(ctx, c, r.TaskId); err != nil {
				return nil, err
			}
			return &Empty{}, s.Stop(ctx, r.TaskId)
		})
	api.Register(reg, api.Spec{Name: "DeleteTask", Summary: "Delete a task that is not running.", Permission: taskWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *TaskIdRequest) (*Empty, error) {
			c.SetResource(r.TaskId)
			if _, err := s.visible(ctx, c, r.TaskId); err != nil {
				return nil, err
			}
			return &Empty{}, s.Delete(ctx, r.TaskId)
		})
	api.Register(reg, api.Spec{Name: "DescribeTasks", Summary: "List tasks, newest first. Filters: Status, FlowId, NodeId. Without ProjectId: every project where the caller's roles grant it.", Permission: taskRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeTasksRequest) (*DescribeTasksResponse, error) {
			f, err := api.ParseFilters(r.Filters, "Status", "FlowId", "NodeId")
			if err != nil {
				return nil, err
			}
			off, lim := r.Page()
			ts, total, err := s.List(ctx, c.ListIn(r.ProjectId, taskReach("id")), r.TaskIds, f["Status"], f["FlowId"], f["NodeId"], off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeTasksResponse{TotalCount: total, TaskSet: make([]TaskInfo, 0, len(ts))}
			latest := map[string]int64{}
			for _, t := range ts {
				info := taskInfo(t)
				v, ok := latest[t.FlowID]
				if !ok {
					// A flow a task uses cannot be deleted: a failure here is
					// the store's, and the field then stays 0.
					v, _, _ = s.flows(ctx, t.FlowID, 0)
					latest[t.FlowID] = v
				}
				info.LatestFlowVersion = v
				out.TaskSet = append(out.TaskSet, info)
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeTaskStats", Summary: "A task's fps in and out, drops, errors, records, events and per-node latency p50/p99, and the worker it runs on.", Permission: taskRead},
		func(ctx context.Context, c *api.Caller, r *TaskIdRequest) (*DescribeTaskStatsResponse, error) {
			t, err := s.visible(ctx, c, r.TaskId)
			if err != nil {
				return nil, err
			}
			out := &DescribeTaskStatsResponse{TaskId: t.ID, Status: t.Status}
			_ = json.Unmarshal(t.Stats, &out.Stats)
			out.NodeId = t.NodeID
			if out.NodeLatency == nil {
				out.NodeLatency = []NodeStats{}
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeTaskEvents", Summary: "A task's recent events (state changes, node moves, failures), newest first.", Permission: taskRead},
		func(ctx context.Context, c *api.Caller, r *DescribeTaskEventsRequest) (*DescribeTaskEventsResponse, error) {
			lim := r.Limit
			if lim == 0 {
				lim = 20
			}
			if _, err := s.visible(ctx, c, r.TaskId); err != nil {
				return nil, err
			}
			evs, err := s.Events(ctx, r.TaskId, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeTaskEventsResponse{EventSet: make([]TaskEventInfo, 0, len(evs))}
			for _, e := range evs {
				out.EventSet = append(out.EventSet, TaskEventInfo{Time: e.Time.Format(time.RFC3339Nano), Type: e.Type, NodeId: e.Node, Message: e.Message})
			}
			return out, nil
		})
	registerLiveAction(reg, s)
}

// visible returns a task the caller may act on; tasks of other projects,
// and those outside a role narrowed to tasks, are "not found".
// checkDevices refuses device sources the caller cannot see: another
// project's, or, for a role narrowed to some devices, any other device.
// Both answer as if the device did not exist.
func (s *Service) checkDevices(ctx context.Context, c *api.Caller, sources []pipeline.SourceSpec) error {
	if s.devices == nil {
		return nil
	}
	for i, src := range sources {
		if src.Type != "device" {
			continue
		}
		field := fmt.Sprintf("Sources[%d].Id", i)
		projectID, group, err := s.devices(ctx, src.Id)
		if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
			return api.NotFound(field, src.Id)
		}
		if err != nil {
			return err
		}
		if !c.SeesDevice(projectID, src.Id, group) {
			return api.NotFound(field, src.Id)
		}
	}
	return nil
}

func (s *Service) visible(ctx context.Context, c *api.Caller, id string) (*Task, error) {
	t, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.SeesTask(t.ProjectID, t.ID) {
		return nil, api.NotFound("TaskId", id)
	}
	return t, nil
}
