package algorithm

import (
	"fmt"
	"net"
	"net/url"
)

// DefaultEndpointPolicy is the Options.CheckEndpoint of a platform without
// an operator's outbound policy: it refuses algorithm endpoints on
// link-local and cloud-metadata addresses; private networks are normal in
// private deployments.
func DefaultEndpointPolicy(u *url.URL) error {
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil && (ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.Equal(net.ParseIP("fd00:ec2::254"))) {
		return fmt.Errorf("endpoint %s: link-local and cloud-metadata addresses are refused", host)
	}
	if host == "metadata.google.internal" {
		return fmt.Errorf("endpoint %s: cloud-metadata hosts are refused", host)
	}
	return nil
}
