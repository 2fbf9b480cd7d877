// Package algorepo is the algorithm repository: algorithms and their
// versions kept in the store (the control plane's side), applied to the
// local algorithm runtime (internal/algorithm) by every process that runs
// one (the workers' side, attached with StartRuntime), and exposed to the
// flow engine with contracts that are known even while a version is
// stopped. A process without a runtime (an api or push replica) starts no
// algorithm instance.
package algorepo

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/imagebuild"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Desired states of a version.
const (
	Running = "running"
	Stopped = "stopped"
)

// BuiltinProject marks the built-in algorithms, visible in every project.
const BuiltinProject = "*"

// Algorithm is an algorithm row.
type Algorithm struct {
	ID, ProjectID, Name, Description, CurrentVersion string
	CreatedAt                                        time.Time
	Builtin                                          bool
	Canary                                           *Canary // nil: none
}

// VersionRow is a stored version.
type VersionRow struct {
	Def       algorithm.Version
	Desired   string
	CreatedAt time.Time
}

// Service is the repository.
type Service struct {
	db  *store.DB
	box *secrets.Box // seals versions' secrets; nil: none are taken
	// images builds container versions' images from packages; nil: not
	// configured. openPackage reads a stored package for it.
	images       *imagebuild.Builder
	openPackage  OpenPackageFunc
	builtinLogin *RegistryLogin // nil: no built-in registry
	// m is this process's algorithm runtime; nil until StartRuntime, and
	// for good in processes that run none.
	m   *algorithm.Manager
	log *slog.Logger
	now func() time.Time

	canaries canaryCache

	mu       sync.Mutex
	builtins map[string]algorithm.Builtin // by algorithm id
	applied  map[string]string            // "id@version" → definition JSON applied locally
}

// New returns the repository over db. The builtins are offered as
// algorithms of every project, running always wherever a runtime runs.
func New(db *store.DB, builtins map[string]algorithm.Builtin, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, log: log, now: now, builtins: builtins, applied: map[string]string{}}
}

// ErrNoRuntime means this process runs no algorithm instances (it was
// started without the runtime module): calls go to a process that does.
var ErrNoRuntime = errors.New("algorepo: no algorithm runtime in this process (run it with the runtime or worker target)")

// BuiltinID is the algorithm id of a builtin.
func BuiltinID(name string) string { return "alg-" + name }

// StartRuntime makes m this process's algorithm runtime and applies the
// builtins and every version desired running to it; Run then keeps it in
// step with the store (other replicas start and stop versions too). It is
// called once, before the process serves.
func (s *Service) StartRuntime(ctx context.Context, m *algorithm.Manager) error {
	s.m = m
	for name, b := range s.builtins {
		s.m.RegisterBuiltin(name, b)
		v := algorithm.Version{AlgorithmID: BuiltinID(name), Version: "1", Runtime: algorithm.RuntimeBuiltin, Package: name, Contract: b.Contract}
		if err := s.m.Apply(ctx, v); err != nil {
			return fmt.Errorf("algorepo: builtin %s: %w", name, err)
		}
	}
	s.Reconcile(ctx)
	return nil
}

// Run reconciles every interval until ctx ends, and every scaleEvery
// intervals scales the versions that scale to zero to their use and prunes
// the cluster of versions no longer wanted.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Reconcile(ctx)
			if i%scaleEvery == 0 {
				s.ScaleToUse(ctx)
				s.Prune(ctx)
			}
		}
	}
}

// scaleEvery is how many reconcile intervals pass between two checks of
// which versions running tasks use.
const scaleEvery = 5

// Reconcile applies versions desired running to the local runtime and
// stops the others; without a runtime it does nothing.
func (s *Service) Reconcile(ctx context.Context) {
	if s.m == nil {
		return
	}
	rows, err := s.db.Query(ctx, "SELECT algorithm_id, version, definition, desired_state FROM algorithm_versions")
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("algorithm reconcile failed", "err", err)
		}
		return
	}
	type row struct{ id, version, def, desired string }
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.version, &r.def, &r.desired); err == nil {
			all = append(all, r)
		}
	}
	rows.Close()
	want := map[string]bool{}
	for _, r := range all {
		key := r.id + "@" + r.version
		if r.desired != Running {
			continue
		}
		want[key] = true
		s.mu.Lock()
		same := s.applied[key] == r.def
		s.mu.Unlock()
		if same {
			continue
		}
		var v algorithm.Version
		if err := json.Unmarshal([]byte(r.def), &v); err != nil {
			s.log.Warn("algorithm definition unreadable", "algorithm", r.id, "version", r.version, "err", err)
			continue
		}
		if err := s.loadSecrets(ctx, &v); err != nil {
			s.log.Warn("algorithm secrets unreadable", "algorithm", r.id, "version", r.version, "err", err)
			continue
		}
		if err := s.m.Apply(ctx, v); err != nil {
			s.log.Warn("algorithm version not applied", "algorithm", r.id, "version", r.version, "err", err)
			continue
		}
		s.mu.Lock()
		s.applied[key] = r.def
		s.mu.Unlock()
		s.log.Info("algorithm version applied", "algorithm", r.id, "version", r.version, "runtime", v.Runtime)
	}
	s.mu.Lock()
	var stop []string
	for key := range s.applied {
		if !want[key] {
			stop = append(stop, key)
		}
	}
	s.mu.Unlock()
	for _, key := range stop {
		id, version, _ := strings.Cut(key, "@")
		if err := s.m.Stop(ctx, algorithm.Ref{ID: id, Version: version}); err != nil && !errors.Is(err, algorithm.ErrUnknownAlgorithm) {
			s.log.Warn("algorithm version not stopped", "algorithm", id, "version", version, "err", err)
			continue
		}
		s.mu.Lock()
		delete(s.applied, key)
		s.mu.Unlock()
		s.log.Info("algorithm version stopped", "algorithm", id, "version", version)
	}
}

// Create adds an algorithm (without versions).
func (s *Service) Create(ctx context.Context, projectID, name, description string) (*Algorithm, error) {
	if projectID == "" {
		projectID = "default"
	}
	var one int
	if err := s.db.QueryRow(ctx, "SELECT 1 FROM projects WHERE id = ?", projectID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("ProjectId", projectID)
	}
	if _, ok := s.builtins[name]; ok {
		return nil, api.Errorf(api.ResourceInUse, "Name: %q is a built-in algorithm's name", name)
	}
	now := s.now()
	a := &Algorithm{ID: ids.New("alg"), ProjectID: projectID, Name: name, Description: description, CreatedAt: now}
	_, err := s.db.Exec(ctx, `INSERT INTO algorithms (id, project_id, name, description, current_version, created_at, updated_at)
		VALUES (?, ?, ?, ?, '', ?, ?)`, a.ID, projectID, name, description, now.UnixMilli(), now.UnixMilli())
	if s.db.IsUniqueViolation(err) {
		return nil, api.Errorf(api.ResourceInUse, "Name: an algorithm named %q exists in project %s", name, projectID)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("algorithm created", "algorithm", a.ID, "project", projectID)
	return a, nil
}

// Get returns an algorithm (builtins included).
func (s *Service) Get(ctx context.Context, id string) (*Algorithm, error) {
	for name := range s.builtins {
		if BuiltinID(name) == id {
			return &Algorithm{ID: id, ProjectID: BuiltinProject, Name: name, Description: "Built into Tianshu; needs no download and no GPU.", CurrentVersion: "1", Builtin: true}, nil
		}
	}
	var a Algorithm
	var c int64
	var canary string
	err := s.db.QueryRow(ctx, "SELECT id, project_id, name, description, current_version, created_at, canary FROM algorithms WHERE id = ?", id).
		Scan(&a.ID, &a.ProjectID, &a.Name, &a.Description, &a.CurrentVersion, &c, &canary)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("AlgorithmId", id)
	}
	a.CreatedAt = time.UnixMilli(c).UTC()
	a.Canary = parseCanary(canary)
	return &a, err
}

// List returns the builtins and a project's algorithms.
func (s *Service) List(ctx context.Context, projectID string, algIDs, names []string, offset, limit int) ([]Algorithm, int, error) {
	return s.ListIn(ctx, store.OneProject(projectID), algIDs, names, offset, limit)
}

// ListIn is List over the own algorithms of projects (a union list); the
// built-ins come once.
func (s *Service) ListIn(ctx context.Context, projects store.Projects, algIDs, names []string, offset, limit int) ([]Algorithm, int, error) {
	var out []Algorithm
	for _, name := range sortedKeys(s.builtins) {
		a, _ := s.Get(ctx, BuiltinID(name))
		if (len(algIDs) == 0 || contains(algIDs, a.ID)) && (len(names) == 0 || contains(names, a.Name)) {
			out = append(out, *a)
		}
	}
	var w store.Where
	cond, args := w.InProjects("project_id", projects).In("id", algIDs).In("name", names).SQL()
	rows, err := s.db.Query(ctx, "SELECT id, project_id, name, description, current_version, created_at, canary FROM algorithms"+cond+" ORDER BY created_at DESC, id", args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var a Algorithm
		var c int64
		var canary string
		if err := rows.Scan(&a.ID, &a.ProjectID, &a.Name, &a.Description, &a.CurrentVersion, &c, &canary); err != nil {
			return nil, 0, err
		}
		a.CreatedAt = time.UnixMilli(c).UTC()
		a.Canary = parseCanary(canary)
		out = append(out, a)
	}
	total := len(out)
	if offset > len(out) {
		offset = len(out)
	}
	out = out[offset:]
	if len(out) > limit {
		out = out[:limit]
	}
	return out, total, rows.Err()
}

// CreateVersion stores a version; start makes it desired running (and
// applies it here at once, reporting a start failure).
func (s *Service) CreateVersion(ctx context.Context, algID, version string, def algorithm.Version, start bool) (string, error) {
	a, err := s.Get(ctx, algID)
	if err != nil {
		return "", err
	}
	if a.Builtin {
		return "", api.Errorf(api.InvalidParameterValue, "AlgorithmId: %s is built in and has no other versions", algID)
	}
	desired := Stopped
	if start {
		desired = Running
	}
	if s.m != nil {
		// A container version the cluster cannot run (more GPUs than any
		// node has) is refused before it is saved. Other failures (the
		// API server unreachable) do not block saving; starting reports them.
		if err := s.m.CheckContainer(ctx, def); err != nil {
			var fe *algorithm.FieldError
			if errors.As(err, &fe) {
				return "", api.InvalidValue("Definition."+fe.Field, "%s", fe.Msg)
			}
			s.log.Warn("container version not checked", "algorithm", algID, "err", err)
		}
	}
	now := s.now().UnixMilli()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if version == "" {
			// Numbered in the transaction that inserts it; should a
			// concurrent call take the same number, the key refuses one.
			v, err := nextVersion(ctx, tx, algID)
			if err != nil {
				return err
			}
			version = v
		}
		def.AlgorithmID, def.Version = algID, version
		if err := validate(def); err != nil {
			return err
		}
		b, _ := json.Marshal(def)
		_, err := tx.Exec(ctx, `INSERT INTO algorithm_versions (algorithm_id, version, definition, desired_state, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)`, algID, version, string(b), desired, now, now)
		if s.db.IsUniqueViolation(err) {
			return api.Errorf(api.ResourceInUse, "Version: %s@%s exists; versions are immutable", algID, version)
		}
		if err != nil {
			return err
		}
		if err := s.insertSecrets(ctx, tx, def); err != nil {
			return err
		}
		// A version created running becomes the current one; one created
		// stopped only when there is none yet (it is started, or tried as a
		// canary, later).
		_, err = tx.Exec(ctx, "UPDATE algorithms SET current_version = ?, updated_at = ? WHERE id = ? AND (? OR current_version = '')", version, now, algID, start)
		return err
	})
	if err != nil {
		return "", err
	}
	s.log.Info("algorithm version created", "algorithm", algID, "version", version, "runtime", def.Runtime)
	if start {
		return version, s.applyNow(ctx, def)
	}
	return version, nil
}

// validate checks a definition; errors name the field under Definition.
func validate(def algorithm.Version) error {
	if err := def.Validate(); err != nil {
		var fe *algorithm.FieldError
		if errors.As(err, &fe) {
			return api.InvalidValue("Definition."+fe.Field, "%s", fe.Msg)
		}
		return api.InvalidValue("Definition", "%v", err)
	}
	return nil
}

// nextVersion returns the name for an unnamed version of algID: one more
// than the highest version named by a number, so that versions named by
// hand ("2", "v2-beta") never make the next number one that is taken.
func nextVersion(ctx context.Context, tx *store.Tx, algID string) (string, error) {
	rows, err := tx.Query(ctx, "SELECT version FROM algorithm_versions WHERE algorithm_id = ?", algID)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	highest := 0
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return "", err
		}
		if n, err := strconv.Atoi(v); err == nil && n > highest && n < math.MaxInt {
			highest = n
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return strconv.Itoa(highest + 1), nil
}

// applyNow applies a version in this process at once, so the caller learns
// about a bad package or a process that cannot start.
func (s *Service) applyNow(ctx context.Context, def algorithm.Version) error {
	if s.m == nil {
		return nil // the workers' runtimes apply it on their next reconcile
	}
	if err := s.loadSecrets(ctx, &def); err != nil {
		return err
	}
	if err := s.m.Apply(ctx, def); err != nil {
		return api.Errorf(api.FailedOperation, "version %s@%s saved but could not start here: %v", def.AlgorithmID, def.Version, err)
	}
	b, _ := json.Marshal(def)
	s.mu.Lock()
	s.applied[def.AlgorithmID+"@"+def.Version] = string(b)
	s.mu.Unlock()
	return nil
}

// Versions lists an algorithm's versions, newest first.
func (s *Service) Versions(ctx context.Context, algID string) ([]VersionRow, error) {
	a, err := s.Get(ctx, algID)
	if err != nil {
		return nil, err
	}
	if a.Builtin {
		name := strings.TrimPrefix(algID, "alg-")
		return []VersionRow{{Def: algorithm.Version{AlgorithmID: algID, Version: "1", Runtime: algorithm.RuntimeBuiltin, Package: name,
			Contract: s.builtins[name].Contract}, Desired: Running}}, nil
	}
	rows, err := s.db.Query(ctx, "SELECT definition, desired_state, created_at FROM algorithm_versions WHERE algorithm_id = ? ORDER BY created_at DESC", algID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []VersionRow
	for rows.Next() {
		var def string
		var v VersionRow
		var c int64
		if err := rows.Scan(&def, &v.Desired, &c); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(def), &v.Def)
		v.CreatedAt = time.UnixMilli(c).UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}

// version returns one stored version ("" = current).
func (s *Service) version(ctx context.Context, algID, version string) (*VersionRow, error) {
	vs, err := s.Versions(ctx, algID)
	if err != nil {
		return nil, err
	}
	if version == "" {
		// The algorithm may have been deleted since its versions were read.
		a, err := s.Get(ctx, algID)
		if err != nil {
			return nil, err
		}
		version = a.CurrentVersion
	}
	for i := range vs {
		if vs[i].Def.Version == version {
			return &vs[i], nil
		}
	}
	return nil, api.NotFound("Version", algID+"@"+version)
}

// SetDesired starts or stops a version everywhere; here at once, on other
// processes at their next reconcile.
func (s *Service) SetDesired(ctx context.Context, algID, version, desired string) error {
	v, err := s.version(ctx, algID, version)
	if err != nil {
		return err
	}
	if strings.HasPrefix(algID, "alg-") && v.Def.Runtime == algorithm.RuntimeBuiltin && s.isBuiltin(algID) {
		return api.Errorf(api.InvalidParameterValue, "AlgorithmId: built-in algorithms always run")
	}
	if _, err := s.db.Exec(ctx, "UPDATE algorithm_versions SET desired_state = ?, updated_at = ? WHERE algorithm_id = ? AND version = ?",
		desired, s.now().UnixMilli(), algID, v.Def.Version); err != nil {
		return err
	}
	if desired == Running {
		// Starting a version makes it the current one, unless it is the
		// canary's (then only the canary's cameras call it).
		if !s.isBuiltin(algID) {
			if err := s.makeCurrent(ctx, algID, v.Def.Version); err != nil {
				return err
			}
		}
		return s.applyNow(ctx, v.Def)
	}
	s.Reconcile(ctx)
	return nil
}

func (s *Service) isBuiltin(id string) bool {
	_, ok := s.builtins[strings.TrimPrefix(id, "alg-")]
	return ok
}

// Delete removes an algorithm and its versions, unless a flow refers to it.
// The algorithm's row is locked while the flow versions are searched and
// it is deleted; storing a flow version locks the rows of the algorithms
// it calls too, so a version stored at the same time is either found here
// or finds the algorithm gone.
func (s *Service) Delete(ctx context.Context, algID string) error {
	a, err := s.Get(ctx, algID)
	if err != nil {
		return err
	}
	if a.Builtin {
		return api.Errorf(api.InvalidParameterValue, "AlgorithmId: built-in algorithms cannot be deleted")
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		// Flow documents are normalised JSON: the id appears quoted.
		found, n, err := tx.LockUsers(ctx, "algorithms", algID, "SELECT COUNT(*) FROM flow_versions WHERE document LIKE ?", "%\""+algID+"\"%")
		switch {
		case err != nil:
			return err
		case !found:
			return api.NotFound("AlgorithmId", algID)
		case n > 0:
			return api.Errorf(api.ResourceInUse, "AlgorithmId: %d flow version(s) call %s; change or delete them first", n, algID)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM algorithm_versions WHERE algorithm_id = ?", algID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM algorithm_secrets WHERE algorithm_id = ?", algID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM algorithms WHERE id = ?", algID)
		return err
	})
	if err != nil {
		return err
	}
	s.Reconcile(ctx)
	return nil
}

// IsBuiltin reports whether id names a builtin algorithm (one with no row
// in the store).
func (s *Service) IsBuiltin(id string) bool { return s.isBuiltin(id) }

// Contract implements flow.Algorithms: from the running version when there
// is one, else from the store, so flows validate against stopped versions.
// A reference the store does not know wraps flow.ErrUnknownAlgorithm;
// other store failures (ctx's included) are returned as they are.
func (s *Service) Contract(ctx context.Context, ref flow.AlgorithmRef) (*flow.Contract, error) {
	if s.m != nil {
		if c, err := s.m.Contract(runtimeRef(ref)); err == nil {
			return flowContract(c), nil
		}
	}
	v, err := s.version(ctx, ref.ID, ref.Version)
	if isNotFound(err) {
		return nil, fmt.Errorf("%w: %s", flow.ErrUnknownAlgorithm, ref.ID)
	}
	if err != nil {
		return nil, err
	}
	return flowContract(&v.Def.Contract), nil
}

// isNotFound reports whether err is the API's "not found" answer, which
// Get and version give for ids and versions the store does not hold.
func isNotFound(err error) bool {
	e, ok := api.AsError(err)
	return ok && e.Code == api.ResourceNotFound
}

// Invoke implements flow.Algorithms through the local runtime; a version
// not running here wraps both algorithm.ErrUnknownAlgorithm and
// flow.ErrUnknownAlgorithm.
func (s *Service) Invoke(ctx context.Context, ref flow.AlgorithmRef, inputs map[string]any) (map[string]any, error) {
	if s.m == nil {
		return nil, api.Errorf(api.FailedOperation, "%v", ErrNoRuntime)
	}
	out, err := s.m.Invoke(ctx, runtimeRef(ref), inputs)
	return out, flowError(err)
}

// Instances returns the local runtime's instances of a version ("" = all).
func (s *Service) Instances(ctx context.Context, algID, version string) ([]algorithm.InstanceStatus, error) {
	if _, err := s.Get(ctx, algID); err != nil {
		return nil, err
	}
	if s.m == nil {
		return nil, nil
	}
	st, err := s.m.Instances(algorithm.Ref{ID: algID, Version: version})
	if errors.Is(err, algorithm.ErrUnknownAlgorithm) {
		return nil, nil
	}
	return st, err
}

// decodeDefinition reads a version definition strictly, naming bad fields.
func decodeDefinition(raw json.RawMessage) (algorithm.Version, error) {
	var v algorithm.Version
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return v, api.InvalidValue("Definition."+te.Field, "wrong type (%s)", te.Value)
		}
		if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return v, api.Errorf(api.UnknownParameter, "Definition.%s: no such field", strings.Trim(s, `"`))
		}
		return v, api.InvalidValue("Definition", "%v", err)
	}
	return v, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]algorithm.Builtin) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ForProject returns the algorithms a flow of projectID may call: its own
// project's and the built-ins. Others are unknown to it.
func (s *Service) ForProject(projectID string) flow.Algorithms {
	return projectAlgorithms{s: s, projectID: projectID}
}

type projectAlgorithms struct {
	s         *Service
	projectID string
}

// allowed reports whether the project may call algorithm id; an id the
// store does not hold is not allowed, and a store failure is an error.
func (p projectAlgorithms) allowed(ctx context.Context, id string) (bool, error) {
	a, err := p.s.Get(ctx, id)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return a.ProjectID == p.projectID || a.ProjectID == BuiltinProject, nil
}

// Contract implements flow.Algorithms: other projects' algorithms are
// unknown.
func (p projectAlgorithms) Contract(ctx context.Context, ref flow.AlgorithmRef) (*flow.Contract, error) {
	ok, err := p.allowed(ctx, ref.ID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", flow.ErrUnknownAlgorithm, ref.ID)
	}
	return p.s.Contract(ctx, ref)
}

// Invoke implements flow.Algorithms. Plans are compiled per project, where
// Contract already refused other projects' algorithms.
func (p projectAlgorithms) Invoke(ctx context.Context, ref flow.AlgorithmRef, inputs map[string]any) (map[string]any, error) {
	return p.s.Invoke(ctx, ref, inputs)
}
