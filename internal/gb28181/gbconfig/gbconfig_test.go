package gbconfig

import (
	"strings"
	"testing"
)

// TestValidate: each bad setting is refused naming its flag; the media
// settings are checked without the SIP server (a worker's), and an upper
// platform needs the SIP server.
func TestValidate(t *testing.T) {
	on := Default()
	on.Addr = "127.0.0.1:5060"
	worker := Default()
	for flag, c := range map[string]Config{
		"gb28181.media-ip":    func() Config { c := worker; c.MediaIP = "nowhere"; return c }(),
		"gb28181.media-ports": func() Config { c := worker; c.MediaPorts = "20-10"; return c }(),
		"gb28181.upper":       func() Config { c := worker; c.Upper = "10.0.0.1:5060"; return c }(),
		"gb28181.upper-id":    func() Config { c := on; c.Upper, c.UpperID = "10.0.0.1:5060", "3402"; return c }(),
		"gb28181.upper-transport": func() Config {
			c := on
			c.Upper, c.UpperID, c.UpperTransport = "10.0.0.1:5060", "34020000002000000009", "sctp"
			return c
		}(),
		"gb28181.upper-keepalive": func() Config {
			c := on
			c.Upper, c.UpperID, c.UpperKeepalive = "10.0.0.1:5060", "34020000002000000009", 0
			return c
		}(),
		"gb28181.upper-project": func() Config {
			c := on
			c.Upper, c.UpperID, c.UpperProject = "10.0.0.1:5060", "34020000002000000009", ""
			return c
		}(),
		"gb28181.upper-password": func() Config {
			c := on
			c.Upper, c.UpperID, c.UpperPassword = "10.0.0.1:5060", "34020000002000000009", strings.Repeat("p", 257)
			return c
		}(),
		"gb28181.upper: address 10": func() Config { c := on; c.Upper, c.UpperID = "10", "34020000002000000009"; return c }(),
	} {
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), strings.Fields(flag)[0]) {
			t.Errorf("%s: %v", flag, err)
		}
	}
	good := on
	good.Upper, good.UpperID = "10.0.0.1:5060", "34020000002000000009"
	for _, c := range []Config{on, worker, good} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
