package apiconfig

import (
	"errors"
	"flag"
	"time"
)

// Sessions configures how people log in: session expiry and the lockout
// after failed logins. Sessions are the console's and the CLI's way in, as
// keys are the apps'.
type Sessions struct {
	// IdleTimeout ends a session not used for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxAge ends a session this long after its login, used or not.
	MaxAge time.Duration `yaml:"max_age"`
	// UserFailures failed logins to one user name, and AddressFailures from
	// one source address, pass within FailureWindow; after them each
	// attempt holds the name (or address) for LockBase, doubling up to
	// LockMax. A successful login forgets its user's failures.
	UserFailures    int           `yaml:"user_failures"`
	AddressFailures int           `yaml:"address_failures"`
	FailureWindow   time.Duration `yaml:"failure_window"`
	LockBase        time.Duration `yaml:"lock_base"`
	LockMax         time.Duration `yaml:"lock_max"`
	// CacheTTL is how long a replica trusts a session it looked up without
	// asking the store again (0: ask on every call). A logout or revocation
	// takes effect at once on the replica that served it and, told over
	// the bus, on the others; CacheTTL bounds a replica the bus missed.
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

// DefaultSessions returns the session defaults.
func DefaultSessions() Sessions {
	return Sessions{IdleTimeout: time.Hour, MaxAge: 12 * time.Hour,
		UserFailures: 5, AddressFailures: 20, FailureWindow: 15 * time.Minute, LockBase: 30 * time.Second, LockMax: 15 * time.Minute,
		CacheTTL: 2 * time.Second}
}

// RegisterFlags binds the fields to flags prefixed "api.sessions.".
func (c *Sessions) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.IdleTimeout, "api.sessions.idle-timeout", c.IdleTimeout, "end a login session unused for this long")
	fs.DurationVar(&c.MaxAge, "api.sessions.max-age", c.MaxAge, "end a login session this long after login, used or not")
	fs.IntVar(&c.UserFailures, "api.sessions.user-failures", c.UserFailures, "failed logins to one user within the failure window before lockout")
	fs.IntVar(&c.AddressFailures, "api.sessions.address-failures", c.AddressFailures, "failed logins from one source address within the failure window before lockout")
	fs.DurationVar(&c.FailureWindow, "api.sessions.failure-window", c.FailureWindow, "how long failed logins are remembered after the last one")
	fs.DurationVar(&c.LockBase, "api.sessions.lock-base", c.LockBase, "first lockout after too many failed logins; doubles with each further failure")
	fs.DurationVar(&c.LockMax, "api.sessions.lock-max", c.LockMax, "longest lockout")
	fs.DurationVar(&c.CacheTTL, "api.sessions.cache-ttl", c.CacheTTL, "how long a replica trusts a session it looked up before asking the store again; revocation reaches other replicas over the bus at once, this bounds a replica the bus missed (0: every call asks)")
}

// Validate checks the configuration.
func (c Sessions) Validate() error {
	var errs []error
	if c.IdleTimeout < time.Minute || c.IdleTimeout > c.MaxAge {
		errs = append(errs, errors.New("api.sessions.idle_timeout: must be at least 1m and at most max_age"))
	}
	if c.MaxAge > 90*24*time.Hour {
		errs = append(errs, errors.New("api.sessions.max_age: must be at most 90 days"))
	}
	if c.UserFailures < 1 || c.AddressFailures < 1 {
		errs = append(errs, errors.New("api.sessions.user_failures, address_failures: must be at least 1"))
	}
	if c.FailureWindow < time.Second || c.LockBase < time.Millisecond || c.LockMax < c.LockBase {
		errs = append(errs, errors.New("api.sessions.failure_window, lock_base, lock_max: need failure_window >= 1s and 1ms <= lock_base <= lock_max"))
	}
	if c.CacheTTL < 0 || c.CacheTTL > time.Minute {
		errs = append(errs, errors.New("api.sessions.cache_ttl: must be between 0 and 1m"))
	}
	return errors.Join(errs...)
}
