package app_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

func readExample(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// The examples are real requests: they are accepted as they stand.
func TestExamplesAreValid(t *testing.T) {
	media := t.TempDir()
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", media}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	flow, _ := os.ReadFile("../../examples/flows/face-structuring.json")
	if v := c.mustCall("ValidateFlow", map[string]any{"Document": string(flow)}); v["Valid"] != true {
		t.Fatalf("face-structuring.json: %v", v["ErrorSet"])
	}
	c.mustCall("CreateDevice", readExample(t, "devices/gate-camera-rtsp.json"))
	dev := readExample(t, "devices/demo-camera.json")
	dev["Address"] = media
	c.mustCall("CreateDevice", dev)
	c.mustCall("CreateSubscription", readExample(t, "subscriptions/faces-webhook.json"))
	sse := readExample(t, "subscriptions/faces-sse.json")
	delete(sse, "ProjectId")
	c.mustCall("CreateSubscription", sse)
}
