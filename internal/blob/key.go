package blob

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Key limits. MaxKeyLen is S3's limit. MaxSegmentLen keeps every segment
// short enough to become a file name (255 bytes on common file systems)
// with room for the file backend's suffix.
const (
	MaxKeyLen     = 1024
	MaxSegmentLen = 250
)

// ValidateKey reports whether key may name an object, wrapping
// ErrInvalidKey when it may not. A key is 1..MaxKeyLen bytes of UTF-8 made
// of "/"-separated segments; no segment is empty, ".", ".." or longer than
// MaxSegmentLen, and no byte is a control character or a backslash. The
// rules are strict so that every backend can store every valid key and so
// that no key can climb out of the file backend's directory.
func ValidateKey(key string) error {
	if key == "" {
		return invalid(key, "empty")
	}
	if len(key) > MaxKeyLen {
		return invalid(key, fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	}
	if err := checkChars(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := checkSegment(key, seg); err != nil {
			return err
		}
	}
	return nil
}

// ValidatePrefix reports whether prefix may start a valid key, wrapping
// ErrInvalidKey when no valid key could start with it; List rejects such
// prefixes instead of silently listing nothing. The empty prefix is valid,
// and so is one ending in "/" or in part of a segment ("a/b/", "a/b/c", "a/.").
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyLen {
		return invalid(prefix, fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	}
	if err := checkChars(prefix); err != nil {
		return err
	}
	segs := strings.Split(prefix, "/")
	for _, seg := range segs[:len(segs)-1] {
		if err := checkSegment(prefix, seg); err != nil {
			return err
		}
	}
	if last := segs[len(segs)-1]; len(last) > MaxSegmentLen {
		return invalid(prefix, fmt.Sprintf("segment longer than %d bytes", MaxSegmentLen))
	}
	return nil
}

func checkChars(s string) error {
	if !utf8.ValidString(s) {
		return invalid(s, "not valid UTF-8")
	}
	for _, r := range s {
		if r == '\\' {
			return invalid(s, "contains a backslash")
		}
		if unicode.IsControl(r) {
			return invalid(s, "contains a control character")
		}
	}
	return nil
}

func checkSegment(key, seg string) error {
	switch {
	case seg == "":
		return invalid(key, "empty segment (leading, trailing or doubled /)")
	case seg == "." || seg == "..":
		return invalid(key, "segment . or ..")
	case len(seg) > MaxSegmentLen:
		return invalid(key, fmt.Sprintf("segment longer than %d bytes", MaxSegmentLen))
	}
	return nil
}

func invalid(key, reason string) error {
	const show = 64 // keep hostile 1 KiB keys out of logs
	if len(key) > show {
		key = key[:show] + "…"
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, reason)
}

// MaxContentTypeLen bounds PutOptions.ContentType.
const MaxContentTypeLen = 255

// ValidateContentType reports whether ct may be stored as an object's media
// type: at most MaxContentTypeLen bytes of printable ASCII. Content types
// end up in HTTP headers, so anything else is refused rather than mangled.
// The error does not wrap ErrInvalidKey.
func ValidateContentType(ct string) error {
	if len(ct) > MaxContentTypeLen {
		return fmt.Errorf("blob: content type longer than %d bytes", MaxContentTypeLen)
	}
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("blob: content type %q has a byte outside printable ASCII", ct)
		}
	}
	return nil
}
