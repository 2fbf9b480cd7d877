// Package redact masks secrets in text that leaves the process: API
// responses, audit details, log lines, device errors. It imports nothing of
// ours, so every layer can use it.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret wherever one is shown.
const Mask = "***"

// userinfo matches the userinfo of URLs written in text: the scheme, "//",
// then everything up to the last "@" before the host (passwords with a raw
// "@" in them included).
var userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#'"<>\\]*@`)

// URLs masks the userinfo (user name and password) of every URL in s:
// "rtsp://admin:pw@cam/live" becomes "rtsp://***@cam/live".
func URLs(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return userinfo.ReplaceAllString(s, "${1}"+Mask+"@")
}

// MinSecretLen is the shortest secret Text masks by value: shorter values
// would mask ordinary words and digits of the text around them. URL
// userinfo is masked whatever its length.
const MinSecretLen = 4

// Text masks URL userinfo in s and every occurrence of the secrets given
// (as they are and URL-escaped, as they appear inside a URL), so that a
// program's error output can be shown without the credentials it echoed.
func Text(s string, secrets ...string) string {
	s = URLs(s)
	for _, sec := range secrets {
		if len(sec) < MinSecretLen {
			continue
		}
		s = strings.ReplaceAll(s, sec, Mask)
		for _, esc := range []string{url.QueryEscape(sec), url.PathEscape(sec), url.UserPassword("", sec).String()[1:]} {
			if esc != sec && len(esc) >= MinSecretLen {
				s = strings.ReplaceAll(s, esc, Mask)
			}
		}
	}
	return s
}

// SplitUserinfo takes the credentials out of a URL: it returns the URL
// without userinfo, the user name and the password (hasPassword tells an
// empty password from none). A string that does not parse as a URL with a
// host, or has no userinfo, is returned unchanged.
func SplitUserinfo(raw string) (clean, user, pass string, hasPassword bool) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || u.Host == "" {
		return raw, "", "", false
	}
	user = u.User.Username()
	pass, hasPassword = u.User.Password()
	u.User = nil
	return u.String(), user, pass, hasPassword
}

// Entries masks, in place, the value of every JSON object inside v marked
// secret: {"name": "X-Api-Key", "value": "…", "secret": true} keeps its name
// and shows Mask as its value. v is a decoded JSON document (maps, slices).
// It returns v.
func Entries(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if IsSecretEntry(x) {
			if _, ok := x["value"]; ok {
				x["value"] = Mask
			}
			return v
		}
		for _, e := range x {
			Entries(e)
		}
	case []any:
		for _, e := range x {
			Entries(e)
		}
	}
	return v
}

// IsSecretEntry reports whether m is an entry marked secret ("secret": true).
func IsSecretEntry(m map[string]any) bool {
	s, ok := m["secret"].(bool)
	return ok && s
}
