package algorepo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// scaler is a built-in that multiplies x by k: versions of one algorithm
// running different scalers tell in a flow's output which version ran.
func scaler(k float64) algorithm.Builtin {
	return algorithm.Builtin{
		Contract: algorithm.Contract{Inputs: []algorithm.Field{{Name: "x", Type: algorithm.TypeNumber, Required: true}}, Outputs: []algorithm.Field{{Name: "y", Type: algorithm.TypeNumber}}},
		Func: func(_ context.Context, in map[string]any) (map[string]any, error) {
			var x float64
			switch v := in["x"].(type) {
			case float64:
				x = v
			case int64:
				x = float64(v)
			case json.Number:
				x, _ = v.Float64()
			}
			return map[string]any{"y": k * x}, nil
		},
	}
}

// A canary sends a share of one device group's cameras to another version,
// the same cameras every message; ending it sends them back, promoting it
// moves every camera. All through the actions, with a flow that names no
// version, on SQLite with the real runtime.
func TestCanaryPerCameraGroup(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	m, err := algorithm.New(algorithm.Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	s := algorepo.New(db, map[string]algorithm.Builtin{"double": scaler(2), "triple": scaler(3)}, slog.New(slog.DiscardHandler), nil)
	if err := s.StartRuntime(ctx, m); err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, s: s, reg: api.NewRegistry()}
	algorepo.RegisterActions(e.reg, s, nil)
	if _, err := iam.NewProjects(db, nil).Create(ctx, "prj-a", "A", ""); err != nil {
		t.Fatal(err)
	}
	app := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAdmin}
	var created algorepo.CreateAlgorithmResponse
	if err := call(t, e, app, "CreateAlgorithm", map[string]any{"Name": "scale"}, &created); err != nil {
		t.Fatal(err)
	}
	alg := created.AlgorithmId
	def := func(pkg string) map[string]any {
		return map[string]any{"runtime": "builtin", "package": pkg, "contract": map[string]any{
			"inputs": []any{map[string]any{"name": "x", "type": "number", "required": true}}, "outputs": []any{map[string]any{"name": "y", "type": "number"}}}}
	}
	if err := call(t, e, app, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": alg, "Definition": def("double"), "Start": true}, nil); err != nil {
		t.Fatal(err)
	}
	// Version 2 is created stopped: version 1 stays current.
	if err := call(t, e, app, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": alg, "Definition": def("triple")}, nil); err != nil {
		t.Fatal(err)
	}
	describe := func() algorepo.AlgorithmInfo {
		var list algorepo.DescribeAlgorithmsResponse
		if err := call(t, e, app, "DescribeAlgorithms", map[string]any{"AlgorithmIds": []string{alg}}, &list); err != nil {
			t.Fatal(err)
		}
		return list.AlgorithmSet[len(list.AlgorithmSet)-1]
	}
	if cur := describe().CurrentVersion; cur != "1" {
		t.Fatalf("current version after creating a stopped one: %q", cur)
	}

	spec, err := flow.Parse([]byte(`{"name": "s", "nodes": [{"id": "a", "kind": "algorithm", "config": {"algorithm": "`+alg+`"}, "inputs": {"x": 1}}], "output": {"y": "$a.y"}}`), flow.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := flow.Compile(ctx, spec, flow.Options{Algorithms: s.ForProject("prj-a")})
	if err != nil {
		t.Fatal(err)
	}
	// versionOf runs one message of camera cam in group and names the
	// version that answered.
	versionOf := func(cam, group string) string {
		t.Helper()
		res, err := plan.Run(ctx, flow.Input{Key: cam, Data: map[string]any{"device": cam, "group": group}})
		if err != nil {
			t.Fatal(err)
		}
		switch res.Output["y"] {
		case 2.0:
			return "1"
		case 3.0:
			return "2"
		}
		t.Fatalf("output %v", res.Output)
		return ""
	}
	cams := make([]string, 200)
	for i := range cams {
		cams[i] = fmt.Sprintf("dev-%03d", i)
	}
	for _, cam := range cams[:20] {
		if v := versionOf(cam, "gate"); v != "1" {
			t.Fatalf("%s before any canary: version %s", cam, v)
		}
	}

	// Bad canaries change nothing.
	for _, tc := range []struct {
		req  map[string]any
		code api.Code
	}{
		{map[string]any{"Version": "1", "Percent": 10}, api.InvalidParameterValue},  // the current version
		{map[string]any{"Version": "9", "Percent": 10}, api.ResourceNotFound},       // no such version
		{map[string]any{"Version": "2", "Percent": 0}, api.InvalidParameterValue},   // no share
		{map[string]any{"Version": "2", "Percent": 101}, api.InvalidParameterValue}, // validation
		{map[string]any{"Version": "", "Percent": 10}, api.InvalidParameterValue},   // a share of nothing
		{map[string]any{"Version": "2", "Percent": 10, "DeviceGroups": []string{""}}, api.InvalidParameterValue},
	} {
		tc.req["AlgorithmId"] = alg
		err := call(t, e, app, "SetAlgorithmCanary", tc.req, nil)
		if ae, ok := api.AsError(err); !ok || ae.Code != tc.code {
			t.Errorf("SetAlgorithmCanary %v: %v, want %s", tc.req, err, tc.code)
		}
	}
	if err := call(t, e, app, "SetAlgorithmCanary", map[string]any{"AlgorithmId": "alg-double", "Version": "2", "Percent": 10}, nil); err == nil {
		t.Error("a canary on a built-in was taken")
	}
	if err := call(t, e, app, "PromoteAlgorithmCanary", map[string]any{"AlgorithmId": alg}, nil); err == nil {
		t.Error("promoting without a canary was taken")
	}

	// 30% of the gate cameras try version 2, which the canary starts (and
	// which does not become current).
	if err := call(t, e, app, "SetAlgorithmCanary", map[string]any{"AlgorithmId": alg, "Version": "2", "Percent": 30, "DeviceGroups": []string{"gate"}}, nil); err != nil {
		t.Fatal(err)
	}
	info := describe()
	if info.CurrentVersion != "1" || info.Canary == nil || info.Canary.Version != "2" || info.Canary.Percent != 30 || len(info.Canary.DeviceGroups) != 1 {
		t.Fatalf("DescribeAlgorithms with a canary: %+v %+v", info, info.Canary)
	}
	inCanary := map[string]bool{}
	for _, cam := range cams {
		if versionOf(cam, "gate") == "2" {
			inCanary[cam] = true
		}
		if v := versionOf(cam, "lobby"); v != "1" {
			t.Errorf("%s of another group: version %s", cam, v)
		}
	}
	if n := len(inCanary); n < 30 || n > 90 { // 30% of 200, give or take the hash
		t.Errorf("%d of 200 gate cameras in a 30%% canary", n)
	}
	for _, cam := range cams { // the same cameras, message after message
		if got := versionOf(cam, "gate") == "2"; got != inCanary[cam] {
			t.Errorf("%s changed sides", cam)
		}
	}
	if v := versionOf("", "gate"); v != "1" {
		t.Errorf("a message without a camera: version %s", v)
	}

	// Raising the share keeps the cameras already in.
	if err := call(t, e, app, "SetAlgorithmCanary", map[string]any{"AlgorithmId": alg, "Version": "2", "Percent": 60, "DeviceGroups": []string{"gate"}}, nil); err != nil {
		t.Fatal(err)
	}
	more := 0
	for _, cam := range cams {
		v := versionOf(cam, "gate")
		if inCanary[cam] && v != "2" {
			t.Errorf("%s left the canary when it grew", cam)
		}
		if v == "2" {
			more++
		}
	}
	if more <= len(inCanary) {
		t.Errorf("60%%: %d cameras, 30%%: %d", more, len(inCanary))
	}

	// Ending the canary sends everyone back to version 1; version 2 keeps
	// running.
	if err := call(t, e, app, "SetAlgorithmCanary", map[string]any{"AlgorithmId": alg, "Version": ""}, nil); err != nil {
		t.Fatal(err)
	}
	for cam := range inCanary {
		if v := versionOf(cam, "gate"); v != "1" {
			t.Errorf("%s after the canary ended: version %s", cam, v)
		}
	}
	if info := describe(); info.Canary != nil || info.CurrentVersion != "1" {
		t.Errorf("after ending the canary: %+v", info)
	}

	// Promotion: every camera, every group, on version 2.
	if err := call(t, e, app, "SetAlgorithmCanary", map[string]any{"AlgorithmId": alg, "Version": "2", "Percent": 5}, nil); err != nil {
		t.Fatal(err)
	}
	var promoted algorepo.PromoteAlgorithmCanaryResponse
	if err := call(t, e, app, "PromoteAlgorithmCanary", map[string]any{"AlgorithmId": alg}, &promoted); err != nil || promoted.CurrentVersion != "2" {
		t.Fatalf("PromoteAlgorithmCanary = %+v, %v", promoted, err)
	}
	for _, cam := range cams[:50] {
		if v := versionOf(cam, "lobby"); v != "2" {
			t.Errorf("%s after promotion: version %s", cam, v)
		}
	}
	if info := describe(); info.Canary != nil || info.CurrentVersion != "2" {
		t.Errorf("after promotion: %+v", info)
	}
}
