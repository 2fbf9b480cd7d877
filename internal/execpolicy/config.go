// Package execpolicy decides which programs Tianshu runs on its users'
// behalf (adapter drivers, process algorithm runtimes, a device's own
// ffmpeg) and how: a clean environment, a working directory of their own,
// resource limits and, when the server runs as root, an unprivileged user.
// It also holds the media roots that replay devices may read under.
//
// It is a leaf (it imports nothing of Tianshu's) so that the root
// configuration can nest its Config and both the device and the algorithm
// layers can use its Policy.
package execpolicy

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Config is the operator's exec policy (the "exec" part of the
// configuration tree).
type Config struct {
	// Allow lists the directories (or single files) whose programs users may
	// name: adapter commands, a device's ffmpeg, a process package's command
	// found on PATH. Empty (the default) allows none; the bundled programs
	// (ffmpeg found on PATH at start, a package's own command inside its
	// package) need no entry.
	Allow []string `yaml:"allow"`
	// User is who children run as when the server runs as root; empty runs
	// them as root (a warning at start).
	User string `yaml:"user"`
	// WorkDir is where each child gets its own working (or home and temp)
	// directory; default the system's temporary directory.
	WorkDir string `yaml:"work_dir"`
	// Limits bound every child.
	Limits Limits `yaml:"rlimit"`
}

// Limits are the resource limits set on every child; 0 leaves one unset.
type Limits struct {
	// CPUSeconds is RLIMIT_CPU. Unset by default: cameras and inference
	// servers run for months, and a CPU-time limit would kill them.
	CPUSeconds uint64 `yaml:"cpu"`
	// AddressSpace is RLIMIT_AS in bytes (not applied to GPU replicas, whose
	// drivers map far more address space than memory).
	AddressSpace uint64 `yaml:"as"`
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles uint64 `yaml:"nofile"`
	// Processes is RLIMIT_NPROC. Linux counts it per user, over every
	// process and thread of the children's user.
	Processes uint64 `yaml:"nproc"`
}

// MediaConfig says where replay devices may read (the "media" part of the
// configuration tree).
type MediaConfig struct {
	// Root lists the directories replay devices' addresses must resolve
	// under; the configuration defaults it to <data-dir>/media and the
	// demo's photos.
	Root []string `yaml:"root"`
}

// Default returns the defaults: nothing allowed, children as the server's
// user, 16 GiB of address space, 4096 files and 4096 processes.
func Default() Config {
	return Config{Limits: Limits{AddressSpace: 16 << 30, OpenFiles: 4096, Processes: 4096}}
}

// RegisterFlags binds the fields to flags prefixed "exec.", with the
// current values as defaults. --exec.allow may be repeated and takes
// comma-separated lists.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("exec.allow", "directory (or file) whose programs adapters, device ffmpeg options and process packages may run; repeatable, comma-separated (default: none)", func(s string) error {
		c.Allow = append(c.Allow, splitList(s)...)
		return nil
	})
	fs.StringVar(&c.User, "exec.user", c.User, "user that adapters, ffmpeg and algorithm processes run as when the server runs as root")
	fs.StringVar(&c.WorkDir, "exec.work-dir", c.WorkDir, "directory for each child's own working, home and temp directory (default: the system temp dir)")
	fs.Uint64Var(&c.Limits.CPUSeconds, "exec.rlimit-cpu", c.Limits.CPUSeconds, "CPU seconds a child may use (RLIMIT_CPU; 0: unlimited)")
	fs.Uint64Var(&c.Limits.AddressSpace, "exec.rlimit-as", c.Limits.AddressSpace, "address space of a child in bytes (RLIMIT_AS; 0: unlimited; GPU replicas are exempt)")
	fs.Uint64Var(&c.Limits.OpenFiles, "exec.rlimit-nofile", c.Limits.OpenFiles, "open files of a child (RLIMIT_NOFILE; 0: inherited)")
	fs.Uint64Var(&c.Limits.Processes, "exec.rlimit-nproc", c.Limits.Processes, "processes and threads of the children's user (RLIMIT_NPROC; 0: inherited)")
}

// Validate checks the configuration; errors name the field as the YAML
// file spells it.
func (c Config) Validate() error {
	var errs []error
	for _, d := range c.Allow {
		if !filepath.IsAbs(d) {
			errs = append(errs, fmt.Errorf("exec.allow: %q is not an absolute path", d))
		}
		if filepath.Clean(d) == "/" {
			errs = append(errs, errors.New("exec.allow: / would allow every program"))
		}
	}
	if c.WorkDir != "" && !filepath.IsAbs(c.WorkDir) {
		errs = append(errs, fmt.Errorf("exec.work_dir: %q is not an absolute path", c.WorkDir))
	}
	if c.Limits.AddressSpace != 0 && c.Limits.AddressSpace < 64<<20 {
		errs = append(errs, errors.New("exec.rlimit.as: must be 0 or at least 64 MiB ("+strconv.Itoa(64<<20)+")"))
	}
	if c.Limits.OpenFiles != 0 && c.Limits.OpenFiles < 64 {
		errs = append(errs, errors.New("exec.rlimit.nofile: must be 0 or at least 64"))
	}
	if c.Limits.Processes != 0 && c.Limits.Processes < 64 {
		errs = append(errs, errors.New("exec.rlimit.nproc: must be 0 or at least 64"))
	}
	return errors.Join(errs...)
}

// RegisterFlags binds the media roots to --media.root, repeatable and
// comma-separated.
func (c *MediaConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("media.root", "directory replay devices may read under; repeatable, comma-separated (default: <data-dir>/media and the demo's photos)", func(s string) error {
		c.Root = append(c.Root, splitList(s)...)
		return nil
	})
}

// Validate checks the media roots.
func (c MediaConfig) Validate() error {
	var errs []error
	for _, d := range c.Root {
		if !filepath.IsAbs(d) {
			errs = append(errs, fmt.Errorf("media.root: %q is not an absolute path", d))
		} else if filepath.Clean(d) == "/" {
			errs = append(errs, errors.New("media.root: / would expose every file of the server"))
		}
	}
	return errors.Join(errs...)
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
