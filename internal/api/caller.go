package api

import (
	"context"
	"reflect"
	"strings"
	"time"
)

// Role names. Until the management center brings project roles, every app
// carries one of these, chosen at creation.
const (
	RoleAdmin  = "admin"  // every action
	RoleViewer = "viewer" // read (Describe*) actions only
)

// Roles lists the built-in roles.
func Roles() []string { return []string{RoleAdmin, RoleViewer} }

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
}

// Allowed reports whether the caller's role grants p.
func (c *Caller) Allowed(p Permission) bool {
	switch c.Role {
	case RoleAdmin:
		return true
	case RoleViewer:
		return p.Access == Read
	}
	return false
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
}

// RateLimiter decides whether one more request under key is allowed
// (implemented by internal/ratelimit, in memory or in Redis).
type RateLimiter interface {
	Allow(ctx context.Context, key string, rate float64, burst int) (ok bool, retryAfter time.Duration, err error)
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

// sensitive reports field names whose values never reach logs or audit.
func sensitive(field string) bool {
	f := strings.ToLower(field)
	return strings.Contains(f, "password") || strings.Contains(f, "secretkey") || strings.Contains(f, "token") || strings.Contains(f, "credential")
}

// PlatformAdmin reports whether the caller administers every project: a
// console user or the platform itself (no app), or an admin app of the
// default project (the bootstrap admin). Other apps act within their own
// project.
func (c *Caller) PlatformAdmin() bool {
	return c.AppID == "" || (c.Role == RoleAdmin && (c.ProjectID == "" || c.ProjectID == "default"))
}

// scopeProject keeps an app inside its project: an empty ProjectId becomes
// the app's own, and another project is refused. Platform admins may name
// any project (and an empty one still means "every project" for lists).
func scopeProject(c *Caller, field reflect.Value) error {
	if c == nil || c.PlatformAdmin() {
		return nil
	}
	switch p := field.String(); p {
	case "":
		field.SetString(c.ProjectID)
	case c.ProjectID:
	default:
		return Errorf(AuthFailureUnauthorizedOperation, "ProjectId: app %s belongs to project %s and cannot act on project %s", c.AppID, c.ProjectID, p)
	}
	return nil
}

// Sees reports whether the caller may act on a resource of projectID
// ("*" marks resources of every project, such as built-in algorithms).
// Callers answer ResourceNotFound otherwise, so ids in other projects are
// indistinguishable from ids that do not exist.
func (c *Caller) Sees(projectID string) bool {
	return c == nil || c.PlatformAdmin() || projectID == c.ProjectID || projectID == "*"
}
