package devicecenter

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/api"
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
