package devicecenter

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
)

// Limits on the zones of one device.
const (
	MaxZones         = 32
	MaxZoneName      = 64
	MinPolygonPoints = 3
	MaxPolygonPoints = 64
)

// Zone is a named polygon or line (a tripwire, crossed from either side of
// Points[0]→Points[1]) drawn on a device's picture, in normalized
// coordinates: x and y are 0..1 of the frame's width and height, so the
// zone survives a change of resolution. Zone nodes of flows use it by name.
type Zone struct {
	Name   string       `json:"Name" validate:"required,max=64"`
	Kind   string       `json:"Kind" validate:"required,oneof=polygon line"`
	Points [][2]float64 `json:"Points" validate:"required,max=64"`
}

// checkZones names the first bad field of zones (Zones[i].Name …).
func checkZones(zones []Zone) error {
	if len(zones) > MaxZones {
		return api.InvalidValue("Zones", "%d zones; at most %d allowed", len(zones), MaxZones)
	}
	seen := make(map[string]bool, len(zones))
	for i, z := range zones {
		at := fmt.Sprintf("Zones[%d]", i)
		switch {
		case z.Name == "":
			return api.Missing(at + ".Name")
		case len([]rune(z.Name)) > MaxZoneName:
			return api.InvalidValue(at+".Name", "at most %d characters", MaxZoneName)
		case seen[z.Name]:
			return api.InvalidValue(at+".Name", "%q names two zones; names are unique per device", z.Name)
		}
		seen[z.Name] = true
		switch z.Kind {
		case "polygon":
			if len(z.Points) < MinPolygonPoints || len(z.Points) > MaxPolygonPoints {
				return api.InvalidValue(at+".Points", "a polygon has %d to %d points, got %d", MinPolygonPoints, MaxPolygonPoints, len(z.Points))
			}
		case "line":
			if len(z.Points) != 2 {
				return api.InvalidValue(at+".Points", "a line has 2 points, got %d", len(z.Points))
			}
		default:
			return api.InvalidValue(at+".Kind", "%q is not one of polygon, line", z.Kind)
		}
		for j, p := range z.Points {
			for _, c := range p {
				if math.IsNaN(c) || c < 0 || c > 1 {
					return api.InvalidValue(fmt.Sprintf("%s.Points[%d]", at, j), "coordinates are normalized: between 0 and 1, got %v", p)
				}
			}
		}
		if z.Points[0] == z.Points[len(z.Points)-1] && z.Kind == "line" {
			return api.InvalidValue(at+".Points", "a line's two points are the same")
		}
	}
	return nil
}

func zonesJSON(zones []Zone) string {
	if len(zones) == 0 {
		return ""
	}
	b, _ := json.Marshal(zones)
	return string(b)
}

func parseZones(s string) []Zone {
	var zs []Zone
	if s != "" {
		_ = json.Unmarshal([]byte(s), &zs)
	}
	return zs
}

// zoneTTL is how long a task's zone nodes use a device's zones before
// reading them again: a redrawn zone applies within it, and a device read
// at 30 frames a second costs one query per zoneTTL, not per frame.
const zoneTTL = 2 * time.Second

// maxCachedZones bounds the cache; past it, it starts over.
const maxCachedZones = 4096

type cachedZones struct {
	project string
	zones   []Zone
	at      time.Time
}

type zoneCache struct {
	mu sync.Mutex
	m  map[string]cachedZones
}

func (c *zoneCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// deviceZones returns a device's project and zones, from the cache when fresh.
func (s *Service) deviceZones(ctx context.Context, id string) (string, []Zone, error) {
	now := s.now()
	s.zones.mu.Lock()
	e, ok := s.zones.m[id]
	s.zones.mu.Unlock()
	if ok && now.Sub(e.at) < zoneTTL {
		return e.project, e.zones, nil
	}
	var project, raw string
	err := s.db.QueryRow(ctx, "SELECT project_id, COALESCE(zones, '') FROM devices WHERE id = ?", id).Scan(&project, &raw)
	if err != nil {
		return "", nil, err
	}
	e = cachedZones{project: project, zones: parseZones(raw), at: now}
	s.zones.mu.Lock()
	if s.zones.m == nil || len(s.zones.m) >= maxCachedZones {
		s.zones.m = map[string]cachedZones{}
	}
	s.zones.m[id] = e
	s.zones.mu.Unlock()
	return e.project, e.zones, nil
}

// projectZones is flow.Zones over the devices of one project.
type projectZones struct {
	s       *Service
	project string
}

// ZonesFor returns the zones that flows of projectID may use: those of
// the project's own devices. A device of another project is an unknown
// zone, as a missing one is.
func (s *Service) ZonesFor(projectID string) flow.Zones {
	return projectZones{s: s, project: projectID}
}

// Zone implements flow.Zones.
func (z projectZones) Zone(ctx context.Context, deviceID, name string) (flow.DeviceZone, error) {
	project, zones, err := z.s.deviceZones(ctx, deviceID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && project != z.project) {
		return flow.DeviceZone{}, fmt.Errorf("%w: no device %s in project %s", flow.ErrUnknownZone, deviceID, z.project)
	}
	if err != nil {
		return flow.DeviceZone{}, err
	}
	for _, zn := range zones {
		if zn.Name == name {
			return flow.DeviceZone{Kind: zn.Kind, Points: zn.Points}, nil
		}
	}
	return flow.DeviceZone{}, fmt.Errorf("%w: device %s has no zone %q", flow.ErrUnknownZone, deviceID, name)
}

// snapshotURLs remembers each device's last snapshot URL, so that a page
// of thumbnails asks a device again only when its picture is older than
// the page accepts. Signed URLs stay valid an hour (BlobSnapshots); the
// API accepts at most ten minutes of age.
type snapshotURLs struct {
	mu sync.Mutex
	m  map[string]snapshotURL
}

type snapshotURL struct {
	url string
	at  time.Time
}

func (c *snapshotURLs) get(id string, maxAge time.Duration, now time.Time) (string, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.Sub(e.at) > maxAge {
		return "", time.Time{}, false
	}
	return e.url, e.at, true
}

func (c *snapshotURLs) put(id, url string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedZones {
		c.m = map[string]snapshotURL{}
	}
	c.m[id] = snapshotURL{url: url, at: now}
}
