// Package imageconfig is the image builder's configuration: the base
// images and the registries the operator allows. It is a leaf (it imports
// nothing of Tianshu's) so that the root configuration can nest it
// without depending on package imagebuild and its registry client.
package imageconfig

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
)

// Registry is a registry the operator allows images to be pulled from
// and pushed to. Its credentials are kept sealed in the store
// (SetImageRegistryCredential), never in the configuration.
type Registry struct {
	Host string `yaml:"host" json:"host"` // "registry.example.com" or "10.0.0.5:5000"
	// PlainHTTP allows http:// (a registry on a trusted network).
	PlainHTTP bool `yaml:"plain_http" json:"plainHttp,omitempty"`
}

// Config is the operator's image-building setup; building is off until
// it names a base image and a registry.
type Config struct {
	// Bases are the base images by name ("debian-slim", "python",
	// "node", "onnxruntime"), as references in an allowed registry.
	Bases map[string]string `yaml:"bases"`
	// Registries are the only registries reached; every other is refused.
	Registries []Registry `yaml:"registries"`
	// Platform is the platform picked from a multi-platform base
	// (default linux/amd64).
	Platform string `yaml:"platform"`
	// MaxLayerBytes bounds the package layer (0: 2 GiB, the process
	// runtime's bound for an unpacked package).
	MaxLayerBytes int64 `yaml:"max_layer_bytes"`
	// Builtin serves a registry of the platform's own, for sites without
	// one.
	Builtin Builtin `yaml:"builtin_registry"`
}

// Builtin is the built-in registry: images kept in the blob store,
// served on a listener of its own (the distribution API lives at /v2/).
type Builtin struct {
	// Addr is where it listens (host:port); empty: no built-in registry.
	Addr string `yaml:"addr"`
	// Host is the host[:port] the cluster's nodes pull from, which image
	// references name (default Addr).
	Host string `yaml:"host"`
}

// BuiltinHost is the built-in registry's host in image references; empty
// when there is none.
func (c Config) BuiltinHost() string {
	if c.Builtin.Addr == "" {
		return ""
	}
	if c.Builtin.Host != "" {
		return c.Builtin.Host
	}
	return c.Builtin.Addr
}

// Enabled reports whether building is configured: a base and a registry.
func (c Config) Enabled() bool {
	return len(c.Bases) > 0 && (len(c.Registries) > 0 || c.Builtin.Addr != "")
}

// RegisterFlags binds the scalar fields to flags prefixed "images."; bases
// and registries are lists, set in the YAML file.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Platform, "images.platform", c.Platform, "platform picked from a multi-platform base image, os/arch[/variant] (default linux/amd64)")
	fs.Int64Var(&c.MaxLayerBytes, "images.max-layer-bytes", c.MaxLayerBytes, "largest install package built into an image layer, in bytes (0: 2 GiB)")
	fs.StringVar(&c.Builtin.Addr, "images.builtin-registry.addr", c.Builtin.Addr, "serve the built-in image registry on this host:port (empty: none)")
	fs.StringVar(&c.Builtin.Host, "images.builtin-registry.host", c.Builtin.Host, "host[:port] the cluster's nodes pull built-in registry images from (default its addr)")
}

var (
	baseName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	hostPort = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)
	platform = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)
)

// listenAddr reports whether s is host:port or :port.
func listenAddr(s string) bool {
	h, p, err := net.SplitHostPort(s)
	return err == nil && p != "" && (h == "" || hostPort.MatchString(h) || hostPort.MatchString("["+h+"]"))
}

// Validate checks the configuration; errors name the field as the YAML
// file spells it.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("images.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	hosts := map[string]bool{}
	for i, r := range c.Registries {
		switch {
		case !hostPort.MatchString(r.Host):
			bad(fmt.Sprintf("registries[%d].host", i), "%q is not host[:port]", r.Host)
		case hosts[r.Host]:
			bad(fmt.Sprintf("registries[%d].host", i), "%q is listed twice", r.Host)
		}
		hosts[r.Host] = true
	}
	if h := c.BuiltinHost(); h != "" {
		switch {
		case !listenAddr(c.Builtin.Addr):
			bad("builtin_registry.addr", "%q is not host:port or :port", c.Builtin.Addr)
		case strings.HasPrefix(h, ":"):
			bad("builtin_registry.host", "required when builtin_registry.addr names no host: the host[:port] the cluster's nodes pull from")
		case !hostPort.MatchString(h):
			bad("builtin_registry.host", "%q is not host[:port]", h)
		case hosts[h]:
			bad("builtin_registry.host", "%q is also in images.registries", h)
		}
		hosts[h] = true
	}
	names := make([]string, 0, len(c.Bases))
	for n := range c.Bases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ref := c.Bases[n]
		if !baseName.MatchString(n) {
			bad("bases", "%q is not a base name (lower-case letters, digits, '.', '_', '-')", n)
			continue
		}
		host, _, ok := strings.Cut(ref, "/")
		if !ok || len(ref) > 512 {
			bad("bases."+n, "%q is not a reference with its registry (registry.example.com/base/python:3.12)", ref)
		} else if !hosts[host] {
			bad("bases."+n, "registry %s is not in images.registries (nor the built-in registry)", host)
		}
	}
	if c.Platform != "" && !platform.MatchString(c.Platform) {
		bad("platform", "%q is not os/arch[/variant]", c.Platform)
	}
	if c.MaxLayerBytes < 0 {
		bad("max_layer_bytes", "must not be negative")
	}
	return errors.Join(errs...)
}
