// Package app assembles Tianshu from named modules. Reading this file tells
// the whole topology: the module names, what each depends on, and the init
// function that builds it. `tianshu serve --target=a,b` runs the listed
// modules plus their dependencies; the default target "all" runs every one.
//
// Modules are initialised in dependency order and stopped in reverse. Each
// goes through the states Starting → Running → Stopping → Terminated, or
// Failed when it cannot start or a loop of it ends with an error; /readyz
// answers 200 only while every module runs. Roles coordinate only through
// the store and the bus, never through memory, so any module can run as N
// replicas in separate processes.
//
// This package constructs and connects; it decides nothing about records,
// images or events. Those belong to the centers and the task runtime.
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
	// Backends.
	ModStore   = "store"   // metadata store, migrated on start
	ModBus     = "bus"     // event and data bus
	ModBlob    = "blob"    // object store
	ModSecrets = "secrets" // master key for secrets at rest

	// Centers: the control plane's services over the store.
	ModApps    = "apps"       // app center: apps and their keys
	ModIAM     = "iam"        // users, projects, audit
	ModAlgos   = "algorithms" // algorithm repository: algorithms and versions (no instances)
	ModFlows   = "flows"      // studio: flows and their versions
	ModTasks   = "tasks"      // task service: tasks and their state
	ModData    = "data"       // records, objects, resumable uploads, retention
	ModDevices = "devices"    // device center: drivers, status, snapshots

	// Roles.
	ModRuntime   = "runtime"   // this process's algorithm instances (worker side)
	ModAPI       = "api"       // action gateway at POST /
	ModBootstrap = "bootstrap" // first admin user and key on an empty store
	ModScheduler = "scheduler" // places tasks on workers (one active, elected)
	ModWorker    = "worker"    // runs the tasks placed on this node
	ModPush      = "push"      // message gateway: subscriptions over webhook, gRPC, SSE
	ModEdgeHub   = "edgehub"   // cloud: edge nodes' TLS leaf links and the records they forward (on with --edge.leaf-addr)
	ModEdgeLink  = "edgelink"  // edge: this site's link to its cloud and its disk buffer (--cloud, --join-token)

	// Groups.
	ModControl = "control" // every module but the worker and the runtime: the control plane
	ModAll     = "all"     // every module
	ModEdge    = "edge"    // an edge box: every module, plus the link to its cloud
)

// deps is the dependency map: a module runs only after its dependencies.
var deps = map[string][]string{
	ModStore:   nil,
	ModBus:     nil,
	ModSecrets: nil,
	ModBlob:    {ModSecrets},

	ModApps:    {ModStore, ModSecrets, ModIAM},
	ModIAM:     {ModStore, ModSecrets}, // secrets: the key that signs audit checkpoints
	ModAlgos:   {ModStore, ModSecrets},
	ModFlows:   {ModStore, ModAlgos},
	ModTasks:   {ModStore, ModFlows},
	ModData:    {ModStore, ModBlob},
	ModDevices: {ModStore, ModSecrets, ModBlob, ModBus, ModIAM}, // iam: the audit log of refused GB28181 registrations

	ModRuntime:   {ModAlgos, ModBlob},
	ModAPI:       {ModApps, ModIAM, ModAlgos, ModFlows, ModTasks, ModData, ModDevices, ModBlob},
	ModBootstrap: {ModApps, ModIAM},
	ModScheduler: {ModTasks},
	ModWorker:    {ModTasks, ModFlows, ModRuntime, ModData, ModDevices, ModBus},
	ModPush:      {ModApps, ModStore, ModSecrets, ModBus},
	ModEdgeHub:   {ModStore, ModData, ModFlows, ModTasks, ModDevices},
	ModEdgeLink:  {ModSecrets, ModData, ModFlows, ModTasks, ModDevices},

	ModControl: {ModAPI, ModBus, ModBootstrap, ModScheduler, ModPush, ModEdgeHub},
	ModAll:     {ModControl, ModWorker},
	// The link starts before the worker, whose records it buffers.
	ModEdge: {ModEdgeLink, ModAll},
}

// initFuncs maps each module to the method that builds it (inits.go). An
// init returns a stop function (nil when there is nothing to stop).
func (p *Platform) initFuncs() map[string]initFunc {
	return map[string]initFunc{
		ModStore:     p.initStore,
		ModBus:       p.initBus,
		ModSecrets:   p.initSecrets,
		ModBlob:      p.initBlob,
		ModApps:      p.initApps,
		ModIAM:       p.initIAM,
		ModAlgos:     p.initAlgorithms,
		ModFlows:     p.initFlows,
		ModTasks:     p.initTasks,
		ModData:      p.initData,
		ModDevices:   p.initDevices,
		ModRuntime:   p.initRuntime,
		ModAPI:       p.initAPI,
		ModBootstrap: p.initBootstrap,
		ModScheduler: p.initScheduler,
		ModWorker:    p.initWorker,
		ModPush:      p.initPush,
		ModEdgeHub:   p.initEdgeHub,
		ModEdgeLink:  p.initEdgeLink,
		ModEdge:      nothing,
		ModControl:   nothing,
		ModAll:       nothing,
	}
}

// initFunc builds a module and returns how to stop it.
type initFunc func(context.Context) (stop func(context.Context) error, err error)

// nothing is the init of a group: its dependencies are the work.
func nothing(context.Context) (func(context.Context) error, error) { return nil, nil }

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

// Running reports whether module name runs in this process.
func (p *Platform) Running(name string) bool { return slices.Contains(p.order, name) }
