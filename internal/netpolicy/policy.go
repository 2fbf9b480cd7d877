package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrRefused is wrapped by every error for an address the policy refuses.
// The connection was never attempted, so nothing was sent and nothing
// about the peer is known.
var ErrRefused = errors.New("refused by the outbound policy")

// Rule matches addresses in Prefix on ports PortLo to PortHi (any port
// when both are 0). Its text form is IP, CIDR, IP:port, [IPv6]:port,
// CIDR:port or CIDR:port-port.
type Rule struct {
	Prefix         netip.Prefix
	PortLo, PortHi uint16
	text           string
}

// ParseRule parses a rule's text form.
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	r := Rule{text: s}
	addr, ports := s, ""
	if i := strings.IndexByte(s, '/'); i >= 0 {
		// A prefix length holds no colon, so one after the slash starts
		// the ports.
		if j := strings.IndexByte(s[i:], ':'); j >= 0 {
			addr, ports = s[:i+j], s[i+j+1:]
		}
	} else if _, err := netip.ParseAddr(s); err != nil {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return Rule{}, fmt.Errorf("%q: want IP, CIDR, IP:port or CIDR:port", s)
		}
		addr, ports = host, port
	}
	if strings.Contains(addr, "/") {
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return Rule{}, fmt.Errorf("%q: %v", s, err)
		}
		r.Prefix = p.Masked()
	} else {
		a, err := netip.ParseAddr(addr)
		if err != nil || a.Zone() != "" {
			return Rule{}, fmt.Errorf("%q: %q is not an IP address", s, addr)
		}
		a = a.Unmap()
		r.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if r.Prefix.Addr().Is4In6() {
		return Rule{}, fmt.Errorf("%q: write IPv4-mapped ranges as IPv4", s)
	}
	if ports != "" {
		lo, hi, isRange := strings.Cut(ports, "-")
		var err error
		if r.PortLo, err = parsePort(lo); err != nil {
			return Rule{}, fmt.Errorf("%q: %v", s, err)
		}
		r.PortHi = r.PortLo
		if isRange {
			if r.PortHi, err = parsePort(hi); err != nil {
				return Rule{}, fmt.Errorf("%q: %v", s, err)
			}
			if r.PortHi < r.PortLo {
				return Rule{}, fmt.Errorf("%q: port range is backwards", s)
			}
		}
	}
	return r, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}

// Match reports whether ap is in the rule's range.
func (r Rule) Match(ap netip.AddrPort) bool {
	if !r.Prefix.Contains(ap.Addr()) {
		return false
	}
	return r.PortLo == 0 || (ap.Port() >= r.PortLo && ap.Port() <= r.PortHi)
}

func (r Rule) String() string { return r.text }

// builtinDeny are the ranges refused unless an allow rule matches: where
// the host itself, cloud instance metadata and link-scoped services live.
// Private networks (10/8, 172.16/12, 192.168/16, fc00::/7) are not among
// them: cameras and model servers live there.
var builtinDeny = []struct{ name, cidr string }{
	{"loopback", "127.0.0.0/8"},
	{"loopback", "::1/128"},
	{"this network (reaches the local host)", "0.0.0.0/8"},
	{"unspecified", "::/128"},
	{"link-local (cloud metadata)", "169.254.0.0/16"},
	{"link-local", "fe80::/10"},
	{"cloud metadata", "fd00:ec2::254/128"},
	{"cloud metadata", "100.100.100.200/32"},
	{"cloud platform endpoint", "168.63.129.16/32"},
	{"multicast", "224.0.0.0/4"},
	{"multicast", "ff00::/8"},
	{"broadcast", "255.255.255.255/32"},
}

type namedPrefix struct {
	name string
	p    netip.Prefix
}

// Policy decides which addresses outbound connections may reach. A nil
// *Policy checks nothing (components built without one, in unit tests);
// the platform always builds one from its Config. Safe for concurrent use.
type Policy struct {
	allow, deny []Rule
	builtin     []namedPrefix
	allowOnly   bool
	self        []netip.AddrPort
	local       []netip.Addr // this host's interface addresses
}

// New builds a policy from cfg. self are the server's own listen addresses
// (host:port); a connection to one of them is always refused, and an
// unspecified host (":8080", "0.0.0.0:8080") stands for every address of
// this host on that port.
func New(cfg Config, self ...string) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Policy{allowOnly: cfg.AllowOnly}
	for _, s := range cfg.Allow {
		r, _ := ParseRule(s)
		p.allow = append(p.allow, r)
	}
	for _, s := range cfg.Deny {
		r, _ := ParseRule(s)
		p.deny = append(p.deny, r)
	}
	for _, b := range builtinDeny {
		pr := netip.MustParsePrefix(b.cidr)
		if cfg.AllowLoopback && b.name == "loopback" {
			continue
		}
		p.builtin = append(p.builtin, namedPrefix{b.name, pr})
	}
	for _, s := range self {
		if s == "" {
			continue
		}
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("netpolicy: own address %q: %w", s, err)
		}
		n, err := parsePort(port)
		if err != nil {
			return nil, fmt.Errorf("netpolicy: own address %q: %w", s, err)
		}
		a := netip.IPv4Unspecified()
		if host != "" {
			if a, err = netip.ParseAddr(host); err != nil {
				return nil, fmt.Errorf("netpolicy: own address %q: not an IP address", s)
			}
		}
		p.self = append(p.self, netip.AddrPortFrom(a.Unmap(), n))
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					p.local = append(p.local, ip.Unmap())
				}
			}
		}
	}
	return p, nil
}

// Check returns nil when ap may be reached, else an error wrapping
// ErrRefused that names the address and the rule. Order: the operator's
// deny rules, the server's own addresses, the operator's allow rules, the
// builtin ranges, then AllowOnly. Port 0 stands for a port not known
// (an address handed to an adapter): deny rules match it whatever their
// ports, allow rules with ports do not.
func (p *Policy) Check(ap netip.AddrPort) error {
	if p == nil {
		return nil
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	for _, r := range p.deny {
		if r.Match(ap) || (ap.Port() == 0 && r.Prefix.Contains(ap.Addr())) {
			return refused(ap, "deny rule "+r.text)
		}
	}
	if p.isSelf(ap) {
		return refused(ap, "the server's own listen address")
	}
	for _, r := range p.allow {
		if r.Match(ap) {
			return nil
		}
	}
	for _, b := range p.builtin {
		if b.p.Contains(ap.Addr()) {
			return refused(ap, b.name+" "+b.p.String())
		}
	}
	if p.allowOnly {
		return refused(ap, "no allow rule matches")
	}
	return nil
}

func refused(ap netip.AddrPort, why string) error {
	if ap.Port() == 0 {
		return fmt.Errorf("outbound %s: %w (%s)", ap.Addr(), ErrRefused, why)
	}
	return fmt.Errorf("outbound %s: %w (%s)", ap, ErrRefused, why)
}

func (p *Policy) isSelf(ap netip.AddrPort) bool {
	for _, s := range p.self {
		if s.Port() != ap.Port() {
			continue
		}
		if s.Addr() == ap.Addr() {
			return true
		}
		if s.Addr().IsUnspecified() {
			a := ap.Addr()
			if a.IsLoopback() || a.IsUnspecified() {
				return true
			}
			for _, l := range p.local {
				if l == a {
					return true
				}
			}
		}
	}
	return false
}

// Control is a net.Dialer Control function. It runs after name resolution,
// on the very address about to be connected to, so a host name resolving
// to a refused address, DNS rebinding and redirects are all caught.
// Unix sockets are not network destinations and pass.
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	if p == nil || strings.HasPrefix(network, "unix") {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("outbound %s: %w (not an IP address)", address, ErrRefused)
	}
	return p.Check(ap)
}

// Guard returns a copy of d whose connections the policy checks (after
// d's own Control, if any). A nil policy returns d unchanged.
func (p *Policy) Guard(d *net.Dialer) *net.Dialer {
	if p == nil {
		return d
	}
	g := *d
	prev := d.Control
	g.Control = func(network, address string, c syscall.RawConn) error {
		if prev != nil {
			if err := prev(network, address, c); err != nil {
				return err
			}
		}
		return p.Control(network, address, c)
	}
	return &g
}

// CheckURL checks a URL whose host is an IP literal, on the URL's port or
// its scheme's default; host names pass here and are checked at connect
// time (what they resolve to may change). It gives early feedback when a
// configuration is saved; it does not replace the dialer's check.
func (p *Policy) CheckURL(u *url.URL) error {
	if p == nil || u == nil {
		return nil
	}
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return nil
	}
	port, err := urlPort(u)
	if err != nil {
		return err
	}
	return p.Check(netip.AddrPortFrom(a, port))
}

// CheckResolved resolves the URL's host and checks every address it
// resolves to, refusing when any is refused. It is for connections the
// platform does not make itself (a child process such as ffmpeg connects):
// what the name resolves to when the child resolves it again may differ,
// a gap the dialer's check does not have.
func (p *Policy) CheckResolved(ctx context.Context, u *url.URL) error {
	if p == nil {
		return nil
	}
	port, err := urlPort(u)
	if err != nil {
		return err
	}
	return p.checkHost(ctx, u.Hostname(), port)
}

// CheckHostPort resolves hostport ("host:port") and checks every address,
// as CheckResolved does.
func (p *Policy) CheckHostPort(ctx context.Context, hostport string) error {
	if p == nil {
		return nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	n, err := parsePort(port)
	if err != nil {
		return err
	}
	return p.checkHost(ctx, host, n)
}

// CheckHost resolves host and checks every address on port (0: not
// known), as CheckResolved does. An error that does not wrap ErrRefused is
// a failed lookup.
func (p *Policy) CheckHost(ctx context.Context, host string, port uint16) error {
	if p == nil {
		return nil
	}
	return p.checkHost(ctx, host, port)
}

func (p *Policy) checkHost(ctx context.Context, host string, port uint16) error {
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Check(netip.AddrPortFrom(a, port))
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("outbound %s: %w", host, err)
	}
	for _, a := range addrs {
		if err := p.Check(netip.AddrPortFrom(a, port)); err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	return nil
}

// defaultPorts are the ports of the schemes outbound URLs use.
var defaultPorts = map[string]uint16{
	"http": 80, "https": 443, "ws": 80, "wss": 443,
	"rtsp": 554, "rtsps": 322,
	"tcp": 1883, "mqtt": 1883, "ssl": 8883, "tls": 8883, "mqtts": 8883,
}

func urlPort(u *url.URL) (uint16, error) {
	if s := u.Port(); s != "" {
		return parsePort(s)
	}
	if n, ok := defaultPorts[strings.ToLower(u.Scheme)]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("outbound %s: no port and no default port for scheme %q", u.Host, u.Scheme)
}
