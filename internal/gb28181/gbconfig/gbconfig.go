// Package gbconfig is the configuration of the GB/T 28181 SIP server
// (internal/gb28181), a leaf the root config nests.
package gbconfig

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"time"
)

// Config configures the GB/T 28181 SIP server. It is off while Addr is
// empty.
type Config struct {
	// Addr is where the SIP server listens, UDP and TCP on one port
	// (host:port, usually :5060); empty: off.
	Addr string `yaml:"addr"`
	// ServerID is the platform's 20-digit SIP id that devices are
	// configured with (the "SIP server ID").
	ServerID string `yaml:"server_id"`
	// Realm is the digest realm, the "SIP domain" (default: the first 10
	// digits of ServerID).
	Realm string `yaml:"realm"`
	// Password is the platform password for devices that have none of
	// their own. Prefer TIANSHU_GB28181_PASSWORD over the flag, which
	// other users of the machine can read.
	Password string `yaml:"password"`
	// KeepaliveTimeout is how long a registered device may stay silent
	// before it is offline.
	KeepaliveTimeout time.Duration `yaml:"keepalive_timeout"`
}

// Default returns the defaults: off, server id 34020000002000000001,
// keepalive timeout 3m.
func Default() Config {
	return Config{ServerID: "34020000002000000001", KeepaliveTimeout: 3 * time.Minute}
}

// RegisterFlags binds the fields to gb28181.* flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "gb28181.addr", c.Addr, "address of the GB/T 28181 SIP server, UDP and TCP (host:port, e.g. 0.0.0.0:5060; default: off)")
	fs.StringVar(&c.ServerID, "gb28181.server-id", c.ServerID, "the platform's 20-digit GB/T 28181 SIP id")
	fs.StringVar(&c.Realm, "gb28181.realm", c.Realm, "SIP digest realm / domain (default: the first 10 digits of the server id)")
	fs.StringVar(&c.Password, "gb28181.password", c.Password, "platform SIP password for devices without one of their own (prefer the TIANSHU_GB28181_PASSWORD environment variable)")
	fs.DurationVar(&c.KeepaliveTimeout, "gb28181.keepalive-timeout", c.KeepaliveTimeout, "a registered device silent this long is offline")
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("gb28181.addr: %v", err)
	}
	if len(c.ServerID) != 20 {
		return errors.New("gb28181.server-id: must be 20 digits")
	}
	for _, r := range c.ServerID {
		if r < '0' || r > '9' {
			return errors.New("gb28181.server-id: must be 20 digits")
		}
	}
	if c.KeepaliveTimeout < time.Second || c.KeepaliveTimeout > time.Hour {
		return errors.New("gb28181.keepalive-timeout: must be between 1s and 1h")
	}
	if len(c.Password) > 256 {
		return errors.New("gb28181.password: at most 256 bytes")
	}
	return nil
}
