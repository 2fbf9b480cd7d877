package telemetry

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
)

// TraceConfig configures OpenTelemetry tracing (internal/tracing/tracesdk).
// Tracing is off unless an OTLP endpoint or an in-memory ring is set: then
// no span is started anywhere and the trace API costs nothing.
type TraceConfig struct {
	// Endpoint is the OTLP receiver's URL (http://collector:4317 for gRPC,
	// http://collector:4318 for HTTP, whose path defaults to /v1/traces);
	// an http scheme sends in plain text, https over TLS. Empty: no export.
	Endpoint string `yaml:"endpoint"`
	// Protocol is grpc or http (OTLP/HTTP with protobuf bodies).
	Protocol string `yaml:"protocol"`
	// SampleRatio is the share of traces recorded (kept in memory and
	// exported), decided per trace id (so every process keeps the same
	// traces). A trace in which something fails is kept whatever the
	// ratio: the failing spans and the message's.
	SampleRatio float64 `yaml:"sample_ratio"`
	// RecentTraces is how many recent traces this process keeps in memory
	// for DescribeTrace (0: none), and RecentBytes caps their size.
	RecentTraces int   `yaml:"recent_traces"`
	RecentBytes  int64 `yaml:"recent_bytes"`
}

// DefaultTraceConfig is tracing off, with the ratio and ring size used
// once it is turned on. The ring alone (--otel.recent-traces 256 at ratio
// 0.01) is not on by default: on a flow of nothing but engine work it
// cost 4–12 % of CPU per message (docs/benchmarks.md, issue #22), more
// than the 2 % a default may cost.
func DefaultTraceConfig() TraceConfig {
	return TraceConfig{Protocol: "grpc", SampleRatio: 0.1, RecentBytes: 16 << 20}
}

// Enabled says whether any span is recorded.
func (c TraceConfig) Enabled() bool { return c.Endpoint != "" || c.RecentTraces > 0 }

// RegisterFlags binds the config to --otel.* flags.
func (c *TraceConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Endpoint, "otel.endpoint", c.Endpoint, "OTLP trace receiver URL, e.g. http://collector:4317 (grpc) or http://collector:4318 (http); empty: traces are not exported")
	fs.StringVar(&c.Protocol, "otel.protocol", c.Protocol, "OTLP protocol: grpc or http")
	fs.Float64Var(&c.SampleRatio, "otel.sample-ratio", c.SampleRatio, "share of traces recorded and exported (0..1), by trace id; a trace in which something fails is always kept")
	fs.IntVar(&c.RecentTraces, "otel.recent-traces", c.RecentTraces, "recent traces kept in memory for DescribeTrace and the console (0: none)")
	fs.Int64Var(&c.RecentBytes, "otel.recent-bytes", c.RecentBytes, "memory cap (bytes) of the recent traces")
}

// Limits of TraceConfig.
const (
	MaxRecentTraces = 1_000_000
	MaxRecentBytes  = 4 << 30
)

// Validate checks the config.
func (c TraceConfig) Validate() error {
	var errs []error
	if c.Protocol != "grpc" && c.Protocol != "http" {
		errs = append(errs, fmt.Errorf("otel.protocol: %q is not grpc or http", c.Protocol))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case len(c.Endpoint) > 2048:
			errs = append(errs, errors.New("otel.endpoint: longer than 2048 bytes"))
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("otel.endpoint: %q is not an http:// or https:// URL with a host", c.Endpoint))
		}
	}
	if !(c.SampleRatio >= 0 && c.SampleRatio <= 1) {
		errs = append(errs, fmt.Errorf("otel.sample-ratio: %v is not between 0 and 1", c.SampleRatio))
	}
	if c.RecentTraces < 0 || c.RecentTraces > MaxRecentTraces {
		errs = append(errs, fmt.Errorf("otel.recent-traces: %d is not between 0 and %d", c.RecentTraces, MaxRecentTraces))
	}
	if c.RecentBytes < 1<<20 || c.RecentBytes > MaxRecentBytes {
		errs = append(errs, fmt.Errorf("otel.recent-bytes: %d is not between 1 MiB and 4 GiB", c.RecentBytes))
	}
	return errors.Join(errs...)
}
