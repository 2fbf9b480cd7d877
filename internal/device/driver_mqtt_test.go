package device

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func mqttBroker(t *testing.T) string {
	addr := testenv.Getenv("TIANSHU_TEST_MQTT", "127.0.0.1:1883")
	testenv.NeedTCP(t, "Mosquitto", addr)
	return "tcp://" + addr
}

const faceScript = `
def main(input):
    p = input["payload"]
    if p.get("eventType") != "faceCapture":
        return None
    return {"type": "face.captured", "data": {"age": p["face"]["age"], "topic": input["topic"]}, "snapshot": p.get("image")}
`

func TestMQTTEvents(t *testing.T) {
	broker := mqttBroker(t)
	rt, _ := newTestRuntime(t)
	topic := fmt.Sprintf("tianshu/test/%d/cam1/events", time.Now().UnixNano())
	cfg := Config{ID: "mq", Driver: "mqtt", Address: broker,
		Options: map[string]any{"topic": topic, "qos": 1.0, "script": faceScript, "snapshot_frames": true}}
	if res, err := rt.Probe(context.Background(), cfg); err != nil || !res.Online {
		t.Fatalf("probe %v", err)
	}
	rec := &recorder{}
	src, err := rt.Open(context.Background(), cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	raw := &recorder{}
	rawSrc, err := rt.Open(context.Background(), Config{ID: "mq-raw", Driver: "mqtt", Address: broker,
		Options: map[string]any{"topic": topic}}, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer rawSrc.Close()
	waitStatus(t, src, waitLong, "subscribed", func(s Status) bool { return s.State == StateOnline })
	waitStatus(t, rawSrc, waitLong, "subscribed", func(s Status) bool { return s.State == StateOnline })

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("pub-%d", time.Now().UnixNano())))
	if tok := pub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	img := testJPEG(t, 48, 48, 7)
	msgs := []any{
		map[string]any{"eventType": "heartbeat"},
		map[string]any{"eventType": "faceCapture", "face": map[string]any{"age": 31}, "image": base64.StdEncoding.EncodeToString(img)},
	}
	for _, m := range msgs {
		b, _ := json.Marshal(m)
		if tok := pub.Publish(topic, 1, false, b); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	if tok := pub.Publish(topic, 1, false, "not json"); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	testenv.Eventually(t, waitLong, "mapped event", func() bool { return len(rec.eventList()) >= 1 })
	testenv.Eventually(t, waitLong, "raw events", func() bool { return len(raw.eventList()) >= 3 })
	ev := rec.eventList()[0]
	if ev.Type != "face.captured" || ev.Data["age"] != float64(31) || ev.Data["topic"] != topic || string(ev.Snapshot) != string(img) || ev.DeviceID != "mq" {
		t.Fatalf("event %+v", ev)
	}
	waitStatus(t, src, waitLong, "snapshot frame", func(s Status) bool { return s.FramesDelivered == 1 })
	r := raw.eventList()
	if r[0].Type != "message" || r[0].Data["eventType"] != "heartbeat" || r[1].Data["eventType"] != "faceCapture" || r[2].Data["value"] != "not json" {
		t.Fatalf("raw events %+v", r)
	}
	if len(rec.eventList()) != 1 {
		t.Fatalf("the script should have skipped the heartbeat: %d events", len(rec.eventList()))
	}
}

func TestMQTTBadInput(t *testing.T) {
	err := Config{ID: "x", Driver: "mqtt", Address: "tcp://127.0.0.1:1883", Options: map[string]any{"topic": "a", "script": "def main(input):\n  return open('x')\n"}}.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Options.script" {
		t.Fatalf("bad script: %v", err)
	}
	if err := (Config{ID: "x", Driver: "mqtt", Address: "tcp://127.0.0.1:1883"}).Validate(); !errors.As(err, &fe) || fe.Field != "Options.topic" {
		t.Fatalf("no topic: %v", err)
	}
	rt, _ := newTestRuntime(t)
	cfg := Config{ID: "down", Driver: "mqtt", Address: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
		Options: map[string]any{"topic": "x", "timeout": "2s"}}
	if _, err := rt.Probe(context.Background(), cfg); ReasonOf(err) != ReasonUnreachable {
		t.Fatalf("probe of a dead broker: %v (%s)", err, ReasonOf(err))
	}
	src, err := rt.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st := waitStatus(t, src, waitLong, "offline", func(s Status) bool { return s.State == StateOffline })
	if st.Reason != ReasonUnreachable {
		t.Fatalf("%+v", st)
	}
}

func TestMapMQTTMessage(t *testing.T) {
	evs, err := mapMQTTMessage(context.Background(), nil, "t", []byte(`{"type":"alarm","level":3,"snapshot":"bm90IGpwZWc="}`))
	if err == nil {
		t.Fatalf("a snapshot that is not a JPEG must be refused: %+v", evs)
	}
	evs, err = mapMQTTMessage(context.Background(), nil, "t", []byte(`[{"type":"a"},{"type":"b"}]`))
	if err != nil || len(evs) != 2 || evs[1].Type != "b" {
		t.Fatalf("%+v %v", evs, err)
	}
}
