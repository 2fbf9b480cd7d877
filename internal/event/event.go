// Package event is the contract of everything that leaves a task or a
// center as an event: the CloudEvents 1.0 JSON form, the bus topics it
// travels on, the bus headers beside it, how its ids are made stable, and
// the W3C trace context it carries from source to subscriber.
//
// Producers (task sinks, the device center) and consumers (the message
// gateway, tasks reading another task's output) all use this package, so
// the contract has one home. It imports nothing of ours.
package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// SpecVersion is the CloudEvents version of every event.
const SpecVersion = "1.0"

// DataContentType is the content type of every event's data.
const DataContentType = "application/json"

// ContentType is the media type of one event in the CloudEvents JSON
// (structured) format, the body of every webhook.
const ContentType = "application/cloudevents+json"

// Bus headers published beside an event.
const (
	// HeaderID carries the event id. It is the bus's deduplication header
	// (bus.HeaderID): a republished event with the same id is dropped by
	// the bus within its window, and consumers read the id without
	// decoding the event.
	HeaderID = "id"
	// HeaderTraceParent carries the event's W3C traceparent.
	HeaderTraceParent = "traceparent"
)

// topicPrefix starts the name of every project's events topic.
const topicPrefix = "events."

// Topic is the bus topic of a project's events, where tasks publish their
// results and the device center its status changes, keyed by subject.
func Topic(projectID string) string { return topicPrefix + projectID }

// Event is a CloudEvents 1.0 event in its JSON form. TaskID and ProjectID
// are Tianshu's extension attributes (taskid, projectid); TraceParent is
// the distributed-tracing extension.
type Event struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Subject         string         `json:"subject,omitempty"`
	Time            string         `json:"time"`
	DataContentType string         `json:"datacontenttype"`
	TraceParent     string         `json:"traceparent,omitempty"`
	TaskID          string         `json:"taskid"`
	ProjectID       string         `json:"projectid"`
	Data            map[string]any `json:"data"`
}

// New returns an event with the fixed attributes set and t formatted as
// CloudEvents wants it (RFC 3339, UTC).
func New(id, source, typ, subject string, t time.Time, data map[string]any) Event {
	return Event{SpecVersion: SpecVersion, ID: id, Source: source, Type: typ, Subject: subject,
		Time: t.UTC().Format(time.RFC3339Nano), DataContentType: DataContentType, Data: data}
}

// Headers returns the bus headers to publish e with.
func (e *Event) Headers() map[string]string {
	h := map[string]string{HeaderID: e.ID}
	if e.TraceParent != "" {
		h[HeaderTraceParent] = e.TraceParent
	}
	return h
}

// Marshal returns e's JSON form.
func (e *Event) Marshal() ([]byte, error) { return json.Marshal(e) }

// ErrInvalid means bytes are not an event: not a JSON object, or missing
// a required attribute.
var ErrInvalid = errors.New("event: invalid")

// Decode reads an event's JSON form. Attributes it does not know
// (extensions of other producers) are ignored, so newer producers do not
// break older consumers. It requires specversion, id, source and type.
func Decode(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case e.SpecVersion == "":
		return Event{}, fmt.Errorf("%w: no specversion", ErrInvalid)
	case e.ID == "":
		return Event{}, fmt.Errorf("%w: no id", ErrInvalid)
	case e.Source == "":
		return Event{}, fmt.Errorf("%w: no source", ErrInvalid)
	case e.Type == "":
		return Event{}, fmt.Errorf("%w: no type", ErrInvalid)
	}
	return e, nil
}

// TaskSource is the source attribute of a task's events.
func TaskSource(taskID string) string { return "/tianshu/tasks/" + taskID }

// DeviceSource is the source attribute of a device's events.
func DeviceSource(deviceID string) string { return "/tianshu/devices/" + deviceID }

// TaskEventID is the id of the output of the given kind ("evt", "rec")
// that one message of a task produced at origin, the output's place in the
// flow (flow.Call.Origin: the node's path and the index of every foreach
// item it ran for, e.g. "each/save[2]"). It depends only on the task, the
// message id (stable across redeliveries) and the origin, never on the
// order in which concurrent items reached the sinks, so a redelivered
// message yields the same id for the same output and the bus and the
// records store drop what they already have. An origin longer than
// maxOriginLen (bodies nested deep, with long node ids) is replaced by its
// hash, so that ids stay short enough for the stores that keep them.
func TaskEventID(taskID, messageID, kind, origin string) string {
	if len(origin) > maxOriginLen {
		sum := sha256.Sum256([]byte(origin))
		origin = "~" + hex.EncodeToString(sum[:12])
	}
	return taskID + ":" + messageID + ":" + kind + "-" + origin
}

// maxOriginLen is the longest origin TaskEventID keeps as it is.
const maxOriginLen = 128

// DeviceStatusID is the id of a device's status change at t.
func DeviceStatusID(deviceID string, t time.Time) string {
	return deviceID + ":status:" + strconv.FormatInt(t.UnixNano(), 10)
}

// RecordID is the id of the record a store node writes for the output with
// event id eventID: the same output always makes the same record id.
func RecordID(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return "rec-" + hex.EncodeToString(sum[:12])
}

// DeviceStatusType is the event type of a device entering status.
func DeviceStatusType(status string) string { return "tianshu.device." + status }

// Stall event types: a device a task reads, or the task itself, stopped
// getting new frames (none arrive, or the same picture again), and got
// them again.
const (
	DeviceStalledType   = "tianshu.device.stalled"
	DeviceRecoveredType = "tianshu.device.recovered"
	TaskStalledType     = "tianshu.task.stalled"
	TaskRecoveredType   = "tianshu.task.recovered"
)

// StallID is the id of a stall event of the given type about subject (a
// device or task id) at t.
func StallID(subject, typ string, t time.Time) string {
	return subject + ":" + typ + ":" + strconv.FormatInt(t.UnixNano(), 10)
}
