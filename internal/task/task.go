// Package task runs flows continuously: tasks bind a flow version to
// sources and parameters; the scheduler (one active instance, elected
// through a lease row in the store) places them on worker nodes; workers run
// each task as source → flow → sinks and report status and stats. Roles
// meet only through the store and the bus, so each can run as N replicas.
package task

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Task states (DESIGN §8).
const (
	StatusPending   = "Pending"   // wants to run, not placed yet
	StatusScheduled = "Scheduled" // placed on a node, not running yet
	StatusRunning   = "Running"
	StatusStopping  = "Stopping"
	StatusStopped   = "Stopped"
	StatusFailed    = "Failed"
	StatusCompleted = "Completed" // a batch source (uploads) ran to its end
)

// Desired states.
const (
	DesiredRunning = "running"
	DesiredStopped = "stopped"
)

// checkSources refuses drop policies a source type cannot follow.
func checkSources(sources []pipeline.SourceSpec) error {
	for i, src := range sources {
		if src.Type != "device" && src.DropPolicy == pipeline.DropLatest {
			return api.InvalidValue(fmt.Sprintf("Sources[%d].DropPolicy", i),
				"%q applies to device sources only; a %s source never drops (omit DropPolicy or use %q)", pipeline.DropLatest, src.Type, pipeline.DropNone)
		}
	}
	return nil
}

// Constraints restrict where a task may run.
type Constraints struct {
	// Labels must all be present on the node (e.g. site=gate, gpu=t4).
	Labels map[string]string `json:"Labels,omitempty"`
}

// Task is a task row.
type Task struct {
	ID, ProjectID, Name, Description string
	FlowID                           string
	FlowVersion                      int64
	Sources                          []pipeline.SourceSpec
	Parameters                       map[string]any
	Constraints                      Constraints
	Desired, Status, Reason, NodeID  string
	Epoch                            int64
	Stats                            json.RawMessage
	CreatedAt, UpdatedAt             time.Time
	// EdgeNode is the edge node that runs the task ("" on the cloud's own
	// workers); EdgeVersion and EdgeError are what the node last reported:
	// the flow version it runs and its last error applying the task.
	EdgeNode, EdgeError string
	EdgeVersion         int64
}

// Service is the task center's control side: the rows and their state
// transitions. The scheduler and the workers drive the rest.
type Service struct {
	db  *store.DB
	log *slog.Logger
	now func() time.Time
	// Flows checks that a flow version exists and returns its latest
	// version number (0: latest wanted).
	flows FlowLookup
	// devices finds the devices tasks read from; nil until
	// SetDeviceLocator.
	devices DeviceLocator
	// live serves the live view; nil until NewLive.
	live *Live
	// quotas bounds a project's tasks; nil until UseQuotas.
	quotas api.Quotas
	// lockFlows and lockDevices lock what a new task uses in its insert
	// transaction; nil until SetUseLocks.
	lockFlows, lockDevices UseLock
	// params checks a new task's parameters; nil until SetParamCheck.
	params ParamCheck
	// edgeCheck and deviceEdge place tasks on edge nodes; nil until
	// SetEdgePlacement.
	edgeCheck  EdgeCheck
	deviceEdge DeviceEdge
}

// EdgeCheck answers ResourceNotFound naming EdgeNodeId when the edge node
// is not one of the project's.
type EdgeCheck func(ctx context.Context, projectID, nodeID string) error

// DeviceEdge returns the edge node a device belongs to ("" for none).
type DeviceEdge func(ctx context.Context, deviceID string) (string, error)

// SetEdgePlacement lets Create place tasks on edge nodes: a task takes
// its devices' edge node, or the one it names. Call it before the service
// serves.
func (s *Service) SetEdgePlacement(check EdgeCheck, deviceEdge DeviceEdge) {
	s.edgeCheck, s.deviceEdge = check, deviceEdge
}

// UseLock locks, in tx, the rows of the things a new task uses (its flow,
// its devices), answering ResourceNotFound for one that is gone. The
// center that owns them provides it and locks the row again when it
// deletes one, so that the task's insert and the delete are one decision:
// the delete sees the task, or the task finds the thing gone.
type UseLock func(ctx context.Context, tx *store.Tx, ids []string) error

// SetUseLocks makes Create lock the task's flow and devices in the
// transaction that inserts it. Call it before the service serves.
func (s *Service) SetUseLocks(flows, devices UseLock) { s.lockFlows, s.lockDevices = flows, devices }

// ParamCheck checks a task's parameters against those its flow version
// declares: unknown names and wrong types answer InvalidParameterValue,
// missing required ones MissingParameter, each naming Parameters.<name>.
type ParamCheck func(ctx context.Context, flowID string, version int64, params map[string]any) error

// SetParamCheck makes Create check parameters when the task is created,
// not when it starts. Call it before the service serves.
func (s *Service) SetParamCheck(f ParamCheck) { s.params = f }

// UseQuotas makes Create refuse a task beyond its project's quota of
// tasks. Call it before the service serves (like SetDeviceLocator).
func (s *Service) UseQuotas(q api.Quotas) { s.quotas = q }

// FlowLookup resolves a flow version (0 = latest) to its number.
type FlowLookup func(ctx context.Context, flowID string, version int64) (int64, string, error)

// DeviceLocator returns a device's project and group; the device center
// provides it. Its error for an unknown id is the center's ResourceNotFound.
type DeviceLocator func(ctx context.Context, deviceID string) (projectID, group string, err error)

// SetDeviceLocator lets CreateTask check the devices a task reads from
// against the caller's reach (a role narrowed to some devices may start
// tasks only on those). Call it before the service serves.
func (s *Service) SetDeviceLocator(f DeviceLocator) { s.devices = f }

// NewService returns the task service.
func NewService(db *store.DB, flows FlowLookup, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, log: log, now: now, flows: flows}
}

// Create stores a task in state Stopped (or Pending when start is set).
func (s *Service) Create(ctx context.Context, t *Task, start bool) error {
	if t.ProjectID == "" {
		t.ProjectID = "default"
	}
	if err := checkSources(t.Sources); err != nil {
		return err
	}
	v, flowProject, err := s.flows(ctx, t.FlowID, t.FlowVersion)
	if err != nil {
		return err
	}
	if flowProject != t.ProjectID {
		return api.Errorf(api.InvalidParameterValue, "FlowId: flow %s belongs to project %s, not %s", t.FlowID, flowProject, t.ProjectID)
	}
	t.FlowVersion = v
	if s.params != nil {
		if err := s.params(ctx, t.FlowID, v, t.Parameters); err != nil {
			return err
		}
	}
	if err := s.placeOnEdge(ctx, t); err != nil {
		return err
	}
	t.ID = ids.New("task")
	t.Desired, t.Status = DesiredStopped, StatusStopped
	if start {
		t.Desired, t.Status = DesiredRunning, StatusPending
	}
	now := s.now()
	t.CreatedAt, t.UpdatedAt = now, now
	err = api.InsertWithinQuota(ctx, s.db, s.quotas, t.ProjectID, api.QuotaTasks, "SELECT COUNT(*) FROM tasks WHERE project_id = ?", func(tx *store.Tx) error {
		if err := s.lockUses(ctx, tx, t); err != nil {
			return err
		}
		if err := s.insertTask(ctx, tx, t); err != nil {
			return fmt.Errorf("task: insert: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.Event(ctx, t.ID, "created", "", fmt.Sprintf("flow %s version %d", t.FlowID, t.FlowVersion))
	s.log.InfoContext(ctx, "task created", "task", t.ID, "flow", t.FlowID, "version", t.FlowVersion, "start", start)
	return nil
}

// placeOnEdge sets t's edge node from its device sources, which must all
// be of one site, or checks the one it names against the project's.
func (s *Service) placeOnEdge(ctx context.Context, t *Task) error {
	if s.deviceEdge != nil {
		for i, src := range t.Sources {
			if src.Type != "device" {
				continue
			}
			node, err := s.deviceEdge(ctx, src.Id)
			if err != nil {
				return err
			}
			if node != "" && t.EdgeNode == "" {
				t.EdgeNode = node
			} else if node != t.EdgeNode {
				return api.InvalidValue(fmt.Sprintf("Sources[%d].Id", i), "device %s is on edge node %q, the task on %q: a task runs at one site", src.Id, node, t.EdgeNode)
			}
		}
	}
	if t.EdgeNode == "" {
		return nil
	}
	if s.edgeCheck == nil {
		return api.InvalidValue("EdgeNodeId", "this platform places no tasks on edge nodes")
	}
	return s.edgeCheck(ctx, t.ProjectID, t.EdgeNode)
}

// insertTask writes the task's row in tx.
func (s *Service) insertTask(ctx context.Context, tx *store.Tx, t *Task) error {
	src, _ := json.Marshal(t.Sources)
	par, _ := json.Marshal(t.Parameters)
	con, _ := json.Marshal(t.Constraints)
	_, err := tx.Exec(ctx, `INSERT INTO tasks (id, project_id, name, description, flow_id, flow_version, sources, parameters, constraints,
		desired_state, status, reason, node_id, epoch, stats, created_at, updated_at, edge_node)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', 0, '{}', ?, ?, ?)`,
		t.ID, t.ProjectID, t.Name, t.Description, t.FlowID, t.FlowVersion, string(src), string(par), string(con),
		t.Desired, t.Status, t.CreatedAt.UnixMilli(), t.UpdatedAt.UnixMilli(), t.EdgeNode)
	return err
}

// lockUses locks the flow and the devices t uses (SetUseLocks), flow
// first, in every task's creation alike.
func (s *Service) lockUses(ctx context.Context, tx *store.Tx, t *Task) error {
	if s.lockFlows != nil {
		if err := s.lockFlows(ctx, tx, []string{t.FlowID}); err != nil {
			return err
		}
	}
	if s.lockDevices == nil {
		return nil
	}
	var devices []string
	for _, src := range t.Sources {
		if src.Type == "device" {
			devices = append(devices, src.Id)
		}
	}
	return s.lockDevices(ctx, tx, devices)
}

const taskColumns = `id, project_id, name, description, flow_id, flow_version, sources, parameters, constraints,
	desired_state, status, reason, node_id, epoch, stats, created_at, updated_at, edge_node, edge_version, edge_error`

func scanTask(sc interface{ Scan(...any) error }) (*Task, error) {
	var t Task
	var src, par, con, stats string
	var c, u int64
	if err := sc.Scan(&t.ID, &t.ProjectID, &t.Name, &t.Description, &t.FlowID, &t.FlowVersion, &src, &par, &con,
		&t.Desired, &t.Status, &t.Reason, &t.NodeID, &t.Epoch, &stats, &c, &u, &t.EdgeNode, &t.EdgeVersion, &t.EdgeError); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(src), &t.Sources)
	_ = json.Unmarshal([]byte(par), &t.Parameters)
	_ = json.Unmarshal([]byte(con), &t.Constraints)
	t.Stats = json.RawMessage(stats)
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
	return &t, nil
}

// Get returns a task.
func (s *Service) Get(ctx context.Context, id string) (*Task, error) {
	t, err := scanTask(s.db.QueryRow(ctx, "SELECT "+taskColumns+" FROM tasks WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("TaskId", id)
	}
	return t, err
}

// Start asks for a task to run; the scheduler places it.
func (s *Service) Start(ctx context.Context, id string) error {
	t, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if t.Desired == DesiredRunning && t.Status != StatusFailed {
		return nil // already starting or running
	}
	if t.Status == StatusStopping {
		return api.Errorf(api.ResourceInUse, "TaskId: task %s is stopping; start it again once it is Stopped", id)
	}
	if t.EdgeNode != "" && s.edgeCheck != nil {
		// The node may have been deleted since the task was placed on it.
		if err := s.edgeCheck(ctx, t.ProjectID, t.EdgeNode); err != nil {
			if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
				return api.Errorf(api.ResourceNotFound, "EdgeNodeId: task %s runs on edge node %s, which was deleted; create the task anew for another site", id, t.EdgeNode)
			}
			return err
		}
	}
	_, err = s.db.Exec(ctx, `UPDATE tasks SET desired_state = ?, status = ?, reason = '', node_id = '', updated_at = ? WHERE id = ?`,
		DesiredRunning, StatusPending, s.now().UnixMilli(), id)
	if err == nil {
		s.Event(ctx, id, "start_requested", "", "")
	}
	return err
}

// Stop asks for a task to stop; its worker stops it.
func (s *Service) Stop(ctx context.Context, id string) error {
	t, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	status := StatusStopping
	if t.NodeID == "" && (t.EdgeNode == "" || t.Status == StatusPending) {
		status = StatusStopped
	}
	if t.Status == StatusStopped || t.Status == StatusCompleted || t.Status == StatusFailed {
		status = t.Status
	}
	_, err = s.db.Exec(ctx, `UPDATE tasks SET desired_state = ?, status = ?, updated_at = ? WHERE id = ?`,
		DesiredStopped, status, s.now().UnixMilli(), id)
	if err == nil {
		s.Event(ctx, id, "stop_requested", "", "")
	}
	return err
}

// Delete removes a stopped task, its events and its sources' checkpoints.
func (s *Service) Delete(ctx context.Context, id string) error {
	t, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if t.Desired == DesiredRunning || t.Status == StatusStopping {
		return api.Errorf(api.ResourceInUse, "TaskId: task %s is %s; stop it first", id, t.Status)
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM task_events WHERE task_id = ?", id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM task_checkpoints WHERE task_id = ?", id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM tasks WHERE id = ?", id)
		return err
	})
}

// UsesFlow reports whether any task uses a flow (it then cannot be
// deleted), in tx: the flow's delete transaction.
func (s *Service) UsesFlow(ctx context.Context, tx *store.Tx, flowID string) (bool, error) {
	var n int
	err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM tasks WHERE flow_id = ?", flowID).Scan(&n)
	return n > 0, err
}

// List returns the tasks in what in covers (a caller's ListIn, or
// store.OneProject), newest first, and how many there are in all: one
// query over every project in it, so that the total and the page are the
// union's.
func (s *Service) List(ctx context.Context, in store.Projects, taskIDs, statuses, flowIDs, nodeIDs []string, offset, limit int) ([]*Task, int, error) {
	var w store.Where
	w.InProjects("project_id", in).In("id", taskIDs).In("status", statuses).In("flow_id", flowIDs).In("node_id", nodeIDs)
	return s.list(ctx, &w, offset, limit)
}

// taskReach is what a role narrowed to sc reaches of a project's tasks,
// whose id is column col: those of its tasks; a role narrowed to devices
// only reaches every task.
func taskReach(col string) api.Reach {
	return func(_ string, sc api.Scope) (string, []any) {
		var w store.Where
		return w.In(col, sc.TaskIDs).Cond()
	}
}

func (s *Service) list(ctx context.Context, w *store.Where, offset, limit int) ([]*Task, int, error) {
	cond, args := w.SQL()
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM tasks"+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.Query(ctx, "SELECT "+taskColumns+" FROM tasks"+cond+" ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?", append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, t)
	}
	return out, total, rows.Err()
}

// Event records a task event; failures are logged, not returned, since
// events explain state and must not change it.
func (s *Service) Event(ctx context.Context, taskID, typ, nodeID, msg string) {
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	_, err := s.db.Exec(ctx, "INSERT INTO task_events (id, task_id, time_ms, type, node_id, message) VALUES (?, ?, ?, ?, ?, ?)",
		eventID(), taskID, s.now().UnixMilli(), typ, nodeID, msg)
	if err != nil {
		s.log.WarnContext(ctx, "task event not recorded", "task", taskID, "type", typ, "err", err)
	}
}

// eventSeq numbers this process's task events, so that its ids sort in
// the order they were recorded.
var eventSeq atomic.Uint64

// eventID returns a task event id that sorts after every earlier one of
// this process: events are listed newest first by time, then by id, and
// two recorded in the same millisecond (a move and its restart) keep
// their order. The random part keeps replicas' ids apart.
func eventID() string {
	return fmt.Sprintf("tev-%016x-%s", eventSeq.Add(1), ids.Random(8, "abcdefghijklmnopqrstuvwxyz0123456789"))
}

// EventRow is one task event.
type EventRow struct {
	Time                time.Time
	Type, Node, Message string
}

// Events returns a task's most recent events, newest first.
func (s *Service) Events(ctx context.Context, taskID string, limit int) ([]EventRow, error) {
	if _, err := s.Get(ctx, taskID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, "SELECT time_ms, type, node_id, message FROM task_events WHERE task_id = ? ORDER BY time_ms DESC, id DESC LIMIT ?", taskID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []EventRow
	for rows.Next() {
		var e EventRow
		var ms int64
		if err := rows.Scan(&ms, &e.Type, &e.Node, &e.Message); err != nil {
			return nil, err
		}
		e.Time = time.UnixMilli(ms).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// MoveToVersion pins a task to another version of its flow (0: the latest),
// with new parameters when params is not nil. The version must exist and
// compile, and the parameters must satisfy the parameters it declares. A
// task that is not running just changes; a running one's worker sees the
// change at its next pass, lets the messages in flight finish, saves the
// sources' positions and continues on the new version from them. It
// returns the versions before and after.
func (s *Service) MoveToVersion(ctx context.Context, id string, version int64, params map[string]any) (from, to int64, err error) {
	t, err := s.Get(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	v, _, err := s.flows(ctx, t.FlowID, version)
	if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
		return 0, 0, api.NotFound("FlowVersion", fmt.Sprintf("%s@%d", t.FlowID, version))
	}
	if err != nil {
		return 0, 0, err
	}
	if params == nil {
		params = t.Parameters
	}
	if s.params != nil {
		if err := s.params(ctx, t.FlowID, v, params); err != nil {
			return 0, 0, err
		}
	}
	par, _ := json.Marshal(params)
	old, _ := json.Marshal(t.Parameters)
	if v == t.FlowVersion && string(par) == string(old) {
		return v, v, nil
	}
	// Decided under the row's lock: of two concurrent moves, the second
	// sees the first's result and answers ResourceInUse.
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var cur int64
		var curPar string
		if err := tx.QueryRow(ctx, "SELECT flow_version, parameters FROM tasks WHERE id = ?"+tx.Dialect().ForUpdate(), id).Scan(&cur, &curPar); err != nil {
			return err
		}
		var now map[string]any
		_ = json.Unmarshal([]byte(curPar), &now)
		if b, _ := json.Marshal(now); cur != t.FlowVersion || string(b) != string(old) {
			return api.Errorf(api.ResourceInUse, "TaskId: task %s changed meanwhile; try again", id)
		}
		_, err := tx.Exec(ctx, "UPDATE tasks SET flow_version = ?, parameters = ?, updated_at = ? WHERE id = ?", v, string(par), s.now().UnixMilli(), id)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, api.NotFound("TaskId", id)
	}
	if err != nil {
		return 0, 0, err
	}
	msg := fmt.Sprintf("flow %s version %d → %d", t.FlowID, t.FlowVersion, v)
	if v == t.FlowVersion {
		msg = fmt.Sprintf("flow %s version %d: parameters changed", t.FlowID, v)
	}
	s.Event(ctx, id, "version_changed", "", msg)
	s.log.InfoContext(ctx, "task moved to a flow version", "task", id, "flow", t.FlowID, "from", t.FlowVersion, "to", v)
	return t.FlowVersion, v, nil
}
