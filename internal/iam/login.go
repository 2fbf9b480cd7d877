package iam

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apiconfig"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
)

// Logins checks people's passwords under lockout and starts sessions.
//
// Every password check counts as an attempt against the user name and the
// source address before it runs (ratelimit.Attempts, in the cache backend
// that replicas share), so a burst of guesses across replicas gets at most
// the free attempts through, then one per hold, the hold doubling with each
// further failure. A success forgets its user name's count and gives its
// address the attempt back. Unknown names are counted like known ones and
// answered like a wrong password, after the same argon2id work.
type Logins struct {
	users    *Users
	sessions *Sessions
	attempts ratelimit.Attempts
	user     ratelimit.Backoff
	addr     ratelimit.Backoff
	log      *slog.Logger
}

// NewLogins returns the login service.
func NewLogins(users *Users, sessions *Sessions, attempts ratelimit.Attempts, cfg apiconfig.Sessions, log *slog.Logger) *Logins {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Logins{users: users, sessions: sessions, attempts: attempts, log: log,
		user: ratelimit.Backoff{Free: cfg.UserFailures, Window: cfg.FailureWindow, Base: cfg.LockBase, Max: cfg.LockMax},
		addr: ratelimit.Backoff{Free: cfg.AddressFailures, Window: cfg.FailureWindow, Base: cfg.LockBase, Max: cfg.LockMax}}
}

// Sessions returns the session store.
func (l *Logins) Sessions() *Sessions { return l.sessions }

func locked(who string, retry time.Duration) error {
	return api.Errorf(api.AuthFailureLoginLocked, "too many failed logins for this %s; retry after %d s", who, int64(retry.Seconds())+1)
}

// Check verifies name's password from sourceIP under lockout. It answers
// AuthFailure.LoginLocked while the name or the address is held and
// AuthFailure.LoginFailed for a wrong password, an unknown name or a
// disabled user alike. A failing cache refuses logins
// (ResourceUnavailable): lockout that silently stops is worse than none
// announced.
func (l *Logins) Check(ctx context.Context, name, password, sourceIP string) (User, error) {
	userKey, addrKey := "login:user:"+strings.ToLower(name), "login:addr:"+sourceIP
	ok, retry, err := l.attempts.Attempt(ctx, addrKey, l.addr)
	if err != nil {
		l.log.Error("login lockout unavailable", "err", err)
		return User{}, api.Errorf(api.ResourceUnavailable, "login is unavailable: the lockout counter cannot be reached; retry later")
	}
	if !ok {
		return User{}, locked("address", retry)
	}
	if ok, retry, err = l.attempts.Attempt(ctx, userKey, l.user); err != nil || !ok {
		_ = l.attempts.Refund(ctx, addrKey) // no password was tried
		if err != nil {
			l.log.Error("login lockout unavailable", "err", err)
			return User{}, api.Errorf(api.ResourceUnavailable, "login is unavailable: the lockout counter cannot be reached; retry later")
		}
		return User{}, locked("user", retry)
	}
	u, good, err := l.users.Verify(ctx, name, password)
	if err != nil {
		return User{}, err
	}
	if !good {
		return User{}, api.Errorf(api.AuthFailureLoginFailed, "UserName or Password: wrong, or the user is disabled")
	}
	if err := l.attempts.Reset(ctx, userKey); err != nil {
		l.log.Warn("login lockout reset failed", "user", name, "err", err)
	}
	if err := l.attempts.Refund(ctx, addrKey); err != nil {
		l.log.Warn("login lockout refund failed", "err", err)
	}
	return u, nil
}

// Login checks the password and starts a session.
func (l *Logins) Login(ctx context.Context, name, password, sourceIP string) (User, NewSession, error) {
	u, err := l.Check(ctx, name, password, sourceIP)
	if err != nil {
		return User{}, NewSession{}, err
	}
	s, err := l.sessions.Create(ctx, u.ID, sourceIP)
	return u, s, err
}
