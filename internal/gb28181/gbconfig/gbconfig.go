// Package gbconfig is the configuration of the GB/T 28181 SIP server
// (internal/gb28181), a leaf the root config nests.
package gbconfig

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
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
	// MediaIP is the address devices send live video to, as they see the
	// platform: its public (NAT) address when they are elsewhere; empty:
	// the platform's address on the route to each device.
	MediaIP string `yaml:"media_ip"`
	// MediaPorts is the range of RTP receive ports, "min-max" (one port a
	// stream; open it in the firewall); empty: any free port.
	MediaPorts string `yaml:"media_ports"`
	// NoMediaTimeout ends a live stream receiving no RTP this long; the
	// device is invited again.
	NoMediaTimeout time.Duration `yaml:"no_media_timeout"`
	// Upper is an upper-level platform's SIP address (host:port) the
	// platform registers to as a lower platform (cascading); empty: none.
	Upper string `yaml:"upper"`
	// UpperID is the upper platform's 20-digit id.
	UpperID string `yaml:"upper_id"`
	// UpperPassword is the password the upper platform gave this one.
	// Prefer TIANSHU_GB28181_UPPER_PASSWORD over the flag.
	UpperPassword string `yaml:"upper_password"`
	// UpperTransport is udp or tcp.
	UpperTransport string `yaml:"upper_transport"`
	// UpperProject is the project whose GB/T 28181 channels the upper
	// platform's catalog lists (and whose cameras it may steer).
	UpperProject string `yaml:"upper_project"`
	// UpperKeepalive is the interval between keepalives to it.
	UpperKeepalive time.Duration `yaml:"upper_keepalive"`
}

// PortRange returns MediaPorts' bounds (0, 0 when empty); Validate has
// checked it.
func (c Config) PortRange() (lo, hi int) {
	a, b, ok := strings.Cut(c.MediaPorts, "-")
	if !ok {
		return 0, 0
	}
	lo, _ = strconv.Atoi(strings.TrimSpace(a))
	hi, _ = strconv.Atoi(strings.TrimSpace(b))
	return lo, hi
}

// Default returns the defaults: off, server id 34020000002000000001,
// keepalive timeout 3m, no-media timeout 10s.
func Default() Config {
	return Config{ServerID: "34020000002000000001", KeepaliveTimeout: 3 * time.Minute, NoMediaTimeout: 10 * time.Second,
		UpperTransport: "udp", UpperProject: "default", UpperKeepalive: time.Minute}
}

// RegisterFlags binds the fields to gb28181.* flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "gb28181.addr", c.Addr, "address of the GB/T 28181 SIP server, UDP and TCP (host:port, e.g. 0.0.0.0:5060; default: off)")
	fs.StringVar(&c.ServerID, "gb28181.server-id", c.ServerID, "the platform's 20-digit GB/T 28181 SIP id")
	fs.StringVar(&c.Realm, "gb28181.realm", c.Realm, "SIP digest realm / domain (default: the first 10 digits of the server id)")
	fs.StringVar(&c.Password, "gb28181.password", c.Password, "platform SIP password for devices without one of their own (prefer the TIANSHU_GB28181_PASSWORD environment variable)")
	fs.DurationVar(&c.KeepaliveTimeout, "gb28181.keepalive-timeout", c.KeepaliveTimeout, "a registered device silent this long is offline")
	fs.StringVar(&c.MediaIP, "gb28181.media-ip", c.MediaIP, "IP address devices send live video (RTP) to, as they reach this process (the SIP server's, or a worker's that receives the video of its tasks; its public address behind NAT; default: the local address on the route to each device)")
	fs.StringVar(&c.MediaPorts, "gb28181.media-ports", c.MediaPorts, "RTP receive port range for live video, min-max (one port per stream; default: any free port)")
	fs.DurationVar(&c.NoMediaTimeout, "gb28181.no-media-timeout", c.NoMediaTimeout, "a live stream receiving no RTP this long is invited again")
	fs.StringVar(&c.Upper, "gb28181.upper", c.Upper, "an upper-level GB/T 28181 platform (host:port) to register to as a lower platform, answering its catalog with the channels of --gb28181.upper-project (default: none)")
	fs.StringVar(&c.UpperID, "gb28181.upper-id", c.UpperID, "the upper platform's 20-digit SIP id")
	fs.StringVar(&c.UpperPassword, "gb28181.upper-password", c.UpperPassword, "the password the upper platform gave this platform (prefer the TIANSHU_GB28181_UPPER_PASSWORD environment variable)")
	fs.StringVar(&c.UpperTransport, "gb28181.upper-transport", c.UpperTransport, "udp or tcp to the upper platform")
	fs.StringVar(&c.UpperProject, "gb28181.upper-project", c.UpperProject, "the project whose GB/T 28181 channels the upper platform sees and may steer")
	fs.DurationVar(&c.UpperKeepalive, "gb28181.upper-keepalive", c.UpperKeepalive, "interval between keepalives to the upper platform")
}

// Validate names the first bad field.
func (c Config) Validate() error {
	// The media settings serve a worker without the SIP server too: it
	// receives the video the control plane's server invites for it.
	if c.MediaIP != "" && net.ParseIP(c.MediaIP) == nil {
		return fmt.Errorf("gb28181.media-ip: %q is not an IP address", c.MediaIP)
	}
	if c.MediaPorts != "" {
		lo, hi := c.PortRange()
		if lo < 1024 || hi > 65535 || hi < lo {
			return fmt.Errorf("gb28181.media-ports: %q: want min-max within 1024-65535", c.MediaPorts)
		}
	}
	if c.NoMediaTimeout < time.Second || c.NoMediaTimeout > 5*time.Minute {
		return errors.New("gb28181.no-media-timeout: must be between 1s and 5m")
	}
	if c.Addr == "" {
		if c.Upper != "" {
			return errors.New("gb28181.upper: needs the SIP server on (--gb28181.addr): the upper platform's commands go to the cameras registered here")
		}
		return nil
	}
	if err := c.validateUpper(); err != nil {
		return err
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

// validateUpper checks the cascading settings, when an upper platform is set.
func (c Config) validateUpper() error {
	if c.Upper == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Upper); err != nil {
		return fmt.Errorf("gb28181.upper: %v", err)
	}
	if len(c.UpperID) != 20 || strings.Trim(c.UpperID, "0123456789") != "" {
		return errors.New("gb28181.upper-id: must be 20 digits")
	}
	if len(c.UpperPassword) > 256 {
		return errors.New("gb28181.upper-password: at most 256 bytes")
	}
	if c.UpperTransport != "udp" && c.UpperTransport != "tcp" {
		return errors.New("gb28181.upper-transport: want udp or tcp")
	}
	if c.UpperProject == "" || len(c.UpperProject) > 64 {
		return errors.New("gb28181.upper-project: want a project id")
	}
	if c.UpperKeepalive < time.Second || c.UpperKeepalive > time.Hour {
		return errors.New("gb28181.upper-keepalive: must be between 1s and 1h")
	}
	return nil
}
