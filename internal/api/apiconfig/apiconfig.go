// Package apiconfig is the action API gateway's configuration. It is a leaf
// (it imports nothing of Tianshu's) so that the root configuration can nest
// it without depending on the gateway; package api uses it as api.Config.
package apiconfig

import (
	"errors"
	"flag"
	"strings"
	"time"
)

// Config configures the gateway.
type Config struct {
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// SignatureWindow is how far X-TC-Timestamp may be from the server's clock.
	SignatureWindow time.Duration `yaml:"signature_window"`
	// SignatureReplayFailOpen accepts signed requests unchecked for replay
	// while the replay cache cannot answer (Redis down); by default they
	// are refused with ResourceUnavailable.
	SignatureReplayFailOpen bool `yaml:"signature_replay_fail_open"`
	// SignedHosts, when set, are the host names (port optional) signed
	// requests may be addressed to; others are refused. Empty accepts any
	// Host the signature covers.
	SignedHosts []string `yaml:"signed_hosts"`
	// DefaultReadRPS and DefaultWriteRPS limit each app's read and write
	// actions per second unless the app sets its own; 0 is unlimited.
	DefaultReadRPS  float64 `yaml:"default_read_rps"`
	DefaultWriteRPS float64 `yaml:"default_write_rps"`
	// DefaultBurst is the burst allowed above the rate (default 2 s worth).
	DefaultBurst int `yaml:"default_burst"`
	// Sessions configures people's logins and sessions.
	Sessions Sessions `yaml:"sessions"`
}

// Default returns the gateway's defaults.
func Default() Config {
	return Config{MaxBodyBytes: 4 << 20, SignatureWindow: 300 * time.Second, Sessions: DefaultSessions()}
}

// RegisterFlags binds the fields to flags prefixed "api.", with the current
// values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxBodyBytes, "api.max-body-bytes", c.MaxBodyBytes, "largest action request body accepted")
	fs.DurationVar(&c.SignatureWindow, "api.signature-window", c.SignatureWindow, "allowed clock skew of signed requests")
	fs.BoolVar(&c.SignatureReplayFailOpen, "api.signature-replay-fail-open", c.SignatureReplayFailOpen, "accept signed requests unchecked for replay while the replay cache (--cache) cannot answer, instead of refusing them")
	fs.Func("api.signed-hosts", "comma-separated host names (port optional) that signed requests may be addressed to (default: any)", func(s string) error {
		c.SignedHosts = nil
		for _, h := range strings.Split(s, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.SignedHosts = append(c.SignedHosts, h)
			}
		}
		return nil
	})
	fs.Float64Var(&c.DefaultReadRPS, "api.default-read-rps", c.DefaultReadRPS, "per-app limit of read actions per second unless the app sets one (0: unlimited)")
	fs.Float64Var(&c.DefaultWriteRPS, "api.default-write-rps", c.DefaultWriteRPS, "per-app limit of write actions per second unless the app sets one (0: unlimited)")
	fs.IntVar(&c.DefaultBurst, "api.default-burst", c.DefaultBurst, "requests allowed in a burst above the rate (0: two seconds' worth)")
	c.Sessions.RegisterFlags(fs)
}

// Validate checks the configuration; errors name the field as the YAML
// file spells it.
func (c Config) Validate() error {
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 1<<30 {
		return errors.New("api.max_body_bytes: must be between 1 KiB and 1 GiB")
	}
	if c.SignatureWindow < time.Second || c.SignatureWindow > time.Hour {
		return errors.New("api.signature_window: must be between 1s and 1h")
	}
	if c.DefaultReadRPS < 0 || c.DefaultWriteRPS < 0 || c.DefaultBurst < 0 {
		return errors.New("api.default_read_rps, default_write_rps, default_burst: must not be negative")
	}
	return c.Sessions.Validate()
}
