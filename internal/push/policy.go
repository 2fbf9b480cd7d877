package push

import (
	"errors"
	"net/url"

	"github.com/tianshu-ai/tianshu/internal/netpolicy"
)

// checkWebhookURL checks a webhook URL's form, and its host against p when
// it is an IP literal. Host names are checked at every dial, by the
// policy's dialer, since what they resolve to may change.
func checkWebhookURL(p *netpolicy.Policy, raw string) error {
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
	return p.CheckURL(u)
}
