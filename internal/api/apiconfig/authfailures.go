package apiconfig

import (
	"errors"
	"flag"
	"time"
)

// AuthFailures configures how the gateway answers repeated failed
// authentications of the action API (bad or expired signatures, unknown
// SecretIds, invalid sessions): AddressFailures from one source address,
// or SecretFailures naming one SecretId, pass within FailureWindow; the
// next failure holds the address (or SecretId) for LockBase, doubling with
// each further failure up to LockMax. While held, every request from the
// address (or naming the SecretId) is answered RequestLimitExceeded before
// its signature is checked; successes never count. SecretFailures 0 turns
// the per-SecretId hold off.
type AuthFailures struct {
	AddressFailures int           `yaml:"address_failures"`
	SecretFailures  int           `yaml:"secret_failures"`
	FailureWindow   time.Duration `yaml:"failure_window"`
	LockBase        time.Duration `yaml:"lock_base"`
	LockMax         time.Duration `yaml:"lock_max"`
}

// DefaultAuthFailures returns the defaults: a client that gets its
// signing wrong a few times keeps working, a scanner is slowed to one
// attempt per hold.
func DefaultAuthFailures() AuthFailures {
	return AuthFailures{AddressFailures: 50, SecretFailures: 20, FailureWindow: 10 * time.Minute, LockBase: 10 * time.Second, LockMax: 5 * time.Minute}
}

// RegisterFlags binds the fields to flags prefixed "api.auth-failures.".
func (c *AuthFailures) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.AddressFailures, "api.auth-failures.address-failures", c.AddressFailures, "failed authentications from one source address within the window before it is held")
	fs.IntVar(&c.SecretFailures, "api.auth-failures.secret-failures", c.SecretFailures, "failed authentications naming one SecretId within the window before it is held (0: no per-SecretId hold)")
	fs.DurationVar(&c.FailureWindow, "api.auth-failures.failure-window", c.FailureWindow, "how long failed authentications are remembered after the last one")
	fs.DurationVar(&c.LockBase, "api.auth-failures.lock-base", c.LockBase, "first hold after too many failed authentications; doubles with each further failure")
	fs.DurationVar(&c.LockMax, "api.auth-failures.lock-max", c.LockMax, "longest hold after failed authentications")
}

// Validate checks the configuration.
func (c AuthFailures) Validate() error {
	if c.AddressFailures < 1 || c.SecretFailures < 0 {
		return errors.New("api.auth_failures.address_failures: must be at least 1; secret_failures: must not be negative")
	}
	if c.FailureWindow < time.Second || c.LockBase < time.Millisecond || c.LockMax < c.LockBase {
		return errors.New("api.auth_failures.failure_window, lock_base, lock_max: need failure_window >= 1s and 1ms <= lock_base <= lock_max")
	}
	return nil
}
