package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/config"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestLoopThatEndsFailsItsModule: a module whose background work ends
// with an error while it should run is Failed, and readiness says which
// and why; a loop stopped on purpose leaves its module alone.
func TestLoopThatEndsFailsItsModule(t *testing.T) {
	cfg := config.Default()
	cfg.Targets = []string{ModStore}
	p, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.states.set(ModStore, StateRunning)
	if bad := p.states.notRunning(); bad != "" {
		t.Fatalf("notRunning = %q before any failure", bad)
	}
	stop := p.loop(ModStore, func(ctx context.Context) error { return errors.New("disk on fire") })
	testenv.Eventually(t, 5*time.Second, "the module fails", func() bool { return p.ModuleStates()[ModStore] == StateFailed })
	if bad := p.states.notRunning(); !strings.Contains(bad, "store: Failed") || !strings.Contains(bad, "disk on fire") {
		t.Errorf("notRunning = %q", bad)
	}
	_ = stop(context.Background())
	p.states.set(ModStore, StateTerminated)
	if p.ModuleStates()[ModStore] != StateFailed {
		t.Error("a failure was overwritten by a later state")
	}

	q, _ := New(cfg, Options{})
	q.states.set(ModStore, StateRunning)
	stopQ := q.loop(ModStore, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if err := stopQ(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := q.ModuleStates()[ModStore]; s != StateRunning {
		t.Errorf("a loop stopped on purpose left its module %s", s)
	}
}
