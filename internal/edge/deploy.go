package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tianshu-ai/tianshu/internal/data"
)

// subjectSync is the deploy exchange: the edge sends its reports of the
// tasks the cloud placed on it and gets back the whole desired state.
const subjectSync = "edge.%s.sync" // syncMsg → syncReply

// maxPlaced bounds the tasks of one node's desired state and report.
const maxPlaced = 1000

// DesiredTask is a task the cloud placed on an edge node, as the node
// should run it. Its flow version is one of the reply's Flows.
type DesiredTask struct {
	ID          string          `json:"Id"`
	Name        string          `json:"Name"`
	FlowID      string          `json:"FlowId"`
	FlowVersion int64           `json:"FlowVersion"`
	Sources     json.RawMessage `json:"Sources"`
	Parameters  map[string]any  `json:"Parameters"`
	// Run is the desired state: running, or stopped.
	Run bool `json:"Run"`
}

// FlowVersion is a flow version a desired task uses, sent once per reply.
type FlowVersion struct {
	FlowID   string          `json:"FlowId"`
	Name     string          `json:"Name"`
	Version  int64           `json:"Version"`
	Document json.RawMessage `json:"Document"`
}

func (f FlowVersion) key() string { return f.FlowID + "@" + strconv.FormatInt(f.Version, 10) }

// TaskReport is an edge node's report of a placed task: its local status,
// the flow version it runs, and the last error applying the cloud's state
// (a version that did not validate there, say).
type TaskReport struct {
	ID          string `json:"Id"`
	Status      string `json:"Status"`
	Reason      string `json:"Reason"`
	FlowVersion int64  `json:"FlowVersion"`
	Error       string `json:"Error"`
}

// DeviceReport is an edge node's report of one of its devices, as its own
// device center shows it: the cloud shows it in DescribeDevices. Times
// are the edge's clock.
type DeviceReport struct {
	ID          string  `json:"Id"`
	Status      string  `json:"Status"`
	Reason      string  `json:"Reason"`
	LastError   string  `json:"LastError"`
	LastFrameMs int64   `json:"LastFrameMs"`
	MeasuredFps float64 `json:"MeasuredFps"`
}

type syncMsg struct {
	Tasks   []TaskReport   `json:"Tasks"`
	Devices []DeviceReport `json:"Devices"`
}

// DesiredDevice is a device of an edge node, with its credentials: the
// edge needs them to reach the camera (the link is TLS; the edge seals
// them at rest with its own key).
type DesiredDevice struct {
	ID          string          `json:"Id"`
	Name        string          `json:"Name"`
	Description string          `json:"Description"`
	Driver      string          `json:"Driver"`
	Address     string          `json:"Address"`
	Username    string          `json:"Username"`
	Password    string          `json:"Password"`
	Options     map[string]any  `json:"Options"`
	Fps         float64         `json:"Fps"`
	Width       int             `json:"Width"`
	Group       string          `json:"Group"`
	Zones       json.RawMessage `json:"Zones"`
}

// DesiredAlgorithm is an algorithm version a pushed flow version calls:
// its definition as the cloud stores it, and the artifacts (install
// package, model files) the definition names by blob key, which the edge
// fetches over the link (subjectArtifact) when it lacks them.
type DesiredAlgorithm struct {
	AlgorithmID string          `json:"AlgorithmId"`
	Name        string          `json:"Name"`
	Version     string          `json:"Version"`
	Definition  json.RawMessage `json:"Definition"`
	// Current says a flow node names the algorithm without a version:
	// this version must be the edge's current one.
	Current   bool       `json:"Current"`
	Artifacts []Artifact `json:"Artifacts"`
	// Secrets are the values of the definition's secretNames: the link is
	// TLS and only the node's own replies reach it; the edge seals them
	// under its own master key and never shows them.
	Secrets map[string]string `json:"Secrets,omitempty"`
	// Flows are the flow versions ("flow@version") that call it.
	Flows []string `json:"Flows"`
}

// Key is the version's "id@version".
func (a DesiredAlgorithm) Key() string { return a.AlgorithmID + "@" + a.Version }

// Artifact is a blob of the cloud's an algorithm version needs.
type Artifact struct {
	Key  string `json:"Key"`
	Size int64  `json:"Size"`
}

// Desired is an edge node's whole desired state: its devices, its tasks,
// the flow versions they use and the algorithm versions those call.
type Desired struct {
	Devices    []DesiredDevice    `json:"Devices"`
	Algorithms []DesiredAlgorithm `json:"Algorithms"`
	Tasks      []DesiredTask      `json:"Tasks"`
	Flows      []FlowVersion      `json:"Flows"`
}

type syncReply struct {
	Desired
	Error string `json:"Error,omitempty"`
}

// Placement is the cloud's side of deploy: the tasks it placed on a node,
// with the flow versions they use, and where a node's reports go. A report
// names a task of the node; others must change nothing.
type Placement interface {
	Desired(ctx context.Context, node string) (Desired, error)
	Report(ctx context.Context, node string, r TaskReport) error
	// ReportDevice stores the status of a device of the node; a device
	// of another node must change nothing.
	ReportDevice(ctx context.Context, node string, r DeviceReport) error
	// WatchlistVersion returns the watchlist version of a node's
	// project (the hub has read the node already).
	WatchlistVersion(ctx context.Context, project string) (string, error)
	// Watchlists returns the watchlist set of a node's project; a set
	// over maxBytes is an error wrapping data.ErrWatchlistsTooLarge.
	Watchlists(ctx context.Context, project string, maxBytes int) (data.WatchlistSet, error)
}

// Site is the edge's side: ApplyDevice makes the local device match d;
// ApplyAlgorithm makes algorithm version a run here, reading the artifacts
// it lacks with fetch, and RetireAlgorithm stops a version the cloud no
// longer wants here (its artifacts stay, so a rollback restarts it without
// a download); Apply makes the local task match d, creating f here first
// when it is new, and changes nothing when f does not validate here (the
// task keeps its version); applying what already holds must restart
// nothing. Report returns the local state of a task.
type Site interface {
	ApplyDevice(ctx context.Context, d DesiredDevice) error
	ApplyAlgorithm(ctx context.Context, a DesiredAlgorithm, fetch Fetch) error
	RetireAlgorithm(ctx context.Context, algorithmID, version string) error
	Apply(ctx context.Context, d DesiredTask, f FlowVersion) error
	Report(ctx context.Context, taskID string) (TaskReport, error)
	// DeviceReport returns the local status of a device.
	DeviceReport(ctx context.Context, deviceID string) (DeviceReport, error)
	// ApplyWatchlists makes set the edge's watchlists, whole and at once
	// (the edge's own lists are replaced); on an error nothing changed.
	ApplyWatchlists(ctx context.Context, set data.WatchlistSet) error
}

// sync handles a node's deploy exchange on the hub.
func (h *HubServer) sync(node string, m *nats.Msg) any {
	if h.o.Placement == nil {
		return syncReply{Error: "this cloud places no tasks on edge nodes"}
	}
	var in syncMsg
	if err := json.Unmarshal(m.Data, &in); err != nil || len(in.Tasks) > maxPlaced || len(in.Devices) > maxPlaced {
		return syncReply{Error: fmt.Sprintf("sync: not a report of at most %d tasks and %d devices", maxPlaced, maxPlaced)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, err := h.o.Nodes.joined(ctx, node); err != nil || !ok {
		// Deleted while its link was still up: nothing it says counts.
		return syncReply{Error: "edge node " + node + " is not a joined node"}
	}
	for _, r := range in.Tasks {
		if err := h.o.Placement.Report(ctx, node, r); err != nil {
			h.log.Warn("edge task report not stored", "node", node, "task", r.ID, "err", err)
		}
	}
	for _, r := range in.Devices {
		if err := h.o.Placement.ReportDevice(ctx, node, r); err != nil {
			h.log.Warn("edge device report not stored", "node", node, "device", r.ID, "err", err)
		}
	}
	d, err := h.o.Placement.Desired(ctx, node)
	if err != nil {
		h.log.Error("edge desired state failed", "node", node, "err", err)
		return syncReply{Error: "desired state: " + err.Error()}
	}
	h.allow(node, d)
	return syncReply{Desired: d}
}

// deploy asks the cloud for the desired state every heartbeat and applies
// it. The state is whole each time, kept in the cloud's store: whatever
// changed while the link was down is applied at the first exchange after,
// and applying an unchanged state changes nothing.
func (l *Link) deploy(ctx context.Context) {
	subject := fmt.Sprintf(subjectSync, l.cred.NodeID)
	t := time.NewTicker(l.o.Config.Heartbeat)
	defer t.Stop()
	var placed, devices []string
	failed := map[string]string{} // task → its last error applying
	// algorithm versions applied here, by "id@version": those the next
	// state leaves out are retired. The list is on disk: an edge that
	// restarts while the cloud is away still retires, at the first
	// exchange after, what it applied before.
	// The watchlist version applied here is kept with them: an edge that
	// restarts does not fetch an unchanged set again.
	algs, lists := l.loadApplied()
	algFailed, lastListErr := map[string]string{}, ""
	for {
		msg := syncMsg{}
		for _, id := range placed {
			r, err := l.o.Site.Report(ctx, id)
			if err != nil {
				if failed[id] == "" {
					continue
				}
				// Not on this node at all: its first apply failed (a
				// flow that does not compile here), and that error is
				// what the cloud must hear. The task waits (task
				// status Pending) for a state that applies.
				r = TaskReport{Status: "Pending"}
			}
			r.ID, r.Error = id, failed[id]
			msg.Tasks = append(msg.Tasks, r)
		}
		for _, id := range devices {
			if r, err := l.o.Site.DeviceReport(ctx, id); err == nil {
				r.ID = id
				msg.Devices = append(msg.Devices, r)
			}
		}
		if reply, err := l.exchange(ctx, subject, msg); err == nil {
			devErr := map[string]string{}
			devices = devices[:0]
			for _, d := range reply.Devices {
				devices = append(devices, d.ID)
				if err := l.o.Site.ApplyDevice(ctx, d); err != nil {
					devErr[d.ID] = "device " + d.ID + ": " + err.Error()
				}
			}
			before, listsBefore := strings.Join(slices.Sorted(maps.Keys(algs)), " "), lists
			algErr := l.applyAlgorithms(ctx, reply.Algorithms, algs, algFailed)
			// Before the tasks, so that a new match task starts with the
			// lists; a task with a match node hears why they are not the
			// cloud's (its task runs on with the last set applied).
			var listErr error
			if lists, listErr = l.syncWatchlists(ctx, lists); listErr != nil && listErr.Error() != lastListErr {
				l.log.Warn("edge watchlists not synced", "err", listErr)
			}
			lastListErr = ""
			if listErr != nil {
				lastListErr = listErr.Error()
			}
			if after := slices.Sorted(maps.Keys(algs)); strings.Join(after, " ") != before || lists != listsBefore {
				if err := l.saveApplied(appliedState{Algorithms: after, Watchlists: lists}); err != nil {
					l.log.Error("edge applied versions not saved", "err", err)
				}
			}
			placed = placed[:0]
			flows := map[string]FlowVersion{}
			for _, f := range reply.Flows {
				flows[f.key()] = f
			}
			for _, d := range reply.Tasks {
				placed = append(placed, d.ID)
				f, ok := flows[FlowVersion{FlowID: d.FlowID, Version: d.FlowVersion}.key()]
				err := errors.New("the cloud sent no document for the task's flow version")
				if ok {
					err = l.o.Site.Apply(ctx, d, f)
				}
				if e := sourceErrors(d, devErr); e != "" && err == nil {
					err = errors.New(e)
				}
				if e := algErr[f.key()]; e != "" && err != nil {
					err = fmt.Errorf("%w (%s)", err, e)
				}
				if listErr != nil && ok && f.matches() {
					err = errors.Join(err, listErr)
				}
				if err != nil {
					if failed[d.ID] != err.Error() {
						l.log.Warn("edge task not applied", "task", d.ID, "flow", d.FlowID, "version", d.FlowVersion, "err", err)
					}
					failed[d.ID] = err.Error()
				} else {
					delete(failed, d.ID)
				}
			}
			l.setDeployed(ctx, reply.Tasks, algs)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *Link) exchange(ctx context.Context, subject string, msg syncMsg) (*syncReply, error) {
	body, _ := json.Marshal(msg)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := l.nc.RequestWithContext(rctx, subject, body)
	if err != nil {
		return nil, err
	}
	var r syncReply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, err
	}
	if r.Error != "" {
		return nil, errors.New(r.Error)
	}
	return &r, nil
}

// sourceErrors is why the devices d reads from were not applied, if any
// of them failed.
func sourceErrors(d DesiredTask, devErr map[string]string) string {
	if len(devErr) == 0 {
		return ""
	}
	var src []struct{ Type, Id string }
	_ = json.Unmarshal(d.Sources, &src)
	for _, s := range src {
		if e := devErr[s.Id]; s.Type == "device" && e != "" {
			return e
		}
	}
	return ""
}

// applyAlgorithms applies the algorithm versions of a desired state and
// retires those applied before that it no longer names; applied is
// updated. It returns, by flow version key, why a version it calls could
// not be applied (joined to the flow's own error, which says which node).
func (l *Link) applyAlgorithms(ctx context.Context, want []DesiredAlgorithm, applied map[string]bool, lastErr map[string]string) map[string]string {
	errs := map[string]string{}
	keep := map[string]bool{}
	for _, a := range want {
		keep[a.Key()] = true
		if err := l.o.Site.ApplyAlgorithm(ctx, a, l.fetch); err != nil {
			msg := "algorithm " + a.Key() + ": " + err.Error()
			for _, f := range a.Flows {
				errs[f] = msg
			}
			if !applied[a.Key()] || lastErr[a.Key()] != msg {
				l.log.Warn("edge algorithm not applied", "algorithm", a.AlgorithmID, "version", a.Version, "err", err)
			}
			lastErr[a.Key()] = msg
			continue
		}
		delete(lastErr, a.Key())
		if !applied[a.Key()] {
			l.log.Info("edge algorithm applied", "algorithm", a.AlgorithmID, "version", a.Version)
		}
		applied[a.Key()] = true
	}
	for key := range applied {
		if keep[key] {
			continue
		}
		id, version, _ := strings.Cut(key, "@")
		if err := l.o.Site.RetireAlgorithm(ctx, id, version); err != nil {
			l.log.Warn("edge algorithm not retired", "algorithm", id, "version", version, "err", err)
			continue
		}
		delete(applied, key)
		l.log.Info("edge algorithm retired", "algorithm", id, "version", version)
	}
	return errs
}

// setDeployed records what the node runs of the cloud's, for its
// heartbeats: "flow/<id>" → the versions its tasks run, "algorithm/<id>"
// → the versions applied here, each a sorted list.
func (l *Link) setDeployed(ctx context.Context, tasks []DesiredTask, algs map[string]bool) {
	vs := map[string][]string{}
	for _, d := range tasks {
		if r, err := l.o.Site.Report(ctx, d.ID); err == nil && r.FlowVersion > 0 {
			vs["flow/"+d.FlowID] = append(vs["flow/"+d.FlowID], strconv.FormatInt(r.FlowVersion, 10))
		}
	}
	for key := range algs {
		id, version, _ := strings.Cut(key, "@")
		vs["algorithm/"+id] = append(vs["algorithm/"+id], version)
	}
	out := make(map[string]string, len(vs))
	for k, list := range vs {
		slices.Sort(list)
		out[k] = strings.Join(slices.Compact(list), ",")
	}
	l.deployedMu.Lock()
	l.deployed = out
	l.deployedMu.Unlock()
}

// versions are what a heartbeat reports: the binary's, then what was
// deployed here, within what the cloud takes (maxVersions entries of at
// most 128 bytes each), by name.
func (l *Link) versions() map[string]string {
	out := maps.Clone(l.o.Versions)
	if out == nil {
		out = map[string]string{}
	}
	l.deployedMu.Lock()
	defer l.deployedMu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(l.deployed)) {
		v := l.deployed[k]
		if len(out) >= maxVersions {
			break
		}
		if len(k) <= 128 && len(v) <= 128 {
			out[k] = v
		}
	}
	return out
}

// appliedFile keeps the algorithm versions the edge applied of the
// cloud's (<data dir>/edge/applied.json).
func appliedFile(dir string) string { return filepath.Join(dir, "applied.json") }

type appliedState struct {
	// Algorithms are "id@version".
	Algorithms []string `json:"Algorithms"`
	// Watchlists is the version of the cloud's watchlists applied here.
	Watchlists string `json:"Watchlists,omitempty"`
}

// loadApplied reads the applied algorithm versions and watchlist version;
// a missing or unreadable file is none (logged: the versions it named are
// then retired only once wanted and unwanted again, and the watchlists
// are fetched again).
func (l *Link) loadApplied() (algs map[string]bool, lists string) {
	out := map[string]bool{}
	b, err := os.ReadFile(appliedFile(l.o.Dir))
	if errors.Is(err, os.ErrNotExist) {
		return out, ""
	}
	var st appliedState
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		l.log.Error("edge applied versions not read", "err", err)
		return out, ""
	}
	for _, k := range st.Algorithms {
		out[k] = true
	}
	return out, st.Watchlists
}

// saveApplied writes the applied versions atomically and durably: a kill
// -9 leaves the old list or the new one.
func (l *Link) saveApplied(st appliedState) error {
	b, _ := json.Marshal(st)
	tmp := appliedFile(l.o.Dir) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, appliedFile(l.o.Dir)); err != nil {
		return err
	}
	if d, err := os.Open(l.o.Dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
