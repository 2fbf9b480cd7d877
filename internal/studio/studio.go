// Package studio keeps flows: versioned flow documents, each version
// immutable, validated against the node kinds and the algorithms the
// platform knows, compiled once per version for InvokeFlow and tasks.
package studio

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/function"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// InUseFunc reports whether something (a task) uses a flow, which then
// cannot be deleted. The tasks module provides it. It runs in the
// delete's transaction, tx, after the flow's row is locked: a user that
// locks the row too (LockForUse) is then either committed and seen, or
// finds the flow gone.
type InUseFunc func(ctx context.Context, tx *store.Tx, flowID string) (bool, error)

// Options are the studio's collaborators; every field is optional.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// AlgorithmsFor returns the algorithms a flow of a project may call
	// (its project's and the built-ins); nil falls back to Algorithms.
	AlgorithmsFor func(projectID string) flow.Algorithms
	// Algorithms checks algorithm nodes and runs them in InvokeFlow; nil
	// refuses algorithm nodes as unknown.
	Algorithms flow.Algorithms
	// WatchlistsFor returns the watchlists match nodes of a project's flows
	// compare faces with; nil (or a nil result) refuses match nodes.
	WatchlistsFor func(projectID string) flow.Watchlists
	// ZonesFor returns the device zones a flow of a project may name in its
	// zone nodes (its project's devices); nil: zone nodes cannot name one.
	ZonesFor func(projectID string) flow.Zones
	// Metrics receives per-node metrics of InvokeFlow runs.
	Metrics *flow.Metrics
	// InUse guards DeleteFlow; nil means nothing uses flows yet.
	InUse InUseFunc
	// ScriptGate caps the script calls of one project that run at once
	// (InvokeFlow and tasks alike); nil leaves them uncapped.
	ScriptGate *function.Gate
	// StoredAlgorithm reports whether an algorithm id names a row of the
	// algorithms table (not a builtin). A new version locks those rows in
	// its insert transaction, so that deleting an algorithm it calls (which
	// locks the row too) is one decision with storing it; nil: the
	// algorithms are not the store's, nothing is locked.
	StoredAlgorithm func(id string) bool
	// Catalog lists the algorithms a flow of a project may call, with
	// their current contracts, for DescribeFlowNodeKinds; nil lists none.
	Catalog func(ctx context.Context, projectID string) ([]flow.AlgorithmEntry, error)
	// TestImages fetches the pictures RunFlowTest runs on; nil: it runs on
	// Input alone.
	TestImages TestImages
	// Blob keeps the pictures test runs output, behind signed URLs; nil:
	// they are described (type, size) but not stored.
	Blob blob.Store
}

// Service is the flow studio.
type Service struct {
	db  *store.DB
	o   Options
	reg *flow.Registry

	mu    sync.Mutex
	plans map[string]cachedPlan // "flowID@version" → compiled plan
	// flows caches flow rows for runs (InvokeFlow), flowGen counts local
	// changes so that a read racing one is not cached.
	flows   map[string]cachedFlow
	flowGen uint64
	swept   map[string]time.Time // project → last sweep of its test-run pictures
}

// flowCacheTTL bounds how long InvokeFlow on one replica may keep running
// a flow's previous latest version, or a flow deleted, after another
// replica changed or deleted it (docs/flows.md). The replica that made the
// change forgets its entry at once.
const flowCacheTTL = 2 * time.Second

// maxCachedFlows bounds the flow-row cache.
const maxCachedFlows = 4096

type cachedFlow struct {
	f  *Flow
	at time.Time
}

// cachedPlan is a version (immutable) and its compiled plan.
type cachedPlan struct {
	p *flow.Plan
	v *Version
}

// maxCachedPlans bounds the plan cache; versions are immutable, so an
// entry never goes stale, only cold. A flow's versions go only with the
// flow, whose row every lookup reads first (Plan), so a deleted flow's
// cached plans are never served, here or on another replica.
const maxCachedPlans = 256

// New returns the studio over db.
func New(db *store.DB, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{db: db, o: o, reg: flow.NewRegistry(), plans: map[string]cachedPlan{}, flows: map[string]cachedFlow{}, swept: map[string]time.Time{}}
}

// Flow is a flow and its latest version number.
type Flow struct {
	ID, ProjectID, Name, Description string
	LatestVersion                    int64
	CreatedAt, UpdatedAt             time.Time
}

// Version is one immutable version of a flow.
type Version struct {
	FlowID, ProjectID string
	Version           int64
	Document          json.RawMessage // normalised JSON
	Digest            string
	Comment           string
	CreatedBy         string
	CreatedAt         time.Time
}

// ValidationError carries every problem of a document.
type ValidationError struct{ Errs flow.Errors }

func (e *ValidationError) Error() string { return e.Errs.Error() }

// parse reads a JSON or YAML document and validates it in the context of a
// project (subflows resolve within the project). It returns the spec and
// the normalised JSON stored as the version's document.
// It also returns what the document uses.
func (s *Service) parse(ctx context.Context, projectID string, doc []byte) (*flow.Spec, []byte, *uses, error) {
	return s.parseWith(ctx, projectID, doc, false)
}

// parseWith is parse; checkOnly compiles scripts without running their
// top-level code, for ValidateFlow, which a viewer may call.
func (s *Service) parseWith(ctx context.Context, projectID string, doc []byte, checkOnly bool) (*flow.Spec, []byte, *uses, error) {
	spec, err := flow.Parse(doc, flow.Limits{})
	if err != nil {
		var fe flow.Errors
		if errors.As(err, &fe) {
			return nil, nil, nil, &ValidationError{Errs: fe}
		}
		var one *flow.Error
		if errors.As(err, &one) {
			return nil, nil, nil, &ValidationError{Errs: flow.Errors{one}}
		}
		return nil, nil, nil, &ValidationError{Errs: flow.Errors{{Field: "document", Msg: err.Error()}}}
	}
	opts := s.options(ctx, projectID)
	opts.CheckScripts = checkOnly
	// This plan never runs: it must not add metric series per node of
	// every document someone validates.
	opts.Metrics = nil
	refs := &algorithmRefs{Algorithms: opts.Algorithms}
	if opts.Algorithms != nil {
		opts.Algorithms = refs
	}
	subflows := opts.Flows.(*projectFlows)
	if errs := flow.Validate(ctx, spec, opts); len(errs) > 0 {
		return nil, nil, nil, &ValidationError{Errs: errs}
	}
	norm, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("studio: normalise document: %w", err)
	}
	return spec, norm, &uses{algorithms: refs.ids, flows: subflows.ids}, nil
}

// uses are the ids of what a document uses: the algorithms it calls and
// the flows it runs as subflows.
type uses struct {
	algorithms, flows []string
}

// algorithmRefs records the algorithms that a validation looked up.
type algorithmRefs struct {
	flow.Algorithms
	mu   sync.Mutex
	ids  []string
	refs []flow.AlgorithmRef
}

// Contract implements flow.Algorithms.
func (r *algorithmRefs) Contract(ctx context.Context, ref flow.AlgorithmRef) (*flow.Contract, error) {
	r.mu.Lock()
	r.ids = append(r.ids, ref.ID)
	r.refs = append(r.refs, ref)
	r.mu.Unlock()
	return r.Algorithms.Contract(ctx, ref)
}

func (s *Service) options(ctx context.Context, projectID string) flow.Options {
	algs := s.o.Algorithms
	if s.o.AlgorithmsFor != nil {
		algs = s.o.AlgorithmsFor(projectID)
	}
	var zones flow.Zones
	if s.o.ZonesFor != nil {
		zones = s.o.ZonesFor(projectID)
	}
	var lists flow.Watchlists
	if s.o.WatchlistsFor != nil {
		lists = s.o.WatchlistsFor(projectID)
	}
	return flow.Options{Registry: s.reg, Algorithms: algs, Flows: &projectFlows{s: s, ctx: ctx, projectID: projectID}, Zones: zones, Watchlists: lists,
		Metrics: s.o.Metrics, Logger: s.o.Logger, FunctionLimits: function.Limits{Gate: s.o.ScriptGate, GateKey: projectID}}
}

// Validate checks a document without storing it.
func (s *Service) Validate(ctx context.Context, projectID string, doc []byte) flow.Errors {
	if projectID == "" {
		projectID = "default"
	}
	_, _, _, err := s.parseWith(ctx, projectID, doc, true)
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Errs
	}
	if err != nil {
		return flow.Errors{{Field: "document", Msg: err.Error()}}
	}
	return nil
}

// Create stores a new flow with version 1.
func (s *Service) Create(ctx context.Context, projectID, name, description string, doc []byte, actor string) (*Flow, error) {
	if projectID == "" {
		projectID = "default"
	}
	if err := s.projectExists(ctx, projectID); err != nil {
		return nil, err
	}
	spec, norm, used, err := s.parse(ctx, projectID, doc)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = spec.Name
	}
	if name == "" {
		return nil, api.Missing("Name")
	}
	if len([]rune(name)) > 128 {
		return nil, api.InvalidValue("Name", "at most 128 characters")
	}
	now := s.o.Now()
	f := &Flow{ID: ids.New("flow"), ProjectID: projectID, Name: name, Description: description, LatestVersion: 1, CreatedAt: now, UpdatedAt: now}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO flows (id, project_id, name, description, latest_version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?)`, f.ID, projectID, name, description, now.UnixMilli(), now.UnixMilli())
		if s.db.IsUniqueViolation(err) {
			return api.Errorf(api.ResourceInUse, "Name: a flow named %q already exists in project %s", name, projectID)
		}
		if err != nil {
			return err
		}
		return s.insertVersion(ctx, tx, f.ID, 1, norm, used, "", actor, now)
	})
	if err != nil {
		return nil, err
	}
	s.o.Logger.Info("flow created", "flow", f.ID, "project", projectID, "nodes", len(spec.Nodes))
	return f, nil
}

// insertVersion stores a version that uses the algorithms and subflows
// in used, with their rows locked: DeleteAlgorithm and Delete, which lock
// the row before they look for versions that use it, then see this one,
// or deleted first and this insert answers ResourceNotFound.
func (s *Service) insertVersion(ctx context.Context, tx *store.Tx, flowID string, v int64, doc []byte, used *uses, comment, actor string, now time.Time) error {
	if err := s.LockForUse(ctx, tx, used.flows); err != nil {
		return err
	}
	var stored []string
	for _, id := range used.algorithms {
		if s.o.StoredAlgorithm != nil && s.o.StoredAlgorithm(id) {
			stored = append(stored, id)
		}
	}
	if missing, err := tx.LockIDs(ctx, "algorithms", stored); err != nil {
		return err
	} else if missing != "" {
		return api.NotFound("AlgorithmId", missing)
	}
	sum := sha256.Sum256(doc)
	_, err := tx.Exec(ctx, `INSERT INTO flow_versions (flow_id, version, document, digest, comment, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, flowID, v, string(doc), hex.EncodeToString(sum[:]), comment, actor, now.UnixMilli())
	return err
}

// Modify changes a flow's name or description, and with a document makes a
// new version (returned). An identical document makes no new version.
func (s *Service) Modify(ctx context.Context, flowID string, name, description *string, doc []byte, comment, actor string) (int64, error) {
	f, err := s.Get(ctx, flowID)
	if err != nil {
		return 0, err
	}
	var norm []byte
	var used *uses
	if doc != nil {
		if _, norm, used, err = s.parse(ctx, f.ProjectID, doc); err != nil {
			return 0, err
		}
	}
	now := s.o.Now()
	version := f.LatestVersion
	defer s.forgetFlow(flowID)
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var latest int64
		if err := tx.QueryRow(ctx, "SELECT latest_version FROM flows WHERE id = ?"+tx.Dialect().ForUpdate(), flowID).Scan(&latest); err != nil {
			return err
		}
		version = latest
		if norm != nil {
			var digest string
			if err := tx.QueryRow(ctx, "SELECT digest FROM flow_versions WHERE flow_id = ? AND version = ?", flowID, latest).Scan(&digest); err != nil {
				return err
			}
			sum := sha256.Sum256(norm)
			if hex.EncodeToString(sum[:]) != digest {
				version = latest + 1
				if err := s.insertVersion(ctx, tx, flowID, version, norm, used, comment, actor, now); err != nil {
					return err
				}
			}
		}
		sets := []string{"latest_version = ?", "updated_at = ?"}
		args := []any{version, now.UnixMilli()}
		if name != nil {
			sets, args = append(sets, "name = ?"), append(args, *name)
		}
		if description != nil {
			sets, args = append(sets, "description = ?"), append(args, *description)
		}
		_, err := tx.Exec(ctx, "UPDATE flows SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, flowID)...)
		if s.db.IsUniqueViolation(err) {
			return api.Errorf(api.ResourceInUse, "Name: a flow named %q already exists in project %s", *name, f.ProjectID)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	s.o.Logger.Info("flow modified", "flow", flowID, "version", version)
	return version, nil
}

// Delete removes a flow and all its versions, unless something uses it.
// The flow's row is locked while its users are looked for and it is
// deleted; a task's creation locks it too (LockForUse), so a task created
// at the same time is either seen here or finds the flow gone.
func (s *Service) Delete(ctx context.Context, flowID string) error {
	defer s.forgetFlow(flowID)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		// Flow documents are normalised JSON: a subflow's id appears quoted.
		found, n, err := tx.LockUsers(ctx, "flows", flowID, "SELECT COUNT(*) FROM flow_versions WHERE flow_id <> ? AND document LIKE ?", flowID, "%\""+flowID+"\"%")
		switch {
		case err != nil:
			return err
		case !found:
			return api.NotFound("FlowId", flowID)
		case n > 0:
			return api.Errorf(api.ResourceInUse, "FlowId: %d version(s) of other flows run flow %s as a subflow; change or delete them first", n, flowID)
		}
		if s.o.InUse != nil {
			used, err := s.o.InUse(ctx, tx, flowID)
			if err != nil {
				return err
			}
			if used {
				return api.Errorf(api.ResourceInUse, "FlowId: flow %s is used by a task; delete the task first", flowID)
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM flow_versions WHERE flow_id = ?", flowID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM flows WHERE id = ?", flowID)
		return err
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for k := range s.plans {
		if strings.HasPrefix(k, flowID+"@") {
			delete(s.plans, k)
		}
	}
	s.mu.Unlock()
	s.o.Logger.Info("flow deleted", "flow", flowID)
	return nil
}

// LockForUse locks the flows ids in tx, the transaction that stores
// something using them (a task), and answers ResourceNotFound for one that
// does not exist (or was just deleted). Delete then waits for tx and sees
// the new user.
func (s *Service) LockForUse(ctx context.Context, tx *store.Tx, ids []string) error {
	missing, err := tx.LockIDs(ctx, "flows", ids)
	if err != nil {
		return err
	}
	if missing != "" {
		return api.NotFound("FlowId", missing)
	}
	return nil
}

// Get returns a flow.
func (s *Service) Get(ctx context.Context, flowID string) (*Flow, error) {
	var f Flow
	var c, u int64
	err := s.db.QueryRow(ctx, `SELECT id, project_id, name, description, latest_version, created_at, updated_at FROM flows WHERE id = ?`, flowID).
		Scan(&f.ID, &f.ProjectID, &f.Name, &f.Description, &f.LatestVersion, &c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("FlowId", flowID)
	}
	if err != nil {
		return nil, err
	}
	f.CreatedAt, f.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
	return &f, nil
}

// getForRun is Get for running a flow: a row read within flowCacheTTL is
// reused. Unknown flows are not cached.
func (s *Service) getForRun(ctx context.Context, flowID string) (*Flow, error) {
	now := s.o.Now()
	s.mu.Lock()
	c, ok := s.flows[flowID]
	gen := s.flowGen
	s.mu.Unlock()
	if ok && !now.Before(c.at) && now.Sub(c.at) < flowCacheTTL {
		return c.f, nil
	}
	f, err := s.Get(ctx, flowID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.flowGen == gen { // no local change raced the read
		if len(s.flows) >= maxCachedFlows {
			s.flows = map[string]cachedFlow{}
		}
		s.flows[flowID] = cachedFlow{f: f, at: now}
	}
	s.mu.Unlock()
	return f, nil
}

// forgetFlow drops a changed or deleted flow's cached row.
func (s *Service) forgetFlow(flowID string) {
	s.mu.Lock()
	delete(s.flows, flowID)
	s.flowGen++
	s.mu.Unlock()
}

// SetInUse sets the guard of DeleteFlow after construction: the tasks
// service, which answers it, is built after the studio because it resolves
// flow versions through it. Call it before the studio serves.
func (s *Service) SetInUse(f InUseFunc) { s.o.InUse = f }

// UseTestRuns sets where RunFlowTest reads its pictures and keeps those
// its nodes output, after construction: the data and device centers start
// after the studio. Call it before the studio serves.
func (s *Service) UseTestRuns(images TestImages, b blob.Store) {
	s.o.TestImages, s.o.Blob = images, b
}

// ResolveVersion returns the number and project of a flow version (0: the
// flow's current version), in the form the tasks service looks flows up.
func (s *Service) ResolveVersion(ctx context.Context, flowID string, version int64) (int64, string, error) {
	v, err := s.GetVersion(ctx, flowID, version)
	if err != nil {
		return 0, "", err
	}
	return v.Version, v.ProjectID, nil
}

// GetVersion returns one version (0: the latest).
func (s *Service) GetVersion(ctx context.Context, flowID string, version int64) (*Version, error) {
	f, err := s.Get(ctx, flowID)
	if err != nil {
		return nil, err
	}
	return s.versionOf(ctx, f, version)
}

// versionOf returns one version (0: the latest) of f.
func (s *Service) versionOf(ctx context.Context, f *Flow, version int64) (*Version, error) {
	flowID := f.ID
	if version == 0 {
		version = f.LatestVersion
	}
	v := Version{FlowID: flowID, ProjectID: f.ProjectID, Version: version}
	var doc string
	var created int64
	err := s.db.QueryRow(ctx, `SELECT document, digest, comment, created_by, created_at FROM flow_versions WHERE flow_id = ? AND version = ?`, flowID, version).
		Scan(&doc, &v.Digest, &v.Comment, &v.CreatedBy, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("Version", flowID+"@"+strconv.FormatInt(version, 10))
	}
	if err != nil {
		return nil, err
	}
	v.Document = json.RawMessage(doc)
	v.CreatedAt = time.UnixMilli(created).UTC()
	return &v, nil
}

// ListVersions returns a flow's versions, newest first (documents omitted).
func (s *Service) ListVersions(ctx context.Context, flowID string, offset, limit int) ([]Version, int, error) {
	f, err := s.Get(ctx, flowID)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.db.Query(ctx, `SELECT version, digest, comment, created_by, created_at FROM flow_versions WHERE flow_id = ?
		ORDER BY version DESC LIMIT ? OFFSET ?`, flowID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v := Version{FlowID: flowID, ProjectID: f.ProjectID}
		var created int64
		if err := rows.Scan(&v.Version, &v.Digest, &v.Comment, &v.CreatedBy, &created); err != nil {
			return nil, 0, err
		}
		v.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, v)
	}
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM flow_versions WHERE flow_id = ?", flowID).Scan(&total); err != nil {
		return nil, 0, err
	}
	return out, total, rows.Err()
}

// List returns the flows of projects, most recently updated first.
func (s *Service) List(ctx context.Context, projects store.Projects, flowIDs, names []string, offset, limit int) ([]Flow, int, error) {
	var w store.Where
	cond, args := w.InProjects("project_id", projects).In("id", flowIDs).In("name", names).SQL()
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM flows"+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.Query(ctx, `SELECT id, project_id, name, description, latest_version, created_at, updated_at FROM flows`+cond+
		` ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Flow
	for rows.Next() {
		var f Flow
		var c, u int64
		if err := rows.Scan(&f.ID, &f.ProjectID, &f.Name, &f.Description, &f.LatestVersion, &c, &u); err != nil {
			return nil, 0, err
		}
		f.CreatedAt, f.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
		out = append(out, f)
	}
	return out, total, rows.Err()
}

// Plan returns the compiled plan of a version (0: latest), compiling it
// once; tasks and InvokeFlow share it.
func (s *Service) Plan(ctx context.Context, flowID string, version int64) (*flow.Plan, *Version, error) {
	f, err := s.Get(ctx, flowID)
	if err != nil {
		return nil, nil, err
	}
	return s.planOf(ctx, f, version)
}

// planOf is Plan for a flow already read: a cached version costs no
// further read (versions are immutable; the returned Version is shared
// and must not be changed).
func (s *Service) planOf(ctx context.Context, f *Flow, version int64) (*flow.Plan, *Version, error) {
	if version == 0 {
		version = f.LatestVersion
	}
	key := f.ID + "@" + strconv.FormatInt(version, 10)
	s.mu.Lock()
	c, ok := s.plans[key]
	s.mu.Unlock()
	if ok {
		return c.p, c.v, nil
	}
	v, err := s.versionOf(ctx, f, version)
	if err != nil {
		return nil, nil, err
	}
	spec, err := flow.Parse(v.Document, flow.Limits{})
	if err != nil {
		return nil, nil, fmt.Errorf("studio: stored version %s no longer parses: %w", key, err)
	}
	p, err := flow.Compile(ctx, spec, s.options(ctx, v.ProjectID))
	if err != nil {
		var fe flow.Errors
		if errors.As(err, &fe) {
			// e.g. an algorithm it calls was deleted since.
			return nil, nil, &ValidationError{Errs: fe}
		}
		return nil, nil, err
	}
	s.mu.Lock()
	if len(s.plans) >= maxCachedPlans {
		s.plans = map[string]cachedPlan{}
	}
	s.plans[key] = cachedPlan{p: p, v: v}
	s.mu.Unlock()
	return p, v, nil
}

// CheckParams checks a task's parameter values against those a flow
// version declares, as a task's creation needs them: an unknown name or a
// wrong type answers InvalidParameterValue, a missing required one
// MissingParameter, each naming Parameters.<name>.
func (s *Service) CheckParams(ctx context.Context, flowID string, version int64, params map[string]any) error {
	plan, _, err := s.Plan(ctx, flowID, version)
	if err != nil {
		return apiError(err)
	}
	var fe flow.Errors
	if err := plan.CheckParams(params); !errors.As(err, &fe) || len(fe) == 0 {
		return err
	}
	name := strings.TrimPrefix(fe[0].Field, "parameters.")
	if _, given := params[name]; !given {
		return api.Missing("Parameters." + name)
	}
	return api.InvalidValue("Parameters."+name, "%s", fe[0].Msg)
}

// Compile compiles a version (0: latest) afresh with a tracer of the
// caller's: each running task gets its own plan so its per-node latencies
// are its own.
func (s *Service) Compile(ctx context.Context, flowID string, version int64, tr flow.Tracer) (*flow.Plan, error) {
	v, err := s.GetVersion(ctx, flowID, version)
	if err != nil {
		return nil, err
	}
	spec, err := flow.Parse(v.Document, flow.Limits{})
	if err != nil {
		return nil, err
	}
	o := s.options(ctx, v.ProjectID)
	o.Tracer = tr
	return flow.Compile(ctx, spec, o)
}

func (s *Service) projectExists(ctx context.Context, id string) error {
	var one int
	err := s.db.QueryRow(ctx, "SELECT 1 FROM projects WHERE id = ?", id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return api.NotFound("ProjectId", id)
	}
	return err
}

// projectFlows resolves subflow references within one project.
type projectFlows struct {
	s         *Service
	ctx       context.Context
	projectID string
	mu        sync.Mutex
	ids       []string // the flows looked up
}

// Flow implements flow.Flows, recording the ids it was asked for.
func (pf *projectFlows) Flow(ref flow.FlowRef) (*flow.Spec, error) {
	pf.mu.Lock()
	pf.ids = append(pf.ids, ref.ID)
	pf.mu.Unlock()
	var v int64
	if ref.Version != "" {
		n, err := strconv.ParseInt(ref.Version, 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: version %q is not a positive integer", flow.ErrUnknownFlow, ref.Version)
		}
		v = n
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(pf.ctx), 10*time.Second)
	defer cancel()
	ver, err := pf.s.GetVersion(ctx, ref.ID, v)
	if err != nil || ver.ProjectID != pf.projectID {
		return nil, fmt.Errorf("%w: %s", flow.ErrUnknownFlow, ref.ID)
	}
	return flow.Parse(ver.Document, flow.Limits{})
}
