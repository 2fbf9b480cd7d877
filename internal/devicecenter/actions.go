package devicecenter

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/redact"
)

var (
	devRead  = api.Permission{Resource: "device", Access: api.Read}
	devWrite = api.Permission{Resource: "device", Access: api.Write}
)

// DeviceSpec is a device's configuration in requests.
type DeviceSpec struct {
	// Driver is replay, http-snapshot, rtsp, onvif, mqtt, adapter or
	// gb28181 (registration, catalog, live video, PTZ; docs/devices.md).
	Driver  string `json:"Driver" validate:"required,max=32"`
	Address string `json:"Address" validate:"required,max=2048"`
	// Credentials inside Address (rtsp://user:pass@host/…) are taken out
	// into Username and Password; the password is encrypted at rest and
	// never returned. Options entries {"name", "value", "secret": true}
	// (an adapter's env) are write-only: responses show "***", and a
	// change that sends "***" back keeps the value.
	Username string         `json:"Username" validate:"max=256"`
	Password string         `json:"Password" validate:"max=256"`
	Options  map[string]any `json:"Options"`
	Fps      float64        `json:"Fps" validate:"min=0,max=120"`
	Width    int            `json:"Width" validate:"min=0,max=7680"`
}

func (s DeviceSpec) config() device.Config {
	return device.Config{Driver: s.Driver, Address: s.Address, Username: s.Username, Password: s.Password,
		Options: api.NormalizeMap(s.Options), FPS: s.Fps, Width: s.Width}
}

// CreateDeviceRequest is the request of CreateDevice.
type CreateDeviceRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	Name        string `json:"Name" validate:"required,max=128"`
	Description string `json:"Description" validate:"max=1024"`
	Group       string `json:"Group" validate:"max=128"`
	EdgeNode    string `json:"EdgeNode" validate:"max=128"`
	DeviceSpec
	// Zones are named polygons and lines in normalized coordinates (0..1
	// of the frame) that flows' zone nodes use by name.
	Zones []Zone `json:"Zones" validate:"max=32"`
}

// CreateDeviceResponse is the response of CreateDevice.
type CreateDeviceResponse struct {
	DeviceId string `json:"DeviceId"`
}

// DescribeDevicesRequest is the request of DescribeDevices.
type DescribeDevicesRequest struct {
	ProjectId string       `json:"ProjectId" validate:"max=64"`
	DeviceIds []string     `json:"DeviceIds" validate:"max=100"`
	Filters   []api.Filter `json:"Filters" validate:"max=10"`
	api.Paging
}

// DeviceInfo is a device as DescribeDevices returns it (no credentials).
type DeviceInfo struct {
	DeviceId      string         `json:"DeviceId"`
	ProjectId     string         `json:"ProjectId"`
	Name          string         `json:"Name"`
	Description   string         `json:"Description"`
	Driver        string         `json:"Driver"`
	Address       string         `json:"Address"`
	Username      string         `json:"Username"`
	HasPassword   bool           `json:"HasPassword"`
	Options       map[string]any `json:"Options"`
	Fps           float64        `json:"Fps"`
	Width         int            `json:"Width"`
	Group         string         `json:"Group"`
	EdgeNode      string         `json:"EdgeNode"`
	Status        string         `json:"Status"`
	Reason        string         `json:"Reason"`
	LastError     string         `json:"LastError"`
	LastFrameTime string         `json:"LastFrameTime"`
	// StatusTime is when Status was last reported (by a worker, the
	// prober or the device's edge node).
	StatusTime  string  `json:"StatusTime"`
	MeasuredFps float64 `json:"MeasuredFps"`
	CreatedTime string  `json:"CreatedTime"`
	Zones       []Zone  `json:"Zones"`
}

// DescribeDevicesResponse is the response of DescribeDevices.
type DescribeDevicesResponse struct {
	TotalCount int          `json:"TotalCount"`
	DeviceSet  []DeviceInfo `json:"DeviceSet"`
}

// ModifyDeviceRequest is the request of ModifyDevice; absent fields stay.
type ModifyDeviceRequest struct {
	DeviceId    string         `json:"DeviceId" validate:"required,max=64"`
	Name        *string        `json:"Name" validate:"min=1,max=128"`
	Description *string        `json:"Description" validate:"max=1024"`
	Address     *string        `json:"Address" validate:"max=2048"`
	Username    *string        `json:"Username" validate:"max=256"`
	Password    *string        `json:"Password" validate:"max=256"`
	Options     map[string]any `json:"Options"`
	Fps         *float64       `json:"Fps" validate:"min=0,max=120"`
	Width       *int           `json:"Width" validate:"min=0,max=7680"`
	Group       *string        `json:"Group" validate:"max=128"`
	EdgeNode    *string        `json:"EdgeNode" validate:"max=128"`
	// Zones, when present, replaces every zone of the device.
	Zones *[]Zone `json:"Zones" validate:"max=32"`
}

// DeviceIdRequest names a device.
type DeviceIdRequest struct {
	DeviceId string `json:"DeviceId" validate:"required,max=64"`
}

// ProbeDeviceRequest is the request of ProbeDevice: a saved device, or a
// configuration to test before saving it.
type ProbeDeviceRequest struct {
	DeviceId string      `json:"DeviceId" validate:"max=64"`
	Device   *DeviceSpec `json:"Device"`
}

// ProbeDeviceResponse is what a probe found.
type ProbeDeviceResponse struct {
	Online      bool           `json:"Online"`
	Reason      string         `json:"Reason"`
	Message     string         `json:"Message"`
	Info        map[string]any `json:"Info"`
	HasSnapshot bool           `json:"HasSnapshot"`
}

// DescribeDeviceSnapshotRequest is the request of DescribeDeviceSnapshot.
type DescribeDeviceSnapshotRequest struct {
	DeviceId string `json:"DeviceId" validate:"required,max=64"`
	// Format is "url" (a signed object URL, default) or "base64".
	Format string `json:"Format" validate:"oneof=url base64"`
	// MaxAgeMs accepts a snapshot URL taken at most this long ago instead
	// of asking the device again (a list's thumbnails); 0 takes a new one.
	// Only with Format url.
	MaxAgeMs int `json:"MaxAgeMs" validate:"min=0,max=600000"`
}

// DescribeDeviceSnapshotResponse is a current picture of a device.
type DescribeDeviceSnapshotResponse struct {
	DeviceId    string `json:"DeviceId"`
	Url         string `json:"Url,omitempty"`
	ImageBase64 string `json:"ImageBase64,omitempty"`
	Time        string `json:"Time"`
}

// DiscoverDevicesRequest is the request of DiscoverDevices.
type DiscoverDevicesRequest struct {
	// TimeoutMs bounds the search (default 3000, at most 30000).
	TimeoutMs int `json:"TimeoutMs" validate:"min=0,max=30000"`
	// Target overrides the WS-Discovery multicast address (host:port);
	// the outbound policy decides whether it may be reached.
	Target string `json:"Target" validate:"max=256"`
}

// DiscoveredDevice is one device that answered.
type DiscoveredDevice struct {
	Endpoint string   `json:"Endpoint"`
	XAddrs   []string `json:"XAddrs"`
	Types    []string `json:"Types"`
	Scopes   []string `json:"Scopes"`
	From     string   `json:"From"`
}

// DiscoverDevicesResponse is the response of DiscoverDevices.
type DiscoverDevicesResponse struct {
	DeviceSet []DiscoveredDevice `json:"DeviceSet"`
}

// DescribeDeviceDriversResponse lists the drivers and their options.
type DescribeDeviceDriversResponse struct {
	DriverSet []device.DriverSpec `json:"DriverSet"`
}

// Empty is the response of actions that return only a RequestId.
type Empty struct{}

// SnapshotStore keeps snapshots and signs URLs for them.
type SnapshotStore interface {
	PutSnapshot(ctx context.Context, projectID, deviceID string, jpeg []byte) (url string, err error)
}

// info is a device as responses show it: no password, secret Options
// entries masked, and URL credentials and secrets masked wherever text
// could carry them (a LastError saved by an older version).
// programField names what makes a device configuration run a program on
// the server (the adapter driver, a device's own ffmpeg), or is "".
func programField(cfg device.Config) string {
	if cfg.Driver == "adapter" {
		return "Driver"
	}
	if _, ok := cfg.Options["ffmpeg"]; ok {
		return "Options.ffmpeg"
	}
	return ""
}

// mayRunPrograms refuses a configuration that runs a program on the
// server to anyone but a platform admin: running code there is a platform
// privilege that no project role holds, whatever the exec policy allows.
func mayRunPrograms(c *api.Caller, cfg device.Config) error {
	if f := programField(cfg); f != "" && !c.PlatformAdmin() {
		return api.Errorf(api.AuthFailureUnauthorizedOperation,
			"%s: devices that run a program on the server (the adapter driver, a device's own ffmpeg) are created, changed and probed by platform admins only", f)
	}
	return nil
}

func info(d *Device) DeviceInfo {
	di := DeviceInfo{DeviceId: d.ID, ProjectId: d.ProjectID, Name: d.Name, Description: d.Description, Driver: d.Config.Driver,
		Address: redact.URLs(d.Config.Address), Username: d.Config.Username, HasPassword: d.Config.Password != "", Options: maskedOptions(d.Config.Options),
		Fps: d.Config.FPS, Width: d.Config.Width, Group: d.Group, EdgeNode: d.EdgeNode, Status: d.Status, Reason: d.Reason,
		LastError: d.Config.Scrub(d.LastError), MeasuredFps: d.MeasuredFPS, CreatedTime: d.CreatedAt.Format(time.RFC3339), Zones: d.Zones}
	if di.Zones == nil {
		di.Zones = []Zone{}
	}
	if !d.LastFrame.IsZero() {
		di.LastFrameTime = d.LastFrame.Format(time.RFC3339Nano)
	}
	if !d.StatusTime.IsZero() {
		di.StatusTime = d.StatusTime.Format(time.RFC3339Nano)
	}
	return di
}

// RegisterActions adds the device center's actions to reg; s may be nil
// for docs.
func RegisterActions(reg *api.Registry, s *Service, snaps SnapshotStore) {
	registerGB28181Actions(reg, s)
	api.Register(reg, api.Spec{Name: "CreateDevice", Summary: "Add a camera or sensor: driver, address, credentials (encrypted at rest), frame rate, group, edge node.", Permission: devWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateDeviceRequest) (*CreateDeviceResponse, error) {
			d := &Device{ProjectID: r.ProjectId, Name: r.Name, Description: r.Description, Group: r.Group, EdgeNode: r.EdgeNode, Config: r.config(), Zones: r.Zones}
			if err := mayRunPrograms(c, d.Config); err != nil {
				return nil, err
			}
			if err := s.Create(ctx, d); err != nil {
				return nil, err
			}
			c.SetResource(d.ID)
			return &CreateDeviceResponse{DeviceId: d.ID}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeDevices", Summary: "List devices with their status. Filters: Status, Driver, Group, EdgeNode, Name. Without ProjectId: every project where the caller's roles grant it.", Permission: devRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeDevicesRequest) (*DescribeDevicesResponse, error) {
			f, err := api.ParseFilters(r.Filters, "Status", "Driver", "Group", "EdgeNode", "Name")
			if err != nil {
				return nil, err
			}
			off, lim := r.Page()
			filter := Filter{Projects: c.ListIn(r.ProjectId, deviceReach), IDs: r.DeviceIds, Statuses: f["Status"], Drivers: f["Driver"],
				Groups: f["Group"], EdgeNodes: f["EdgeNode"], Names: f["Name"]}
			ds, total, err := s.List(ctx, filter, off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeDevicesResponse{TotalCount: total, DeviceSet: make([]DeviceInfo, 0, len(ds))}
			for _, d := range ds {
				out.DeviceSet = append(out.DeviceSet, info(d))
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "ModifyDevice", Summary: "Change a device's configuration; the whole new configuration is validated.", Permission: devWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyDeviceRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.DeviceId); err != nil {
				return nil, err
			}
			c.SetResource(r.DeviceId)
			ch := Change{Name: r.Name, Description: r.Description, Address: r.Address, Username: r.Username, Password: r.Password,
				Group: r.Group, EdgeNode: r.EdgeNode, FPS: r.Fps, Width: r.Width, Zones: r.Zones}
			if r.Options != nil {
				ch.Options = api.NormalizeMap(r.Options)
			}
			// A device that runs a program, or a change that makes it run
			// one, is a platform admin's to change.
			d, err := s.Get(ctx, r.DeviceId)
			if err != nil {
				return nil, err
			}
			next := d.Config
			if ch.Options != nil {
				next.Options = ch.Options
			}
			if err := mayRunPrograms(c, d.Config); err != nil {
				return nil, err
			}
			if err := mayRunPrograms(c, next); err != nil {
				return nil, err
			}
			return &Empty{}, s.Modify(ctx, r.DeviceId, ch)
		})
	api.Register(reg, api.Spec{Name: "DeleteDevice", Summary: "Delete a device, and a GB/T 28181 device's channel devices with it; refused while a task reads from any of them.", Permission: devWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *DeviceIdRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.DeviceId); err != nil {
				return nil, err
			}
			c.SetResource(r.DeviceId)
			return &Empty{}, s.Delete(ctx, r.DeviceId)
		})
	api.Register(reg, api.Spec{Name: "ProbeDevice", Summary: "Test a device's address and credentials (saved, or given before saving) and return what was found.", Permission: devWrite},
		func(ctx context.Context, c *api.Caller, r *ProbeDeviceRequest) (*ProbeDeviceResponse, error) {
			var cfg device.Config
			switch {
			case r.DeviceId != "":
				if err := s.visible(ctx, c, r.DeviceId); err != nil {
					return nil, err
				}
				d, err := s.Get(ctx, r.DeviceId)
				if err != nil {
					return nil, err
				}
				cfg = d.Config
			case r.Device != nil:
				cfg = r.Device.config()
				cfg.ID = "probe"
			default:
				return nil, api.Missing("DeviceId or Device")
			}
			if err := mayRunPrograms(c, cfg); err != nil {
				return nil, err
			}
			res, err := s.Probe(ctx, cfg)
			if e, ok := api.AsError(err); ok {
				return nil, e
			}
			out := &ProbeDeviceResponse{Online: res.Online, Info: maskedOptions(res.Info), HasSnapshot: len(res.Snapshot) > 0}
			if out.Info == nil {
				out.Info = map[string]any{}
			}
			if err != nil {
				out.Online, out.Reason, out.Message = false, device.ReasonOf(err), cfg.Scrub(err.Error())
			}
			if r.DeviceId != "" {
				st := device.Status{DeviceID: r.DeviceId, Driver: cfg.Driver, State: "online"}
				if !out.Online {
					st.State, st.Reason, st.LastError = "offline", out.Reason, out.Message
				}
				s.ReportStatus(ctx, st)
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeDeviceSnapshot", Summary: "Take a current JPEG from a device, as a signed object URL or base64.", Permission: devRead},
		func(ctx context.Context, c *api.Caller, r *DescribeDeviceSnapshotRequest) (*DescribeDeviceSnapshotResponse, error) {
			if err := s.visible(ctx, c, r.DeviceId); err != nil {
				return nil, err
			}
			d, err := s.Get(ctx, r.DeviceId)
			if err != nil {
				return nil, err
			}
			if r.MaxAgeMs > 0 && r.Format != "base64" {
				if u, at, ok := s.snaps.get(d.ID, time.Duration(r.MaxAgeMs)*time.Millisecond, s.now()); ok {
					return &DescribeDeviceSnapshotResponse{DeviceId: d.ID, Url: u, Time: at.UTC().Format(time.RFC3339Nano)}, nil
				}
			}
			pic, err := s.snapshot(ctx, d)
			if err != nil {
				return nil, err
			}
			out := &DescribeDeviceSnapshotResponse{DeviceId: d.ID, Time: time.Now().UTC().Format(time.RFC3339Nano)}
			if r.Format == "base64" {
				out.ImageBase64 = base64.StdEncoding.EncodeToString(pic)
				return out, nil
			}
			if out.Url, err = snaps.PutSnapshot(ctx, d.ProjectID, d.ID, pic); err != nil {
				return nil, err
			}
			s.snaps.put(d.ID, out.Url, s.now())
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeDeviceDrivers", Summary: "List the device drivers with the fields and options each reads (name, type, required, default, description, enum, secret): the console builds its device forms from them.", Permission: devRead},
		func(context.Context, *api.Caller, *Empty) (*DescribeDeviceDriversResponse, error) {
			return &DescribeDeviceDriversResponse{DriverSet: device.Specs()}, nil
		})
	api.Register(reg, api.Spec{Name: "DiscoverDevices", Summary: "Find ONVIF cameras on the local network with WS-Discovery, bounded in time. It sends packets on the caller's behalf, so it takes the write permission.", Permission: devWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *DiscoverDevicesRequest) (*DiscoverDevicesResponse, error) {
			timeout := 3 * time.Second
			if r.TimeoutMs > 0 {
				timeout = time.Duration(r.TimeoutMs) * time.Millisecond
			}
			found, err := device.Discover(ctx, device.DiscoverOptions{Timeout: timeout, Target: r.Target, Outbound: s.rt.Outbound()})
			if errors.Is(err, netpolicy.ErrRefused) {
				return nil, api.Errorf(api.InvalidParameterValue, "Target: %v", err)
			}
			if err != nil {
				return nil, api.Errorf(api.FailedOperation, "discovery: %v", err)
			}
			out := &DiscoverDevicesResponse{DeviceSet: make([]DiscoveredDevice, 0, len(found))}
			for _, f := range found {
				out.DeviceSet = append(out.DeviceSet, DiscoveredDevice{Endpoint: f.Endpoint, XAddrs: f.XAddrs, Types: f.Types, Scopes: f.Scopes, From: f.From})
			}
			return out, nil
		})
}

// snapshot takes a device's current picture.
func (s *Service) snapshot(ctx context.Context, d *Device) ([]byte, error) {
	res, err := s.Probe(ctx, d.Config)
	if err != nil {
		return nil, api.Errorf(api.ResourceUnavailable, "device %s: %v", d.ID, err)
	}
	if len(res.Snapshot) == 0 {
		return nil, api.Errorf(api.ResourceUnavailable, "device %s (%s) gave no picture", d.ID, d.Config.Driver)
	}
	return res.Snapshot, nil
}

// SnapshotImage takes the current picture of a device of projectID that c
// reaches (a role narrowed to devices reaches those it names), for a flow
// test run; errors name field, and a picture over max bytes is refused.
func (s *Service) SnapshotImage(ctx context.Context, c *api.Caller, projectID, deviceID, field string, max int64) (media.Image, error) {
	d, err := s.Get(ctx, deviceID)
	if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
		return media.Image{}, api.NotFound(field, deviceID)
	}
	if err != nil {
		return media.Image{}, err
	}
	if d.ProjectID != projectID || !c.SeesDevice(d.ProjectID, d.ID, d.Group) {
		return media.Image{}, api.NotFound(field, deviceID)
	}
	pic, err := s.snapshot(ctx, d)
	if err != nil {
		return media.Image{}, err
	}
	if int64(len(pic)) > max {
		return media.Image{}, api.Errorf(api.LimitExceeded, "%s: the snapshot is %d bytes; the limit is %d", field, len(pic), max)
	}
	return media.Image{Bytes: pic, ContentType: "image/jpeg"}, nil
}

// visible checks that the caller may act on a device; devices of other
// projects, and those outside a role narrowed to devices, are "not found".
func (s *Service) visible(ctx context.Context, c *api.Caller, id string) error {
	d, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if !c.SeesDevice(d.ProjectID, d.ID, d.Group) {
		return api.NotFound("DeviceId", id)
	}
	return nil
}
