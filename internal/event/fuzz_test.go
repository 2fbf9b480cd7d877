package event_test

import (
	"testing"

	"github.com/tianshu-ai/tianshu/internal/event"
)

// FuzzParseTraceParent: whatever arrives in a traceparent header, parsing
// never panics, and what it accepts formats back to a header that parses
// to the same context.
func FuzzParseTraceParent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-xyz")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tp, ok := event.ParseTraceParent(s)
		if !ok {
			return
		}
		again, ok := event.ParseTraceParent(tp.String())
		if !ok || again != tp {
			t.Fatalf("%q parsed to %+v, which formats to %q and parses to %+v, %v", s, tp, tp.String(), again, ok)
		}
	})
}

// FuzzDecode: any bytes from the bus decode to an event or ErrInvalid,
// and a decoded event survives a round trip.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"a","source":"/s","type":"t","time":"2026-11-29T10:27:28Z","data":{"x":1}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := event.Decode(b)
		if err != nil {
			return
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("decoded event does not marshal: %v", err)
		}
		if _, err := event.Decode(out); err != nil {
			t.Fatalf("re-decode: %v (%s)", err, out)
		}
	})
}
