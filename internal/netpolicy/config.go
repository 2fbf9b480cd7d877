// Package netpolicy is the outbound network policy: which addresses and
// ports the platform may connect to on a tenant's behalf (algorithm
// endpoints, cameras, brokers, webhooks, discovery). It is a leaf (it
// imports nothing of Tianshu's) so that every component that dials, and the
// root configuration, can use it.
//
// The policy is enforced where connections are made: a net.Dialer Control
// function checks the resolved address just before each connect, so host
// names that resolve to refused addresses, DNS rebinding and redirects to
// refused addresses are all caught. Addresses handed to child processes
// (ffmpeg) are resolved and checked before the process starts.
package netpolicy

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Config is the operator's outbound policy.
type Config struct {
	// Allow lists rules whose addresses may be reached even when a builtin
	// range refuses them (e.g. "127.0.0.1:9000" for a model server on this
	// host). With AllowOnly they are the only addresses reachable.
	Allow []string `yaml:"allow"`
	// Deny lists rules whose addresses are never reached; Deny wins over
	// Allow.
	Deny []string `yaml:"deny"`
	// AllowLoopback lets connections reach 127.0.0.0/8 and ::1 (tests and
	// single-host setups). The server's own listen addresses stay refused.
	AllowLoopback bool `yaml:"allow_loopback"`
	// AllowOnly refuses every address that no Allow rule matches.
	AllowOnly bool `yaml:"allow_only"`
}

// Default returns the defaults: no rules of the operator's, so private
// networks are reachable and the builtin ranges (loopback, link-local,
// metadata, unspecified, multicast) are not.
func Default() Config { return Config{} }

// RegisterFlags binds the fields to flags prefixed "outbound.", with the
// current values as defaults. The list flags take comma-separated rules and
// replace the list (as every source of a higher precedence does).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("outbound.allow", "comma-separated addresses the platform may connect to despite the builtin denials: IP, CIDR, IP:port, CIDR:port or CIDR:port-port", func(s string) error {
		c.Allow = splitList(s)
		return nil
	})
	fs.Func("outbound.deny", "comma-separated addresses the platform never connects to, in the forms of --outbound.allow; deny wins over allow", func(s string) error {
		c.Deny = splitList(s)
		return nil
	})
	fs.BoolVar(&c.AllowLoopback, "outbound.allow-loopback", c.AllowLoopback, "let algorithm endpoints, devices and webhooks reach loopback addresses (tests, single-host setups); the server's own listen addresses stay refused")
	fs.BoolVar(&c.AllowOnly, "outbound.allow-only", c.AllowOnly, "refuse every address that no --outbound.allow rule matches")
}

// Validate checks every rule; errors name the field as the YAML file
// spells it.
func (c Config) Validate() error {
	var errs []error
	for _, r := range c.Allow {
		if _, err := ParseRule(r); err != nil {
			errs = append(errs, fmt.Errorf("outbound.allow: %w", err))
		}
	}
	for _, r := range c.Deny {
		if _, err := ParseRule(r); err != nil {
			errs = append(errs, fmt.Errorf("outbound.deny: %w", err))
		}
	}
	if c.AllowOnly && len(c.Allow) == 0 {
		errs = append(errs, errors.New("outbound.allow_only: needs at least one outbound.allow rule"))
	}
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
