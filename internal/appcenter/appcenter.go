// Package appcenter keeps applications and their key pairs: the identities
// that call the action API. A SecretKey is stored encrypted under the master
// key (the gateway needs it back to verify TC3 signatures) and is shown to
// people exactly once, when it is created.
package appcenter

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// MaxActiveKeys is how many key pairs (enabled or disabled) an app may
// hold: two, so that a key can be rotated without downtime.
const MaxActiveKeys = 2

// DefaultCacheTTL is how long a replica trusts the keys and app lists it
// read (api.app_cache_ttl). A change forgets them at once on the replica
// that made it and, over the bus, on the others; the TTL bounds how long a
// replica the bus did not reach (a lost message, a bus without ephemeral
// messages) keeps accepting a key another replica disabled or deleted, or
// listing apps as they were (docs/security.md, Signatures).
const DefaultCacheTTL = 2 * time.Second

// maxCachedLists bounds the app-list cache: distinct filters and pages
// (at most 100 apps each, so a few MB at worst).
const maxCachedLists = 256

// changedSubject is the bus subject on which a replica tells the others
// that apps or keys changed.
const changedSubject = "appcenter.changed"

// Invalidations carries "apps or keys changed" between the replicas on one
// store: messages nobody stores, delivered to whoever listens
// (bus.Ephemeral implements it).
type Invalidations interface {
	Send(subject string, data []byte) error
	Listen(subject string, h func(data []byte)) (stop func(), err error)
}

// App is an application.
type App struct {
	ID, ProjectID, Name, Description, Role, Status string
	CreatedAt                                      time.Time
	ActiveKeys                                     int
	ReadRPS, WriteRPS                              float64
	Burst                                          int
}

// Service is the application center.
type Service struct {
	db  *store.DB
	box *secrets.Box
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedKey
	// lists caches app lists (ListAppsIn) by their query.
	lists map[string]cachedList
	// gen counts forgets, local or told over the bus, so that a lookup
	// racing one does not cache what it read before the change.
	gen      uint64
	ttl      time.Duration
	changes  Invalidations
	bindings Bindings
	quotas   api.Quotas
}

// UseQuotas makes CreateApp refuse an app beyond its project's quota of
// apps. Without it projects hold any number.
func (s *Service) UseQuotas(q api.Quotas) {
	s.mu.Lock()
	s.quotas = q
	s.mu.Unlock()
}

// Bindings keeps an app's roles as project role bindings (implemented by
// the IAM center). An app's role in its own project (apps.role, shown by
// DescribeApps) is kept there as a binding too, which is what the gateway
// checks; other projects' roles are given with CreateProjectMember.
type Bindings interface {
	// SetAppRole makes role the app's one role in its project; it answers
	// InvalidParameterValue for a role that is neither built-in nor a
	// custom role of the project.
	SetAppRole(ctx context.Context, appID, projectID, role string) error
	// Forget removes every binding of a deleted app.
	Forget(ctx context.Context, principal string) error
}

// UseBindings makes the service keep apps' roles as bindings in b. Without
// it only the built-in roles are accepted and apps.role is the only record.
func (s *Service) UseBindings(b Bindings) {
	s.mu.Lock()
	s.bindings = b
	s.mu.Unlock()
}

func (s *Service) binder() Bindings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bindings
}

func (s *Service) checkRole(role string) error {
	if s.binder() == nil && !api.IsBuiltinRole(role) {
		return api.InvalidValue("Role", "%q is not one of %s", role, strings.Join(api.Roles(), ", "))
	}
	return nil
}

type cachedKey struct {
	cred    api.Credential
	expires time.Time
}

type cachedList struct {
	apps    []App
	total   int
	expires time.Time
}

// New returns the application center over db.
func New(db *store.DB, box *secrets.Box, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, box: box, log: log, now: now, cache: map[string]cachedKey{}, lists: map[string]cachedList{}, ttl: DefaultCacheTTL}
}

// SetCacheTTL sets how long keys and app lists are trusted without asking
// the store (0: ask every time).
func (s *Service) SetCacheTTL(d time.Duration) {
	s.mu.Lock()
	s.ttl = d
	s.mu.Unlock()
}

// UseInvalidations makes every change of apps or keys through this service
// tell the other replicas over inv, and listens for theirs: a change then
// applies to every replica's caches at once, not after the cache TTL. stop
// stops listening.
func (s *Service) UseInvalidations(inv Invalidations) (stop func(), err error) {
	stop, err = inv.Listen(changedSubject, func([]byte) { s.forget() })
	if err != nil {
		return nil, fmt.Errorf("appcenter: listen for changes: %w", err)
	}
	s.mu.Lock()
	s.changes = inv
	s.mu.Unlock()
	return stop, nil
}

// changed forgets what this replica cached and tells the others to. Every
// write of apps or app_keys calls it once it has written, whatever its
// result (a failed write may still have changed a row).
func (s *Service) changed() {
	s.forget()
	s.mu.Lock()
	inv := s.changes
	s.mu.Unlock()
	if inv == nil {
		return
	}
	if err := inv.Send(changedSubject, nil); err != nil {
		// The others still forget within the TTL.
		s.log.Warn("app change not announced to other replicas", "err", err)
	}
}

// CreateApp creates an app in a project.
func (s *Service) CreateApp(ctx context.Context, projectID, name, description, role string) (*App, error) {
	if projectID == "" {
		projectID = "default"
	}
	if role == "" {
		role = api.RoleViewer
	}
	if err := s.checkRole(role); err != nil {
		return nil, err
	}
	if err := s.projectExists(ctx, projectID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	q := s.quotas
	s.mu.Unlock()
	now := s.now()
	a := &App{ID: ids.New("app"), ProjectID: projectID, Name: name, Description: description, Role: role, Status: "active", CreatedAt: now}
	err := api.InsertWithinQuota(ctx, s.db, q, projectID, api.QuotaApps, "SELECT COUNT(*) FROM apps WHERE project_id = ?", func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO apps (id, project_id, name, description, role, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.ProjectID, a.Name, a.Description, a.Role, a.Status, now.UnixMilli(), now.UnixMilli())
		return err
	})
	if _, quota := api.AsError(err); quota {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("appcenter: insert app: %w", err)
	}
	defer s.changed() // after the binding, or after the insert is undone
	if b := s.binder(); b != nil {
		if err := b.SetAppRole(ctx, a.ID, projectID, role); err != nil {
			// No app without its binding: undo the insert.
			if _, derr := s.db.Exec(ctx, "DELETE FROM apps WHERE id = ?", a.ID); derr != nil {
				s.log.Error("app insert not undone", "app", a.ID, "err", derr)
			}
			return nil, err
		}
	}
	s.log.Info("app created", "app", a.ID, "project", projectID, "role", role)
	return a, nil
}

func (s *Service) projectExists(ctx context.Context, id string) error {
	var one int
	err := s.db.QueryRow(ctx, "SELECT 1 FROM projects WHERE id = ?", id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return api.NotFound("ProjectId", id)
	}
	return err
}

// CreateKey creates a key pair for an app and returns the SecretId and the
// SecretKey; the SecretKey cannot be read back later. A fixed pair may be
// given (bootstrap from the environment); otherwise one is generated.
func (s *Service) CreateKey(ctx context.Context, appID, secretID, secretKey string) (string, string, error) {
	return s.CreateKeyWith(ctx, appID, KeyOptions{SecretID: secretID, SecretKey: secretKey})
}

// KeyOptions are a new key pair's settings.
type KeyOptions struct {
	// SecretID and SecretKey fix the pair; empty ones are generated.
	SecretID, SecretKey string
	// RequireSignedAction refuses requests whose signature does not cover
	// X-TC-Action.
	RequireSignedAction bool
}

// CreateKeyWith is CreateKey with the key's settings.
func (s *Service) CreateKeyWith(ctx context.Context, appID string, o KeyOptions) (string, string, error) {
	secretID, secretKey := o.SecretID, o.SecretKey
	if secretID == "" {
		secretID = "AKID" + ids.Random(32, ids.Alnum)
	}
	if secretKey == "" {
		secretKey = ids.Random(32, ids.Alnum)
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var projectID string
		err := tx.QueryRow(ctx, "SELECT project_id FROM apps WHERE id = ?"+tx.Dialect().ForUpdate(), appID).Scan(&projectID)
		if errors.Is(err, sql.ErrNoRows) {
			return api.NotFound("AppId", appID)
		} else if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM app_keys WHERE app_id = ?", appID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxActiveKeys {
			return api.Errorf(api.LimitExceeded, "AppId: app %s already has %d key pairs; delete one first", appID, n)
		}
		_, err = tx.Exec(ctx, `INSERT INTO app_keys (secret_id, app_id, project_id, secret_key_enc, status, created_at, last_used_at, require_signed_action)
			VALUES (?, ?, ?, ?, 'active', ?, 0, ?)`, secretID, appID, projectID, s.box.Seal(secretKey), s.now().UnixMilli(), boolInt(o.RequireSignedAction))
		if s.db.IsUniqueViolation(err) {
			return api.Errorf(api.ResourceInUse, "SecretId: %s already exists", secretID)
		}
		return err
	})
	if err != nil {
		return "", "", err
	}
	s.changed() // the app's count of active keys
	s.log.Info("app key created", "app", appID, "secret_id", secretID, "require_signed_action", o.RequireSignedAction)
	return secretID, secretKey, nil
}

// DeleteKey deletes one of an app's key pairs. Calls signed with it fail
// from then on (on other replicas as soon as the bus tells them, within the cache TTL at worst).
func (s *Service) DeleteKey(ctx context.Context, appID, secretID string) error {
	res, err := s.db.Exec(ctx, "DELETE FROM app_keys WHERE app_id = ? AND secret_id = ?", appID, secretID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("SecretId", secretID)
	}
	s.changed()
	s.log.Info("app key deleted", "app", appID, "secret_id", secretID)
	return nil
}

// ResolveKey implements api.KeyResolver, with a short cache so that the
// signature check does not cost a query and a decryption per request.
func (s *Service) ResolveKey(ctx context.Context, secretID string) (api.Credential, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[secretID]
	gen, ttl := s.gen, s.ttl
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.cred, nil
	}
	var enc, appID, projectID, role, status string
	var readRPS, writeRPS float64
	var burst, signedAction int
	err := s.db.QueryRow(ctx, `SELECT k.secret_key_enc, k.app_id, a.project_id, a.role, a.status, a.read_rps, a.write_rps, a.burst, k.require_signed_action
		FROM app_keys k JOIN apps a ON a.id = k.app_id WHERE k.secret_id = ? AND k.status = 'active'`, secretID).
		Scan(&enc, &appID, &projectID, &role, &status, &readRPS, &writeRPS, &burst, &signedAction)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && status != "active") {
		return api.Credential{}, fmt.Errorf("%w: %s", api.ErrKeyNotFound, secretID)
	}
	if err != nil {
		return api.Credential{}, fmt.Errorf("appcenter: resolve key: %w", err)
	}
	key, err := s.box.Open(enc)
	if err != nil {
		return api.Credential{}, fmt.Errorf("appcenter: key %s: %w", secretID, err)
	}
	cred := api.Credential{SecretKey: key, AppID: appID, ProjectID: projectID, Role: role, ReadRPS: readRPS, WriteRPS: writeRPS, Burst: burst,
		RequireSignedAction: signedAction != 0}
	s.mu.Lock()
	if s.gen == gen && ttl > 0 { // no change raced the read
		if len(s.cache) > 10000 { // bounded: drop everything rather than track age
			s.cache = map[string]cachedKey{}
		}
		s.cache[secretID] = cachedKey{cred: cred, expires: now.Add(ttl)}
	}
	s.mu.Unlock()
	return cred, nil
}

// ListApps returns apps matching the filters, newest first, and the total.
func (s *Service) ListApps(ctx context.Context, projectID string, appIDs, names, roles []string, offset, limit int) ([]App, int, error) {
	return s.ListAppsIn(ctx, store.OneProject(projectID), appIDs, names, roles, offset, limit)
}

// ListAppsIn is ListApps over the apps of projects (a union list).
// Lists are cached (the gateway's hottest read) until a change of apps or
// keys, here or told by another replica, or the cache TTL.
func (s *Service) ListAppsIn(ctx context.Context, projects store.Projects, appIDs, names, roles []string, offset, limit int) ([]App, int, error) {
	var w store.Where
	cond, args := w.InProjects("a.project_id", projects).In("a.id", appIDs).In("a.name", names).In("a.role", roles).SQL()
	key, cacheable := listKey(cond, args, offset, limit)
	now := s.now()
	s.mu.Lock()
	c, hit := s.lists[key]
	gen, ttl := s.gen, s.ttl
	s.mu.Unlock()
	if cacheable && hit && now.Before(c.expires) {
		return slices.Clone(c.apps), c.total, nil
	}
	apps, total, err := s.listApps(ctx, cond, args, offset, limit)
	if err != nil || !cacheable || ttl <= 0 {
		return apps, total, err
	}
	s.mu.Lock()
	if s.gen == gen { // no change raced the read
		if len(s.lists) >= maxCachedLists {
			s.lists = map[string]cachedList{}
		}
		s.lists[key] = cachedList{apps: slices.Clone(apps), total: total, expires: now.Add(ttl)}
	}
	s.mu.Unlock()
	return apps, total, nil
}

// listKey is the cache key of a list query: its condition, arguments and
// page. Conditions that read other tables (a role narrowed to some
// resources) are not cached: a change there would not forget them.
func listKey(cond string, args []any, offset, limit int) (string, bool) {
	if strings.Contains(cond, "SELECT") {
		return "", false
	}
	var b strings.Builder
	b.WriteString(cond)
	for _, a := range args {
		str, ok := a.(string)
		if !ok {
			return "", false
		}
		b.WriteByte(0)
		b.WriteString(str)
	}
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(offset))
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(limit))
	return b.String(), true
}

// listApps reads a list of apps and their total from the store.
func (s *Service) listApps(ctx context.Context, cond string, args []any, offset, limit int) ([]App, int, error) {
	// One statement: the page and, as an uncorrelated subquery evaluated
	// once, the total (a read per request fewer than counting apart).
	list := append(append(append([]any(nil), args...), args...), limit, offset)
	rows, err := s.db.Query(ctx, `SELECT a.id, a.project_id, a.name, a.description, a.role, a.status, a.created_at, a.read_rps, a.write_rps, a.burst,
		(SELECT COUNT(*) FROM app_keys k WHERE k.app_id = a.id AND k.status = 'active'),
		(SELECT COUNT(*) FROM apps a`+cond+`)
		FROM apps a`+cond+` ORDER BY a.created_at DESC, a.id DESC LIMIT ? OFFSET ?`, list...)
	if err != nil {
		return nil, 0, fmt.Errorf("appcenter: list apps: %w", err)
	}
	defer rows.Close()
	var out []App
	total := -1
	for rows.Next() {
		var a App
		var created int64
		if err := rows.Scan(&a.ID, &a.ProjectID, &a.Name, &a.Description, &a.Role, &a.Status, &created, &a.ReadRPS, &a.WriteRPS, &a.Burst, &a.ActiveKeys, &total); err != nil {
			return nil, 0, err
		}
		a.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if total < 0 { // an empty page (past the end, or Limit 0) carries no total
		if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM apps a"+cond, args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("appcenter: count apps: %w", err)
		}
	}
	return out, total, nil
}

// forget drops every cached credential and app list.
func (s *Service) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	clear(s.cache)
	clear(s.lists)
}

// AppChange is what ModifyApp changes; nil fields stay as they are.
type AppChange struct {
	Name, Description, Role *string
	ReadRPS, WriteRPS       *float64
	Burst                   *int
}

// ModifyApp changes an app. A role or limit change applies to calls signed
// with its keys at once on this replica (on others as soon as the bus tells them, within the cache TTL at worst).
func (s *Service) ModifyApp(ctx context.Context, appID string, ch AppChange) error {
	sets := []string{"updated_at = ?"}
	args := []any{s.now().UnixMilli()}
	add := func(col string, v any) { sets, args = append(sets, col+" = ?"), append(args, v) }
	if ch.Name != nil {
		add("name", *ch.Name)
	}
	if ch.Description != nil {
		add("description", *ch.Description)
	}
	if ch.Role != nil {
		if err := s.checkRole(*ch.Role); err != nil {
			return err
		}
		if b := s.binder(); b != nil {
			var projectID string
			if err := s.db.QueryRow(ctx, "SELECT project_id FROM apps WHERE id = ?", appID).Scan(&projectID); errors.Is(err, sql.ErrNoRows) {
				return api.NotFound("AppId", appID)
			} else if err != nil {
				return err
			}
			if err := b.SetAppRole(ctx, appID, projectID, *ch.Role); err != nil {
				return err
			}
		}
		add("role", *ch.Role)
	}
	if ch.ReadRPS != nil {
		add("read_rps", *ch.ReadRPS)
	}
	if ch.WriteRPS != nil {
		add("write_rps", *ch.WriteRPS)
	}
	if ch.Burst != nil {
		add("burst", *ch.Burst)
	}
	res, err := s.db.Exec(ctx, "UPDATE apps SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, appID)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("AppId", appID)
	}
	s.changed()
	s.log.Info("app modified", "app", appID)
	return nil
}

// DeleteApp deletes an app and its keys, unless it owns push
// subscriptions (they would go on delivering for an app that no longer
// exists): the app's row is locked while they are counted and it is
// deleted.
func (s *Service) DeleteApp(ctx context.Context, appID string) error {
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		found, n, err := tx.LockUsers(ctx, "apps", appID, "SELECT COUNT(*) FROM subscriptions WHERE app_id = ?", appID)
		switch {
		case err != nil:
			return err
		case !found:
			return api.NotFound("AppId", appID)
		case n > 0:
			return api.Errorf(api.ResourceInUse, "AppId: app %s owns %d subscription(s); delete them first (DeleteSubscription)", appID, n)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM apps WHERE id = ?", appID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM app_keys WHERE app_id = ?", appID)
		return err
	})
	if err != nil {
		return err
	}
	s.changed()
	if b := s.binder(); b != nil {
		if err := b.Forget(ctx, appID); err != nil {
			return err
		}
	}
	s.log.Info("app deleted", "app", appID)
	return nil
}

// Key is a key pair without its secret.
type Key struct {
	SecretID, Status    string
	CreatedAt           time.Time
	RequireSignedAction bool
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Keys lists an app's key pairs.
func (s *Service) Keys(ctx context.Context, appID string) ([]Key, error) {
	var one int
	if err := s.db.QueryRow(ctx, "SELECT 1 FROM apps WHERE id = ?", appID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("AppId", appID)
	} else if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, "SELECT secret_id, status, created_at, require_signed_action FROM app_keys WHERE app_id = ? ORDER BY created_at, secret_id", appID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		var c int64
		var signedAction int
		if err := rows.Scan(&k.SecretID, &k.Status, &c, &signedAction); err != nil {
			return nil, err
		}
		k.RequireSignedAction = signedAction != 0
		k.CreatedAt = time.UnixMilli(c).UTC()
		out = append(out, k)
	}
	return out, rows.Err()
}

// SetKeyStatus enables ("active") or disables ("disabled") a key pair. A
// disabled key signs nothing until it is enabled again.
func (s *Service) SetKeyStatus(ctx context.Context, appID, secretID, status string) error {
	if err := s.updateKey(ctx, appID, secretID, "status", status); err != nil {
		return err
	}
	s.log.Info("app key status changed", "app", appID, "secret_id", secretID, "status", status)
	return nil
}

// SetKeyRequireSignedAction turns on or off a key pair's requirement that
// its signatures cover X-TC-Action. It takes effect at once on this
// replica, and on others as soon as the bus tells them (within the cache TTL at worst).
func (s *Service) SetKeyRequireSignedAction(ctx context.Context, appID, secretID string, on bool) error {
	if err := s.updateKey(ctx, appID, secretID, "require_signed_action", boolInt(on)); err != nil {
		return err
	}
	s.log.Info("app key changed", "app", appID, "secret_id", secretID, "require_signed_action", on)
	return nil
}

// updateKey sets one column (a constant of the caller's) of a key pair and
// drops the key from this replica's cache.
func (s *Service) updateKey(ctx context.Context, appID, secretID, column string, value any) error {
	res, err := s.db.Exec(ctx, "UPDATE app_keys SET "+column+" = ? WHERE app_id = ? AND secret_id = ?", value, appID, secretID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := s.db.QueryRow(ctx, "SELECT 1 FROM app_keys WHERE app_id = ? AND secret_id = ?", appID, secretID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return api.NotFound("SecretId", secretID)
		}
	}
	s.changed()
	return nil
}

// SealedColumns lists the columns that hold values sealed under the master
// key, for a rotation to re-encrypt (tianshu secrets rotate): the apps'
// SecretKeys.
func SealedColumns() []reseal.Column {
	return []reseal.Column{{Table: "app_keys", Key: "secret_id", Column: "secret_key_enc"}}
}
