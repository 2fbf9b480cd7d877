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
	// BodyReadTimeout bounds how long the gateway waits for an action
	// request's body once its headers arrived, so that a client trickling
	// a body cannot hold a connection and a handler open indefinitely.
	// Uploads at /files/ (tus) stream large bodies and are not under it.
	BodyReadTimeout time.Duration `yaml:"body_read_timeout"`
	// MaxConnections caps the HTTP server's open connections (and the gRPC
	// listener's, separately); a connection beyond it waits in the
	// kernel's accept queue until another closes. 0 is no cap.
	MaxConnections int `yaml:"max_connections"`
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
	// DefaultReadRPS and DefaultWriteRPS limit each app's (and person's)
	// read and write actions per second unless a platform admin set the
	// app's own; 0 is unlimited. The defaults are generous for a program
	// and still bound what one stolen or runaway key can cost.
	DefaultReadRPS  float64 `yaml:"default_read_rps"`
	DefaultWriteRPS float64 `yaml:"default_write_rps"`
	// DefaultBurst is the burst allowed above the rate (default 2 s worth).
	DefaultBurst int `yaml:"default_burst"`
	// ProjectRPS limits the requests per second of all of a project's apps
	// together, whatever each app's own limit, so that a project cannot
	// buy more by making more apps; 0 is unlimited. ProjectBurst is its
	// burst (0: two seconds' worth).
	ProjectRPS   float64 `yaml:"project_rps"`
	ProjectBurst int     `yaml:"project_burst"`
	// Quotas are how many apps, devices and tasks a project may hold
	// unless a platform admin set its own (ModifyProjectQuota); 0 is no
	// quota.
	Quotas Quotas `yaml:"quotas"`
	// AuthFailures limits failed authentications per source address and
	// per SecretId.
	AuthFailures AuthFailures `yaml:"auth_failures"`
	// Sessions configures people's logins and sessions.
	Sessions Sessions `yaml:"sessions"`
	// Live limits the console's live view streams.
	Live Live `yaml:"live"`
	// AppCacheTTL is how long a replica trusts the app keys and app lists
	// it read without asking the store again (0: ask on every call). A
	// change applies at once on the replica that made it and, told over
	// the bus, on the others; the TTL bounds a replica the bus did not
	// reach.
	AppCacheTTL time.Duration `yaml:"app_cache_ttl"`
	// GrantsCacheTTL is how long a replica trusts a principal's roles and
	// bindings it read (0: ask on every call). Like AppCacheTTL, changes
	// reach the other replicas over the bus; the TTL bounds one it missed.
	GrantsCacheTTL time.Duration `yaml:"grants_cache_ttl"`
	// Concurrency bounds the action calls running at once, per class.
	Concurrency Concurrency `yaml:"concurrency"`
}

// Default returns the gateway's defaults.
func Default() Config {
	return Config{MaxBodyBytes: 4 << 20, BodyReadTimeout: 30 * time.Second, MaxConnections: 1024, SignatureWindow: 300 * time.Second,
		DefaultReadRPS: 200, DefaultWriteRPS: 50, ProjectRPS: 1000, AppCacheTTL: 2 * time.Second, GrantsCacheTTL: 5 * time.Second,
		Quotas:       Quotas{Apps: 100, Devices: 1000, Tasks: 1000},
		AuthFailures: DefaultAuthFailures(), Sessions: DefaultSessions(), Live: DefaultLive(), Concurrency: DefaultConcurrency()}
}

// RegisterFlags binds the fields to flags prefixed "api.", with the current
// values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxBodyBytes, "api.max-body-bytes", c.MaxBodyBytes, "largest action request body accepted")
	fs.DurationVar(&c.BodyReadTimeout, "api.body-read-timeout", c.BodyReadTimeout, "longest wait for an action request's body after its headers (uploads at /files/ are not under it)")
	fs.IntVar(&c.MaxConnections, "api.max-connections", c.MaxConnections, "most connections the HTTP server (and the gRPC listener) hold open; more wait to be accepted (0: no cap)")
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
	fs.Float64Var(&c.ProjectRPS, "api.project-rps", c.ProjectRPS, "limit of requests per second of all of one project's apps together (0: unlimited)")
	fs.IntVar(&c.ProjectBurst, "api.project-burst", c.ProjectBurst, "requests a project may burst above api.project-rps (0: two seconds' worth)")
	fs.IntVar(&c.Quotas.Apps, "api.quotas.apps", c.Quotas.Apps, "apps a project may hold unless a platform admin set its own quota (0: no quota)")
	fs.IntVar(&c.Quotas.Devices, "api.quotas.devices", c.Quotas.Devices, "devices a project may hold unless a platform admin set its own quota (0: no quota)")
	fs.IntVar(&c.Quotas.Tasks, "api.quotas.tasks", c.Quotas.Tasks, "tasks a project may hold unless a platform admin set its own quota (0: no quota)")
	fs.Int64Var(&c.Quotas.StorageBytes, "api.quotas.storage-bytes", c.Quotas.StorageBytes, "bytes of records and uploads a project may hold unless a platform admin set its own quota (0: no quota)")
	fs.DurationVar(&c.AppCacheTTL, "api.app-cache-ttl", c.AppCacheTTL, "how long a replica trusts app keys and app lists it read; changes through other replicas arrive over the bus at once, this bounds a replica the bus missed (0: read the store on every call)")
	fs.DurationVar(&c.GrantsCacheTTL, "api.grants-cache-ttl", c.GrantsCacheTTL, "how long a replica trusts the roles and role bindings it read for a caller; changes through other replicas arrive over the bus at once, this bounds a replica the bus missed (0: read the store on every call)")
	c.AuthFailures.RegisterFlags(fs)
	c.Sessions.RegisterFlags(fs)
	c.Live.RegisterFlags(fs)
	c.Concurrency.RegisterFlags(fs)
}

// Validate checks the configuration; errors name the field as the YAML
// file spells it.
func (c Config) Validate() error {
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 1<<30 {
		return errors.New("api.max_body_bytes: must be between 1 KiB and 1 GiB")
	}
	if c.BodyReadTimeout < 100*time.Millisecond || c.BodyReadTimeout > 10*time.Minute {
		return errors.New("api.body_read_timeout: must be between 100ms and 10m")
	}
	if c.Quotas.Apps < 0 || c.Quotas.Devices < 0 || c.Quotas.Tasks < 0 || c.Quotas.StorageBytes < 0 {
		return errors.New("api.quotas.apps, devices, tasks, storage-bytes: must not be negative")
	}
	if c.AppCacheTTL < 0 || c.AppCacheTTL > time.Minute {
		return errors.New("api.app_cache_ttl: must be between 0 and 1m")
	}
	if c.GrantsCacheTTL < 0 || c.GrantsCacheTTL > time.Minute {
		return errors.New("api.grants_cache_ttl: must be between 0 and 1m")
	}
	if c.MaxConnections < 0 {
		return errors.New("api.max_connections: must not be negative")
	}
	if c.SignatureWindow < time.Second || c.SignatureWindow > time.Hour {
		return errors.New("api.signature_window: must be between 1s and 1h")
	}
	if c.DefaultReadRPS < 0 || c.DefaultWriteRPS < 0 || c.DefaultBurst < 0 || c.ProjectRPS < 0 || c.ProjectBurst < 0 {
		return errors.New("api.default_read_rps, default_write_rps, default_burst, project_rps, project_burst: must not be negative")
	}
	return errors.Join(c.AuthFailures.Validate(), c.Sessions.Validate(), c.Live.Validate(), c.Concurrency.Validate())
}

// Quotas are a project's default quotas.
type Quotas struct {
	Apps    int `yaml:"apps"`
	Devices int `yaml:"devices"`
	Tasks   int `yaml:"tasks"`
	// StorageBytes bounds a project's records and uploads, in bytes.
	StorageBytes int64 `yaml:"storage-bytes"`
}
