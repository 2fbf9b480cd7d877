package devicecenter

import (
	"context"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/gb28181"
)

// CascadeSource is what the link to an upper-level platform offers it:
// the GB/T 28181 channels of project, as their catalog, and PTZ commands
// on them, sent to the cameras registered here.
func (g *GB28181) CascadeSource(project string) gb28181.CascadeSource {
	return cascadeSource{g: g, project: project}
}

type cascadeSource struct {
	g       *GB28181
	project string
}

// channels returns the project's gb28181 channels (devices with a
// parent), at most MaxGBChannels.
func (c cascadeSource) channels(ctx context.Context, address string) ([]*Device, error) {
	q := "SELECT " + deviceColumns + " FROM devices WHERE driver = 'gb28181' AND project_id = ?"
	args := []any{c.project}
	if address != "" {
		q += " AND address = ?"
		args = append(args, address)
	}
	rows, err := c.g.s.db.Query(ctx, q+fmt.Sprintf(" ORDER BY created_at, id LIMIT %d", MaxGBChannels), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Device
	for rows.Next() {
		d, err := c.g.s.scan(rows)
		if err != nil {
			return nil, err
		}
		if parentOf(d) != "" {
			out = append(out, d)
		}
	}
	return out, rows.Err()
}

// Channels implements gb28181.CascadeSource: a channel is on while its
// device is online here.
func (c cascadeSource) Channels(ctx context.Context) ([]gb28181.SimChannel, error) {
	ds, err := c.channels(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]gb28181.SimChannel, 0, len(ds))
	for _, d := range ds {
		out = append(out, gb28181.SimChannel{ID: d.Config.Address, Name: d.Name, Off: d.Status != "online"})
	}
	return out, nil
}

// Control implements gb28181.CascadeSource: the command goes to the
// camera (through its parent) that registered here.
func (c cascadeSource) Control(ctx context.Context, channel string, cmd gb28181.PTZ) error {
	d, err := c.channel(ctx, channel)
	if err != nil {
		return err
	}
	return c.g.srv.ControlPTZ(ctx, parentOf(d), channel, cmd)
}

// channel is the project's channel device with that GB id.
func (c cascadeSource) channel(ctx context.Context, channel string) (*Device, error) {
	ds, err := c.channels(ctx, channel)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("%w: channel %s is not one of project %s", gb28181.ErrUnknownDevice, channel, c.project)
	}
	return ds[0], nil
}

// Invite implements gb28181.CascadeSource: the camera registered here
// (through its parent) is invited to send to the upper platform.
func (c cascadeSource) Invite(ctx context.Context, channel string, media gb28181.MediaAddr) (*gb28181.Call, error) {
	d, err := c.channel(ctx, channel)
	if err != nil {
		return nil, err
	}
	return c.g.srv.Invite(ctx, parentOf(d), channel, media)
}

// Hangup implements gb28181.CascadeSource.
func (c cascadeSource) Hangup(ctx context.Context, callID string) error {
	return c.g.srv.Hangup(ctx, callID)
}
