package edge

import (
	"encoding/json"
	"time"

	"github.com/tianshu-ai/tianshu/internal/data"
)

// Subjects on the link. <node> is the edge node's id; the hub lets a node
// publish only under its own.
const (
	subjectBeat    = "edge.%s.beat"    // heartbeat: Beat → beatReply
	subjectRecords = "edge.%s.records" // records: []wireRecord → recordsReply
	outboxSubject  = "edge.outbox"     // the edge's own buffer stream
	outboxStream   = "edge_outbox"
)

// maxBatch bounds the records of one forward: a batch is one link message.
const maxBatch = 500

// maxLinkMessage bounds a link message, the hub's max_payload.
const maxLinkMessage = 8 << 20

// wireRecord is a record on the link: its id, kept, makes forwarding
// idempotent. The project is not sent: the cloud files a node's records
// under the node's own project.
type wireRecord struct {
	ID       string          `json:"Id"`
	TaskID   string          `json:"TaskId"`
	DeviceID string          `json:"DeviceId"`
	Type     string          `json:"Type"`
	TimeMs   int64           `json:"TimeMs"`
	Data     json.RawMessage `json:"Data"`
	Objects  []string        `json:"Objects,omitempty"`
	Bytes    int64           `json:"Bytes"`
	// Blobs are the record's objects (crops, frames) that cross the link
	// with it, in the same outbox message: a record and its objects are
	// buffered, dropped and forwarded together.
	Blobs []wireBlob `json:"Blobs,omitempty"`
}

// wireBlob is an object of a record on the link, under its key on the edge
// (projects/<project>/tasks/<task>/…); the cloud files it under the same
// path in the node's project.
type wireBlob struct {
	Key         string `json:"Key"`
	ContentType string `json:"ContentType"`
	Data        []byte `json:"Data"`
}

// Object bounds: a record's objects cross the link within maxRecordObjects
// bytes (raw; base64 in JSON makes 4/3 of it), so that the record, its
// document (data.MaxRecordData) and its objects stay one outbox message
// within maxItemBytes; a batch of items is read from the outbox within
// maxBatchBytes, one link message.
const (
	maxRecordObjects = 4 << 20
	maxItemBytes     = 7 << 20
	maxBatchBytes    = maxLinkMessage - 512<<10
)

func toWire(r data.Record) wireRecord {
	return wireRecord{ID: r.ID, TaskID: r.TaskID, DeviceID: r.DeviceID, Type: r.Type, TimeMs: r.Time.UnixMilli(),
		Data: r.Data, Objects: r.Objects, Bytes: r.Bytes}
}

// wireEvent is an event a task on the edge published (a CloudEvent on the
// edge's events topic of its default project), on its way to the cloud's
// bus, where the cloud's subscriptions deliver it. Kind tells it from a
// record in the outbox; Key is the bus key it was published with (its
// subject), which keeps per-key order in the cloud.
type wireEvent struct {
	Kind  string          `json:"Kind"`
	ID    string          `json:"Id"`
	Key   string          `json:"Key"`
	Event json.RawMessage `json:"Event"`
}

// wireItem is an item of the outbox as the hub reads it: a record, or an
// event when Kind says so.
type wireItem struct {
	Kind string `json:"Kind"`
	wireRecord
	Key   string          `json:"Key"`
	Event json.RawMessage `json:"Event"`
}

// kindEvent marks a wireEvent; records carry no Kind (the outbox held only
// records before events crossed the link, and such a buffer still reads).
const kindEvent = "event"

// record is w as the cloud stores it, without object keys: the hub adds
// those of the objects that crossed with it, under the cloud's keys (a key
// the edge names could be one of the cloud's own objects of another
// project, whose URLs DescribeRecords would sign, and which deleting the
// record could delete).
func (w wireRecord) record(projectID string) data.Record {
	return data.Record{ID: w.ID, ProjectID: projectID, TaskID: w.TaskID, DeviceID: w.DeviceID, Type: w.Type,
		Time: time.UnixMilli(w.TimeMs).UTC(), Data: w.Data, Bytes: w.Bytes}
}

// beatMsg is a heartbeat; RttUs is the round trip of the previous one.
type beatMsg struct {
	Beat
	RttUs int64 `json:"RttUs"`
}

// linkReply answers a heartbeat or a batch: Error empty means done.
type linkReply struct {
	Accepted int    `json:"Accepted,omitempty"`
	Error    string `json:"Error,omitempty"`
}
