package api

import (
	"context"
	"reflect"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
)

// Caller is who is calling: the app behind the SecretId, or a console user.
type Caller struct {
	AppID     string
	ProjectID string // the app's own project
	Role      string
	SecretID  string
	UserID    string // set for people (console sessions)
	UserName  string // set for people (console sessions)
	SessionID string // the session a person calls with (its public id)
	RequestID string
	SourceIP  string
	Action    string

	resource string
	// project is the project the call acts on, once known (the ProjectId
	// it names or defaults to, or the project of the resource it reaches):
	// its audit event is that project's.
	project string
	act     *Action // the action being served (set when it is called)
	grants  *Grants // nil: the caller's Role in ProjectID is its one binding
	// charge takes a person's request from the budget of the project it
	// acts on, once that is known (set by the gateway for sessions).
	charge func(ctx context.Context, projectID string) error
	// auth is the request's Authorization header, parsed once for the
	// failure hold, the signature check and the failure count.
	auth     tc3.Authorization
	authErr  error
	authSeen bool
}

// Allowed reports whether the caller's built-in Role grants actions of
// permission p. It is the whole check for an in-process caller that carries
// a Role but no grants (SetGrants); the gateway checks grants with MayRun.
func (c *Caller) Allowed(p Permission) bool {
	return c == nil || BuiltinAllows(c.Role, p)
}

// SetGrants gives the caller what its principal's bindings grant; from then
// on every check consults them instead of Role and ProjectID.
func (c *Caller) SetGrants(g *Grants) { c.grants = g }

// MayRun reports whether some role of the caller, in some project, grants
// a: the gateway's cheap pre-check. Where the project becomes known
// (ProjectId fields, and Sees for resources named by id), the check is
// repeated for that project.
func (c *Caller) MayRun(a *Action) bool {
	switch {
	case c == nil || c.PlatformAdmin():
		return true
	case c.grants != nil:
		return c.grants.any.Has(a)
	}
	return BuiltinAllows(c.Role, a.Permission)
}

// MayRunIn reports whether the caller may run a in project projectID.
func (c *Caller) MayRunIn(a *Action, projectID string) bool {
	switch {
	case c == nil || c.PlatformAdmin():
		return true
	case c.grants != nil:
		for _, r := range c.grants.projects[projectID] {
			if r.Actions.Has(a) {
				return true
			}
		}
		return false
	}
	return projectID == c.ProjectID && BuiltinAllows(c.Role, a.Permission)
}

// HasRole reports whether the caller holds role in projectID (platform
// admins hold every role everywhere).
func (c *Caller) HasRole(projectID, role string) bool {
	switch {
	case c == nil || c.PlatformAdmin():
		return true
	case c.grants != nil:
		for _, r := range c.grants.projects[projectID] {
			if r.Name == role {
				return true
			}
		}
		return false
	}
	return projectID == c.ProjectID && c.Role == role
}

// Principal is the id roles are bound to: the user's for people, the
// app's for apps.
func (c *Caller) Principal() string {
	if c.UserID != "" {
		return c.UserID
	}
	return c.AppID
}

// Actor names the caller for logs and audit events.
func (c *Caller) Actor() string {
	if c.UserName != "" {
		return "user:" + c.UserName
	}
	if c.AppID == "" {
		return "anonymous" // e.g. a forged or revoked session cookie
	}
	return "app:" + c.AppID
}

// SetResource records which resource the call acted on, for its audit event
// (e.g. the id a Create action made).
func (c *Caller) SetResource(id string) { c.resource = id }

// Resource returns what SetResource recorded.
func (c *Caller) Resource() string { return c.resource }

// ActedProject is the project the call acted on: the one scopeProject or
// a resource check settled first, else the caller's own (an app's).
func (c *Caller) ActedProject() string {
	if c.project != "" {
		return c.project
	}
	return c.ProjectID
}

// noteProject records p as the project the call acts on, unless one is
// known already.
func (c *Caller) noteProject(p string) {
	if c.project == "" && p != "*" {
		c.project = p
	}
}

// Credential is what a SecretId resolves to.
type Credential struct {
	SecretKey string
	AppID     string
	ProjectID string
	Role      string
	// ReadRPS, WriteRPS and Burst are the app's own rate limits; 0 takes the
	// gateway's defaults.
	ReadRPS, WriteRPS float64
	Burst             int
	// RequireSignedAction refuses requests whose signature does not cover
	// X-TC-Action (a per-key setting).
	RequireSignedAction bool
}

// ReplayCache remembers accepted signatures so that each is accepted
// once (implemented by internal/ratelimit, in memory or in Redis).
// Remember reports fresh false for a key already remembered.
type ReplayCache interface {
	Remember(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error)
}

// RateLimiter decides whether one more request under key is allowed
// (implemented by internal/ratelimit, in memory or in Redis).
type RateLimiter interface {
	Allow(ctx context.Context, key string, rate float64, burst int) (ok bool, retryAfter time.Duration, err error)
}

// FailureCounter counts failed authentications per key and holds keys
// that had too many (implemented by internal/ratelimit's Attempts, in
// memory or in Redis, so that replicas sharing Redis share the holds).
type FailureCounter interface {
	// Attempt counts one failure under key; a failure past b.Free starts
	// a hold.
	Attempt(ctx context.Context, key string, b ratelimit.Backoff) (ok bool, retryAfter time.Duration, err error)
	// Held returns how much longer the longest hold of keys lasts (0: none
	// is held), without counting anything.
	Held(ctx context.Context, keys ...string) (time.Duration, error)
}

// HoldHinter is a FailureCounter that knows cheaply when no key can be
// held (internal/ratelimit's in-memory one): MayHold false lets the
// gateway skip the hold check of every request. A counter shared between
// replicas (Redis) cannot know without asking, and does not implement it.
type HoldHinter interface {
	MayHold() bool
}

// KeyResolver finds the credential of a SecretId. It returns an error
// wrapping ErrKeyNotFound for unknown or deleted keys.
type KeyResolver interface {
	ResolveKey(ctx context.Context, secretID string) (Credential, error)
}

// AuditEvent is one audited call.
type AuditEvent struct {
	ProjectID string
	Actor     string
	Action    string
	Resource  string
	Result    string // "OK" or an error code
	SourceIP  string
	RequestID string
	Detail    string // the request with secrets redacted
}

// Auditor records audit events durably.
type Auditor interface {
	Record(ctx context.Context, e AuditEvent) error
}

// TxAuditor is an Auditor that can also write a call's event in the
// transaction that makes the call's change, so that no crash keeps the
// change and loses its event, and the event costs no transaction of its
// own (internal/iam's audit log).
type TxAuditor interface {
	Auditor
	// WithEvent returns ctx carrying event: the first store transaction
	// under ctx that commits a change appends event() in it, unless event
	// reports false (nothing to write yet). written reports, after the
	// call, whether an event committed that way.
	WithEvent(ctx context.Context, event func() (AuditEvent, bool)) (_ context.Context, written func() bool)
}

// sensitive reports field names whose values never reach logs or audit.
func sensitive(field string) bool {
	f := strings.ToLower(field)
	return strings.Contains(f, "password") || strings.Contains(f, "secretkey") || strings.Contains(f, "token") || strings.Contains(f, "credential") || f == "secrets"
}

// PlatformAdmin reports whether the caller administers every project.
// With grants (every call through the gateway) that is what the IAM center
// decided: a user whose account role is "admin", or a principal holding
// owner or admin in project "default" (the bootstrap admin app). Without
// grants: the platform itself (no app, no user), or an admin app of the
// default project.
func (c *Caller) PlatformAdmin() bool {
	switch {
	case c == nil:
		return true
	case c.grants != nil:
		return c.grants.platform
	}
	return (c.AppID == "" && c.UserID == "") || ((c.Role == RoleAdmin || c.Role == RoleOwner) && (c.ProjectID == "" || c.ProjectID == "default"))
}

// scopeProject keeps a caller inside the projects where it holds a role
// granting a: an empty ProjectId becomes the caller's own project (an app's;
// for a user, the first project, by id, where a is granted), and a project
// without such a role is refused. Platform admins may name any project (and
// an empty one still means "every project" for lists).
func scopeProject(c *Caller, a *Action, field reflect.Value) error {
	if c == nil {
		return nil
	}
	if c.PlatformAdmin() {
		c.noteProject(field.String())
		return nil
	}
	p := field.String()
	if p == "" && a.Union && c.grants != nil {
		// The handler lists the union (ListProjects); refuse only a
		// caller that may run the action in no project at all.
		if len(c.unionProjects(a)) == 0 {
			return Errorf(AuthFailureUnauthorizedOperation, "ProjectId: %s holds no role that grants %s", c.Actor(), a.Name)
		}
		return nil
	}
	if p == "" {
		p = c.ownProject(a)
		field.SetString(p)
	}
	if c.MayRunIn(a, p) {
		c.noteProject(p)
		return nil
	}
	if c.grants == nil && p == c.ProjectID {
		return Errorf(AuthFailureUnauthorizedOperation, "ProjectId: role %q does not grant %s in project %s", c.Role, a.Name, p)
	}
	if c.grants == nil {
		return Errorf(AuthFailureUnauthorizedOperation, "ProjectId: app %s belongs to project %s and cannot act on project %s", c.AppID, c.ProjectID, p)
	}
	return Errorf(AuthFailureUnauthorizedOperation, "ProjectId: %s holds no role in project %q that grants %s", c.Actor(), p, a.Name)
}

// ownProject is the project a request of a that names none acts on: an
// app's own; for a person, the first project, by id, where a is granted.
func (c *Caller) ownProject(a *Action) string {
	if c.ProjectID != "" || c.grants == nil {
		return c.ProjectID
	}
	for _, q := range c.grants.sorted {
		if c.MayRunIn(a, q) {
			return q
		}
	}
	return ""
}

// chargeProject takes a person's request from the rate budget of the
// project it acts on (projectID, or for an action that names no project
// the person's own for it), once per request.
func (c *Caller) chargeProject(ctx context.Context, a *Action, projectID string) error {
	if c == nil || c.charge == nil || a.Self {
		return nil
	}
	charge := c.charge
	c.charge = nil
	if projectID == "" {
		projectID = c.ownProject(a)
	}
	return charge(ctx, projectID)
}

// Sees reports whether the caller may run the action it is calling on a
// resource of projectID ("*" marks resources of every project, such as
// built-in algorithms, which every caller allowed the action sees).
// Callers answer ResourceNotFound otherwise, so ids in other projects are
// indistinguishable from ids that do not exist. Outside an action call it
// reports whether the caller holds any role in projectID.
func (c *Caller) Sees(projectID string) bool {
	ok := c.sees(projectID)
	if ok && c != nil {
		c.noteProject(projectID)
	}
	return ok
}

func (c *Caller) sees(projectID string) bool {
	switch {
	case c == nil || c.PlatformAdmin() || projectID == "*":
		return true
	case c.act != nil:
		return c.MayRunIn(c.act, projectID)
	case c.grants != nil:
		return len(c.grants.projects[projectID]) > 0
	}
	return projectID == c.ProjectID
}

// SeesDevice is Sees for one device (with its group): a role narrowed to
// devices reaches only those it names. Resource scopes are documented in
// docs/iam.md.
func (c *Caller) SeesDevice(projectID, deviceID, group string) bool {
	return c.seesResource(projectID, KindDevice, deviceID, group)
}

// SeesTask is Sees for one task.
func (c *Caller) SeesTask(projectID, taskID string) bool {
	return c.seesResource(projectID, KindTask, taskID, "")
}

func (c *Caller) seesResource(projectID, kind, id, group string) bool {
	if c == nil || c.PlatformAdmin() || c.grants == nil || c.act == nil {
		return c.Sees(projectID)
	}
	for _, r := range c.grants.projects[projectID] {
		if r.Actions.Has(c.act) && r.reaches(kind, id, group) {
			c.noteProject(projectID)
			return true
		}
	}
	return false
}

// ListProjects tells a list (an action registered with Union) which
// projects it covers: the one it names; every project (every) for a
// platform admin naming none; otherwise each project where one of the
// caller's roles grants the action, sorted. Resource scopes apply per
// project (ListIn).
func (c *Caller) ListProjects(projectID string) (every bool, projects []string) {
	switch {
	case projectID != "":
		return false, []string{projectID}
	case c == nil || c.PlatformAdmin():
		return true, nil
	case c.grants == nil:
		return false, []string{c.ProjectID}
	}
	return false, c.unionProjects(c.act)
}

// unionProjects returns the projects, sorted, where the caller may run a.
func (c *Caller) unionProjects(a *Action) []string {
	var out []string
	for _, p := range c.grants.sorted {
		if c.MayRunIn(a, p) {
			out = append(out, p)
		}
	}
	return out
}
