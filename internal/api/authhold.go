package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
)

// Failed authentications are limited per source address and per SecretId
// (cfg.AuthFailures): only failures count, and a key held after too many
// refuses every request under it, good signature or not, before the
// signature is checked. Holding good requests too is the point for an
// address (a scanner learns nothing from a held address) and the price for
// a SecretId: SecretIds are not secret, so whoever knows one can hold its
// app for a while by failing on purpose; api.auth-failures.secret-failures
// 0 turns that hold off where this matters more than slowing guesses.

// authHoldKeys returns the failure-count keys of a request: its source
// address and, when it presents one, its SecretId.
func authHoldKeys(r *http.Request, c *Caller) (addr, secret string) {
	addr = "authfail:addr:" + c.SourceIP
	if auth, err := c.authorization(r); err == nil && auth.SecretID != "" {
		secret = "authfail:secret:" + truncate(auth.SecretID, 64)
	}
	return addr, secret
}

// authorization returns r's Authorization header parsed, parsing it on
// the first call only; ErrNoAuthorization when there is none.
func (c *Caller) authorization(r *http.Request) (tc3.Authorization, error) {
	if !c.authSeen {
		c.authSeen = true
		if h := r.Header.Get("Authorization"); h == "" {
			c.authErr = errNoAuthorization
		} else {
			c.auth, c.authErr = tc3.ParseAuthorization(h)
		}
	}
	return c.auth, c.authErr
}

// errNoAuthorization is Caller.authorization's answer for a request
// without the header.
var errNoAuthorization = errors.New("api: no Authorization header")

// checkAuthHold answers RequestLimitExceeded while the request's address
// or SecretId is held. A counter failure lets the request through, as the
// rate limiter's does.
func (g *Gateway) checkAuthHold(ctx context.Context, r *http.Request, c *Caller) error {
	if g.failures == nil {
		return nil
	}
	if h, ok := g.failures.(HoldHinter); ok && !h.MayHold() {
		return nil
	}
	addr, secret := authHoldKeys(r, c)
	keys := []string{addr}
	if secret != "" && g.cfg.AuthFailures.SecretFailures > 0 {
		keys = append(keys, secret)
	}
	// Which key holds decides the message: ask for the address first.
	for _, k := range keys {
		d, err := g.failures.Held(ctx, k)
		if err != nil {
			g.log.WarnContext(ctx, "failure counter unavailable", "err", err)
			return nil
		}
		if d > 0 {
			who := "source address " + c.SourceIP
			if k == secret {
				who = "SecretId " + strings.TrimPrefix(secret, "authfail:secret:")
			}
			return Errorf(RequestLimitExceeded, "%s: too many failed authentications; retry after %d ms", who, d.Milliseconds())
		}
	}
	return nil
}

// countAuthFailure counts a failed authentication against the request's
// address and SecretId. Errors that are not the caller's (a store down)
// do not count.
func (g *Gateway) countAuthFailure(ctx context.Context, r *http.Request, c *Caller, err error) {
	if g.failures == nil {
		return
	}
	if e, ok := AsError(err); !ok || !strings.HasPrefix(string(e.Code), "AuthFailure.") {
		return
	}
	f := g.cfg.AuthFailures
	addr, secret := authHoldKeys(r, c)
	b := ratelimit.Backoff{Free: f.AddressFailures, Window: f.FailureWindow, Base: f.LockBase, Max: f.LockMax}
	if _, _, err := g.failures.Attempt(ctx, addr, b); err != nil {
		g.log.WarnContext(ctx, "failure counter unavailable", "err", err)
		return
	}
	if secret != "" && f.SecretFailures > 0 {
		b.Free = f.SecretFailures
		if _, _, err := g.failures.Attempt(ctx, secret, b); err != nil {
			g.log.WarnContext(ctx, "failure counter unavailable", "err", err)
		}
	}
}
