package telemetry

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"time"
)

// InfluxConfig configures the InfluxDB writer (internal/telemetry/influx):
// off until URL is set.
type InfluxConfig struct {
	// URL is the InfluxDB 1.x HTTP API (http://influxdb:8086), or a
	// Telegraf influxdb_listener; lines go to URL/write.
	URL string `yaml:"url"`
	// Database is the database written to (db= of /write).
	Database string `yaml:"database"`
	// Interval is how often the metrics are sampled and written.
	Interval time.Duration `yaml:"interval"`
	// MaxBuffer bounds the lines waiting for InfluxDB; beyond it the
	// oldest are dropped (counted).
	MaxBuffer int `yaml:"max_buffer"`
}

// DefaultInfluxConfig is the writer off, with the interval and buffer it
// uses once a URL is set.
func DefaultInfluxConfig() InfluxConfig {
	return InfluxConfig{Database: "tianshu", Interval: 10 * time.Second, MaxBuffer: 100_000}
}

// RegisterFlags binds the config to --influx.* flags.
func (c *InfluxConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "influx.url", c.URL, "InfluxDB 1.x (or Telegraf influxdb_listener) URL to write the platform's metrics to in line protocol, e.g. http://influxdb:8086 (default: off)")
	fs.StringVar(&c.Database, "influx.database", c.Database, "InfluxDB database the metrics are written to")
	fs.DurationVar(&c.Interval, "influx.interval", c.Interval, "how often the metrics are sampled and written to InfluxDB")
	fs.IntVar(&c.MaxBuffer, "influx.max-buffer", c.MaxBuffer, "lines held while InfluxDB cannot be reached; beyond it the oldest are dropped")
}

// Validate checks the config.
func (c InfluxConfig) Validate() error {
	if c.URL == "" {
		return nil
	}
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(c.URL) > 2048 {
		errs = append(errs, fmt.Errorf("influx.url: %q is not an http:// or https:// URL with a host", c.URL))
	}
	if c.Database == "" || len(c.Database) > 128 {
		errs = append(errs, errors.New("influx.database: required, at most 128 bytes"))
	}
	if c.Interval < time.Second || c.Interval > time.Hour {
		errs = append(errs, fmt.Errorf("influx.interval: %v is not between 1s and 1h", c.Interval))
	}
	if c.MaxBuffer < 1000 || c.MaxBuffer > 10_000_000 {
		errs = append(errs, fmt.Errorf("influx.max-buffer: %d is not between 1000 and 10000000", c.MaxBuffer))
	}
	return errors.Join(errs...)
}
