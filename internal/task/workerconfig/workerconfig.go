// Package workerconfig is the configuration of a worker node, the one
// definition that the root configuration nests and package task runs with
// (as task.WorkerConfig). It is a leaf (it imports nothing of Tianshu's) so
// that the root configuration does not depend on the task engine.
package workerconfig

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// Config configures a worker node.
type Config struct {
	// Name identifies the node in DescribeTasks; empty means the host name.
	Name string `yaml:"name"`
	// Labels are matched by tasks' placement constraints.
	Labels map[string]string `yaml:"labels"`
	// Capacity is how many tasks the node runs at once.
	Capacity int `yaml:"capacity"`
	// InFlight is how many messages of one task run concurrently.
	InFlight int `yaml:"in_flight"`
	// LeaseTTL is how long the node counts as alive without a heartbeat:
	// after it, the scheduler moves the node's tasks elsewhere, and the
	// worker stops them itself.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// MaxPackageBytes bounds an algorithm package's unpacked size on this
	// node: a small archive that unpacks beyond it is refused.
	MaxPackageBytes int64 `yaml:"max_package_bytes"`
	// ServingDir holds the serving runtimes that run model-file versions
	// (a checkout's runtimes/, with npm ci run in each); relative paths are
	// from the working directory.
	ServingDir string `yaml:"serving_dir"`
	// StallAfter is how long a device a task reads may send no frame, or
	// only the same frame, before it counts as stalled (device.stalled
	// and task.stalled events, tianshu_device_stalled).
	StallAfter time.Duration `yaml:"stall_after"`

	// Interval is how often the worker heartbeats and reconciles. The
	// process sets it (from LeaseTTL); it is not read from the file.
	Interval time.Duration `yaml:"-"`
	// GPUs are the node's GPUs, reported with its registration; the process
	// detects them.
	GPUs any `yaml:"-"`
}

// Default returns the defaults: 16 tasks of 4 messages in flight each, a
// 6 s lease, a 1 s heartbeat, packages of up to 2 GiB unpacked and devices
// stalled after 5 s without a new frame.
func Default() Config {
	return Config{Capacity: 16, InFlight: 4, LeaseTTL: 6 * time.Second, Interval: time.Second, MaxPackageBytes: 2 << 30, ServingDir: "runtimes", StallAfter: 5 * time.Second}
}

// RegisterFlags binds the file's fields to flags prefixed "worker.", with
// the current values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Name, "worker.name", c.Name, "this worker node's name (default: host name)")
	fs.Func("worker.labels", "this worker's labels, k=v,k=v (matched by task constraints)", func(s string) error {
		c.Labels = map[string]string{}
		for _, kv := range strings.Split(s, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("label %q is not k=v", kv)
			}
			c.Labels[k] = v
		}
		return nil
	})
	fs.IntVar(&c.Capacity, "worker.capacity", c.Capacity, "tasks this worker runs at once")
	fs.IntVar(&c.InFlight, "worker.in-flight", c.InFlight, "messages of one task processed concurrently")
	fs.DurationVar(&c.LeaseTTL, "worker.lease-ttl", c.LeaseTTL, "how long a silent worker keeps its tasks before they move")
	fs.StringVar(&c.ServingDir, "worker.serving-dir", c.ServingDir, "directory of the serving runtimes that run model-file algorithm versions (onnx-cpu: its onnx-node/)")
	fs.DurationVar(&c.StallAfter, "worker.stall-after", c.StallAfter, "how long a device a task reads may send no new frame (none, or the same picture again) before it is reported stalled")
	fs.Int64Var(&c.MaxPackageBytes, "worker.max-package-bytes", c.MaxPackageBytes, "largest unpacked size of an algorithm package on this node, in bytes")
}

// Validate checks the file's fields; errors name them as the YAML file
// spells them.
func (c Config) Validate() error {
	var errs []error
	if c.Capacity < 1 || c.Capacity > 10000 {
		errs = append(errs, errors.New("worker.capacity: must be between 1 and 10000"))
	}
	if c.InFlight < 1 || c.InFlight > 1024 {
		errs = append(errs, errors.New("worker.in_flight: must be between 1 and 1024"))
	}
	if c.LeaseTTL < 2*time.Second || c.LeaseTTL > 10*time.Minute {
		errs = append(errs, errors.New("worker.lease_ttl: must be between 2s and 10m"))
	}
	if c.StallAfter < time.Second || c.StallAfter > time.Hour {
		errs = append(errs, errors.New("worker.stall_after: must be between 1s and 1h"))
	}
	if c.MaxPackageBytes < 1<<20 || c.MaxPackageBytes > 1<<40 {
		errs = append(errs, errors.New("worker.max_package_bytes: must be between 1 MiB and 1 TiB"))
	}
	return errors.Join(errs...)
}
