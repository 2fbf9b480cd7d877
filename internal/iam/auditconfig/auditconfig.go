// Package auditconfig is the audit log's configuration. It is a leaf (it
// imports nothing of Tianshu's) so that the root configuration can nest it
// without depending on package iam.
package auditconfig

import (
	"errors"
	"flag"
	"time"
)

// Config configures the audit log's retention.
type Config struct {
	// Retention is how long audit events are kept; 0 keeps them forever.
	// Older events are removed, leaving a signed checkpoint from which the
	// rest of the chain still verifies.
	Retention time.Duration `yaml:"retention"`
	// RetentionInterval is how often old events are looked for.
	RetentionInterval time.Duration `yaml:"retention_interval"`
}

// Default returns the defaults: keep every event, look every 10 minutes.
func Default() Config {
	return Config{RetentionInterval: 10 * time.Minute}
}

// RegisterFlags binds the fields to flags prefixed "audit.", with the
// current values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Retention, "audit.retention", c.Retention, "how long audit events are kept, e.g. 2160h (0: forever); removal leaves a signed checkpoint and is itself audited")
	fs.DurationVar(&c.RetentionInterval, "audit.retention-interval", c.RetentionInterval, "how often audit events older than the retention are removed")
}

// Validate checks the configuration; errors name the field as the YAML
// file spells it.
func (c Config) Validate() error {
	var errs []error
	// A retention of minutes is almost surely a mistake that would erase
	// the evidence of what just happened.
	if c.Retention != 0 && c.Retention < time.Hour {
		errs = append(errs, errors.New("audit.retention: must be 0 (forever) or at least 1h"))
	}
	if c.RetentionInterval < time.Second || c.RetentionInterval > 24*time.Hour {
		errs = append(errs, errors.New("audit.retention_interval: must be between 1s and 24h"))
	}
	return errors.Join(errs...)
}
