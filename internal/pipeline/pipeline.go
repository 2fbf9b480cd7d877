// Package pipeline is the contract between a task's sources, its flow and
// its sinks on a worker: the messages sources emit, the source and source
// factory interfaces, and the records store nodes hand to the data center.
//
// It is a leaf: the task runtime consumes these types, and the centers
// that provide sources (devices, uploads) and sinks (records) implement
// them without importing the task runtime or each other. It imports only
// the bus, which topic sources read.
package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
)

// Message is one unit of work from a source: a frame, an uploaded picture,
// a bus message.
type Message struct {
	// ID is stable across redeliveries (frame sequence, bus sequence), so
	// event ids derived from it are stable and consumers can deduplicate.
	ID   string
	Key  string // partitions stream state: the device id
	Time time.Time
	Data map[string]any
	// TraceParent is the W3C trace context the message arrived with (a
	// CloudEvent from another task); empty starts a new trace.
	TraceParent string
	// Ack is called once the flow and its sinks finished with the message
	// (err nil) or gave up on it; sources that need acknowledgement (the
	// bus) set it, others leave it nil.
	Ack func(err error)
}

// Emit hands a message to the task's flow. For back-pressured sources it
// blocks while the task is busy; for live sources it never blocks and the
// newest message replaces an older one still waiting.
type Emit func(ctx context.Context, m Message) error

// ErrSourceDone is returned by a batch source (uploads) that has delivered
// everything: the task then ends Completed.
var ErrSourceDone = errors.New("task: source finished")

// Source produces messages for a task until ctx ends.
type Source interface {
	// Run emits messages until ctx is cancelled, the source fails (it is
	// restarted with backoff), or it returns ErrSourceDone.
	Run(ctx context.Context, emit Emit) error
	// Live reports whether stale messages should be dropped rather than
	// queued (latest-frame-wins for cameras, SourceSpec.DropPolicy
	// "latest").
	Live() bool
}

// SourceSpec names one source of a task.
type SourceSpec struct {
	// Type is device, upload or topic.
	Type string `json:"Type" validate:"required,oneof=device upload topic"`
	// Id is the device id, upload id or bus topic.
	Id string `json:"Id" validate:"required,max=128"`
	// DropPolicy says what happens to frames the flow is too busy for.
	// "latest" (the default for devices) keeps only the newest waiting
	// frame and drops the others, as a live camera should. "none" applies
	// back-pressure so every frame goes through the flow, and a source that
	// can resume (a replay device) continues from its last checkpoint when
	// the task restarts or moves to another worker. Topic and upload sources
	// never drop: "none" is what they do, and "latest" is refused for them.
	DropPolicy string `json:"DropPolicy,omitempty" validate:"omitempty,oneof=latest none"`
}

// Drop policies of a SourceSpec.
const (
	DropLatest = "latest"
	DropNone   = "none"
)

// SourceEnv is what a source factory gets about the task it serves.
type SourceEnv struct {
	TaskID, ProjectID, NodeID string
	Bus                       bus.Bus
	// Index is the source's position in the task's Sources.
	Index int
	// Position is the checkpoint this source saved last, on any worker and
	// in any earlier run of the task; empty when it never saved one. Its
	// format is the source's own.
	Position string
	// SavePosition records the source's progress: the position up to which
	// every message was acknowledged, so a resumed source loses nothing.
	// It does not block: the worker writes the newest position about once
	// a second (its reconcile interval) and when the task stops, and only
	// while it still owns the task (same node and placement epoch). A
	// source must only ever save positions that move forward.
	SavePosition func(ctx context.Context, pos string) error
}

// SourceFactory builds the source for one SourceSpec of a task.
type SourceFactory func(ctx context.Context, spec SourceSpec, env SourceEnv) (Source, error)

// RecordStore keeps the records that store nodes produce; the data center
// implements it. StoreRecord returns the record's id once the record is
// durably written.
type RecordStore interface {
	StoreRecord(ctx context.Context, r Record) (string, error)
}

// RecordCrops is a RecordStore that also signs a stored record's crop:
// the URL from which the picture its Crop field keeps (else its first
// object) can be fetched without credentials for the platform's URL
// lifetime, or "" when it keeps none.
type RecordCrops interface {
	CropURL(ctx context.Context, recordID string) (string, error)
}

// Record is a store node's record with its task context.
type Record struct {
	ProjectID, TaskID, DeviceID, Type string
	Time                              time.Time
	Data                              map[string]any
	// EventID is stable across redeliveries of the same message, so the
	// store can deduplicate.
	EventID string
}
