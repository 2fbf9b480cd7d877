package app

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// State is where a module is in its life.
type State string

// Module states. A module is Starting while its init runs, Running after
// it, Stopping while its stop runs and Terminated after. It is Failed
// when its init or stop returned an error, or when one of its loops ended
// with an error while it should have been running.
const (
	StateNew        State = "New"
	StateStarting   State = "Starting"
	StateRunning    State = "Running"
	StateStopping   State = "Stopping"
	StateTerminated State = "Terminated"
	StateFailed     State = "Failed"
)

// moduleStates tracks the state of every module of a platform.
type moduleStates struct {
	mu    sync.Mutex
	state map[string]State
	err   map[string]error
}

func newModuleStates(names []string) *moduleStates {
	ms := &moduleStates{state: map[string]State{}, err: map[string]error{}}
	for _, n := range names {
		ms.state[n] = StateNew
	}
	return ms
}

func (ms *moduleStates) set(name string, s State) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.state[name] == StateFailed && s != StateFailed {
		return // a failure stays visible until the process ends
	}
	ms.state[name] = s
}

func (ms *moduleStates) fail(name string, err error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.state[name] = StateFailed
	ms.err[name] = err
}

// notRunning describes the modules that are not Running, sorted; "" when
// every module runs.
func (ms *moduleStates) notRunning() string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var out []string
	for n, s := range ms.state {
		if s == StateRunning {
			continue
		}
		line := n + ": " + string(s)
		if err := ms.err[n]; err != nil {
			line += " (" + err.Error() + ")"
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// ModuleStates returns the state of every module of this process.
func (p *Platform) ModuleStates() map[string]State {
	p.states.mu.Lock()
	defer p.states.mu.Unlock()
	out := make(map[string]State, len(p.states.state))
	for n, s := range p.states.state {
		out[n] = s
	}
	return out
}

// loop runs fn in the background for module until the module stops, and
// returns the stop function that cancels fn and waits for it. If fn
// returns an error before it was asked to stop, the module is Failed (and
// /readyz says so): a module whose work ended is not running.
func (p *Platform) loop(module string, fn func(ctx context.Context) error) func(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := fn(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("ended without being stopped")
		}
		p.log.Error("module failed", "module", module, "err", err)
		p.states.fail(module, fmt.Errorf("loop: %w", err))
	}()
	return func(stopCtx context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-stopCtx.Done():
			return stopCtx.Err()
		}
	}
}
