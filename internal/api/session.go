package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"time"
)

// SessionCookie is the cookie that carries a person's session token.
const SessionCookie = "tianshu_session"

// CSRFHeader carries the CsrfToken Login returned; every call authenticated
// by the session cookie must send it. A cross-site form or script can make
// the browser send the cookie but cannot read the token.
const CSRFHeader = "X-Tianshu-CSRF"

// Errors of SessionResolver.
var (
	ErrSessionNotFound = errors.New("api: session not found")
	ErrSessionExpired  = errors.New("api: session expired")
)

// Session is what a session token resolves to.
type Session struct {
	ID       string // public id, e.g. for DeleteMySession
	UserID   string
	UserName string
	Role     string
	// CSRFHash is the SHA-256 of the session's CSRF token.
	CSRFHash [sha256.Size]byte
}

// SessionResolver finds the live session of a token. Errors wrap
// ErrSessionNotFound (unknown or revoked) or ErrSessionExpired (idle or
// too old); a known but expired session still returns its user, for the
// audit event.
type SessionResolver interface {
	ResolveSession(ctx context.Context, token string) (Session, error)
}

// SessionStarter is implemented by responses that start a session (Login):
// the gateway sets the session cookie from it.
type SessionStarter interface {
	StartedSession() (token string, expires time.Time)
}

// SessionEnder is implemented by responses that end the caller's session
// (Logout): the gateway clears the cookie.
type SessionEnder interface {
	EndedSession() bool
}

// authenticateSession authenticates a person by the session cookie and the
// CSRF header. Failures are audited here: they are attempts to act as a
// person, whatever the action.
func (g *Gateway) authenticateSession(r *http.Request, a *Action, body []byte, c *Caller, token string) (Credential, error) {
	if g.sessions == nil {
		return Credential{}, Errorf(AuthFailureInvalidAuthorization, "Authorization: required (TC3-HMAC-SHA256); this gateway has no sessions")
	}
	s, err := g.sessions.ResolveSession(r.Context(), token)
	c.UserID, c.UserName = s.UserID, s.UserName
	switch {
	case errors.Is(err, ErrSessionNotFound):
		err = Errorf(AuthFailureInvalidSession, "Cookie %s: no such session (logged out or revoked); log in again", SessionCookie)
	case errors.Is(err, ErrSessionExpired):
		err = Errorf(AuthFailureSessionExpired, "Cookie %s: the session expired; log in again", SessionCookie)
	case err != nil:
		return Credential{}, err
	default:
		if h := r.Header.Get(CSRFHeader); h == "" {
			err = Errorf(AuthFailureInvalidCSRFToken, "%s: required with a session cookie (the CsrfToken from Login)", CSRFHeader)
		} else if sum := sha256.Sum256([]byte(h)); subtle.ConstantTimeCompare(sum[:], s.CSRFHash[:]) != 1 {
			err = Errorf(AuthFailureInvalidCSRFToken, "%s: does not match the session's CsrfToken", CSRFHeader)
		}
	}
	if err != nil {
		g.recordAlways(r.Context(), a, c, body, err)
		return Credential{}, err
	}
	c.SessionID, c.Role = s.ID, s.Role
	return Credential{}, nil
}

// recordAlways audits a call whether or not its action is audited.
func (g *Gateway) recordAlways(ctx context.Context, a *Action, c *Caller, body []byte, err error) {
	if a.Audit {
		g.record(ctx, a, c, body, err)
		return
	}
	b := *a
	b.Audit = true
	g.record(ctx, &b, c, body, err)
}

// setSessionCookie sets or clears the session cookie when resp starts or
// ends a session. The cookie is HttpOnly and SameSite=Strict, and Secure
// when the request came over TLS or the platform's public URL is https.
func (g *Gateway) setSessionCookie(w http.ResponseWriter, r *http.Request, resp any) {
	ck := &http.Cookie{Name: SessionCookie, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || g.secureCookies}
	switch x := resp.(type) {
	case SessionStarter:
		token, expires := x.StartedSession()
		if token == "" {
			return
		}
		ck.Value, ck.Expires = token, expires
		ck.MaxAge = max(1, int(time.Until(expires).Seconds()))
	case SessionEnder:
		if !x.EndedSession() {
			return
		}
		ck.MaxAge = -1
	default:
		return
	}
	http.SetCookie(w, ck)
}
