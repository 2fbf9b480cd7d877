package iam

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// DefaultGrantsTTL is how long a principal's resolved grants are reused.
// A change made through this replica applies at once; the other replicas
// forget theirs when it is announced on the bus (UseInvalidations), and
// the TTL bounds a replica the announcement missed.
const DefaultGrantsTTL = 5 * time.Second

// changedSubject is the bus subject on which a replica tells the others
// that roles or role bindings changed.
const changedSubject = "iam.access.changed"

// Access keeps custom roles and role bindings, and resolves what a caller
// may do (api.Authorizer), caching each principal's compiled grants.
type Access struct {
	db  *store.DB
	now func() time.Time
	ttl time.Duration

	mu    sync.Mutex
	reg   *api.Registry
	cache map[string]cachedGrants
	// gen counts forgets, local or told over the bus, so that a lookup
	// racing one does not cache what it read before the change.
	gen     uint64
	changes bus.Ephemeral
	log     *slog.Logger
}

type cachedGrants struct {
	g  *api.Grants
	at time.Time
}

// NewAccess returns the role and binding store over db. Roles compile
// against the action registry given to UseRegistry; until then Grants and
// role changes fail.
func NewAccess(db *store.DB, now func() time.Time) *Access {
	if now == nil {
		now = time.Now
	}
	return &Access{db: db, now: now, ttl: DefaultGrantsTTL, cache: map[string]cachedGrants{}}
}

// UseRegistry gives the registry whose actions roles grant. It is separate
// from NewAccess because the registry is made by the api module, which
// starts after this one.
func (a *Access) UseRegistry(reg *api.Registry) {
	a.mu.Lock()
	a.reg = reg
	a.cache = map[string]cachedGrants{}
	a.mu.Unlock()
}

func (a *Access) registry() (*api.Registry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reg == nil {
		return nil, errors.New("iam: access has no action registry")
	}
	return a.reg, nil
}

// SetTTL sets how long a principal's grants are trusted without asking
// the store (0: ask on every call).
func (a *Access) SetTTL(d time.Duration) {
	a.mu.Lock()
	a.ttl = d
	a.cache = map[string]cachedGrants{}
	a.mu.Unlock()
}

// UseInvalidations makes every change of roles or bindings through this
// replica tell the others over inv, and listens for theirs, so that a
// revoked role is refused on every replica at once rather than after the
// TTL. log receives a change that could not be announced. stop stops
// listening.
func (a *Access) UseInvalidations(inv bus.Ephemeral, log *slog.Logger) (stop func(), err error) {
	stop, err = inv.Listen(changedSubject, func([]byte) { a.forget() })
	if err != nil {
		return nil, fmt.Errorf("iam: listen for access changes: %w", err)
	}
	a.mu.Lock()
	a.changes, a.log = inv, log
	a.mu.Unlock()
	return stop, nil
}

// forget drops every cached grant on this replica.
func (a *Access) forget() {
	a.mu.Lock()
	a.cache = map[string]cachedGrants{}
	a.gen++
	a.mu.Unlock()
}

// Changed forgets every cached grant and tells the other replicas to; the
// user store calls it when an account role (platform admin or not)
// changes, which grants read too.
func (a *Access) Changed() { a.changed() }

// changed forgets every cached grant and tells the other replicas to:
// after a change of roles or bindings, whatever the write's result (a
// failed write may still have changed a row).
func (a *Access) changed() {
	a.forget()
	a.mu.Lock()
	inv, log := a.changes, a.log
	a.mu.Unlock()
	announce(inv, log, changedSubject, "access change not announced to other replicas")
}

// announce sends an empty message on subject when there is a bus; a
// failure is logged as msg, since the other replicas still forget within
// their cache TTL.
func announce(inv bus.Ephemeral, log *slog.Logger, subject, msg string) {
	if inv == nil {
		return
	}
	if err := inv.Send(subject, nil); err != nil && log != nil {
		log.Warn(msg, "subject", subject, "err", err)
	}
}

// Grants implements api.Authorizer. A user whose account role is "admin",
// and a principal holding owner or admin in project "default" (the
// bootstrap admin app), are platform admins.
func (a *Access) Grants(ctx context.Context, c *api.Caller) (*api.Grants, error) {
	p := c.Principal()
	now := a.now()
	a.mu.Lock()
	e, ok := a.cache[p]
	ttl, gen := a.ttl, a.gen
	a.mu.Unlock()
	if ok && now.Sub(e.at) < ttl {
		return e.g, nil
	}
	g, err := a.resolve(ctx, p, c.UserID != "")
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if ttl > 0 && a.gen == gen { // not what was read before a change
		a.cache[p] = cachedGrants{g: g, at: now}
	}
	a.mu.Unlock()
	return g, nil
}

func (a *Access) resolve(ctx context.Context, principal string, user bool) (*api.Grants, error) {
	reg, err := a.registry()
	if err != nil {
		return nil, err
	}
	if principal == "" {
		return api.NewGrants(false, nil), nil
	}
	platform := false
	if user {
		var role string
		err := a.db.QueryRow(ctx, "SELECT role FROM users WHERE id = ?", principal).Scan(&role)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("iam: user role: %w", err)
		}
		platform = role == api.RoleAdmin
	}
	bs, err := a.bindingsOf(ctx, principal)
	if err != nil {
		return nil, err
	}
	custom := map[string]*api.Role{} // project + "/" + name
	var projects []string
	for _, b := range bs {
		if !api.IsBuiltinRole(b.role) {
			projects = append(projects, b.project)
		}
	}
	if len(projects) > 0 {
		rs, err := a.listRoles(ctx, projects, nil)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			custom[r.ProjectID+"/"+r.Name] = compileLenient(reg, r)
		}
	}
	var out []api.Binding
	for _, b := range bs {
		if b.project == "default" && (b.role == api.RoleOwner || b.role == api.RoleAdmin) {
			platform = true
		}
		r, ok := reg.BuiltinRole(b.role)
		if !ok {
			if r, ok = custom[b.project+"/"+b.role]; !ok {
				continue // a binding to a deleted role grants nothing
			}
		}
		out = append(out, api.Binding{ProjectID: b.project, Role: r})
	}
	return api.NewGrants(platform, out), nil
}

// compileLenient compiles a stored role, skipping patterns that no longer
// match an action (one removed in a later version) instead of failing the
// caller's every request.
func compileLenient(reg *api.Registry, r CustomRole) *api.Role {
	var set api.ActionSet
	for _, p := range r.Actions {
		if s, err := reg.MatchActions("Actions", []string{p}); err == nil {
			set = unionSets(set, s)
		}
	}
	return (&api.Role{Name: r.Name, Actions: set}).Narrow(r.Scope)
}

func unionSets(a, b api.ActionSet) api.ActionSet {
	for len(a) < len(b) {
		a = append(a, 0)
	}
	for i, w := range b {
		a[i] |= w
	}
	return a
}

type bindingRow struct{ project, role string }

func (a *Access) bindingsOf(ctx context.Context, principal string) ([]bindingRow, error) {
	rows, err := a.db.Query(ctx, "SELECT project_id, role FROM role_bindings WHERE principal_id = ? ORDER BY project_id, role", principal)
	if err != nil {
		return nil, fmt.Errorf("iam: bindings: %w", err)
	}
	defer rows.Close()
	var out []bindingRow
	for rows.Next() {
		var b bindingRow
		if err := rows.Scan(&b.project, &b.role); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// CustomRole is a custom role row.
type CustomRole struct {
	ID, ProjectID, Name, Description string
	Actions                          []string
	Scope                            api.Scope
	CreatedAt, UpdatedAt             time.Time
}

type scopeDoc struct {
	DeviceIds    []string `json:"DeviceIds,omitempty"`
	DeviceGroups []string `json:"DeviceGroups,omitempty"`
	TaskIds      []string `json:"TaskIds,omitempty"`
}

var roleName = func(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// CreateRole adds a custom role to a project. Its patterns must each match
// an action a role may grant.
func (a *Access) CreateRole(ctx context.Context, r *CustomRole) error {
	if !roleName(r.Name) {
		return api.InvalidValue("Name", "%q: want 1 to 64 letters, digits, '-', '_' or '.'", r.Name)
	}
	if api.IsBuiltinRole(r.Name) {
		return api.Errorf(api.ResourceInUse, "Name: %q is a built-in role", r.Name)
	}
	if err := a.checkRole(r); err != nil {
		return err
	}
	if err := a.projectExists(ctx, r.ProjectID); err != nil {
		return err
	}
	r.ID = ids.New("role")
	now := a.now()
	r.CreatedAt, r.UpdatedAt = now, now
	acts, scopes := encodeRole(r)
	_, err := a.db.Exec(ctx, `INSERT INTO roles (id, project_id, name, description, actions, scopes, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.ProjectID, r.Name, r.Description, acts, scopes, now.UnixMilli(), now.UnixMilli())
	if a.db.IsUniqueViolation(err) {
		return api.Errorf(api.ResourceInUse, "Name: project %s has a role named %q", r.ProjectID, r.Name)
	}
	if err != nil {
		return fmt.Errorf("iam: create role: %w", err)
	}
	a.changed()
	return nil
}

func (a *Access) checkRole(r *CustomRole) error {
	reg, err := a.registry()
	if err != nil {
		return err
	}
	if len(r.Actions) == 0 {
		return api.Missing("Actions")
	}
	_, err = reg.MatchActions("Actions", r.Actions)
	return err
}

func (a *Access) projectExists(ctx context.Context, id string) error {
	var n int
	if err := a.db.QueryRow(ctx, "SELECT COUNT(*) FROM projects WHERE id = ?", id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return api.NotFound("ProjectId", id)
	}
	return nil
}

func encodeRole(r *CustomRole) (string, string) {
	acts, _ := json.Marshal(r.Actions)
	scopes, _ := json.Marshal(scopeDoc{DeviceIds: r.Scope.DeviceIDs, DeviceGroups: r.Scope.DeviceGroups, TaskIds: r.Scope.TaskIDs})
	return string(acts), string(scopes)
}

const roleColumns = "id, project_id, name, description, actions, scopes, created_at, updated_at"

func scanRole(s interface{ Scan(...any) error }) (CustomRole, error) {
	var r CustomRole
	var acts, scopes string
	var c, u int64
	if err := s.Scan(&r.ID, &r.ProjectID, &r.Name, &r.Description, &acts, &scopes, &c, &u); err != nil {
		return r, err
	}
	var sd scopeDoc
	if err := json.Unmarshal([]byte(acts), &r.Actions); err != nil {
		return r, fmt.Errorf("iam: role %s actions: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(scopes), &sd); err != nil {
		return r, fmt.Errorf("iam: role %s scopes: %w", r.ID, err)
	}
	r.Scope = api.Scope{DeviceIDs: sd.DeviceIds, DeviceGroups: sd.DeviceGroups, TaskIDs: sd.TaskIds}
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
	return r, nil
}

// listRoles returns the custom roles of projects (every project when
// empty), optionally only those with ids, by project and name.
func (a *Access) listRoles(ctx context.Context, projects, roleIDs []string) ([]CustomRole, error) {
	var w store.Where
	cond, args := w.In("project_id", projects).In("id", roleIDs).SQL()
	return a.queryRoles(ctx, cond, "", args)
}

func (a *Access) queryRoles(ctx context.Context, cond, page string, args []any) ([]CustomRole, error) {
	// id breaks ties so that pages never repeat or skip a role.
	rows, err := a.db.Query(ctx, "SELECT "+roleColumns+" FROM roles"+cond+" ORDER BY project_id, name, id"+page, args...)
	if err != nil {
		return nil, fmt.Errorf("iam: roles: %w", err)
	}
	defer rows.Close()
	var out []CustomRole
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Roles returns the custom roles of a project ("" for every project).
func (a *Access) Roles(ctx context.Context, projectID string) ([]CustomRole, error) {
	var ps []string
	if projectID != "" {
		ps = []string{projectID}
	}
	return a.listRoles(ctx, ps, nil)
}

// RolesIn returns the custom roles of projects (a union list), by project
// and name.
func (a *Access) RolesIn(ctx context.Context, projects store.Projects) ([]CustomRole, error) {
	var w store.Where
	cond, args := w.InProjects("project_id", projects).SQL()
	return a.queryRoles(ctx, cond, "", args)
}

// RolesPage is one page of RolesIn (limit roles from offset, in the same
// order) and the total, counted over the same condition; limit 0 only
// counts.
func (a *Access) RolesPage(ctx context.Context, projects store.Projects, offset, limit int) ([]CustomRole, int, error) {
	var w store.Where
	cond, args := w.InProjects("project_id", projects).SQL()
	var total int
	if err := a.db.QueryRow(ctx, "SELECT COUNT(*) FROM roles"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("iam: count roles: %w", err)
	}
	if limit == 0 || offset >= total {
		return nil, total, nil
	}
	rs, err := a.queryRoles(ctx, cond, " LIMIT ? OFFSET ?", append(args, limit, offset))
	return rs, total, err
}

// Role returns a custom role by id.
func (a *Access) Role(ctx context.Context, id string) (*CustomRole, error) {
	r, err := scanRole(a.db.QueryRow(ctx, "SELECT "+roleColumns+" FROM roles WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("RoleId", id)
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// RoleChange is what ModifyRole changes; nil fields stay.
type RoleChange struct {
	Description                      *string
	Actions                          []string // nil: unchanged
	DeviceIDs, DeviceGroups, TaskIDs *[]string
}

// ModifyRole changes a custom role; its members' grants change with it.
func (a *Access) ModifyRole(ctx context.Context, id string, ch RoleChange) error {
	r, err := a.Role(ctx, id)
	if err != nil {
		return err
	}
	if ch.Description != nil {
		r.Description = *ch.Description
	}
	if ch.Actions != nil {
		r.Actions = ch.Actions
	}
	if ch.DeviceIDs != nil {
		r.Scope.DeviceIDs = *ch.DeviceIDs
	}
	if ch.DeviceGroups != nil {
		r.Scope.DeviceGroups = *ch.DeviceGroups
	}
	if ch.TaskIDs != nil {
		r.Scope.TaskIDs = *ch.TaskIDs
	}
	if err := a.checkRole(r); err != nil {
		return err
	}
	acts, scopes := encodeRole(r)
	if _, err := a.db.Exec(ctx, "UPDATE roles SET description = ?, actions = ?, scopes = ?, updated_at = ? WHERE id = ?",
		r.Description, acts, scopes, a.now().UnixMilli(), id); err != nil {
		return fmt.Errorf("iam: modify role: %w", err)
	}
	a.changed()
	return nil
}

// DeleteRole deletes a custom role; it is refused while a member holds it.
func (a *Access) DeleteRole(ctx context.Context, id string) error {
	r, err := a.Role(ctx, id)
	if err != nil {
		return err
	}
	err = a.db.InTx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM role_bindings WHERE project_id = ? AND role = ?", r.ProjectID, r.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return api.Errorf(api.ResourceInUse, "RoleId: %d member(s) of project %s hold role %q; remove them from it first", n, r.ProjectID, r.Name)
		}
		_, err := tx.Exec(ctx, "DELETE FROM roles WHERE id = ?", id)
		return err
	})
	if err != nil {
		return err
	}
	// Announced once committed, so that no replica rereads the old rows.
	a.changed()
	return nil
}

// checkPrincipal answers ResourceNotFound for a principal that is neither
// a user nor an app. It reads the apps table of the app center: the one
// place a center reads another's rows, to keep bindings from naming ghosts.
func (a *Access) checkPrincipal(ctx context.Context, principal string) error {
	table := ""
	switch {
	case strings.HasPrefix(principal, "usr-"):
		table = "users"
	case strings.HasPrefix(principal, "app-"):
		table = "apps"
	default:
		return api.InvalidValue("PrincipalId", "%q: want a user id (usr-…) or an app id (app-…)", principal)
	}
	var n int
	if err := a.db.QueryRow(ctx, "SELECT COUNT(*) FROM "+table+" WHERE id = ?", principal).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return api.NotFound("PrincipalId", principal)
	}
	return nil
}

// checkRoleName answers InvalidParameterValue for a role that is neither
// built-in nor a custom role of project.
func (a *Access) checkRoleName(ctx context.Context, field, project, role string) error {
	if api.IsBuiltinRole(role) {
		return nil
	}
	var n int
	if err := a.db.QueryRow(ctx, "SELECT COUNT(*) FROM roles WHERE project_id = ? AND name = ?", project, role).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return api.InvalidValue(field, "%q: no such role in project %s; built-in roles: %s", role, project, strings.Join(api.Roles(), ", "))
	}
	return nil
}

// SetRoles makes roles the principal's roles in project, replacing those
// it held there; no roles removes it from the project.
func (a *Access) SetRoles(ctx context.Context, principal, project string, roles []string) error {
	if err := a.checkPrincipal(ctx, principal); err != nil {
		return err
	}
	if err := a.projectExists(ctx, project); err != nil {
		return err
	}
	seen := map[string]bool{}
	var uniq []string
	for i, r := range roles {
		if err := a.checkRoleName(ctx, fmt.Sprintf("Roles[%d]", i), project, r); err != nil {
			return err
		}
		if !seen[r] {
			seen[r] = true
			uniq = append(uniq, r)
		}
	}
	now := a.now().UnixMilli()
	err := a.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM role_bindings WHERE principal_id = ? AND project_id = ?", principal, project); err != nil {
			return err
		}
		for _, r := range uniq {
			if _, err := tx.Exec(ctx, "INSERT INTO role_bindings (principal_id, project_id, role, created_at) VALUES (?, ?, ?, ?)",
				principal, project, r, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("iam: set roles: %w", err)
	}
	a.changed()
	return nil
}

// AddRole gives the principal one more role in project.
func (a *Access) AddRole(ctx context.Context, principal, project, role string) error {
	held, err := a.RolesOf(ctx, principal, project)
	if err != nil {
		return err
	}
	for _, r := range held {
		if r == role {
			return api.Errorf(api.ResourceInUse, "Role: %s already holds %q in project %s", principal, role, project)
		}
	}
	return a.SetRoles(ctx, principal, project, append(held, role))
}

// RemoveRole takes one role ("" for every role) of the principal in
// project; it answers ResourceNotFound when there is none to take.
func (a *Access) RemoveRole(ctx context.Context, principal, project, role string) error {
	q, args := "DELETE FROM role_bindings WHERE principal_id = ? AND project_id = ?", []any{principal, project}
	if role != "" {
		q, args = q+" AND role = ?", append(args, role)
	}
	res, err := a.db.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("iam: remove role: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("PrincipalId", principal)
	}
	a.changed()
	return nil
}

// RolesOf returns the roles the principal holds in project, sorted.
func (a *Access) RolesOf(ctx context.Context, principal, project string) ([]string, error) {
	ms, _, err := a.Members(ctx, project, []string{principal}, 0, 1)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	return ms[0].Roles, nil
}

// Forget removes every binding of a principal: its app or user is gone.
func (a *Access) Forget(ctx context.Context, principal string) error {
	if _, err := a.db.Exec(ctx, "DELETE FROM role_bindings WHERE principal_id = ?", principal); err != nil {
		return fmt.Errorf("iam: forget principal: %w", err)
	}
	a.changed()
	return nil
}

// SetAppRole makes role an app's one role in its own project; the app
// center calls it when an app is made or its role changed.
func (a *Access) SetAppRole(ctx context.Context, appID, projectID, role string) error {
	if err := a.checkRoleName(ctx, "Role", projectID, role); err != nil {
		return err
	}
	return a.SetRoles(ctx, appID, projectID, []string{role})
}

// Names returns the names of principals: a user's user name, an app's
// name; a principal whose row is gone has none. Like checkPrincipal it
// reads the app center's apps table, so that a member list names its
// members in one query per kind instead of one call per member.
func (a *Access) Names(ctx context.Context, principals []string) (map[string]string, error) {
	var users, apps []string
	for _, p := range principals {
		switch {
		case strings.HasPrefix(p, "usr-"):
			users = append(users, p)
		case strings.HasPrefix(p, "app-"):
			apps = append(apps, p)
		}
	}
	out := make(map[string]string, len(principals))
	for _, k := range []struct {
		table string
		ids   []string
	}{{"users", users}, {"apps", apps}} {
		if len(k.ids) == 0 {
			continue
		}
		var w store.Where
		cond, args := w.In("id", k.ids).SQL()
		rows, err := a.db.Query(ctx, "SELECT id, name FROM "+k.table+cond, args...)
		if err != nil {
			return nil, fmt.Errorf("iam: principal names: %w", err)
		}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = name
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UserID returns the id of the user named name, or ResourceNotFound
// naming field.
func (a *Access) UserID(ctx context.Context, field, name string) (string, error) {
	var id string
	err := a.db.QueryRow(ctx, "SELECT id FROM users WHERE name = ?", name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", api.NotFound(field, name)
	}
	return id, err
}

// Member is a principal and the roles it holds in a project.
type Member struct {
	ProjectID   string
	PrincipalID string
	Roles       []string
}

// Members returns the members of project (only principals, when given),
// by principal id, and their total.
func (a *Access) Members(ctx context.Context, project string, principals []string, offset, limit int) ([]Member, int, error) {
	return a.MembersIn(ctx, store.OneProject(project), principals, offset, limit)
}

// MembersIn is Members over projects (a union list): one member per
// project and principal, by project, then principal id.
func (a *Access) MembersIn(ctx context.Context, projects store.Projects, principals []string, offset, limit int) ([]Member, int, error) {
	var w store.Where
	cond, args := w.InProjects("project_id", projects).In("principal_id", principals).SQL()
	var total int
	if err := a.db.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT DISTINCT project_id, principal_id FROM role_bindings"+cond+") m", args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := a.db.Query(ctx, "SELECT project_id, principal_id, role FROM role_bindings"+cond+" ORDER BY project_id, principal_id, role", args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		var r string
		if err := rows.Scan(&m.ProjectID, &m.PrincipalID, &r); err != nil {
			return nil, 0, err
		}
		if n := len(out); n == 0 || out[n-1].ProjectID != m.ProjectID || out[n-1].PrincipalID != m.PrincipalID {
			if n >= offset+limit {
				break
			}
			out = append(out, m)
		}
		out[len(out)-1].Roles = append(out[len(out)-1].Roles, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if offset > len(out) {
		offset = len(out)
	}
	out = out[offset:]
	for _, m := range out {
		sort.Strings(m.Roles)
	}
	return out, total, nil
}
