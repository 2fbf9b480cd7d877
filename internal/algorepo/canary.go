package algorepo

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Canary sends the messages of a share of the cameras to another version of
// an algorithm than its current one, for flows that call the algorithm
// without naming a version: a camera takes part when a hash of the
// algorithm and its device id falls under Percent, and, when DeviceGroups
// are given, its device is in one of them. The choice is per camera, stable
// from message to message, and raising Percent only adds cameras.
type Canary struct {
	Version      string   `json:"version"`
	Percent      int      `json:"percent"`
	DeviceGroups []string `json:"deviceGroups,omitempty"`

	start bool // SetCanary: the version is stopped and is started after the canary is recorded
}

// Canary limits.
const (
	maxCanaryGroups   = 100
	maxGroupNameBytes = 128
	// canaryTTL bounds how long a process keeps routing by a canary
	// another replica changed (this one's changes apply at once).
	canaryTTL = 2 * time.Second
)

func parseCanary(s string) *Canary {
	if s == "" {
		return nil
	}
	var c Canary
	if json.Unmarshal([]byte(s), &c) != nil || c.Version == "" {
		return nil
	}
	return &c
}

// takes reports whether the camera key of a message from a device in group
// is in the canary of algorithm algID.
func (c *Canary) takes(algID, key, group string) bool {
	if key == "" || (len(c.DeviceGroups) > 0 && !slices.Contains(c.DeviceGroups, group)) {
		return false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(algID))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	return int(h.Sum32()%100) < c.Percent
}

// SetCanary starts, changes or (with c.Version empty) ends an algorithm's
// canary. The canary's version must be one of the algorithm's and not the
// current one; a stopped one is started (and does not become current).
// Ending a canary leaves its version running and the current one current.
func (s *Service) SetCanary(ctx context.Context, algID string, c Canary) error {
	a, err := s.Get(ctx, algID)
	if err != nil {
		return err
	}
	if a.Builtin {
		return api.Errorf(api.InvalidParameterValue, "AlgorithmId: built-in algorithms have one version and no canary")
	}
	raw := ""
	if c.Version != "" {
		if err := s.checkCanary(ctx, a, &c); err != nil {
			return err
		}
		b, _ := json.Marshal(c)
		raw = string(b)
	} else if c.Percent != 0 || len(c.DeviceGroups) > 0 {
		return api.InvalidValue("Version", "required with Percent or DeviceGroups (an empty Version ends the canary)")
	}
	if _, err := s.db.Exec(ctx, "UPDATE algorithms SET canary = ?, updated_at = ? WHERE id = ?", raw, s.now().UnixMilli(), algID); err != nil {
		return err
	}
	s.canaries.forget(algID)
	s.log.Info("algorithm canary set", "algorithm", algID, "version", c.Version, "percent", c.Percent, "groups", len(c.DeviceGroups))
	if c.start {
		// Recorded first, so that starting it does not make it current.
		return s.SetDesired(ctx, algID, c.Version, Running)
	}
	return nil
}

func (s *Service) checkCanary(ctx context.Context, a *Algorithm, c *Canary) error {
	if c.Percent < 1 || c.Percent > 100 {
		return api.InvalidValue("Percent", "must be between 1 and 100")
	}
	if len(c.DeviceGroups) > maxCanaryGroups {
		return api.InvalidValue("DeviceGroups", "at most %d groups", maxCanaryGroups)
	}
	for i, g := range c.DeviceGroups {
		if g == "" || len(g) > maxGroupNameBytes {
			return api.InvalidValue("DeviceGroups."+strconv.Itoa(i), "a group name of 1 to %d bytes", maxGroupNameBytes)
		}
	}
	slices.Sort(c.DeviceGroups)
	c.DeviceGroups = slices.Compact(c.DeviceGroups)
	if c.Version == a.CurrentVersion {
		return api.InvalidValue("Version", "%s is the current version; a canary tries another one", c.Version)
	}
	v, err := s.version(ctx, a.ID, c.Version)
	if err != nil {
		return err
	}
	c.start = v.Desired != Running
	return nil
}

// makeCurrent makes a started version the current one, unless it is the
// canary's version.
func (s *Service) makeCurrent(ctx context.Context, algID, version string) error {
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var raw string
		if err := tx.QueryRow(ctx, "SELECT canary FROM algorithms WHERE id = ?", algID).Scan(&raw); err != nil {
			return err
		}
		if c := parseCanary(raw); c != nil && c.Version == version {
			return nil
		}
		_, err := tx.Exec(ctx, "UPDATE algorithms SET current_version = ?, updated_at = ? WHERE id = ?", version, s.now().UnixMilli(), algID)
		return err
	})
	s.canaries.forget(algID)
	return err
}

// PromoteCanary makes an algorithm's canary version its current version,
// for every camera, and ends the canary.
func (s *Service) PromoteCanary(ctx context.Context, algID string) (string, error) {
	var version string
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var raw string
		if err := tx.QueryRow(ctx, "SELECT canary FROM algorithms WHERE id = ?", algID).Scan(&raw); err != nil {
			return err
		}
		c := parseCanary(raw)
		if c == nil {
			return api.Errorf(api.FailedOperation, "AlgorithmId: %s has no canary to promote", algID)
		}
		version = c.Version
		_, err := tx.Exec(ctx, "UPDATE algorithms SET current_version = ?, canary = '', updated_at = ? WHERE id = ?", version, s.now().UnixMilli(), algID)
		return err
	})
	if err != nil {
		return "", err
	}
	s.canaries.forget(algID)
	s.log.Info("algorithm canary promoted", "algorithm", algID, "version", version)
	return version, nil
}

// route picks the version a message of camera key (in device group) calls
// when its flow names none: the canary's for the cameras in it, the current
// version for the others, and "" (the runtime's latest started) when the
// store names none or cannot say.
func (s *Service) route(ctx context.Context, algID string, r flow.Route) string {
	e := s.canaries.get(algID, s.now())
	if e == nil {
		a, err := s.Get(ctx, algID)
		if err != nil {
			s.log.Warn("algorithm canary unreadable", "algorithm", algID, "err", err)
			return ""
		}
		e = s.canaries.put(algID, a, s.now())
	}
	if e.canary != nil && e.canary.takes(algID, r.Key, r.Group) {
		return e.canary.Version
	}
	return e.current
}

// canaryCache keeps each algorithm's canary and current version for
// canaryTTL, so that routing costs no store read per message.
type canaryCache struct {
	mu sync.Mutex
	m  map[string]*canaryEntry
}

type canaryEntry struct {
	canary  *Canary
	current string
	at      time.Time
}

func (c *canaryCache) get(algID string, now time.Time) *canaryEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[algID]
	if e == nil || now.Sub(e.at) > canaryTTL || now.Before(e.at) {
		return nil
	}
	return e
}

func (c *canaryCache) put(algID string, a *Algorithm, now time.Time) *canaryEntry {
	e := &canaryEntry{canary: a.Canary, current: a.CurrentVersion, at: now}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*canaryEntry)
	}
	c.m[algID] = e
	return e
}

func (c *canaryCache) forget(algID string) {
	c.mu.Lock()
	delete(c.m, algID)
	c.mu.Unlock()
}

// InvokeFor implements flow.RoutedAlgorithms: a call that names no version
// follows the algorithm's canary, if it has one.
func (s *Service) InvokeFor(ctx context.Context, ref flow.AlgorithmRef, r flow.Route, inputs map[string]any) (map[string]any, error) {
	if ref.Version == "" && !s.isBuiltin(ref.ID) {
		ref.Version = s.route(ctx, ref.ID, r)
	}
	return s.Invoke(ctx, ref, inputs)
}

// InvokeFor implements flow.RoutedAlgorithms.
func (p projectAlgorithms) InvokeFor(ctx context.Context, ref flow.AlgorithmRef, r flow.Route, inputs map[string]any) (map[string]any, error) {
	return p.s.InvokeFor(ctx, ref, r, inputs)
}
