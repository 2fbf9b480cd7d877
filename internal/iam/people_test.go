package iam_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apiconfig"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

func TestPasswordPolicy(t *testing.T) {
	for _, c := range []struct{ pw, msg string }{
		{"short", "Password: must be at least 10 characters"},
		{"carol-the-admin", "Password: must not be the user name"},
		{"Password123", "Password: is one of the most common passwords; choose another"},
		{string(make([]byte, 257)), "Password: must be at most 256 bytes"},
	} {
		wantCode(t, iam.CheckPasswordPolicy("Password", c.pw, "Carol-the-Admin"), api.InvalidParameterValue, c.msg)
	}
	if err := iam.CheckPasswordPolicy("Password", "a long and unusual phrase", "carol"); err != nil {
		t.Fatal(err)
	}
}

func TestSessionsAndLockout(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := storetest.Open(t, "sqlite")
	cfg := apiconfig.DefaultSessions()
	cfg.UserFailures, cfg.AddressFailures, cfg.LockBase = 3, 100, time.Minute
	cfg.CacheTTL = 0 // every lookup reaches the store; TestSessionCache covers the cache
	users := iam.NewUsers(db, clk.now)
	sessions := iam.NewSessions(db, cfg, clk.now)
	l := iam.NewLogins(users, sessions, ratelimit.NewMemory(clk.now), cfg, nil)
	if _, err := users.Create(ctx, "dana", "correct horse battery", "viewer"); err != nil {
		t.Fatal(err)
	}

	_, s, err := l.Login(ctx, "dana", "correct horse battery", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := sessions.ResolveSession(ctx, s.Token)
	if err != nil || got.UserName != "dana" || got.Role != "viewer" || got.ID != s.ID {
		t.Fatalf("ResolveSession = %+v, %v", got, err)
	}
	// The store holds hashes only.
	var n int
	if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM sessions WHERE token_hash = ? OR csrf_hash = ?", s.Token, s.CSRFToken).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a raw token is stored (%d rows, %v)", n, err)
	}
	// Idle expiry: used within the idle timeout it lives on; unused it ends.
	clk.add(cfg.IdleTimeout - time.Minute)
	if _, err := sessions.ResolveSession(ctx, s.Token); err != nil {
		t.Fatalf("session used within the idle timeout: %v", err)
	}
	clk.add(cfg.IdleTimeout)
	if _, err := sessions.ResolveSession(ctx, s.Token); !errors.Is(err, api.ErrSessionExpired) {
		t.Fatalf("idle session: %v; want ErrSessionExpired", err)
	}
	// Absolute expiry, however busy the session.
	_, s, _ = l.Login(ctx, "dana", "correct horse battery", "10.0.0.1")
	for i := 0; i < int(cfg.MaxAge/(cfg.IdleTimeout/2)); i++ {
		clk.add(cfg.IdleTimeout / 2)
		_, _ = sessions.ResolveSession(ctx, s.Token)
	}
	if _, err := sessions.ResolveSession(ctx, s.Token); !errors.Is(err, api.ErrSessionExpired) {
		t.Fatalf("session past max age: %v; want ErrSessionExpired", err)
	}
	if _, err := sessions.ResolveSession(ctx, "forged"); !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("unknown token: %v", err)
	}

	// Unknown names and wrong passwords get the same answer; both count.
	_, errUnknown := l.Check(ctx, "nobody", "whatever123", "10.0.0.2")
	_, errWrong := l.Check(ctx, "dana", "wrong password", "10.0.0.2")
	if errUnknown.Error() != errWrong.Error() {
		t.Fatalf("unknown user %q, wrong password %q: want the same answer", errUnknown, errWrong)
	}
	wantCode(t, errWrong, api.AuthFailureLoginFailed, "")
	for i := 0; i < 3; i++ { // the 2nd and 3rd free failures, then the first held one
		_, err = l.Check(ctx, "dana", "wrong password", "10.0.0.2")
		wantCode(t, err, api.AuthFailureLoginFailed, "")
	}
	// Held now, even with the right password.
	_, err = l.Check(ctx, "dana", "correct horse battery", "10.0.0.3")
	wantCode(t, err, api.AuthFailureLoginLocked, "too many failed logins for this user; retry after 61 s")
	clk.add(time.Minute + time.Second)
	if _, err := l.Check(ctx, "dana", "correct horse battery", "10.0.0.3"); err != nil {
		t.Fatalf("after the hold: %v", err)
	}
	// The success forgot the failures: three free ones again.
	for i := 0; i < 3; i++ {
		_, err = l.Check(ctx, "DANA", "wrong password", "10.0.0.2")
		wantCode(t, err, api.AuthFailureLoginFailed, "")
	}

	// Revocation.
	_, s1, _ := l.Login(ctx, "dana", "correct horse battery", "10.0.0.4")
	_, s2, _ := l.Login(ctx, "dana", "correct horse battery", "10.0.0.5")
	list, err := sessions.List(ctx, s1.UserID)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %d sessions, %v; want 2", len(list), err)
	}
	if err := sessions.Delete(ctx, "usr-other", s1.ID); !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("deleting another user's session: %v", err)
	}
	if n, err := sessions.DeleteUser(ctx, s1.UserID, s2.ID); err != nil || n != 3 { // s1 and the two expired ones
		t.Fatalf("DeleteUser = %d, %v; want 3", n, err)
	}
	if _, err := sessions.ResolveSession(ctx, s1.Token); !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("revoked session: %v", err)
	}
	if _, err := sessions.ResolveSession(ctx, s2.Token); err != nil {
		t.Fatalf("kept session: %v", err)
	}
	// A disabled user's sessions stop working.
	disabled := iam.UserDisabled
	if err := users.Modify(ctx, s2.UserID, iam.UserChange{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.ResolveSession(ctx, s2.Token); !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("session of a disabled user: %v", err)
	}
}

// A replica trusts a session it looked up for CacheTTL; ending it through
// this replica takes effect at once, through another within CacheTTL.
func TestSessionCache(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := storetest.Open(t, "sqlite")
	cfg := apiconfig.DefaultSessions()
	users := iam.NewUsers(db, clk.now)
	here, there := iam.NewSessions(db, cfg, clk.now), iam.NewSessions(db, cfg, clk.now)
	id, err := users.Create(ctx, "gus", "a long unusual phrase", "admin")
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := here.Create(ctx, id, "10.0.0.1")
	s2, _ := here.Create(ctx, id, "10.0.0.1")
	for _, s := range []iam.NewSession{s1, s2} {
		if _, err := here.ResolveSession(ctx, s.Token); err != nil {
			t.Fatal(err)
		}
		if _, err := there.ResolveSession(ctx, s.Token); err != nil {
			t.Fatal(err)
		}
	}
	if err := here.Delete(ctx, id, s1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := here.ResolveSession(ctx, s1.Token); !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("deleted session on this replica: %v", err)
	}
	if _, err := there.ResolveSession(ctx, s1.Token); err != nil {
		t.Fatalf("deleted session on the other replica within CacheTTL: %v; want it still cached", err)
	}
	clk.add(cfg.CacheTTL)
	if _, err := there.ResolveSession(ctx, s1.Token); !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("deleted session on the other replica after CacheTTL: %v", err)
	}
	// Expiry is checked on cached sessions too.
	if _, err := here.ResolveSession(ctx, s2.Token); err != nil {
		t.Fatal(err)
	}
	clk.add(cfg.IdleTimeout)
	if _, err := here.ResolveSession(ctx, s2.Token); !errors.Is(err, api.ErrSessionExpired) {
		t.Fatalf("idle session: %v", err)
	}
}

// An unknown user name costs the same argon2id work as a wrong password,
// so timing does not tell which names exist.
func TestUnknownUserTakesAsLongAsWrongPassword(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	users := iam.NewUsers(db, nil)
	if _, err := users.Create(ctx, "hal", "a long unusual phrase", "viewer"); err != nil {
		t.Fatal(err)
	}
	var unknown, wrong []time.Duration
	for i := 0; i < 7; i++ { // interleaved, so load elsewhere falls on both
		t0 := time.Now()
		if _, ok, err := users.Verify(ctx, "nobody", "a guess at it"); ok || err != nil {
			t.Fatal(ok, err)
		}
		unknown = append(unknown, time.Since(t0))
		t0 = time.Now()
		if _, ok, err := users.Verify(ctx, "hal", "a guess at it"); ok || err != nil {
			t.Fatal(ok, err)
		}
		wrong = append(wrong, time.Since(t0))
	}
	slices.Sort(unknown)
	slices.Sort(wrong)
	u, w := unknown[3], wrong[3]
	t.Logf("median unknown user %v, wrong password %v", u, w)
	if u < w/2 || u > 2*w {
		t.Fatalf("median unknown user %v vs wrong password %v: want within 2x", u, w)
	}
}
