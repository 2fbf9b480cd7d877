package devicecenter

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/redact"
)

// Import makes device d.ID here match d, as another platform (the cloud,
// on an edge) holds it: created under the same id when missing, changed
// when it differs, left alone (its stream untouched) when it matches. The
// driver of a device cannot change.
func (s *Service) Import(ctx context.Context, d *Device) error {
	cur, err := s.Get(ctx, d.ID)
	if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
		return s.create(ctx, d)
	}
	if err != nil {
		return err
	}
	if cur.Config.Driver != d.Config.Driver {
		return fmt.Errorf("device %s: driver %s cannot become %s", d.ID, cur.Config.Driver, d.Config.Driver)
	}
	if importedAs(cur) == importedAs(d) {
		return nil
	}
	zones := d.Zones
	if zones == nil {
		zones = []Zone{}
	}
	return s.Modify(ctx, d.ID, Change{Name: &d.Name, Description: &d.Description, Address: &d.Config.Address,
		Username: &d.Config.Username, Password: &d.Config.Password, Group: &d.Group, Options: d.Config.Options,
		FPS: &d.Config.FPS, Width: &d.Config.Width, Zones: &zones})
}

// importedAs is what Import compares of a device.
func importedAs(d *Device) string {
	opts := d.Config.Options
	if opts == nil {
		opts = map[string]any{}
	}
	zones := d.Zones
	if zones == nil {
		zones = []Zone{}
	}
	b, _ := json.Marshal([]any{d.Name, d.Description, d.Config.Address, d.Config.Username, d.Config.Password, opts,
		d.Config.FPS, d.Config.Width, d.Group, zones})
	return string(b)
}

// UnplaceEdge takes every device off an edge node that is being deleted:
// they become devices of no site, which ModifyDevice can put on another
// node. It returns how many it changed.
func (s *Service) UnplaceEdge(ctx context.Context, nodeID string) (int, error) {
	res, err := s.db.Exec(ctx, "UPDATE devices SET edge_node = '', updated_at = ? WHERE edge_node = ?", s.now().UnixMilli(), nodeID)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// edgeStates are the states an edge node may report of its devices.
var edgeStates = map[device.State]bool{device.StateConnecting: true, device.StateOnline: true, device.StateOffline: true, device.StateError: true, "unknown": true}

// ReportEdge stores the status of a device as edge node nodeID, where it
// runs, reports it: a device of another node (or of none) is left alone
// and answers ResourceNotFound naming DeviceId. Its status time is this
// platform's clock, so that StaleEdge can tell a node that stopped
// reporting. No event is published: the edge's own status events reach
// the cloud with its other events.
func (s *Service) ReportEdge(ctx context.Context, nodeID string, st device.Status) error {
	if !edgeStates[st.State] {
		return api.InvalidValue("Status", "%q is not a device status", st.State)
	}
	var lf int64
	if !st.LastFrameTime.IsZero() {
		lf = st.LastFrameTime.UnixMilli()
	}
	res, err := s.db.Exec(ctx, `UPDATE devices SET status = ?, reason = ?, last_error = ?, last_frame_ms = CASE WHEN ? > last_frame_ms THEN ? ELSE last_frame_ms END,
		measured_fps = ?, status_ms = ? WHERE id = ? AND edge_node = ?`, string(st.State), clip(st.Reason, 200), clip(redact.URLs(st.LastError), 2000),
		lf, lf, st.MeasuredFPS, s.now().UnixMilli(), st.DeviceID, nodeID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("DeviceId", st.DeviceID)
	}
	return nil
}

// ReasonEdgeStale is the reason of a device whose edge node stopped
// reporting: its status is unknown, and its last frame time is the last
// one the node reported.
const ReasonEdgeStale = "edge_not_reporting"

// StaleEdge marks unknown, with ReasonEdgeStale, the devices of edge nodes
// that reported nothing since cutoff (their link is down, or the node is
// gone). Their StatusTime stays that of the node's last report, their
// LastFrameTime and LastError what it last said. It returns how many it
// marked.
func (s *Service) StaleEdge(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.db.Exec(ctx, "UPDATE devices SET status = 'unknown', reason = ?, measured_fps = 0 WHERE edge_node <> '' AND status_ms < ? AND (status <> 'unknown' OR reason <> ?)",
		ReasonEdgeStale, cutoff.UnixMilli(), ReasonEdgeStale)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
