package bus

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name limits. Topics and durables become parts of backend names (NATS
// stream and consumer names, Kafka topics), so they keep to characters every
// backend accepts and to a length that leaves room for a prefix.
const (
	// MaxTopicLen is the longest topic name, in bytes.
	MaxTopicLen = 128
	// MaxDurableLen is the longest durable consumer name, in bytes.
	MaxDurableLen = 128
	// MaxKeyLen is the longest ordering key, in bytes.
	MaxKeyLen = 256
	// MaxHeaderLen is the longest header name, in bytes.
	MaxHeaderLen = 128
)

// reservedHeaderPrefixes are header name prefixes (compared without case)
// that publishers may not use, because the backends put their own headers
// there.
var reservedHeaderPrefixes = []string{"nats-", "tianshu-"}

// ValidateTopic checks a topic name: 1 to MaxTopicLen characters from
// [a-z0-9._-], starting with a letter or digit, with dots only between
// non-empty segments ("tasks.t1.results"). Dots are allowed because they
// let a backend map topics onto hierarchical subjects; empty segments are
// not, because NATS subjects cannot have them. The error wraps
// ErrInvalidTopic.
func ValidateTopic(topic string) error {
	if topic == "" {
		return fmt.Errorf("%w: empty", ErrInvalidTopic)
	}
	if len(topic) > MaxTopicLen {
		return fmt.Errorf("%w: %d characters, at most %d", ErrInvalidTopic, len(topic), MaxTopicLen)
	}
	if !isLowerAlnum(topic[0]) {
		return fmt.Errorf("%w %q: must start with a-z or 0-9", ErrInvalidTopic, topic)
	}
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		switch {
		case isLowerAlnum(c) || c == '_' || c == '-':
		case c == '.':
			if i == len(topic)-1 || topic[i+1] == '.' {
				return fmt.Errorf("%w %q: empty segment between dots", ErrInvalidTopic, topic)
			}
		default:
			return fmt.Errorf("%w %q: character %q not allowed (use a-z, 0-9, '.', '_', '-')", ErrInvalidTopic, topic, rune(c))
		}
	}
	return nil
}

// ValidateDurable checks a durable consumer name: 1 to MaxDurableLen
// characters from [A-Za-z0-9_-], starting with a letter or digit. The error
// wraps ErrInvalidDurable.
func ValidateDurable(durable string) error {
	if durable == "" {
		return fmt.Errorf("%w: empty", ErrInvalidDurable)
	}
	if len(durable) > MaxDurableLen {
		return fmt.Errorf("%w: %d characters, at most %d", ErrInvalidDurable, len(durable), MaxDurableLen)
	}
	if !isAlnum(durable[0]) {
		return fmt.Errorf("%w %q: must start with a letter or digit", ErrInvalidDurable, durable)
	}
	for i := 0; i < len(durable); i++ {
		if c := durable[i]; !isAlnum(c) && c != '_' && c != '-' {
			return fmt.Errorf("%w %q: character %q not allowed (use A-Z, a-z, 0-9, '_', '-')", ErrInvalidDurable, durable, rune(c))
		}
	}
	return nil
}

// ValidateKey checks an ordering key: at most MaxKeyLen bytes of UTF-8
// without control characters, since it travels in a header. The empty key
// is valid and means "no ordering". The error wraps ErrInvalidKey.
func ValidateKey(key string) error {
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	if err := checkText(key, false); err != nil {
		return fmt.Errorf("%w %q: %v", ErrInvalidKey, key, err)
	}
	return nil
}

// ValidateHeader checks one header: the name is 1 to MaxHeaderLen
// characters from [A-Za-z0-9_.-] and does not start with a reserved prefix
// ("Nats-", "Tianshu-", any case); the value is UTF-8 without control
// characters other than tab. The error wraps ErrInvalidHeader.
func ValidateHeader(name, value string) error {
	if name == "" || len(name) > MaxHeaderLen {
		return fmt.Errorf("%w: name must have 1 to %d characters", ErrInvalidHeader, MaxHeaderLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return fmt.Errorf("%w %q: character %q not allowed in a name", ErrInvalidHeader, name, rune(c))
		}
	}
	lower := strings.ToLower(name)
	for _, p := range reservedHeaderPrefixes {
		if strings.HasPrefix(lower, p) {
			return fmt.Errorf("%w %q: prefix %q is reserved", ErrInvalidHeader, name, p)
		}
	}
	if err := checkText(value, true); err != nil {
		return fmt.Errorf("%w %q: value %v", ErrInvalidHeader, name, err)
	}
	return nil
}

func checkText(s string, allowTab bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) && (r != '\t' || !allowTab) {
			return fmt.Errorf("has control character %U", r)
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }
