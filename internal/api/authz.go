package api

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Built-in roles. A principal (a user or an app) holds roles per project;
// these five exist in every project and cannot be changed. Custom roles
// (sets of action patterns, optionally narrowed to resources) are kept by
// the IAM center. BuiltinAllows is the table that defines them.
const (
	RoleOwner    = "owner"    // every action in the project, owners included
	RoleAdmin    = "admin"    // every action in the project; cannot bind or unbind owners
	RoleOperator = "operator" // run tasks, manage devices, flows, algorithms, data and subscriptions; read the rest but audit; no IAM
	RoleViewer   = "viewer"   // read (Describe*) actions but audit
	RoleAuditor  = "auditor"  // the audit log only
)

// Roles lists the built-in roles, strongest first.
func Roles() []string {
	return []string{RoleOwner, RoleAdmin, RoleOperator, RoleViewer, RoleAuditor}
}

// IsBuiltinRole reports whether name is a built-in role.
func IsBuiltinRole(name string) bool { return builtinIndex(name) >= 0 }

func builtinIndex(name string) int {
	switch name {
	case RoleOwner:
		return 0
	case RoleAdmin:
		return 1
	case RoleOperator:
		return 2
	case RoleViewer:
		return 3
	case RoleAuditor:
		return 4
	}
	return -1
}

// iamResources are the permission resources of identity and access
// management: an operator may read them (the audit log excepted) but not
// change them.
var iamResources = map[string]bool{"app": true, "project": true, "role": true, "member": true, "audit": true, "user": true}

// PlatformOnly reports whether actions of permission p act on the platform
// rather than on one project (creating projects, managing user accounts,
// reading the process's logs, resource "platform"):
// only platform admins run them, and no role, built-in or custom, grants
// them.
func (p Permission) PlatformOnly() bool {
	return (p.Resource == "project" && p.Access == Write) || p.Resource == "user" || p.Resource == "platform"
}

// BuiltinAllows reports whether built-in role grants the actions of
// permission p in the project it is bound to. This is the definition of the
// built-in roles; internal/app/testdata/permissions.txt spells its result
// out per action, and a test holds the running gateway to that table.
func BuiltinAllows(role string, p Permission) bool {
	if p.PlatformOnly() {
		return false
	}
	switch role {
	case RoleOwner, RoleAdmin:
		return true
	case RoleOperator:
		return p.Resource != "audit" && (p.Access == Read || !iamResources[p.Resource])
	case RoleViewer:
		return p.Access == Read && p.Resource != "audit"
	case RoleAuditor:
		return p.Resource == "audit"
	}
	return false
}

// ActionSet is a set of registered actions: a bitmap over their indexes in
// the registry, so that a check is a shift and a mask.
type ActionSet []uint64

// Has reports whether a is in the set.
func (s ActionSet) Has(a *Action) bool { return a != nil && s.has(a.index) }

func (s ActionSet) has(i int) bool {
	w := i >> 6
	return w < len(s) && s[w]&(1<<(uint(i)&63)) != 0
}

func (s *ActionSet) add(i int) {
	for i>>6 >= len(*s) {
		*s = append(*s, 0)
	}
	(*s)[i>>6] |= 1 << (uint(i) & 63)
}

func (s *ActionSet) union(o ActionSet) {
	for len(*s) < len(o) {
		*s = append(*s, 0)
	}
	for i, w := range o {
		(*s)[i] |= w
	}
}

// Names returns the names of the actions in the set, sorted.
func (r *Registry) Names(s ActionSet) []string {
	var out []string
	for i, a := range r.list {
		if s.has(i) {
			out = append(out, a.Name)
		}
	}
	sort.Strings(out)
	return out
}

// BuiltinRole returns a built-in role compiled against the registry's
// actions, or false for another name.
func (r *Registry) BuiltinRole(name string) (*Role, bool) {
	i := builtinIndex(name)
	if i < 0 {
		return nil, false
	}
	return &Role{Name: name, Actions: append(ActionSet(nil), r.builtin[i]...)}, true
}

// MaxPatternLen bounds one action pattern.
const MaxPatternLen = 64

// MatchActions compiles action patterns (exact names, or globs where *
// matches any run of characters, e.g. "Describe*", "*Device*") into a set.
// A pattern that matches no action is refused as a likely typo, naming
// field. Platform-only actions are never matched: no role grants them.
func (r *Registry) MatchActions(field string, patterns []string) (ActionSet, error) {
	var s ActionSet
	for i, p := range patterns {
		if p == "" || len(p) > MaxPatternLen || strings.Trim(p, "*ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
			return nil, InvalidValue(fmt.Sprintf("%s[%d]", field, i), "%q: want an action name or a pattern of letters, digits and *", truncate(p, 80))
		}
		n := 0
		for j, a := range r.list {
			if !a.Permission.PlatformOnly() && glob(p, a.Name) {
				s.add(j)
				n++
			}
		}
		if n == 0 {
			return nil, InvalidValue(fmt.Sprintf("%s[%d]", field, i), "%q matches no action a role may grant", p)
		}
	}
	return s, nil
}

// glob matches name against a pattern where * matches any run of
// characters (no other metacharacters: action names are letters and
// digits).
func glob(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return len(name) >= len(last) && strings.HasSuffix(name, last)
}

// Resource kinds a custom role may be narrowed to.
const (
	KindDevice = "device" // by device id or device group
	KindTask   = "task"   // by task id
)

// Scope narrows a role to named resources. A kind with no entries is not
// narrowed: a role scoped to the devices of group "site-a" still reaches
// every task its actions name.
type Scope struct {
	DeviceIDs, DeviceGroups, TaskIDs []string
}

// Empty reports whether the scope narrows nothing.
func (s Scope) Empty() bool {
	return len(s.DeviceIDs) == 0 && len(s.DeviceGroups) == 0 && len(s.TaskIDs) == 0
}

type set map[string]struct{}

func toSet(v []string) set {
	if len(v) == 0 {
		return nil
	}
	m := make(set, len(v))
	for _, s := range v {
		m[s] = struct{}{}
	}
	return m
}

// Role is a compiled role: the actions it grants and the resources it is
// narrowed to. It is read-only once made.
type Role struct {
	Name                   string
	Actions                ActionSet
	scoped                 bool
	devices, groups, tasks set
}

// Narrow returns a copy of the role limited to the resources of s.
func (r *Role) Narrow(s Scope) *Role {
	n := &Role{Name: r.Name, Actions: r.Actions}
	if s.Empty() {
		return n
	}
	n.scoped = true
	n.devices, n.groups, n.tasks = toSet(s.DeviceIDs), toSet(s.DeviceGroups), toSet(s.TaskIDs)
	return n
}

// reaches reports whether the role reaches one resource of kind.
func (r *Role) reaches(kind, id, group string) bool {
	if !r.scoped {
		return true
	}
	switch kind {
	case KindDevice:
		if r.devices == nil && r.groups == nil {
			return true
		}
		_, ok := r.devices[id]
		if !ok && group != "" {
			_, ok = r.groups[group]
		}
		return ok
	case KindTask:
		if r.tasks == nil {
			return true
		}
		_, ok := r.tasks[id]
		return ok
	}
	return true
}

// Binding is a role a principal holds in a project.
type Binding struct {
	ProjectID string
	Role      *Role
}

// Grants is what one principal may do, compiled from its bindings once and
// shared, read-only, by its requests.
type Grants struct {
	platform bool
	any      ActionSet
	projects map[string][]*Role
	sorted   []string // projects with a binding, sorted
}

// NewGrants compiles a principal's bindings. A platform admin may run
// every action in every project whatever its bindings.
func NewGrants(platformAdmin bool, bindings []Binding) *Grants {
	g := &Grants{platform: platformAdmin, projects: map[string][]*Role{}}
	for _, b := range bindings {
		if _, seen := g.projects[b.ProjectID]; !seen {
			g.sorted = append(g.sorted, b.ProjectID)
		}
		g.projects[b.ProjectID] = append(g.projects[b.ProjectID], b.Role)
		g.any.union(b.Role.Actions)
	}
	sort.Strings(g.sorted)
	return g
}

// PlatformAdmin reports whether the grants are a platform admin's.
func (g *Grants) PlatformAdmin() bool { return g.platform }

// Projects returns the projects the principal holds a role in, sorted.
func (g *Grants) Projects() []string { return g.sorted }

// Authorizer resolves what a caller may do from its principal's role
// bindings. The IAM center implements it with a cache, so that a call costs
// no store query in the steady state. It returns an error only when the
// bindings cannot be read.
type Authorizer interface {
	Grants(ctx context.Context, c *Caller) (*Grants, error)
}
