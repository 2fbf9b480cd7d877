// Package config is Tianshu's one configuration tree. Values come from, in
// increasing precedence:
//
//  1. defaults (DefaultConfig),
//  2. a YAML file (--config or TIANSHU_CONFIG),
//  3. environment variables: TIANSHU_ + the flag name upper-cased with
//     dashes and dots as underscores (--http-addr → TIANSHU_HTTP_ADDR,
//     --api.max-body-bytes → TIANSHU_API_MAX_BODY_BYTES),
//  4. command-line flags.
//
// Embedded and scaled-out installations share this schema; they differ only
// in the backend URLs (db, bus, blob, cache, vectors).
//
// Each component owns its part of the tree (a Config with RegisterFlags and
// Validate) and the root nests them. Config imports only backends (to ask
// their registries which URL schemes exist) and components' leaf config
// packages (apiconfig, workerconfig, auditconfig, netpolicy, execpolicy,
// imageconfig, telemetry), never a domain package.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tianshu-ai/tianshu/internal/api/apiconfig"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/edge/edgeconfig"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/gb28181/gbconfig"
	"github.com/tianshu-ai/tianshu/internal/iam/auditconfig"
	"github.com/tianshu-ai/tianshu/internal/imagebuild/imageconfig"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/task/workerconfig"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// Config is the root of the configuration tree.
type Config struct {
	// DataDir holds everything the embedded backends keep.
	DataDir string `yaml:"data_dir"`
	// HTTPAddr is where the HTTP server listens.
	HTTPAddr string `yaml:"http_addr"`
	// GRPCAddr, when set, is where a listener of its own serves gRPC (push
	// subscriptions) with gRPC's native HTTP/2 transport. gRPC is always
	// served on HTTPAddr too (h2c); its own listener streams faster.
	GRPCAddr string `yaml:"grpc_addr"`
	// PublicURL is how clients reach the server (signed object URLs);
	// derived from HTTPAddr when empty.
	PublicURL string `yaml:"public_url"`
	// Targets are the modules this process runs ("all" for every one).
	Targets []string `yaml:"targets"`
	// DB, Bus, Blob and Cache are backend URLs; empty means the embedded
	// default under DataDir.
	DB    string `yaml:"db"`
	Bus   string `yaml:"bus"`
	Blob  string `yaml:"blob"`
	Cache string `yaml:"cache"`
	// Vectors is the vector index of record embeddings (SearchFaces):
	// hnsw:///dir (embedded, the default under DataDir), ivf:///dir (the
	// embedded engine for fast inserts, docs/search.md) or postgres://…
	// with pgvector.
	Vectors string `yaml:"vectors"`
	// ShutdownGrace bounds the first part of a graceful stop: the HTTP
	// server answers what it accepted and requests in flight finish; what
	// is still open then is closed.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// ShutdownTimeout bounds the second part: the modules (tasks, push,
	// backends) stopping, after the HTTP server.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Demo sets up (once) and runs the face structuring quickstart.
	Demo bool `yaml:"demo"`

	Log    LogConfig           `yaml:"log"`
	Store  StoreConfig         `yaml:"store"`
	API    apiconfig.Config    `yaml:"api"`
	Worker workerconfig.Config `yaml:"worker"`
	Audit  auditconfig.Config  `yaml:"audit"`
	// Outbound is the network policy for connections made on a tenant's
	// behalf (algorithm endpoints, devices, webhooks, discovery).
	Outbound netpolicy.Config `yaml:"outbound"`
	// Exec is which programs users may have run and how children run;
	// Media where replay devices may read.
	Exec  execpolicy.Config      `yaml:"exec"`
	Media execpolicy.MediaConfig `yaml:"media"`
	// Images are the base images and registries for building container
	// algorithm images from install packages (off until both are set).
	Images imageconfig.Config `yaml:"images"`
	// Kube is the Kubernetes cluster that runs container algorithm
	// versions; none when unset.
	Kube KubeConfig `yaml:"kube"`
	// GB28181 is the SIP server GB/T 28181 cameras register to; off
	// until its address is set.
	GB28181 gbconfig.Config `yaml:"gb28181"`
	// Otel is tracing: OTLP export and recent traces in memory; off
	// until an endpoint or a ring size is set.
	Otel telemetry.TraceConfig `yaml:"otel"`
	// Influx writes the metrics to InfluxDB in line protocol; off until
	// its URL is set.
	Influx telemetry.InfluxConfig `yaml:"influx"`
	// Edge is the cloud-edge link: a cloud's leaf listener for edge
	// nodes, or the cloud an edge node joins.
	Edge edgeconfig.Config `yaml:"edge"`
}

// KubeConfig says which Kubernetes cluster runs `container` algorithm
// versions (internal/kube). With neither Kubeconfig nor InCluster nothing
// of the runtime starts, and a container version is refused.
type KubeConfig struct {
	// Kubeconfig is a kubeconfig file; its current context is used.
	Kubeconfig string `yaml:"kubeconfig"`
	// InCluster uses the pod's service account (the platform runs in
	// the cluster). Explicit, never guessed from KUBERNETES_SERVICE_HOST:
	// a platform pod that merely runs on Kubernetes does not deploy there.
	InCluster bool `yaml:"in_cluster"`
	// Namespace holds the versions' objects; default: the kubeconfig
	// context's, else the service account's, else "default".
	Namespace string `yaml:"namespace"`
}

// Enabled says whether a cluster is configured.
func (k KubeConfig) Enabled() bool { return k.Kubeconfig != "" || k.InCluster }

// LogConfig configures logging.
type LogConfig struct {
	Level string `yaml:"level"` // debug, info, warn, error
	// Format is json, text, or auto: text on a terminal, JSON otherwise.
	Format string `yaml:"format"`
	// RecentLines and RecentBytes bound the last lines kept in memory per
	// component for DescribeLogs (RecentLines 0: none).
	RecentLines int   `yaml:"recent_lines"`
	RecentBytes int64 `yaml:"recent_bytes"`
}

// Limits of LogConfig's ring.
const (
	MaxLogRecentLines = 100_000
	MaxLogRecentBytes = 256 << 20
)

// StoreConfig configures what readiness asks of the machine's disk.
type StoreConfig struct {
	// MinFreeBytes is the free space below which the process is not
	// ready: on the data dir's file system and, for SQLite, the
	// database's. 0 turns the check off.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
}

// DefaultMinFreeBytes is the default free-space floor: room for the store
// to finish what it has started and for an operator to act.
const DefaultMinFreeBytes = 512 << 20

// Default returns the defaults: an embedded platform under ./tianshu-data
// listening on 127.0.0.1:8080.
func Default() Config {
	return Config{
		DataDir:         "./tianshu-data",
		HTTPAddr:        "127.0.0.1:8080",
		Targets:         []string{"all"},
		ShutdownGrace:   20 * time.Second,
		ShutdownTimeout: 15 * time.Second,
		Log:             LogConfig{Level: "info", Format: "auto", RecentLines: 1000, RecentBytes: 1 << 20},
		Store:           StoreConfig{MinFreeBytes: DefaultMinFreeBytes},
		API:             apiconfig.Default(),
		Worker:          workerconfig.Default(),
		Audit:           auditconfig.Default(),
		Outbound:        netpolicy.Default(),
		Exec:            execpolicy.Default(),
		GB28181:         gbconfig.Default(),
		Otel:            telemetry.DefaultTraceConfig(),
		Influx:          telemetry.DefaultInfluxConfig(),
		Edge:            edgeconfig.Default(),
	}
}

// RegisterFlags binds every field to a flag on fs, with the current values
// as defaults; components register their own, prefixed with their name.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the embedded backends' data")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "address the HTTP server listens on (host:port; port 0 picks one)")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", c.GRPCAddr, "address of a listener of its own for gRPC push streams (host:port; port 0 picks one; default: gRPC on --http-addr only)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base URL clients use to reach this server (default http://<http-addr>)")
	fs.Func("target", "comma-separated modules to run (default all)", func(s string) error {
		c.Targets = splitList(s)
		return nil
	})
	fs.StringVar(&c.DB, "db", c.DB, "metadata store URL: sqlite:///path, mysql://user:pass@host:3306/db, postgres://... (default sqlite under data-dir)")
	fs.StringVar(&c.Bus, "bus", c.Bus, "bus URL: nats://embedded, nats://host:4222 or kafka://host:9092[,host2:9092] (default nats://embedded)")
	fs.StringVar(&c.Blob, "blob", c.Blob, "object store URL: file:///dir or s3://bucket?endpoint=... (default file under data-dir)")
	fs.StringVar(&c.Cache, "cache", c.Cache, "cache URL for rate limits and sessions: memory:// or redis://host:6379 (default memory://)")
	fs.StringVar(&c.Vectors, "vectors", c.Vectors, "vector index URL for face search: hnsw:///dir, ivf:///dir (embedded, faster inserts) or postgres://...?table=... with pgvector (default hnsw under data-dir)")
	fs.BoolVar(&c.Demo, "demo", c.Demo, "set up (once) and run the face structuring demo: a replay camera, a flow, a task, an app and an SSE subscription")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "on SIGTERM, how long requests already accepted may take to be answered before their connections are closed")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "after the grace period, how long the modules (tasks, push, backends) may take to stop")
	fs.StringVar(&c.Log.Level, "log.level", c.Log.Level, "log level: debug, info, warn, error")
	fs.StringVar(&c.Log.Format, "log.format", c.Log.Format, "log format: json, text, or auto (text when stderr is a terminal, JSON otherwise)")
	fs.IntVar(&c.Log.RecentLines, "log.recent-lines", c.Log.RecentLines, "last log lines kept in memory per component for DescribeLogs and the console (0: none)")
	fs.Int64Var(&c.Log.RecentBytes, "log.recent-bytes", c.Log.RecentBytes, "memory cap (bytes) of the last log lines kept per component")
	fs.Int64Var(&c.Store.MinFreeBytes, "store.min-free-bytes", c.Store.MinFreeBytes, "free space (bytes) below which /readyz fails the disk check, on the data dir and the SQLite database's file system (0: no check)")
	fs.StringVar(&c.Kube.Kubeconfig, "kube.kubeconfig", c.Kube.Kubeconfig, "kubeconfig file of the Kubernetes cluster that runs container algorithm versions (its current context; default: no cluster)")
	fs.BoolVar(&c.Kube.InCluster, "kube.in-cluster", c.Kube.InCluster, "run container algorithm versions in the cluster this pod runs in, with its service account")
	fs.StringVar(&c.Kube.Namespace, "kube.namespace", c.Kube.Namespace, "namespace of the container versions' objects (default: the kubeconfig context's, the service account's, or default)")
	c.API.RegisterFlags(fs)
	c.Worker.RegisterFlags(fs)
	c.Audit.RegisterFlags(fs)
	c.Outbound.RegisterFlags(fs)
	c.Exec.RegisterFlags(fs)
	c.Media.RegisterFlags(fs)
	c.Images.RegisterFlags(fs)
	c.GB28181.RegisterFlags(fs)
	c.Otel.RegisterFlags(fs)
	c.Influx.RegisterFlags(fs)
	c.Edge.RegisterFlags(fs)
}

// Load builds the configuration from args (flags, without the subcommand)
// and the environment, in the precedence the package documents.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	c := Default()
	file := getenv("TIANSHU_CONFIG")
	if f := preScan(args, "config"); f != "" {
		file = f
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config: %s: %w", file, err)
		}
	}
	fs.String("config", file, "YAML configuration file (env TIANSHU_CONFIG)")
	c.RegisterFlags(fs)
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("config: %s=%q: %w", EnvName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	c.applyDefaults()
	return c, c.Validate()
}

// EnvName returns the environment variable for a flag name.
func EnvName(flagName string) string {
	return "TIANSHU_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(flagName))
}

func preScan(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == "" { // "--" ends flags
			break
		}
	}
	return ""
}

func (c *Config) applyDefaults() {
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	if c.DB == "" {
		c.DB = "sqlite://" + filepath.Join(c.DataDir, "tianshu.db")
	}
	if c.Bus == "" {
		c.Bus = "nats://embedded"
	}
	if c.Blob == "" {
		c.Blob = "file://" + filepath.Join(c.DataDir, "objects")
	}
	if c.Cache == "" {
		c.Cache = "memory://"
	}
	if c.Vectors == "" {
		c.Vectors = "hnsw://" + filepath.Join(c.DataDir, "vectors")
	}
	if len(c.Media.Root) == 0 {
		c.Media.Root = DefaultMediaRoots(c.DataDir)
	}
}

// DefaultMediaRoots are the media roots when none is configured: the data
// dir's media folder and the demo's bundled photos.
func DefaultMediaRoots(dataDir string) []string {
	return []string{filepath.Join(dataDir, "media"), filepath.Join(dataDir, "demo")}
}

// Validate checks every field, naming the bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http_addr", "%q is not host:port", c.HTTPAddr)
	}
	if c.GRPCAddr != "" {
		if _, _, err := net.SplitHostPort(c.GRPCAddr); err != nil {
			bad("grpc_addr", "%q is not host:port", c.GRPCAddr)
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("public_url", "%q is not an http(s) URL", c.PublicURL)
		}
	}
	// The backends' registries say which schemes this binary has: the
	// blank imports of internal/app register them.
	for _, v := range []struct {
		field, url string
		schemes    []string
	}{
		{"db", c.DB, store.Schemes()},
		{"bus", c.Bus, bus.Schemes()},
		{"blob", c.Blob, blob.Schemes()},
		{"cache", c.Cache, ratelimit.Schemes()},
		{"vectors", c.Vectors, vectors.Schemes()},
	} {
		u, err := url.Parse(v.url)
		if err != nil {
			bad(v.field, "%v", err)
			continue
		}
		if !slices.Contains(v.schemes, u.Scheme) {
			have := strings.Join(v.schemes, ", ")
			if have == "" {
				have = "none (no backend is linked into this binary)"
			}
			bad(v.field, "scheme %q is not one of %s", u.Scheme, have)
		}
	}
	if err := c.GB28181.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	if err := c.Edge.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	if len(c.Targets) == 0 {
		bad("targets", "at least one target is required")
	}
	if c.ShutdownGrace <= 0 || c.ShutdownGrace > 10*time.Minute {
		bad("shutdown_grace", "must be between 0 and 10m")
	}
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > 10*time.Minute {
		bad("shutdown_timeout", "must be between 0 and 10m")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" && c.Log.Format != "auto" {
		bad("log.format", "%q is not json, text or auto", c.Log.Format)
	}
	if c.Log.RecentLines < 0 || c.Log.RecentLines > MaxLogRecentLines {
		bad("log.recent_lines", "%d is not between 0 and %d", c.Log.RecentLines, MaxLogRecentLines)
	}
	if c.Log.RecentBytes < 64<<10 || c.Log.RecentBytes > MaxLogRecentBytes {
		bad("log.recent_bytes", "%d is not between 64 KiB and 256 MiB", c.Log.RecentBytes)
	}
	if c.Store.MinFreeBytes < 0 {
		bad("store.min_free_bytes", "%d must not be negative", c.Store.MinFreeBytes)
	}
	if c.Kube.Kubeconfig != "" && c.Kube.InCluster {
		bad("kube.in_cluster", "cannot be set together with kube.kubeconfig")
	}
	if ns := c.Kube.Namespace; ns != "" && !isDNSLabel(ns) {
		bad("kube.namespace", "%q is not a DNS label (lower-case letters, digits and '-', at most 63)", ns)
	}
	for _, part := range []interface{ Validate() error }{c.API, c.Worker, c.Audit, c.Outbound, c.Exec, c.Media, c.Images, c.Otel, c.Influx} {
		err := part.Validate()
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				errs = append(errs, fmt.Errorf("config: %w", e))
			}
		} else if err != nil {
			errs = append(errs, fmt.Errorf("config: %w", err))
		}
	}
	return errors.Join(errs...)
}

// PublicBase returns PublicURL, or one derived from HTTPAddr.
func (c *Config) PublicBase(listenAddr string) string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(listenAddr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// isDNSLabel reports whether s is an RFC 1123 label, as Kubernetes
// namespaces are.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}
