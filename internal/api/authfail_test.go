package api

import (
	"fmt"
	"testing"
	"time"
)

// Addresses beyond the tracked number share one allowance, so spreading a
// flood over many addresses does not lift the bound.
func TestFailureGateBoundsAddresses(t *testing.T) {
	var g failureGate
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for i := range authFailureSources {
		if ok, _ := g.admit(fmt.Sprint("10.0.", i/256, ".", i%256), now); !ok {
			t.Fatalf("address %d: first failure not admitted", i)
		}
	}
	admitted := 0
	for i := range 100 {
		if ok, _ := g.admit(fmt.Sprint("10.9.0.", i), now); ok {
			admitted++
		}
	}
	if admitted != authFailuresPerWindow || len(g.src) != authFailureSources+1 {
		t.Errorf("admitted %d of 100 new addresses (tracking %d); want %d", admitted, len(g.src), authFailuresPerWindow)
	}
	// Once their windows end, quiet addresses are forgotten to make room.
	later := now.Add(authFailureWindow)
	if ok, _ := g.admit("10.9.1.1", later); !ok {
		t.Error("new address after the window: not admitted")
	}
	if len(g.src) > 2 {
		t.Errorf("tracking %d addresses after pruning; want the shared one and the new one", len(g.src))
	}
}
