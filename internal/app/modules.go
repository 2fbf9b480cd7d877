// Package app assembles Tianshu from named modules. Reading this file tells
// the whole topology: the module names, what each depends on, and the init
// function that builds it. `tianshu serve --target=a,b` runs the listed
// modules plus their dependencies; the default target "all" runs every one.
//
// Modules are initialised in dependency order and stopped in reverse. Roles
// coordinate only through the store and the bus, never through memory, so
// any module can run as N replicas in separate processes.
package app

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Module names.
const (
	ModStore     = "store"      // metadata store, migrated on start
	ModBus       = "bus"        // event and data bus
	ModBlob      = "blob"       // object store
	ModSecrets   = "secrets"    // master key for secrets at rest
	ModCenters   = "centers"    // app center, users, audit, flows, tasks: the domain services
	ModAlgos     = "algorithms" // algorithm repository and this process's algorithm runtime
	ModData      = "data"       // records, objects, resumable uploads, retention
	ModDevices   = "devices"    // device center: drivers, status, snapshots
	ModAPI       = "api"        // action gateway at POST /
	ModBootstrap = "bootstrap"  // first admin user and key on an empty store
	ModScheduler = "scheduler"  // places tasks on workers (one active, elected)
	ModWorker    = "worker"     // runs the tasks placed on this node
	ModPush      = "push"       // message gateway: subscriptions over webhook, gRPC, SSE
	ModControl   = "control"    // every module but the worker: the control plane
	ModAll       = "all"        // every module
)

// deps is the dependency map: a module runs only after its dependencies.
var deps = map[string][]string{
	ModStore:     nil,
	ModBus:       nil,
	ModBlob:      {ModSecrets},
	ModSecrets:   nil,
	ModCenters:   {ModStore, ModSecrets, ModAlgos, ModData, ModDevices},
	ModDevices:   {ModStore, ModSecrets, ModBlob, ModBus},
	ModData:      {ModStore, ModBlob},
	ModAlgos:     {ModStore, ModBlob},
	ModAPI:       {ModCenters, ModBlob},
	ModBootstrap: {ModCenters},
	ModScheduler: {ModCenters},
	ModWorker:    {ModCenters, ModBus},
	ModPush:      {ModCenters, ModBus},
	ModControl:   {ModAPI, ModBus, ModBootstrap, ModScheduler, ModPush},
	ModAll:       {ModControl, ModWorker},
}

// ModuleNames lists every module name, sorted.
func ModuleNames() []string {
	out := make([]string, 0, len(deps))
	for n := range deps {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// resolve returns the modules needed for targets, in start order.
func resolve(targets []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		d, ok := deps[n]
		if !ok {
			return fmt.Errorf("unknown target %q; known: %s", n, strings.Join(ModuleNames(), ", "))
		}
		switch state[n] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(path, n), " -> "))
		case 2:
			return nil
		}
		state[n] = 1
		for _, x := range d {
			if err := visit(x, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, t := range targets {
		if err := visit(t, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// initFuncs maps each module to the method that builds it. An init returns
// a stop function (nil when there is nothing to stop).
func (p *Platform) initFuncs() map[string]func(context.Context) (func(context.Context) error, error) {
	return map[string]func(context.Context) (func(context.Context) error, error){
		ModStore:     p.initStore,
		ModBus:       p.initBus,
		ModBlob:      p.initBlob,
		ModSecrets:   p.initSecrets,
		ModCenters:   p.initCenters,
		ModAlgos:     p.initAlgorithms,
		ModData:      p.initData,
		ModDevices:   p.initDevices,
		ModAPI:       p.initAPI,
		ModBootstrap: p.initBootstrap,
		ModScheduler: p.initScheduler,
		ModWorker:    p.initWorker,
		ModPush:      p.initPush,
		ModControl:   func(context.Context) (func(context.Context) error, error) { return nil, nil },
		ModAll:       func(context.Context) (func(context.Context) error, error) { return nil, nil },
	}
}

// Running reports whether module name runs in this process.
func (p *Platform) Running(name string) bool { return slices.Contains(p.order, name) }
