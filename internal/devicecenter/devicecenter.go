// Package devicecenter keeps devices: their driver configuration (with
// credentials sealed at rest), their status as running sources and probes
// report it, snapshots, discovery, and the device source that tasks read
// frames from. The drivers themselves live in internal/device.
package devicecenter

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/redact"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Device is a device row; Password is the plaintext only inside the
// process (decrypted on read), never in API responses.
type Device struct {
	ID, ProjectID, Name, Description string
	Config                           device.Config
	Zones                            []Zone
	Group, EdgeNode                  string
	Status, Reason, LastError        string
	LastFrame, StatusTime            time.Time
	MeasuredFPS                      float64
	CreatedAt, UpdatedAt             time.Time
}

// Publisher is where the device center announces status changes: the bus,
// in one process or across many (bus.Bus implements it).
type Publisher interface {
	Publish(ctx context.Context, topic, key string, data []byte, header map[string]string) (uint64, error)
}

// Service is the device center.
type Service struct {
	db     *store.DB
	box    *secrets.Box
	rt     *device.Runtime
	log    *slog.Logger
	now    func() time.Time
	events Publisher

	mu       sync.Mutex
	lastSeen map[string]string // device id → last published status
	zones    zoneCache
	snaps    snapshotURLs
	quotas   api.Quotas
	stall    *stalls // nil: no stall detection
	gb       atomic.Pointer[GB28181]
	// edgeCheck checks a device's EdgeNode; nil until UseEdgeNodes.
	edgeCheck func(ctx context.Context, projectID, nodeID string) error
}

// UseEdgeNodes makes Create and Modify check a device's EdgeNode against
// the project's edge nodes (check answers ResourceNotFound for one that
// is not). Call it before the service serves.
func (s *Service) UseEdgeNodes(check func(ctx context.Context, projectID, nodeID string) error) {
	s.edgeCheck = check
}

// checkEdge checks a device's edge node ("" is none).
func (s *Service) checkEdge(ctx context.Context, projectID, nodeID string) error {
	if nodeID == "" || s.edgeCheck == nil {
		return nil
	}
	err := s.edgeCheck(ctx, projectID, nodeID)
	if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
		return api.NotFound("EdgeNode", nodeID)
	}
	return err
}

// UseQuotas makes Create refuse a device beyond its project's quota of
// devices. Without it projects hold any number.
func (s *Service) UseQuotas(q api.Quotas) {
	s.mu.Lock()
	s.quotas = q
	s.mu.Unlock()
}

// New returns the device center.
// Status changes are published to events, which may be nil (no bus in this
// process: changes are only saved).
func New(db *store.DB, box *secrets.Box, rt *device.Runtime, events Publisher, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, box: box, rt: rt, events: events, log: log, now: now, lastSeen: map[string]string{}}
}

// Runtime returns the driver runtime.
func (s *Service) Runtime() *device.Runtime { return s.rt }

// validate checks a configuration with the driver layer, and against the
// exec policy and media roots (an adapter's command, a device's ffmpeg, a
// replay folder), naming fields as the API does.
func (s *Service) validate(cfg device.Config) error {
	check := cfg.Validate
	if s.rt != nil {
		check = func() error { return s.rt.Check(cfg) }
	}
	if err := check(); err != nil {
		var fe *device.FieldError
		if errors.As(err, &fe) {
			return api.InvalidValue(apiField(fe.Field), "%s", fe.Msg)
		}
		if errors.Is(err, device.ErrUnsupportedDriver) {
			return api.InvalidValue("Driver", "%v", err)
		}
		return api.InvalidValue("Device", "%v", err)
	}
	return nil
}

// apiField maps the driver layer's field names to the API's.
func apiField(f string) string {
	switch f {
	case "FPS":
		return "Fps"
	case "ID":
		return "DeviceId"
	}
	return f
}

// Create stores a device after validating its configuration.
func (s *Service) Create(ctx context.Context, d *Device) error {
	d.ID = ""
	return s.create(ctx, d)
}

// create stores d, under a new id unless it has one.
func (s *Service) create(ctx context.Context, d *Device) error {
	if d.ProjectID == "" {
		d.ProjectID = "default"
	}
	var one int
	if err := s.db.QueryRow(ctx, "SELECT 1 FROM projects WHERE id = ?", d.ProjectID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return api.NotFound("ProjectId", d.ProjectID)
	}
	if err := s.checkEdge(ctx, d.ProjectID, d.EdgeNode); err != nil {
		return err
	}
	if d.ID == "" {
		d.ID = ids.New("dev")
	}
	d.Config.ID = d.ID
	addr, user, pass, err := takeCredentials(d.Config.Address, &d.Config.Username, &d.Config.Password)
	if err != nil {
		return err
	}
	d.Config.Address, d.Config.Username, d.Config.Password = addr, *user, *pass
	if err := s.validate(d.Config); err != nil {
		return err
	}
	if err := checkZones(d.Zones); err != nil {
		return err
	}
	opts, secretsEnc, err := s.storedOptions(d.Config.Options, nil)
	if err != nil {
		return err
	}
	now := s.now()
	d.Status, d.CreatedAt, d.UpdatedAt = "unknown", now, now
	s.mu.Lock()
	q := s.quotas
	s.mu.Unlock()
	err = api.InsertWithinQuota(ctx, s.db, q, d.ProjectID, api.QuotaDevices, "SELECT COUNT(*) FROM devices WHERE project_id = ?", func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO devices (id, project_id, name, description, driver, address, username, password_enc, options, secrets_enc, fps, width,
		device_group, edge_node, status, reason, last_error, last_frame_ms, measured_fps, status_ms, created_at, updated_at, zones)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'unknown', '', '', 0, 0, 0, ?, ?, ?)`,
			d.ID, d.ProjectID, d.Name, d.Description, d.Config.Driver, d.Config.Address, d.Config.Username, s.seal(d.Config.Password),
			opts, secretsEnc, d.Config.FPS, d.Config.Width, d.Group, d.EdgeNode, now.UnixMilli(), now.UnixMilli(), zonesJSON(d.Zones))
		return err
	})
	if s.db.IsUniqueViolation(err) {
		return api.Errorf(api.ResourceInUse, "Name: a device named %q exists in project %s", d.Name, d.ProjectID)
	}
	if err != nil {
		return err
	}
	s.log.Info("device created", "device", d.ID, "driver", d.Config.Driver, "project", d.ProjectID)
	return nil
}

// storedOptions returns the options as stored, the values of entries
// marked secret taken out, and those values sealed; masked entries keep
// their value in old.
func (s *Service) storedOptions(opts map[string]any, old map[string]string) (string, string, error) {
	if opts == nil {
		return "{}", "", nil
	}
	b, _ := json.Marshal(opts)
	var cp map[string]any
	_ = json.Unmarshal(b, &cp)
	vals, err := splitSecretOptions(cp, old)
	if err != nil {
		return "", "", err
	}
	b, _ = json.Marshal(cp)
	return string(b), s.sealSecrets(vals), nil
}

func (s *Service) seal(p string) string {
	if p == "" {
		return ""
	}
	return s.box.Seal(p)
}

const deviceColumns = `id, project_id, name, description, driver, address, username, password_enc, options, COALESCE(secrets_enc, ''), fps, width,
	device_group, edge_node, status, reason, last_error, last_frame_ms, measured_fps, status_ms, created_at, updated_at, COALESCE(zones, '')`

func (s *Service) scan(sc interface{ Scan(...any) error }) (*Device, error) {
	var d Device
	var pw, opts, sealedOpts, zones string
	var lf, st, c, u int64
	if err := sc.Scan(&d.ID, &d.ProjectID, &d.Name, &d.Description, &d.Config.Driver, &d.Config.Address, &d.Config.Username, &pw, &opts, &sealedOpts,
		&d.Config.FPS, &d.Config.Width, &d.Group, &d.EdgeNode, &d.Status, &d.Reason, &d.LastError, &lf, &d.MeasuredFPS, &st, &c, &u, &zones); err != nil {
		return nil, err
	}
	d.Config.ID = d.ID
	d.Zones = parseZones(zones)
	if pw != "" {
		p, err := s.box.Open(pw)
		if err != nil {
			return nil, fmt.Errorf("devicecenter: device %s credentials: %w", d.ID, err)
		}
		d.Config.Password = p
	}
	_ = json.Unmarshal([]byte(opts), &d.Config.Options)
	vals, err := s.openSecrets(sealedOpts)
	if err != nil {
		return nil, fmt.Errorf("devicecenter: device %s secret options: %w", d.ID, err)
	}
	joinSecretOptions(d.Config.Options, vals)
	if d.Config.Username == "" {
		// A row from before credentials were taken out of addresses: the
		// driver uses them from the URL; responses mask them.
		if addr, u, p, _ := redact.SplitUserinfo(d.Config.Address); addr != d.Config.Address {
			d.Config.Address, d.Config.Username, d.Config.Password = addr, u, p
		}
	}
	if lf > 0 {
		d.LastFrame = time.UnixMilli(lf).UTC()
	}
	if st > 0 {
		d.StatusTime = time.UnixMilli(st).UTC()
	}
	d.CreatedAt, d.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
	return &d, nil
}

// Locate returns a device's project and group, for the task service's
// check of the devices a task reads from.
func (s *Service) Locate(ctx context.Context, id string) (projectID, group string, err error) {
	d, err := s.Get(ctx, id)
	if err != nil {
		return "", "", err
	}
	return d.ProjectID, d.Group, nil
}

// Get returns a device with its credentials decrypted.
func (s *Service) Get(ctx context.Context, id string) (*Device, error) {
	d, err := s.scan(s.db.QueryRow(ctx, "SELECT "+deviceColumns+" FROM devices WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("DeviceId", id)
	}
	return d, err
}

// Filter selects devices for List; empty fields select everything.
type Filter struct {
	// Projects is what the list covers: a caller's ListIn (narrowed by
	// deviceReach), or store.OneProject.
	Projects                                         store.Projects
	IDs, Statuses, Drivers, Groups, EdgeNodes, Names []string
}

// deviceReach is what a role narrowed to sc reaches of a project's
// devices: those of its ids and those in its groups; a role narrowed to
// tasks only reaches every device.
func deviceReach(_ string, sc api.Scope) (string, []any) {
	var ids, groups store.Where
	return store.Or(ids.In("id", sc.DeviceIDs), groups.In("device_group", sc.DeviceGroups))
}

// List returns devices, newest first, and the total: one query over every
// project f covers, so that the total and the page are the union's.
func (s *Service) List(ctx context.Context, f Filter, offset, limit int) ([]*Device, int, error) {
	var w store.Where
	w.InProjects("project_id", f.Projects).In("id", f.IDs).In("status", f.Statuses).In("driver", f.Drivers).
		In("device_group", f.Groups).In("edge_node", f.EdgeNodes).In("name", f.Names)
	cond, args := w.SQL()
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM devices"+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.Query(ctx, "SELECT "+deviceColumns+" FROM devices"+cond+" ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?", append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*Device
	for rows.Next() {
		d, err := s.scan(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, d)
	}
	return out, total, rows.Err()
}

// Change is what Modify changes; nil fields stay.
type Change struct {
	Name, Description, Address, Username, Password, Group, EdgeNode *string
	Options                                                         map[string]any
	FPS                                                             *float64
	Width                                                           *int
	// Zones, when not nil, replaces the device's zones (an empty list
	// removes them all).
	Zones *[]Zone
}

// Modify changes a device; the new configuration is validated whole.
func (s *Service) Modify(ctx context.Context, id string, ch Change) error {
	d, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if ch.Address != nil {
		addr, user, pass, err := takeCredentials(*ch.Address, ch.Username, ch.Password)
		if err != nil {
			return err
		}
		ch.Address, ch.Username, ch.Password = &addr, user, pass
	}
	oldSecrets := secretValues(d.Config.Options)
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&d.Name, ch.Name)
	set(&d.Description, ch.Description)
	set(&d.Config.Address, ch.Address)
	set(&d.Config.Username, ch.Username)
	set(&d.Config.Password, ch.Password)
	set(&d.Group, ch.Group)
	set(&d.EdgeNode, ch.EdgeNode)
	if ch.EdgeNode != nil {
		if err := s.checkEdge(ctx, d.ProjectID, d.EdgeNode); err != nil {
			return err
		}
	}
	if ch.Options != nil {
		d.Config.Options = ch.Options
	}
	if ch.FPS != nil {
		d.Config.FPS = *ch.FPS
	}
	if ch.Width != nil {
		d.Config.Width = *ch.Width
	}
	if ch.Zones != nil {
		if err := checkZones(*ch.Zones); err != nil {
			return err
		}
		d.Zones = *ch.Zones
	}
	opts, secretsEnc, err := s.storedOptions(d.Config.Options, oldSecrets)
	if err != nil {
		return err
	}
	// Validate with the secret values the masks stand for.
	var full map[string]any
	_ = json.Unmarshal([]byte(opts), &full)
	joinSecretOptions(full, mustOpen(s.openSecrets(secretsEnc)))
	d.Config.Options = full
	if err := s.validate(d.Config); err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `UPDATE devices SET name = ?, description = ?, address = ?, username = ?, password_enc = ?, options = ?, secrets_enc = ?, fps = ?, width = ?,
		device_group = ?, edge_node = ?, zones = ?, updated_at = ? WHERE id = ?`, d.Name, d.Description, d.Config.Address, d.Config.Username,
		s.seal(d.Config.Password), opts, secretsEnc, d.Config.FPS, d.Config.Width, d.Group, d.EdgeNode, zonesJSON(d.Zones), s.now().UnixMilli(), id)
	s.zones.forget(id)
	if s.db.IsUniqueViolation(err) {
		return api.Errorf(api.ResourceInUse, "Name: a device named %q exists in project %s", d.Name, d.ProjectID)
	}
	return err
}

// Delete removes a device unless a task reads from it. The device row is
// locked while the tasks are counted and it is deleted, and a task's
// creation locks it too (LockForUse): a task created at the same time
// either is counted here or finds the device gone. A GB/T 28181 device
// takes its channels' devices with it (those whose Options.parent names
// it), in the same transaction: all go, or none when a task reads from
// one of them.
func (s *Service) Delete(ctx context.Context, id string) error {
	gone := []string{id}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		gone = gone[:1]
		found, n, err := tx.LockUsers(ctx, "devices", id, "SELECT COUNT(*) FROM tasks WHERE sources LIKE ?", "%\""+id+"\"%")
		switch {
		case err != nil:
			return err
		case !found:
			return api.NotFound("DeviceId", id)
		case n > 0:
			return api.Errorf(api.ResourceInUse, "DeviceId: %d task(s) read from %s; delete them first", n, id)
		}
		kids, err := gbChannels(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, k := range kids {
			_, n, err := tx.LockUsers(ctx, "devices", k, "SELECT COUNT(*) FROM tasks WHERE sources LIKE ?", "%\""+k+"\"%")
			if err != nil {
				return err
			}
			if n > 0 {
				return api.Errorf(api.ResourceInUse, "DeviceId: %d task(s) read from %s, a channel of %s; delete them first", n, k, id)
			}
			if _, err := tx.Exec(ctx, "DELETE FROM devices WHERE id = ?", k); err != nil {
				return err
			}
			gone = append(gone, k)
		}
		_, err = tx.Exec(ctx, "DELETE FROM devices WHERE id = ?", id)
		return err
	})
	if err == nil {
		s.mu.Lock()
		for _, g := range gone {
			delete(s.lastSeen, g)
		}
		sd := s.stall
		s.mu.Unlock()
		if sd != nil {
			// This process's series of the device; other replicas keep
			// theirs until they restart.
			for _, g := range gone {
				sd.m.online.DeleteLabelValues(g)
				sd.m.stallsTotal.DeleteLabelValues(g)
				sd.m.frames.DeleteLabelValues(g)
			}
		}
	}
	return err
}

// gbChannels returns the ids of the channel devices of device id when it
// is a GB/T 28181 device that registers (no parent of its own); none
// otherwise.
func gbChannels(ctx context.Context, tx *store.Tx, id string) ([]string, error) {
	var driver, address, projectID, options string
	if err := tx.QueryRow(ctx, "SELECT driver, address, project_id, options FROM devices WHERE id = ?", id).Scan(&driver, &address, &projectID, &options); err != nil {
		return nil, err
	}
	if driver != "gb28181" || address == "" || optionParent(options) != "" {
		return nil, nil
	}
	rows, err := tx.Query(ctx, "SELECT id, options FROM devices WHERE driver = 'gb28181' AND project_id = ? AND options LIKE ? AND id <> ? LIMIT 10000",
		projectID, `%"parent":"`+address+`"%`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var kids []string
	for rows.Next() {
		var k, opts string
		if err := rows.Scan(&k, &opts); err != nil {
			return nil, err
		}
		if optionParent(opts) == address {
			kids = append(kids, k)
		}
	}
	return kids, rows.Err()
}

// optionParent reads Options.parent from a device's stored options.
func optionParent(options string) string {
	var o struct {
		Parent string `json:"parent"`
	}
	_ = json.Unmarshal([]byte(options), &o)
	return o.Parent
}

// LockForUse locks the devices ids in tx, the transaction that stores
// something reading from them (a task), and answers ResourceNotFound for
// one that does not exist (or was just deleted). Delete then waits for tx
// and sees the new user.
func (s *Service) LockForUse(ctx context.Context, tx *store.Tx, ids []string) error {
	missing, err := tx.LockIDs(ctx, "devices", ids)
	if err != nil {
		return err
	}
	if missing != "" {
		return api.NotFound("DeviceId", missing)
	}
	return nil
}

// ReportStatus records a source's or a probe's view of a device and
// publishes a change of online/offline state.
func (s *Service) ReportStatus(ctx context.Context, st device.Status) {
	status := string(st.State)
	if status == "closed" || status == "" {
		return // the source stopped; probes take over
	}
	now := s.now().UnixMilli()
	var lf int64
	if !st.LastFrameTime.IsZero() {
		lf = st.LastFrameTime.UnixMilli()
	}
	_, err := s.db.Exec(ctx, `UPDATE devices SET status = ?, reason = ?, last_error = ?, last_frame_ms = CASE WHEN ? > last_frame_ms THEN ? ELSE last_frame_ms END,
		measured_fps = ?, status_ms = ? WHERE id = ?`, status, st.Reason, clip(redact.URLs(st.LastError), 2000), lf, lf, st.MeasuredFPS, now, st.DeviceID)
	if err != nil {
		s.log.Warn("device status not saved", "device", st.DeviceID, "err", err)
		return
	}
	s.mu.Lock()
	prev := s.lastSeen[st.DeviceID]
	s.lastSeen[st.DeviceID] = status
	sd := s.stall
	s.mu.Unlock()
	if sd != nil {
		online := 0.0
		if status == "online" {
			online = 1
		}
		sd.m.online.WithLabelValues(st.DeviceID).Set(online)
	}
	if prev != status && s.events != nil && (status == "online" || status == "offline" || status == "error") {
		if d, err := s.Get(ctx, st.DeviceID); err == nil {
			s.publishStatus(ctx, d, prev)
		}
	}
}

// RunProber probes, every interval, the devices that nothing reported on
// for staleAfter (no running task reads them), parallel at a time, until
// ctx ends. The control plane runs it so that idle devices still show
// whether they are reachable.
func (s *Service) RunProber(ctx context.Context, interval, staleAfter time.Duration, parallel int) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.ProbeAll(ctx, staleAfter, parallel)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// publishStatus announces a device going online or offline as a
// CloudEvent on its project's events topic, where subscriptions see it.
func (s *Service) publishStatus(ctx context.Context, d *Device, previous string) {
	now := s.now()
	ev := event.New(event.DeviceStatusID(d.ID, now), event.DeviceSource(d.ID), event.DeviceStatusType(d.Status), d.ID, now,
		map[string]any{"DeviceId": d.ID, "Name": d.Name, "Status": d.Status, "Previous": previous, "Reason": d.Reason, "LastError": d.LastError})
	ev.ProjectID = d.ProjectID
	b, err := ev.Marshal()
	if err == nil {
		_, err = s.events.Publish(ctx, event.Topic(d.ProjectID), d.ID, b, ev.Headers())
	}
	if err != nil {
		s.log.Warn("device status not published", "device", d.ID, "err", err)
	}
}

// Probe looks at a configuration (saved or not) with its driver.
func (s *Service) Probe(ctx context.Context, cfg device.Config) (device.ProbeResult, error) {
	if err := s.validate(cfg); err != nil {
		return device.ProbeResult{}, err
	}
	return s.rt.Probe(ctx, cfg)
}

// ProbeAll probes every device whose status nobody reported for maxAge
// (devices no task reads from), at most parallel at once. Devices of edge
// nodes are not probed: their site reaches them, and reports their status
// (ReportEdge).
func (s *Service) ProbeAll(ctx context.Context, maxAge time.Duration, parallel int) {
	cutoff := s.now().Add(-maxAge).UnixMilli()
	rows, err := s.db.Query(ctx, "SELECT "+deviceColumns+" FROM devices WHERE status_ms < ? AND edge_node = '' LIMIT 1000", cutoff)
	if err != nil {
		return
	}
	var ds []*Device
	for rows.Next() {
		if d, err := s.scan(rows); err == nil {
			ds = append(ds, d)
		}
	}
	rows.Close()
	sem := make(chan struct{}, max(1, parallel))
	var wg sync.WaitGroup
	for _, d := range ds {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			res, err := s.rt.Probe(pctx, d.Config)
			st := device.Status{DeviceID: d.ID, Driver: d.Config.Driver, State: device.State("online")}
			if err != nil || !res.Online {
				st.State = device.State("offline")
				st.Reason = device.ReasonOf(err)
				if err != nil {
					st.LastError = err.Error()
				}
			}
			s.ReportStatus(ctx, st)
		}()
	}
	wg.Wait()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// SealedColumns lists the columns that hold values sealed under the master
// key, for a rotation to re-encrypt (tianshu secrets rotate): device
// passwords and the values of secret Options entries (empty when a device
// has none).
func SealedColumns() []reseal.Column {
	return []reseal.Column{{Table: "devices", Key: "id", Column: "password_enc"}, {Table: "devices", Key: "id", Column: "secrets_enc"}}
}

// mustOpen drops the error of opening values this process sealed a moment
// ago, which cannot fail.
func mustOpen(vals map[string]string, _ error) map[string]string { return vals }
