package devicecenter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/gb28181"
)

// MaxGBChannels bounds the channel devices one GB/T 28181 device's
// catalog can create.
const MaxGBChannels = 4096

// GB28181 connects the device center and the GB/T 28181 SIP server: it is
// the server's Directory (which devices may register, with which
// password; where their status and catalogs go) and the driver's view of
// the server (device.GBServer).
type GB28181 struct {
	s   *Service
	srv *gb28181.Server
	// catalogs serialises catalog handling: documents of one catalog
	// arrive concurrently, and a channel is looked up then created.
	catalogs sync.Mutex
}

// GB28181Directory returns the directory a gb28181.Server is built with;
// Attach then hands the server to the driver runtime.
func (s *Service) GB28181Directory() *GB28181 { return &GB28181{s: s} }

// Attach makes the gb28181 driver ask srv.
func (g *GB28181) Attach(srv *gb28181.Server) {
	g.srv = srv
	g.s.rt.UseGB28181(g)
	g.s.gb.Store(g)
}

// gbDevices returns the gb28181 devices whose Address is id; parents
// only (channels never register) when registering is true.
func (g *GB28181) gbDevices(ctx context.Context, id string) ([]*Device, error) {
	rows, err := g.s.db.Query(ctx, "SELECT "+deviceColumns+" FROM devices WHERE driver = 'gb28181' AND address = ? ORDER BY created_at, id LIMIT 100", id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Device
	for rows.Next() {
		d, err := g.s.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func parentOf(d *Device) string {
	p, _ := d.Config.Options["parent"].(string)
	return p
}

// registrant is the device that registers as id: a gb28181 device with
// that address that is no channel. One id in two projects is refused
// (which project would its channels join?).
func (g *GB28181) registrant(ctx context.Context, id string) (*Device, error) {
	ds, err := g.gbDevices(ctx, id)
	if err != nil {
		return nil, err
	}
	var found *Device
	for _, d := range ds {
		if parentOf(d) != "" {
			continue
		}
		if found != nil && found.ProjectID != d.ProjectID {
			return nil, fmt.Errorf("gb28181: id %s is a device in projects %s and %s", id, found.ProjectID, d.ProjectID)
		}
		if found == nil {
			found = d
		}
	}
	if found == nil {
		return nil, gb28181.ErrUnknownDevice
	}
	return found, nil
}

// Password implements gb28181.Directory.
func (g *GB28181) Password(ctx context.Context, id string) (string, error) {
	d, err := g.registrant(ctx, id)
	if err != nil {
		return "", err
	}
	return d.Config.Password, nil
}

// Status implements gb28181.Directory: the device's status follows its
// registration and keepalives; its channels go offline with it.
func (g *GB28181) Status(ctx context.Context, id string, online bool, reason string) {
	d, err := g.registrant(ctx, id)
	if err != nil {
		g.s.log.Warn("gb28181 status for no device", "gb_id", id, "err", err)
		return
	}
	st := device.Status{DeviceID: d.ID, Driver: "gb28181", State: device.StateOnline}
	if !online {
		st.State, st.Reason, st.LastError = device.StateOffline, gbReason(reason), "gb28181: "+reason
	}
	g.s.ReportStatus(ctx, st)
	if online {
		return
	}
	rows, err := g.s.db.Query(ctx, "SELECT id FROM devices WHERE driver = 'gb28181' AND project_id = ? AND options LIKE ? LIMIT 10000",
		d.ProjectID, `%"parent":"`+id+`"%`)
	if err != nil {
		return
	}
	var kids []string
	for rows.Next() {
		var k string
		if rows.Scan(&k) == nil {
			kids = append(kids, k)
		}
	}
	rows.Close()
	for _, k := range kids {
		g.s.ReportStatus(ctx, device.Status{DeviceID: k, Driver: "gb28181", State: device.StateOffline, Reason: gbReason(reason),
			LastError: "gb28181: parent " + id + ": " + reason})
	}
}

func gbReason(r string) string {
	switch r {
	case gb28181.ReasonKeepaliveTimeout:
		return device.ReasonTimeout
	case gb28181.ReasonExpired, gb28181.ReasonUnregistered:
		return device.ReasonUnreachable
	}
	return device.ReasonError
}

// Catalog implements gb28181.Directory: every channel becomes a device of
// the registrant's project and group (created once, found again by its
// id), named as the device names it, with Options.parent naming the
// registrant; its status follows the catalog's. Change notifications are
// applied: ADD creates, UPDATE renames, ON/OFF set the status, DEL deletes
// the channel's device (or, while a task reads from it, leaves it offline
// saying why).
func (g *GB28181) Catalog(ctx context.Context, id string, _ int, items []gb28181.CatalogItem) {
	g.catalogs.Lock()
	defer g.catalogs.Unlock()
	parent, err := g.registrant(ctx, id)
	if err != nil {
		return
	}
	for _, it := range items {
		if !it.Channel() || !gb28181.ValidID(it.DeviceID) || it.DeviceID == id {
			continue
		}
		if it.Deleted() {
			g.removeChannel(ctx, parent, it.DeviceID)
			continue
		}
		devID, found, err := g.channel(ctx, parent, it)
		if err != nil {
			g.s.log.Warn("gb28181 channel not saved", "gb_id", it.DeviceID, "parent", parent.ID, "err", err)
			continue
		}
		if found && it.Event == gb28181.EventUpdate && it.Name != "" {
			g.rename(ctx, devID, it)
		}
		st := device.Status{DeviceID: devID, Driver: "gb28181", State: device.StateOnline}
		if !it.Online() {
			st.State, st.Reason, st.LastError = device.StateOffline, device.ReasonUnreachable, "gb28181: the catalog says the channel is off"
		}
		g.s.ReportStatus(ctx, st)
	}
}

// findChannel returns the device of channel gbID under parent, nil if none.
func (g *GB28181) findChannel(ctx context.Context, parent *Device, gbID string) (*Device, error) {
	ds, err := g.gbDevices(ctx, gbID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.ProjectID == parent.ProjectID && parentOf(d) == parent.Config.Address {
			return d, nil
		}
	}
	return nil, nil
}

// removeChannel deletes the device of a channel the catalog dropped.
func (g *GB28181) removeChannel(ctx context.Context, parent *Device, gbID string) {
	d, err := g.findChannel(ctx, parent, gbID)
	if err != nil || d == nil {
		return
	}
	err = g.s.Delete(ctx, d.ID)
	var ae *api.Error
	switch {
	case err == nil:
		g.s.log.Info("gb28181 channel removed", "device", d.ID, "gb_id", gbID, "parent", parent.ID)
	case errors.As(err, &ae) && ae.Code == api.ResourceInUse:
		g.s.ReportStatus(ctx, device.Status{DeviceID: d.ID, Driver: "gb28181", State: device.StateOffline, Reason: device.ReasonUnreachable,
			LastError: "gb28181: the device removed the channel from its catalog; delete the tasks reading from it, then the device"})
	default:
		g.s.log.Warn("gb28181 channel not removed", "device", d.ID, "gb_id", gbID, "err", err)
	}
}

// rename gives a channel's device the name an UPDATE notification carries
// (the channel id appended where the name is taken).
func (g *GB28181) rename(ctx context.Context, devID string, it gb28181.CatalogItem) {
	var err error
	for _, n := range []string{clipName(it.Name, 128), clipName(it.Name, 107) + " (" + it.DeviceID + ")"} {
		_, err = g.s.db.Exec(ctx, "UPDATE devices SET name = ?, updated_at = ? WHERE id = ? AND name <> ?", n, g.s.now().UnixMilli(), devID, n)
		if !g.s.db.IsUniqueViolation(err) {
			break
		}
	}
	if err != nil {
		g.s.log.Warn("gb28181 channel not renamed", "device", devID, "gb_id", it.DeviceID, "err", err)
	}
}

// channel returns the device of a catalog item, creating it; found says
// it existed.
func (g *GB28181) channel(ctx context.Context, parent *Device, it gb28181.CatalogItem) (string, bool, error) {
	d, err := g.findChannel(ctx, parent, it.DeviceID)
	if err != nil || d != nil {
		if d != nil {
			return d.ID, true, nil
		}
		return "", false, err
	}
	// A device names its own channels: bound how many devices it can
	// make, whatever the project's quota.
	var n int
	if err := g.s.db.QueryRow(ctx, "SELECT COUNT(*) FROM devices WHERE driver = 'gb28181' AND project_id = ? AND options LIKE ?",
		parent.ProjectID, `%"parent":"`+parent.Config.Address+`"%`).Scan(&n); err != nil {
		return "", false, err
	}
	if n >= MaxGBChannels {
		return "", false, fmt.Errorf("gb28181: device %s has %d channels, the limit", parent.ID, MaxGBChannels)
	}
	opts := map[string]any{"parent": parent.Config.Address}
	for k, v := range map[string]string{"manufacturer": it.Manufacturer, "model": it.Model, "civil_code": it.CivilCode} {
		if v != "" {
			opts[k] = v
		}
	}
	name := it.Name
	if name == "" {
		name = it.DeviceID
	}
	for _, n := range []string{clipName(name, 128), clipName(name, 107) + " (" + it.DeviceID + ")"} {
		d := &Device{ProjectID: parent.ProjectID, Name: n, Group: parent.Group, EdgeNode: parent.EdgeNode,
			Description: "GB/T 28181 channel " + it.DeviceID + " of " + parent.Name,
			Config:      device.Config{Driver: "gb28181", Address: it.DeviceID, Options: opts}}
		err = g.s.Create(ctx, d)
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.ResourceInUse {
			continue // the name is taken: the second try adds the id
		}
		if err == nil {
			g.s.log.Info("gb28181 channel added", "device", d.ID, "gb_id", it.DeviceID, "parent", parent.ID)
			return d.ID, false, nil
		}
		return "", false, err
	}
	return "", false, err
}

// clipName cuts s to n bytes on a character boundary.
func clipName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Registered implements device.GBServer.
func (g *GB28181) Registered(id, channel string) (online, known bool) {
	ss, ok := g.srv.Session(id)
	if !ok || channel == "" {
		return ss.Online, ok
	}
	on, ok := ss.Channels[channel]
	return on, ok
}

// DeviceInfo implements device.GBServer.
func (g *GB28181) DeviceInfo(ctx context.Context, id string) (map[string]any, error) {
	m, err := g.srv.DeviceInfo(ctx, id)
	if err != nil {
		return nil, err
	}
	ss, _ := g.srv.Session(id)
	return deviceInfo(m, ss), nil
}

// deviceInfo is what a probe reports of a registered device.
func deviceInfo(m *gb28181.Message, ss gb28181.Session) map[string]any {
	return map[string]any{"name": m.DeviceName, "manufacturer": m.Manufacturer, "model": m.Model, "firmware": m.Firmware,
		"channels": m.Channel, "transport": ss.Transport, "remote_addr": ss.Addr,
		"registered": ss.Registered.UTC().Format("2006-01-02T15:04:05Z"), "last_keepalive": ss.LastKeepalive.UTC().Format("2006-01-02T15:04:05.000Z")}
}

// UseRemoteGB28181 makes the gb28181 driver of this process, which runs
// no SIP server (a worker), reach devices through r: the SIP server of
// another process of the platform invites them to send video here.
func (s *Service) UseRemoteGB28181(r *gb28181.Remote) { s.rt.UseGB28181(remoteGB{r}) }

// remoteGB is device.GBServer over a Remote.
type remoteGB struct{ r *gb28181.Remote }

func (g remoteGB) Registered(id, channel string) (online, known bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ss, err := g.r.Session(ctx, id)
	if err != nil {
		return false, false
	}
	if channel == "" {
		return ss.Online, true
	}
	on, ok := ss.Channels[channel]
	return on, ok
}

func (g remoteGB) DeviceInfo(ctx context.Context, id string) (map[string]any, error) {
	m, err := g.r.DeviceInfo(ctx, id)
	if err != nil {
		return nil, err
	}
	ss, _ := g.r.Session(ctx, id)
	return deviceInfo(m, ss), nil
}

func (g remoteGB) Play(ctx context.Context, id, channel string, tcp bool) (io.ReadCloser, error) {
	st, err := g.r.Play(ctx, id, channel, tcp)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Play implements device.GBServer.
func (g *GB28181) Play(ctx context.Context, id, channel string, tcp bool) (io.ReadCloser, error) {
	st, err := g.srv.Play(ctx, id, channel, tcp)
	if err != nil {
		return nil, err
	}
	return st, nil
}
