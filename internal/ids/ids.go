// Package ids makes resource ids ("app-3k9x2m7q") and random secrets.
package ids

import (
	"crypto/rand"
)

// alphabet is Crockford's base32 in lower case: no i, l, o, u, so ids read
// aloud or copied by hand stay unambiguous.
const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// New returns prefix + "-" + 8 random characters (40 bits).
func New(prefix string) string { return prefix + "-" + Random(8, alphabet) }

// Random returns n characters drawn uniformly from chars (at most 256) with
// crypto/rand.
func Random(n int, chars string) string {
	out := make([]byte, n)
	buf := make([]byte, n+n/2+8)
	// Rejection sampling keeps the distribution uniform for any alphabet size.
	limit := 256 - 256%len(chars)
	for i := 0; i < n; {
		_, _ = rand.Read(buf)
		for _, b := range buf {
			if int(b) < limit {
				out[i] = chars[int(b)%len(chars)]
				i++
				if i == n {
					break
				}
			}
		}
	}
	return string(out)
}

// Alnum is the alphabet of SecretIds and SecretKeys.
const Alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
