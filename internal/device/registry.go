package device

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Driver turns a Config into a probe result or an open Source. Drivers are
// stateless values: everything per device lives in the Source, everything
// shared lives in the Env the Runtime passes in.
type Driver interface {
	// Validate checks the driver's own fields and Options (the common fields
	// are already checked) and returns a *FieldError naming the bad one.
	Validate(cfg Config) error
	// Probe looks at the device once, bounded by ctx: is it there, do the
	// credentials work, what is it. A device that answers but refuses returns
	// a result with Online false and a *StatusError saying why.
	Probe(ctx context.Context, env *Env, cfg Config) (ProbeResult, error)
	// Open starts a Source delivering to sink. ctx bounds only the opening
	// (some drivers resolve the device first); the source runs until Close.
	// A device that is down does not fail Open: the source reports it in its
	// status and keeps retrying.
	Open(ctx context.Context, env *Env, cfg Config, sink Sink) (Source, error)
}

// The registry is the package's only mutable state, written by init
// functions of the driver files and read afterwards.
var (
	registryMu sync.RWMutex
	registry   = map[string]Driver{}
)

// Register makes a driver available under name. It panics when the name is
// taken or planned, like database/sql.Register; call it from init.
func Register(name string, d Driver) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup || planned(name) {
		panic(fmt.Sprintf("device: Register called twice for driver %q", name))
	}
	if d == nil {
		panic("device: Register driver is nil")
	}
	registry[name] = d
}

func lookup(name string) (Driver, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	d, ok := registry[name]
	return d, ok
}

// Drivers returns the registered driver names, sorted.
func Drivers() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
