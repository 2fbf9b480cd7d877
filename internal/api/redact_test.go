package api_test

import (
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// Audit details and logged requests mask credentials inside URLs and the
// values of entries marked secret, wherever they sit in the request.
func TestRedactJSONMasksURLCredentialsAndSecretEntries(t *testing.T) {
	body := `{"Name": "gate", "Driver": "rtsp", "Address": "rtsp://cam:url-pw-1@10.0.0.5:554/live",
		"Definition": {"endpoints": ["https://tok-in-url-2@api.example/v1"],
			"headers": [{"name": "X-Api-Key", "value": "hdr-secret-3", "secret": true}, {"name": "Accept", "value": "keep-me"}]},
		"Options": {"env": ["A=b", {"name": "TOKEN", "value": "env-secret-4", "secret": true}]}}`
	got := api.RedactJSON([]byte(body), 4096)
	for _, s := range []string{"url-pw-1", "tok-in-url-2", "hdr-secret-3", "env-secret-4"} {
		if strings.Contains(got, s) {
			t.Errorf("redacted detail carries %q: %s", s, got)
		}
	}
	for _, s := range []string{"10.0.0.5:554/live", "keep-me", "X-Api-Key", "TOKEN", "A=b"} {
		if !strings.Contains(got, s) {
			t.Errorf("redacted detail lost %q: %s", s, got)
		}
	}
}
