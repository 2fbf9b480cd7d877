package flow

import (
	"context"
	"time"
)

// AlgorithmRef names one algorithm version. An empty Version means the
// algorithm's current version, resolved by the Algorithms implementation.
type AlgorithmRef struct {
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
}

// Field is one input or output of an algorithm's contract. Type is one of
// image, string, number, integer, bool, object, list, any (or empty).
// Items are the fields of each element of an objects or list output, as
// the contract declares them (for an editor; not checked).
type Field struct {
	Name     string
	Type     string
	Required bool
	Doc      string
	Items    []Field
}

// Contract is what an algorithm version declares about its inputs and
// outputs; validation uses it to refuse missing or unknown inputs,
// literals of the wrong type, and paths into outputs that do not exist.
type Contract struct {
	Inputs  []Field
	Outputs []Field // empty: outputs are not declared and not checked
}

// Algorithms is how the flow engine reaches algorithm versions; the
// algorithm repository (internal/algorepo) implements it over the
// algorithm runtime (tests use in-process fakes). Invoke owns retries of
// transport failures below the node's own retry policy and must honour
// ctx. Contract is called while compiling, with the ctx given to Compile
// or Validate, and may read a store; it returns ErrUnknownAlgorithm
// (wrapped or not) for a reference that does not exist, and other errors
// (ctx's included) when it cannot tell.
type Algorithms interface {
	Invoke(ctx context.Context, ref AlgorithmRef, inputs map[string]any) (map[string]any, error)
	Contract(ctx context.Context, ref AlgorithmRef) (*Contract, error)
}

// RoutedAlgorithms is Algorithms that may pick the version per camera (a
// canary): an algorithm node that names no version calls InvokeFor with
// the message's route instead of Invoke.
type RoutedAlgorithms interface {
	Algorithms
	InvokeFor(ctx context.Context, ref AlgorithmRef, r Route, inputs map[string]any) (map[string]any, error)
}

// Route says where a message comes from: Key is its partition key (a
// camera's device id) and Group the device's group, from the message's
// "group" field.
type Route struct {
	Key, Group string
}

// Zones resolves the named zones drawn on devices (polygons and lines in
// normalized coordinates, 0..1 of the frame's width and height) for zone
// nodes that name one. It is called per message, so an implementation
// caches; it must only see the devices of the flow's project.
// ErrUnknownZone (wrapped or not) says the device has no zone of that name.
type Zones interface {
	Zone(ctx context.Context, deviceID, name string) (DeviceZone, error)
}

// DeviceZone is a zone drawn on a device: Kind polygon (3 or more points)
// or line (2 points, crossing direction from Points[0] to Points[1]).
type DeviceZone struct {
	Kind   string
	Points [][2]float64
}

// FlowRef names one flow version for a subflow node.
type FlowRef struct {
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
}

// Flows resolves subflow references at compile time (the studio
// implements it over the store). Versions are immutable, so the compiled
// plan embeds the subflow and needs no lookup at run time.
type Flows interface {
	Flow(ref FlowRef) (*Spec, error)
}

// Record is what a store node hands to Sinks.Store: a structured result
// the tasks layer writes to the data center, adding task and project.
type Record struct {
	Type string         // from the node's config, e.g. "face"
	Key  string         // the message's Input.Key (device), for indexing
	Time time.Time      // the message time
	Data map[string]any // the node's mapped inputs
	// Origin is the store node's place in the message's run (Call.Origin):
	// the same on every run of the message, so the record's id can be.
	Origin string
}

// Event is what a publish node hands to Sinks.Publish; the tasks layer
// wraps it into a CloudEvent with a stable id.
type Event struct {
	Type    string // e.g. "tianshu.face.captured"
	Subject string // the node's subject input, else Input.Key
	Time    time.Time
	Data    map[string]any
	// Origin is the publish node's place in the message's run
	// (Call.Origin): the same on every run of the message, so the event's
	// id can be, and a bus that has it already drops the repeat.
	Origin string
}

// Sinks is where store and publish nodes deliver; the tasks layer
// implements it per task. Store returns the new record's id, so later
// nodes can refer to it ($store.recordId). A message that is run again
// (redelivered after a sink failed) hands each output with the Origin it
// had the first time; ids derived from it let the store and the bus drop
// what they already have and keep what they do not.
type Sinks interface {
	Store(ctx context.Context, rec Record) (string, error)
	Publish(ctx context.Context, ev Event) error
}

// CropSigner is what Sinks may also do: sign the URL of the crop of a
// record stored through them ("" where it keeps none), valid for the
// platform's URL lifetime. Match nodes put it in their hit events, so that
// a subscriber shows the face without calling back.
type CropSigner interface {
	CropURL(ctx context.Context, recordID string) (string, error)
}

// Tracer is an optional hook for tracing spans per node, kept free of any
// tracing library: the caller adapts it to OpenTelemetry or anything else.
// StartNode returns the context the node runs with and a function called
// with the node's result.
type Tracer interface {
	StartNode(ctx context.Context, flow, node, kind string) (context.Context, func(err error))
}

// AlgorithmEntry is one algorithm a flow may call, with the contract of
// its current version, for an editor's palette (the studio lists a
// project's through its caller's catalog; internal/algorepo provides it).
type AlgorithmEntry struct {
	ID, Name, Description string
	// Version is the current version; empty when it has none yet, and
	// then Contract is nil.
	Version  string
	Contract *Contract
}
