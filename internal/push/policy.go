package push

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
)

// DefaultDeny lists the CIDRs webhooks may never reach unless
// URLPolicy.NoDefaultDeny is set: link-local ranges (where cloud instance
// metadata lives), the metadata addresses outside them, and the
// unspecified addresses (which reach the local host).
var DefaultDeny = []string{
	"169.254.0.0/16",     // IPv4 link-local, incl. 169.254.169.254 (AWS, GCP, Azure, OpenStack metadata)
	"fe80::/10",          // IPv6 link-local
	"fd00:ec2::254/128",  // AWS metadata over IPv6
	"100.100.100.200/32", // Alibaba Cloud metadata
	"0.0.0.0/8",          // "this network"; 0.0.0.0 reaches the local host
	"::/128",             // unspecified
}

// URLPolicy decides which addresses webhooks may reach. Receivers on
// private networks (10/8, 192.168/16, loopback …) are allowed by default,
// as they are normal in private deployments.
type URLPolicy struct {
	// Allow, when not empty, lists the only CIDRs webhooks may reach.
	Allow []string
	// Deny lists CIDRs webhooks may never reach, on top of DefaultDeny
	// (unless NoDefaultDeny). Deny wins over Allow.
	Deny []string
	// NoDefaultDeny drops DefaultDeny.
	NoDefaultDeny bool

	allow, deny []netip.Prefix
}

func (p *URLPolicy) compile() error {
	parse := func(list []string) ([]netip.Prefix, error) {
		var out []netip.Prefix
		for _, c := range list {
			pr, err := netip.ParsePrefix(c)
			if err != nil {
				if a, aerr := netip.ParseAddr(c); aerr == nil {
					pr = netip.PrefixFrom(a, a.BitLen())
				} else {
					return nil, fmt.Errorf("push: URL policy: %q: %w", c, err)
				}
			}
			out = append(out, pr.Masked())
		}
		return out, nil
	}
	deny := p.Deny
	if !p.NoDefaultDeny {
		deny = append(append([]string(nil), DefaultDeny...), deny...)
	}
	var err error
	if p.deny, err = parse(deny); err != nil {
		return err
	}
	p.allow, err = parse(p.Allow)
	return err
}

// ErrAddressRefused is wrapped by errors for addresses the policy refuses.
var ErrAddressRefused = errors.New("address refused by the outbound URL policy")

// CheckAddr returns an error wrapping ErrAddressRefused when ip may not be
// reached.
func (p *URLPolicy) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, d := range p.deny {
		if d.Contains(ip) {
			return fmt.Errorf("%s: %w (deny %s)", ip, ErrAddressRefused, d)
		}
	}
	if len(p.allow) == 0 {
		return nil
	}
	for _, a := range p.allow {
		if a.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("%s: %w (not in the allow list)", ip, ErrAddressRefused)
}

// CheckURL checks a webhook URL's form, and its host when it is an IP
// literal. Host names are checked at every dial (see dialControl), since
// what they resolve to may change.
func (p *URLPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("scheme must be http or https")
	}
	if u.Host == "" || u.User != nil {
		return errors.New("must have a host and no user info")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		return p.CheckAddr(ip)
	}
	return nil
}

// dialControl is a net.Dialer Control function: it runs after name
// resolution, on the very address about to be dialled, so a name that
// resolves to an allowed address when checked and to a refused one when
// used (DNS rebinding) is still refused.
func (p *URLPolicy) dialControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("push: dial %s: %w", address, ErrAddressRefused)
	}
	return p.CheckAddr(ip)
}
