package iam

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apiconfig"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// lastSeenStep is how stale last_seen_at may get before a call moves it:
// one write a minute per session at most, not one per request.
const lastSeenStep = time.Minute

// keepExpired is how long expired sessions stay, so that their cookies
// answer SessionExpired rather than InvalidSession for a while.
const keepExpired = 24 * time.Hour

// Sessions keeps people's login sessions. Tokens are stored as SHA-256
// hashes: a copy of the store does not let anyone log in.
//
// Resolved sessions are cached for cfg.CacheTTL, as app keys are, so that a
// person's call costs no more than an app's; ending a session drops it from
// this replica's cache at once and, announced on the bus
// (UseInvalidations), from the other replicas' caches.
type Sessions struct {
	db  *store.DB
	cfg apiconfig.Sessions
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedSession // by token hash
	// gen counts forgets, so that a lookup racing one does not cache what
	// it read before the session ended.
	gen     uint64
	changes bus.Ephemeral
	log     *slog.Logger
}

// sessionsEndedSubject is the bus subject on which a replica tells the
// others that sessions ended.
const sessionsEndedSubject = "iam.sessions.ended"

// UseInvalidations makes every session ended through this replica tell
// the others over inv, and listens for theirs (each forgets every cached
// session), so that an ended session is refused on every replica at once
// rather than after cfg.CacheTTL. stop stops listening.
func (s *Sessions) UseInvalidations(inv bus.Ephemeral, log *slog.Logger) (stop func(), err error) {
	stop, err = inv.Listen(sessionsEndedSubject, func([]byte) { s.forget(func(api.Session) bool { return true }) })
	if err != nil {
		return nil, fmt.Errorf("iam: listen for ended sessions: %w", err)
	}
	s.mu.Lock()
	s.changes, s.log = inv, log
	s.mu.Unlock()
	return stop, nil
}

// ended forgets the matching sessions again, now that the store no longer
// holds them, and tells the other replicas to forget theirs.
func (s *Sessions) ended(match func(api.Session) bool) {
	s.forget(match)
	s.mu.Lock()
	inv, log := s.changes, s.log
	s.mu.Unlock()
	announce(inv, log, sessionsEndedSubject, "ended sessions not announced to other replicas")
}

type cachedSession struct {
	s                 api.Session
	lastSeen, expires int64 // ms
	fetched           time.Time
}

// maxCachedSessions bounds the cache; past it the cache starts over.
const maxCachedSessions = 10000

// NewSessions returns the session store over db.
func NewSessions(db *store.DB, cfg apiconfig.Sessions, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{db: db, cfg: cfg, now: now, cache: map[string]cachedSession{}}
}

// SessionInfo describes a session to its owner.
type SessionInfo struct {
	ID, UserID, SourceIP         string
	Created, LastSeen, ExpiresAt time.Time
}

// NewSession is a session just created, with the secrets only its owner
// ever sees.
type NewSession struct {
	SessionInfo
	Token, CSRFToken string
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func randomToken() string {
	b := make([]byte, 32) // 256 bits
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create starts a session for userID. It also drops sessions that ended
// more than a day ago.
func (s *Sessions) Create(ctx context.Context, userID, sourceIP string) (NewSession, error) {
	now := s.now()
	n := NewSession{SessionInfo: SessionInfo{ID: ids.New("ses"), UserID: userID, SourceIP: clip(sourceIP, 64),
		Created: now, LastSeen: now, ExpiresAt: now.Add(s.cfg.MaxAge)}, Token: randomToken(), CSRFToken: randomToken()}
	if _, err := s.db.Exec(ctx, `INSERT INTO sessions (id, token_hash, csrf_hash, user_id, source_ip, created_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, n.ID, hashHex(n.Token), hashHex(n.CSRFToken), userID, n.SourceIP,
		now.UnixMilli(), now.UnixMilli(), n.ExpiresAt.UnixMilli()); err != nil {
		return NewSession{}, fmt.Errorf("iam: create session: %w", err)
	}
	old := now.Add(-keepExpired)
	if _, err := s.db.Exec(ctx, "DELETE FROM sessions WHERE expires_at < ? OR last_seen_at < ?",
		old.UnixMilli(), old.Add(-s.cfg.IdleTimeout).UnixMilli()); err != nil {
		return NewSession{}, fmt.Errorf("iam: purge sessions: %w", err)
	}
	return n, nil
}

// ResolveSession implements api.SessionResolver: it finds the session of a
// token, checks its idle and absolute expiry and its user's status, and
// moves last_seen_at when it is more than a minute old.
func (s *Sessions) ResolveSession(ctx context.Context, token string) (api.Session, error) {
	th := hashHex(token)
	now := s.now()
	var gen uint64
	if s.cfg.CacheTTL > 0 {
		s.mu.Lock()
		c, ok := s.cache[th]
		gen = s.gen
		s.mu.Unlock()
		ms := now.UnixMilli()
		if ok && now.Sub(c.fetched) < s.cfg.CacheTTL && ms < c.expires && ms-c.lastSeen < lastSeenStep.Milliseconds() {
			return c.s, nil
		}
	}
	var out api.Session
	var csrf, status string
	var lastSeen, expires int64
	err := s.db.QueryRow(ctx, `SELECT s.id, s.csrf_hash, s.user_id, s.last_seen_at, s.expires_at, u.name, u.role, u.status
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, th).
		Scan(&out.ID, &csrf, &out.UserID, &lastSeen, &expires, &out.UserName, &out.Role, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Session{}, api.ErrSessionNotFound
	}
	if err != nil {
		return api.Session{}, fmt.Errorf("iam: resolve session: %w", err)
	}
	if status != UserActive {
		return out, fmt.Errorf("%w: user %s is %s", api.ErrSessionNotFound, out.UserName, status)
	}
	if ms := now.UnixMilli(); ms >= expires || ms-lastSeen >= s.cfg.IdleTimeout.Milliseconds() {
		return out, api.ErrSessionExpired
	}
	if b, err := hex.DecodeString(csrf); err == nil && len(b) == len(out.CSRFHash) {
		copy(out.CSRFHash[:], b)
	}
	if now.Sub(time.UnixMilli(lastSeen)) >= lastSeenStep {
		if _, err := s.db.Exec(ctx, "UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?",
			now.UnixMilli(), out.ID, now.UnixMilli()); err != nil {
			return api.Session{}, fmt.Errorf("iam: touch session: %w", err)
		}
		lastSeen = now.UnixMilli()
	}
	if s.cfg.CacheTTL > 0 {
		s.mu.Lock()
		if len(s.cache) >= maxCachedSessions {
			s.cache = map[string]cachedSession{}
		}
		if s.gen == gen { // not what was read before a session ended
			s.cache[th] = cachedSession{s: out, lastSeen: lastSeen, expires: expires, fetched: now}
		}
		s.mu.Unlock()
	}
	return out, nil
}

// forget drops cached sessions that match.
func (s *Sessions) forget(match func(api.Session) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	for k, c := range s.cache {
		if match(c.s) {
			delete(s.cache, k)
		}
	}
}

// List returns the live sessions of a user, newest first.
func (s *Sessions) List(ctx context.Context, userID string) ([]SessionInfo, error) {
	out, _, err := s.Page(ctx, userID, 0, -1)
	return out, err
}

// Page returns limit (-1: every one) of a user's live sessions from
// offset, newest first, and how many live sessions the user has, counted
// over the same condition.
func (s *Sessions) Page(ctx context.Context, userID string, offset, limit int) ([]SessionInfo, int, error) {
	now := s.now().UnixMilli()
	var w store.Where
	cond, args := w.Add("user_id = ? AND expires_at > ? AND last_seen_at > ?", userID, now, now-s.cfg.IdleTimeout.Milliseconds()).SQL()
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM sessions"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("iam: count sessions: %w", err)
	}
	page := ""
	if limit >= 0 {
		page, args = " LIMIT ? OFFSET ?", append(args, limit, offset)
	}
	rows, err := s.db.Query(ctx, "SELECT id, source_ip, created_at, last_seen_at, expires_at FROM sessions"+cond+" ORDER BY created_at DESC, id"+page, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("iam: list sessions: %w", err)
	}
	defer rows.Close()
	var out []SessionInfo
	for rows.Next() {
		x := SessionInfo{UserID: userID}
		var c, l, e int64
		if err := rows.Scan(&x.ID, &x.SourceIP, &c, &l, &e); err != nil {
			return nil, 0, err
		}
		x.Created, x.LastSeen, x.ExpiresAt = time.UnixMilli(c).UTC(), time.UnixMilli(l).UTC(), time.UnixMilli(e).UTC()
		out = append(out, x)
	}
	return out, total, rows.Err()
}

// Delete ends one session of a user; it returns api.ErrSessionNotFound
// when the user has no session with that id.
func (s *Sessions) Delete(ctx context.Context, userID, id string) error {
	s.forget(func(c api.Session) bool { return c.ID == id })
	res, err := s.db.Exec(ctx, "DELETE FROM sessions WHERE id = ? AND user_id = ?", id, userID)
	s.ended(func(c api.Session) bool { return c.ID == id })
	if err != nil {
		return fmt.Errorf("iam: delete session: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return api.ErrSessionNotFound
	}
	return nil
}

// DeleteUser ends every session of a user but except (a session id, or
// ""), and returns how many it ended.
func (s *Sessions) DeleteUser(ctx context.Context, userID, except string) (int, error) {
	s.forget(func(c api.Session) bool { return c.UserID == userID && c.ID != except })
	res, err := s.db.Exec(ctx, "DELETE FROM sessions WHERE user_id = ? AND id <> ?", userID, except)
	s.ended(func(c api.Session) bool { return c.UserID == userID && c.ID != except })
	if err != nil {
		return 0, fmt.Errorf("iam: delete sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
