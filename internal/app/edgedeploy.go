package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/edge"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/task"
)

// edgeOfProject answers ResourceNotFound naming EdgeNodeId unless node is
// an edge node of the project.
func (p *Platform) edgeOfProject(ctx context.Context, projectID, node string) error {
	n, err := p.EdgeNodes.Get(ctx, node)
	if err != nil {
		return err
	}
	if n.ProjectID != projectID {
		return api.NotFound("EdgeNodeId", node)
	}
	return nil
}

// deviceEdge returns the edge node of a device.
func (p *Platform) deviceEdge(ctx context.Context, deviceID string) (string, error) {
	d, err := p.Devices.Get(ctx, deviceID)
	if err != nil {
		return "", err
	}
	return d.EdgeNode, nil
}

// unplaceEdge stops the tasks of an edge node being deleted and takes its
// devices off it.
func (p *Platform) unplaceEdge(ctx context.Context, node string) (devices, tasks int, err error) {
	if tasks, err = p.Tasks.StopEdge(ctx, node, "edge node "+node+" deleted"); err != nil {
		return 0, 0, err
	}
	devices, err = p.Devices.UnplaceEdge(ctx, node)
	return devices, tasks, err
}

// cloudPlacement is the cloud's side of deploy: the tasks placed on edge
// nodes, with their flow versions, from the task service and the studio.
type cloudPlacement struct{ p *Platform }

func (c cloudPlacement) Desired(ctx context.Context, node string) (edge.Desired, error) {
	var out edge.Desired
	devs, _, err := c.p.Devices.List(ctx, devicecenter.Filter{Projects: store.Projects{All: true}, EdgeNodes: []string{node}}, 0, maxEdgeDevices)
	if err != nil {
		return out, err
	}
	for _, d := range devs {
		// List masks credentials; Get has them.
		full, err := c.p.Devices.Get(ctx, d.ID)
		if err != nil {
			return out, err
		}
		zones, _ := json.Marshal(full.Zones)
		out.Devices = append(out.Devices, edge.DesiredDevice{ID: full.ID, Name: full.Name, Description: full.Description,
			Driver: full.Config.Driver, Address: full.Config.Address, Username: full.Config.Username, Password: full.Config.Password,
			Options: full.Config.Options, Fps: full.Config.FPS, Width: full.Config.Width, Group: full.Group, Zones: zones})
	}
	ts, err := c.p.Tasks.EdgeTasks(ctx, node)
	if err != nil {
		return out, err
	}
	tasks := make([]edge.DesiredTask, 0, len(ts))
	var flows []edge.FlowVersion
	seen := map[string]bool{}
	for _, t := range ts {
		src, _ := json.Marshal(t.Sources)
		tasks = append(tasks, edge.DesiredTask{ID: t.ID, Name: t.Name, FlowID: t.FlowID, FlowVersion: t.FlowVersion,
			Sources: src, Parameters: t.Parameters, Run: t.Desired == task.DesiredRunning})
		key := fmt.Sprintf("%s@%d", t.FlowID, t.FlowVersion)
		if seen[key] {
			continue
		}
		seen[key] = true
		f, err := c.p.Studio.Get(ctx, t.FlowID)
		if err != nil {
			return out, err
		}
		v, err := c.p.Studio.GetVersion(ctx, t.FlowID, t.FlowVersion)
		if err != nil {
			return out, err
		}
		flows = append(flows, edge.FlowVersion{FlowID: t.FlowID, Name: f.Name, Version: v.Version, Document: v.Document})
	}
	out.Tasks, out.Flows = tasks, flows
	out.Algorithms, err = c.algorithms(ctx, flows)
	return out, err
}

// algorithms returns the algorithm versions the flow versions call, with
// the artifacts they need; built-in algorithms every edge has.
func (c cloudPlacement) algorithms(ctx context.Context, flows []edge.FlowVersion) ([]edge.DesiredAlgorithm, error) {
	var out []edge.DesiredAlgorithm
	index := map[string]int{}
	for _, f := range flows {
		refs, err := c.p.Studio.AlgorithmRefs(ctx, f.FlowID, f.Version)
		if err != nil {
			return nil, err
		}
		for _, ref := range refs {
			a, err := c.p.Algos.Get(ctx, ref.ID)
			if err != nil {
				return nil, fmt.Errorf("flow %s version %d calls %s: %w", f.FlowID, f.Version, ref.ID, err)
			}
			if a.Builtin {
				continue
			}
			row, err := c.p.Algos.GetVersion(ctx, ref.ID, ref.Version)
			if err != nil {
				return nil, fmt.Errorf("flow %s version %d calls %s: %w", f.FlowID, f.Version, ref.ID, err)
			}
			key := ref.ID + "@" + row.Def.Version
			i, ok := index[key]
			if !ok {
				arts, err := c.artifacts(ctx, row.Def)
				if err != nil {
					return nil, fmt.Errorf("algorithm %s: %w", key, err)
				}
				secrets, err := c.p.Algos.VersionSecrets(ctx, row.Def)
				if err != nil {
					return nil, fmt.Errorf("algorithm %s: %w", key, err)
				}
				def, _ := json.Marshal(row.Def)
				i = len(out)
				index[key] = i
				out = append(out, edge.DesiredAlgorithm{AlgorithmID: ref.ID, Name: a.Name, Version: row.Def.Version, Definition: def, Artifacts: arts, Secrets: secrets})
			}
			out[i].Current = out[i].Current || ref.Version == ""
			out[i].Flows = append(out[i].Flows, fmt.Sprintf("%s@%d", f.FlowID, f.Version))
		}
	}
	return out, nil
}

// artifacts are the blobs a version names: a process version's install
// package and a serving version's model files, when they are blob keys
// (not paths on the cloud's own disk, which no edge can read).
func (c cloudPlacement) artifacts(ctx context.Context, def algorithm.Version) ([]edge.Artifact, error) {
	var out []edge.Artifact
	for _, key := range artifactKeys(&def) {
		info, err := c.p.Blob.Stat(ctx, *key)
		if err != nil {
			return nil, fmt.Errorf("artifact %s: %w", *key, err)
		}
		out = append(out, edge.Artifact{Key: *key, Size: info.Size})
	}
	return out, nil
}

// artifactKeys points at the fields of def that name blobs.
func artifactKeys(def *algorithm.Version) []*string {
	var keys []*string
	blobKey := func(s *string) {
		if *s != "" && !filepath.IsAbs(*s) {
			keys = append(keys, s)
		}
	}
	if def.Runtime == algorithm.RuntimeProcess && def.Serving == nil {
		blobKey(&def.Package)
	}
	if def.Serving != nil {
		blobKey(&def.Serving.Model)
		if def.Serving.Recognition != nil {
			blobKey(&def.Serving.Recognition.Model)
		}
	}
	return keys
}

// edgeArtifactPrefix is where an edge keeps the cloud's artifacts in its
// blob store, under the cloud's keys.
const edgeArtifactPrefix = "edge-artifacts/"

// maxEdgeDevices bounds the devices one edge node is sent.
const maxEdgeDevices = 1000

// knownStatus are the task statuses an edge may report.
var knownStatus = map[string]bool{task.StatusPending: true, task.StatusScheduled: true, task.StatusRunning: true,
	task.StatusStopping: true, task.StatusStopped: true, task.StatusFailed: true, task.StatusCompleted: true}

func (c cloudPlacement) Report(ctx context.Context, node string, r edge.TaskReport) error {
	if !knownStatus[r.Status] {
		return fmt.Errorf("edge: task %s: unknown status %q", r.ID, r.Status)
	}
	return c.p.Tasks.ReportEdge(ctx, node, r.ID, task.EdgeState{Status: r.Status, Reason: r.Reason, Error: r.Error, FlowVersion: r.FlowVersion})
}

// ReportDevice stores what the node says of one of its devices; a device
// of another node is left alone (ResourceNotFound).
func (c cloudPlacement) ReportDevice(ctx context.Context, node string, r edge.DeviceReport) error {
	st := device.Status{DeviceID: r.ID, State: device.State(r.Status), Reason: r.Reason, LastError: r.LastError, MeasuredFPS: r.MeasuredFps}
	if r.LastFrameMs > 0 {
		st.LastFrameTime = time.UnixMilli(r.LastFrameMs)
	}
	return c.p.Devices.ReportEdge(ctx, node, st)
}

// WatchlistVersion is the watchlist version of a node's project.
func (c cloudPlacement) WatchlistVersion(ctx context.Context, project string) (string, error) {
	if err := c.hasData(); err != nil {
		return "", err
	}
	return c.p.Data.WatchlistVersion(ctx, project)
}

// Watchlists is the watchlist set of a node's project.
func (c cloudPlacement) Watchlists(ctx context.Context, project string, maxBytes int) (data.WatchlistSet, error) {
	if err := c.hasData(); err != nil {
		return data.WatchlistSet{}, err
	}
	return c.p.Data.ExportWatchlists(ctx, project, maxBytes)
}

// hasData says why a cloud process without the data center has no
// watchlists to give its nodes.
func (c cloudPlacement) hasData() error {
	if c.p.Data == nil {
		return errors.New("the data center, which keeps the watchlists, does not run in this cloud process")
	}
	return nil
}

// staleEdgeDevices marks unknown, every heartbeat, the devices of edge
// nodes that have not reported for three heartbeats (the nodes' online
// window).
func (p *Platform) staleEdgeDevices(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Edge.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := p.Devices.StaleEdge(ctx, p.now().Add(-3*p.cfg.Edge.Heartbeat)); err != nil {
			p.log.Warn("edge devices not marked stale", "err", err)
		} else if n > 0 {
			p.log.Info("edge devices marked stale", "devices", n)
		}
	}
}

// edgeSite is the edge's side of deploy: the cloud's flow versions go
// into the studio under their ids and numbers, its tasks into the task
// service under theirs, all in the edge's default project.
type edgeSite struct{ p *Platform }

func (s edgeSite) ApplyDevice(ctx context.Context, d edge.DesiredDevice) error {
	var zones []devicecenter.Zone
	if len(d.Zones) > 0 {
		if err := json.Unmarshal(d.Zones, &zones); err != nil {
			return fmt.Errorf("zones: %w", err)
		}
	}
	return s.p.Devices.Import(ctx, &devicecenter.Device{ID: d.ID, ProjectID: "default", Name: d.Name, Description: d.Description,
		Group: d.Group, Zones: zones, Config: device.Config{Driver: d.Driver, Address: d.Address, Username: d.Username,
			Password: d.Password, Options: d.Options, FPS: d.Fps, Width: d.Width}})
}

// ApplyAlgorithm fetches the artifacts of a pushed algorithm version that
// this edge lacks into its blob store, points the definition at them and
// imports the version under the cloud's ids into the default project,
// running.
func (s edgeSite) ApplyAlgorithm(ctx context.Context, a edge.DesiredAlgorithm, fetch edge.Fetch) error {
	var def algorithm.Version
	if err := json.Unmarshal(a.Definition, &def); err != nil {
		return fmt.Errorf("definition: %w", err)
	}
	if def.Version != a.Version {
		return fmt.Errorf("definition of version %q sent as %q", def.Version, a.Version)
	}
	sizes := map[string]int64{}
	for _, art := range a.Artifacts {
		sizes[art.Key] = art.Size
	}
	for _, key := range artifactKeys(&def) {
		size, ok := sizes[*key]
		if !ok {
			return fmt.Errorf("artifact %s not sent", *key)
		}
		local := edgeArtifactPrefix + *key
		if info, err := s.p.Blob.Stat(ctx, local); err != nil || info.Size != size {
			if err := s.download(ctx, fetch, *key, local, size); err != nil {
				return err
			}
		}
		*key = local
	}
	def.Secrets = a.Secrets
	return s.p.Algos.Import(ctx, "default", a.AlgorithmID, a.Name, def, a.Current)
}

// download copies an artifact of the cloud's into this edge's blob store.
func (s edgeSite) download(ctx context.Context, fetch edge.Fetch, key, local string, size int64) error {
	if size > s.p.cfg.Worker.MaxPackageBytes && s.p.cfg.Worker.MaxPackageBytes > 0 {
		return fmt.Errorf("artifact %s: %d bytes, over this edge's --worker.max-package-bytes", key, size)
	}
	rc, err := fetch(ctx, key)
	if err != nil {
		return fmt.Errorf("artifact %s: %w", key, err)
	}
	defer rc.Close()
	info, err := s.p.Blob.Put(ctx, local, io.LimitReader(rc, size), blob.PutOptions{ContentType: "application/octet-stream", Size: size})
	if err != nil {
		return fmt.Errorf("artifact %s: %w", key, err)
	}
	if info.Size != size {
		_ = s.p.Blob.Delete(ctx, local)
		return fmt.Errorf("artifact %s: got %d of %d bytes", key, info.Size, size)
	}
	s.p.log.Info("edge artifact fetched", "key", key, "bytes", size)
	return nil
}

// RetireAlgorithm stops a pushed version no task here calls any more; its
// artifacts stay for a rollback.
func (s edgeSite) RetireAlgorithm(ctx context.Context, algorithmID, version string) error {
	err := s.p.Algos.SetDesired(ctx, algorithmID, version, algorepo.Stopped)
	if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
		return nil
	}
	return err
}

func (s edgeSite) Apply(ctx context.Context, d edge.DesiredTask, f edge.FlowVersion) error {
	version, params := d.FlowVersion, d.Parameters
	ierr := s.p.Studio.Import(ctx, "default", f.FlowID, f.Name, f.Version, f.Document)
	if ierr != nil {
		// The task keeps the version it runs; the rest of its desired
		// state (stop, start) still applies.
		cur, err := s.p.Tasks.Get(ctx, d.ID)
		if err != nil {
			return ierr
		}
		version, params = cur.FlowVersion, nil
	}
	var sources []pipeline.SourceSpec
	if err := json.Unmarshal(d.Sources, &sources); err != nil {
		return fmt.Errorf("edge: task %s: sources: %w", d.ID, err)
	}
	desired := task.DesiredStopped
	if d.Run {
		desired = task.DesiredRunning
	}
	err := s.p.Tasks.Apply(ctx, &task.Task{ID: d.ID, ProjectID: "default", Name: d.Name, FlowID: d.FlowID,
		FlowVersion: version, Sources: sources, Parameters: params, Desired: desired})
	return errors.Join(ierr, err)
}

func (s edgeSite) Report(ctx context.Context, taskID string) (edge.TaskReport, error) {
	t, err := s.p.Tasks.Get(ctx, taskID)
	if err != nil {
		return edge.TaskReport{}, err
	}
	return edge.TaskReport{ID: t.ID, Status: t.Status, Reason: t.Reason, FlowVersion: t.FlowVersion}, nil
}

// DeviceReport is the status of a device of the cloud's, as this edge's
// device center has it.
func (s edgeSite) DeviceReport(ctx context.Context, deviceID string) (edge.DeviceReport, error) {
	d, err := s.p.Devices.Get(ctx, deviceID)
	if err != nil {
		return edge.DeviceReport{}, err
	}
	r := edge.DeviceReport{ID: d.ID, Status: d.Status, Reason: d.Reason, LastError: d.LastError, MeasuredFps: d.MeasuredFPS}
	if !d.LastFrame.IsZero() {
		r.LastFrameMs = d.LastFrame.UnixMilli()
	}
	return r, nil
}

// ApplyWatchlists replaces the default project's watchlists with the
// cloud's set; its matchers reload them.
func (s edgeSite) ApplyWatchlists(ctx context.Context, set data.WatchlistSet) error {
	if s.p.Data == nil {
		return errors.New("the data center, which keeps the watchlists, does not run in this edge process")
	}
	return s.p.Data.ReplaceWatchlists(ctx, "default", set)
}

// EdgePlacement is what this cloud's hub serves edge nodes as their
// desired state (for a hub started outside the module, as tests do).
func (p *Platform) EdgePlacement() edge.Placement { return cloudPlacement{p} }
