package flow

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// mapZones serves zones from a map: the unit under test here is the node's
// scaling and mode checks; the device center's real zones drive a task end
// to end in internal/app (TestTaskZoneFromDevice).
type mapZones map[string]DeviceZone

func (m mapZones) Zone(_ context.Context, dev, name string) (DeviceZone, error) {
	z, ok := m[dev+"/"+name]
	if !ok {
		return DeviceZone{}, ErrUnknownZone
	}
	return z, nil
}

func TestZoneNamed(t *testing.T) {
	zones := mapZones{
		"dev-1/left": {Kind: "polygon", Points: [][2]float64{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}},
		"dev-1/wire": {Kind: "line", Points: [][2]float64{{0.5, 0}, {0.5, 1}}},
		"dev-2/left": {Kind: "polygon", Points: [][2]float64{{0.5, 0}, {1, 0}, {1, 1}, {0.5, 1}}},
	}
	opts := testOptions()
	opts.Zones = zones
	obj := func(x, id float64) map[string]any {
		return map[string]any{"box": []any{x, 10.0, 2.0, 2.0}, "trackId": id}
	}
	run := func(p *Plan, st *State, data map[string]any, key string) (string, error) {
		res, err := p.Run(context.Background(), Input{Data: data, State: st, Key: key, Trace: true})
		if err != nil {
			return "", err
		}
		out, ok := res.Output["probe"]
		if !ok {
			return "stopped", nil
		}
		return fmt.Sprint(out.(map[string]any)["v"]), nil
	}
	doc := func(cfg string) string {
		return `{"nodes": [{"id": "n", "kind": "zone", "inputs": {"objects": "$input.o"}, "config": ` + cfg + `},
			{"id": "probe", "kind": "passthrough", "inputs": {"v": "$n.objects"}}], "edges": [{"from": "n", "to": "probe"}]}`
	}

	// The same normalized zone keeps the left half of a 640- and a 1280-wide frame.
	p := compileDoc(t, doc(`{"zone": "left", "anchor": "center"}`), opts)
	for _, w := range []float64{640, 1280} {
		got, err := run(p, nil, map[string]any{"device": "dev-1", "width": w, "height": 480.0, "o": []any{obj(w*0.25, 1), obj(w*0.75, 2)}}, "dev-1")
		if err != nil || !strings.Contains(got, "trackId:1") || strings.Contains(got, "trackId:2") {
			t.Fatalf("width %v: %s %v", w, got, err)
		}
	}
	// Another device's zone of the same name is the right half; the key names the device when $input.device is absent.
	if got, err := run(p, nil, map[string]any{"width": 640.0, "height": 480.0, "o": []any{obj(160, 1)}}, "dev-2"); err != nil || got != "stopped" {
		t.Fatalf("dev-2: %s %v", got, err)
	}
	// A line crossing, with its direction.
	p = compileDoc(t, doc(`{"zone": "wire", "anchor": "center"}`), opts)
	st := NewState(nil)
	in := func(x float64) map[string]any {
		return map[string]any{"device": "dev-1", "width": 100.0, "height": 100.0, "o": []any{obj(x, 7)}}
	}
	if got, _ := run(p, st, in(10), "dev-1"); got != "stopped" {
		t.Fatal(got)
	}
	if got, _ := run(p, st, in(80), "dev-1"); !strings.Contains(got, "direction:right") {
		t.Fatal(got)
	}
	// Errors name the zone: unknown, no frame size, a mode for the other kind.
	for _, tc := range []struct{ cfg, dev, want string }{
		{`{"zone": "nowhere"}`, "dev-1", "unknown zone"},
		{`{"zone": "wire", "mode": "inside"}`, "dev-1", "is a line"},
		{`{"zone": "left", "mode": "cross"}`, "dev-1", "is a polygon"},
	} {
		p := compileDoc(t, doc(tc.cfg), opts)
		_, err := run(p, nil, map[string]any{"device": tc.dev, "width": 10.0, "height": 10.0, "o": []any{obj(1, 1)}}, tc.dev)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !IsPermanent(err) {
			t.Errorf("%s: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	p = compileDoc(t, doc(`{"zone": "left"}`), opts)
	if _, err := run(p, nil, map[string]any{"device": "dev-1", "o": []any{}}, "dev-1"); err == nil || !strings.Contains(err.Error(), "width and height") {
		t.Errorf("no frame size: %v", err)
	}
	// Compile errors: zone with polygon; no zones where the flow runs.
	for _, tc := range []struct {
		cfg  string
		opts Options
		want string
	}{
		{`{"zone": "left", "polygon": [[0,0],[1,0],[1,1]]}`, opts, "only one"},
		{`{"zone": "left"}`, testOptions(), "not available"},
		{`{"zone": "left", "mode": "sideways"}`, opts, "unknown mode"},
	} {
		spec, err := Parse([]byte(doc(tc.cfg)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		errs := Validate(context.Background(), spec, tc.opts)
		if len(errs) == 0 || !strings.Contains(errs.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.cfg, errs, tc.want)
		}
	}
}
