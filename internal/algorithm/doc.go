// Package algorithm is the algorithm center's runtime: it turns an algorithm
// version's definition (a plain, JSON-serialisable Version) into running
// instances and calls them fast.
//
// A Manager owns everything: Apply starts a version on its runtime
// (builtin Go functions, static endpoints, supervised processes unpacked
// from an install package; containers are recorded only), Stop stops it,
// Instances reports each instance's status, Invoke calls a version and
// Contract returns what it declares. The package knows nothing of flows:
// internal/algorepo adapts the Manager to the flow engine's Algorithms
// interface.
//
// Calls go through one shared HTTP transport, are balanced over ready
// instances by least outstanding requests (or by rendezvous hashing of a
// key when the version is sticky), bounded by the caller's deadline and the
// version's timeout, retried only when that is known to be safe, guarded
// by a circuit breaker per instance, and optionally gathered into micro
// batches. Three wire protocols are spoken: tianshu-v1 (ours, see
// docs/protocol-tianshu-v1.md), oip-v2 (the Open Inference Protocol over
// REST) and http-mapped (any vendor HTTP API reshaped by Starlark scripts).
//
// Store and actions live elsewhere: the caller persists Version values and
// drives the Manager from them.
package algorithm
