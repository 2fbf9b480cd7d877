package push

import (
	"maps"
	"testing"
)

// The events acknowledged above the floor survive a restart: saved as
// offsets, read back, skipped by the next deliverer; the floor closes over
// them as the gaps fill.
func TestAckedAboveRoundTrip(t *testing.T) {
	var c counters
	c.floor, c.known = 100, true
	for _, q := range []uint64{105, 103, 110} {
		c.ack(q)
	}
	enc := encodeAbove(c.floor, c.above)
	if enc != "3,5,10" {
		t.Fatalf("encoded %q", enc)
	}
	back := decodeAbove(100, enc)
	if !maps.Equal(back, c.above) {
		t.Fatalf("decoded %v, want %v", back, c.above)
	}
	if got := decodeAbove(100, "3,x,0,5"); len(got) != 2 {
		t.Fatalf("malformed entries kept: %v", got)
	}
	next := counters{floor: 100, known: true, above: back}
	for q, want := range map[uint64]bool{99: true, 100: true, 101: false, 103: true, 104: false, 110: true, 111: false} {
		if next.done(q) != want {
			t.Errorf("done(%d) = %v, want %v", q, !want, want)
		}
	}
	next.ack(101)
	next.ack(102)
	if next.floor != 103 || len(next.above) != 2 {
		t.Fatalf("floor %d above %v after filling the gap below 103", next.floor, next.above)
	}
	if (&counters{}).done(1) {
		t.Fatal("an unknown floor marks events done")
	}
}
