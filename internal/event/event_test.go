package event_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/event"
)

// TestRoundTrip: an event written by a producer reads back the same, with
// every CloudEvents 1.0 required attribute present on the wire.
func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 27, 28, 512_000_000, time.FixedZone("CST", 8*3600))
	e := event.New(event.TaskEventID("task-7f2a", "frame-000123", "evt", "each/pub[2]"), event.TaskSource("task-7f2a"),
		"tianshu.face.captured", "dev-3k9x2m7q", at, map[string]any{"RecordId": "rec-1", "Box": []any{412.0, 96.0, 88.0, 88.0}})
	e.TaskID, e.ProjectID, e.TraceParent = "task-7f2a", "default", event.ChildOf(event.NewTraceID())
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var wire map[string]any
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	for _, attr := range []string{"specversion", "id", "source", "type", "time", "datacontenttype", "subject", "traceparent", "taskid", "projectid", "data"} {
		if _, ok := wire[attr]; !ok {
			t.Errorf("attribute %q missing on the wire: %s", attr, b)
		}
	}
	if wire["specversion"] != "1.0" || wire["time"] != "2026-11-29T02:27:28.512Z" || wire["id"] != "task-7f2a:frame-000123:evt-each/pub[2]" {
		t.Errorf("wire form: %s", b)
	}
	got, err := event.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
	}
	h := e.Headers()
	if h[event.HeaderID] != e.ID || h[event.HeaderTraceParent] != e.TraceParent {
		t.Errorf("headers %v", h)
	}
}

// TestUnknownAttributes: a producer's extension attributes do not stop a
// consumer from reading the event.
func TestUnknownAttributes(t *testing.T) {
	b := []byte(`{"specversion":"1.0","id":"x-1","source":"/elsewhere","type":"vendor.thing","time":"2026-11-29T10:27:28Z",
		"datacontenttype":"application/json","projectid":"p","comexampleextension1":"value","sequence":7,"data":{"a":1,"nested":{"b":[1,2]}}}`)
	e, err := event.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "x-1" || e.Type != "vendor.thing" || e.ProjectID != "p" || e.Data["a"] != 1.0 {
		t.Errorf("decoded %+v", e)
	}
}

func TestDecodeRefusesNonEvents(t *testing.T) {
	for _, in := range []string{`[]`, `"x"`, `{`, `{}`, `{"specversion":"1.0","source":"/s","type":"t"}`,
		`{"specversion":"1.0","id":"i","type":"t"}`, `{"specversion":"1.0","id":"i","source":"/s"}`, `{"id":"i","source":"/s","type":"t"}`} {
		if _, err := event.Decode([]byte(in)); !errors.Is(err, event.ErrInvalid) {
			t.Errorf("Decode(%s) = %v, want ErrInvalid", in, err)
		}
	}
}

// TestIDsStableAcrossRedelivery: the ids of a message's outputs depend
// only on the task, the message id and the output's place in the flow, so
// a redelivered message makes the same event and record ids (the bus drops
// the duplicate event by HeaderID, the store the duplicate record).
func TestIDsStableAcrossRedelivery(t *testing.T) {
	first := []string{event.TaskEventID("task-1", "dev-1-42", "rec", "each/save[0]"), event.TaskEventID("task-1", "dev-1-42", "evt", "each/pub[0]")}
	again := []string{event.TaskEventID("task-1", "dev-1-42", "rec", "each/save[0]"), event.TaskEventID("task-1", "dev-1-42", "evt", "each/pub[0]")}
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("ids differ across deliveries: %v vs %v", first, again)
	}
	if event.RecordID(first[0]) != event.RecordID(again[0]) {
		t.Error("record id differs across deliveries")
	}
	if r := event.RecordID(first[0]); !strings.HasPrefix(r, "rec-") || len(r) != 28 || r == event.RecordID(first[1]) {
		t.Errorf("RecordID = %q", r)
	}
	if event.TaskEventID("task-1", "dev-1-43", "rec", "each/save[0]") == first[0] {
		t.Error("two messages share an id")
	}
	if event.TaskEventID("task-1", "dev-1-42", "rec", "each/save[1]") == first[0] {
		t.Error("two items share an id")
	}
	// A deep origin is hashed: still stable and distinct, but short.
	deep := strings.Repeat("outer-foreach-node/", 8) + "save[1][2][3][4][5][6][7][8]"
	a, b := event.TaskEventID("task-1", "dev-1-42", "rec", deep), event.TaskEventID("task-1", "dev-1-42", "rec", deep+"x")
	if a != event.TaskEventID("task-1", "dev-1-42", "rec", deep) || a == b || len(a) > 80 {
		t.Errorf("deep origins: %q, %q", a, b)
	}
}

// TestHeaderIDIsTheBusDedupHeader: the event id header must be the one the
// bus deduplicates by, or republished events would be delivered twice.
func TestHeaderIDIsTheBusDedupHeader(t *testing.T) {
	if event.HeaderID != bus.HeaderID {
		t.Fatalf("event.HeaderID %q != bus.HeaderID %q", event.HeaderID, bus.HeaderID)
	}
	for _, h := range []string{event.HeaderID, event.HeaderTraceParent} {
		if err := bus.ValidateHeader(h, "v"); err != nil {
			t.Errorf("header %q: %v", h, err)
		}
	}
}

func TestTopic(t *testing.T) {
	if got := event.Topic("demo"); got != "events.demo" {
		t.Fatalf("Topic = %q", got)
	}
	if err := bus.ValidateTopic(event.Topic("prj-abc_1")); err != nil {
		t.Fatal(err)
	}
}

func TestTraceParent(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tp, ok := event.ParseTraceParent(valid)
	if !ok || tp.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || tp.SpanID != "00f067aa0ba902b7" || !tp.Sampled || tp.String() != valid {
		t.Fatalf("ParseTraceParent(valid) = %+v, %v", tp, ok)
	}
	if tp, ok := event.ParseTraceParent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-later-fields"); !ok || tp.Sampled {
		t.Errorf("a later version's first fields should parse: %+v %v", tp, ok)
	}
	for _, bad := range []string{"", "00", valid + "-x", "ff" + valid[2:], "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		if _, ok := event.ParseTraceParent(bad); ok {
			t.Errorf("ParseTraceParent(%q) accepted", bad)
		}
	}
	if got := event.TraceIDOf(valid); got != tp.TraceID {
		t.Errorf("TraceIDOf keeps the incoming trace: %q", got)
	}
	fresh := event.TraceIDOf("garbage")
	if len(fresh) != 32 || fresh == event.TraceIDOf("garbage") {
		t.Errorf("TraceIDOf(garbage) should start a new random trace: %q", fresh)
	}
	child := event.ChildOf(tp.TraceID)
	ctp, ok := event.ParseTraceParent(child)
	if !ok || ctp.TraceID != tp.TraceID || ctp.SpanID == tp.SpanID {
		t.Errorf("ChildOf = %q", child)
	}
}

func TestDeviceStatus(t *testing.T) {
	at := time.Unix(1795949290, 5)
	if id := event.DeviceStatusID("dev-1", at); id != "dev-1:status:1795949290000000005" {
		t.Errorf("DeviceStatusID = %q", id)
	}
	if typ := event.DeviceStatusType("online"); typ != "tianshu.device.online" {
		t.Errorf("DeviceStatusType = %q", typ)
	}
	if src := event.DeviceSource("dev-1"); src != "/tianshu/devices/dev-1" {
		t.Errorf("DeviceSource = %q", src)
	}
}
