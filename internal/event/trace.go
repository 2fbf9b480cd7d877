package event

import (
	"crypto/rand"
	"encoding/hex"
)

// TraceParent is a parsed W3C trace context (traceparent header, version
// 00): the trace an event belongs to and the span that produced it.
type TraceParent struct {
	TraceID string // 32 lowercase hex digits, not all zero
	SpanID  string // 16 lowercase hex digits, not all zero
	Sampled bool
}

// ParseTraceParent parses a traceparent header value. It accepts version
// 00's exact form and, as the W3C spec asks of later versions, their first
// four fields; anything else is refused (ok false), and the caller starts a
// new trace.
func ParseTraceParent(s string) (tp TraceParent, ok bool) {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return TraceParent{}, false
	}
	version, trace, span, flags := s[0:2], s[3:35], s[36:52], s[53:55]
	if !isHex(version) || version == "ff" || (version == "00" && len(s) != 55) || (len(s) > 55 && s[55] != '-') {
		return TraceParent{}, false
	}
	if !isHex(trace) || !isHex(span) || !isHex(flags) || allZero(trace) || allZero(span) {
		return TraceParent{}, false
	}
	f, _ := hex.DecodeString(flags)
	return TraceParent{TraceID: trace, SpanID: span, Sampled: f[0]&1 == 1}, true
}

// String formats tp as a version 00 traceparent.
func (tp TraceParent) String() string {
	flags := "00"
	if tp.Sampled {
		flags = "01"
	}
	return "00-" + tp.TraceID + "-" + tp.SpanID + "-" + flags
}

// NewTraceID returns a random trace id.
func NewTraceID() string { return randomHex(16) }

// ChildOf returns the traceparent of a new, sampled span in trace traceID.
func ChildOf(traceID string) string {
	return TraceParent{TraceID: traceID, SpanID: randomHex(8), Sampled: true}.String()
}

// TraceIDOf returns the trace id of traceparent, or a new random one when
// it is empty or malformed: every event a message causes shares the trace
// the message arrived with.
func TraceIDOf(traceparent string) string {
	if tp, ok := ParseTraceParent(traceparent); ok {
		return tp.TraceID
	}
	return NewTraceID()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
