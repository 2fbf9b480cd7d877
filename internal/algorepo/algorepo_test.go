package algorepo_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/algorithm/builtin"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/studio"
)

// clock is a settable time source, so tests move time instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	db  *store.DB
	clk *clock
	m   *algorithm.Manager
	s   *algorepo.Service
	reg *api.Registry
}

// newEnv runs the repository over a fresh SQLite store with the real
// algorithm runtime and the real built-in algorithms.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{db: storetest.Open(t, "sqlite"), clk: &clock{t: time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)}}
	var err error
	e.m, err = algorithm.New(algorithm.Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.m.Close(context.Background()) })
	builtins, err := builtin.All()
	if err != nil {
		t.Fatal(err)
	}
	e.s = algorepo.New(e.db, builtins, slog.New(slog.DiscardHandler), e.clk.now)
	if err := e.s.StartRuntime(ctx, e.m); err != nil {
		t.Fatal(err)
	}
	e.reg = api.NewRegistry()
	algorepo.RegisterActions(e.reg, e.s, nil) // no package store: these tests send no packages
	if _, err := iam.NewProjects(e.db, e.clk.now).Create(ctx, "prj-a", "A", ""); err != nil {
		t.Fatal(err)
	}
	return e
}

var builtinNames = []string{"face-detect", "face-quality", "image-ops", "motion"}

// endpointDef is a version served by an HTTP endpoint; created stopped, it
// never needs the endpoint to exist.
func endpointDef() algorithm.Version {
	return algorithm.Version{
		Runtime:   algorithm.RuntimeEndpoint,
		Endpoints: []string{"http://127.0.0.1:9/"},
		Contract: algorithm.Contract{
			Inputs:  []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true}, {Name: "threshold", Type: algorithm.TypeNumber}},
			Outputs: []algorithm.Field{{Name: "plates", Type: algorithm.TypeObjects}},
		},
	}
}

// builtinDef is a version that runs the built-in motion detector under
// another algorithm's id, so starting it needs no process or network.
func builtinDef() algorithm.Version {
	return algorithm.Version{
		Runtime: algorithm.RuntimeBuiltin,
		Package: "motion",
		Contract: algorithm.Contract{
			Inputs:  []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true}},
			Outputs: []algorithm.Field{{Name: "motion", Type: algorithm.TypeBool}},
		},
	}
}

func wantCode(t *testing.T, err error, code api.Code, msg string) {
	t.Helper()
	e, ok := api.AsError(err)
	if !ok {
		t.Fatalf("error %v; want %s", err, code)
	}
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Errorf("error %s %q\n want %s %q", e.Code, e.Message, code, msg)
	}
}

func TestCreateAndList(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, err := e.s.Create(ctx, "", "plates", "number plates")
	if err != nil {
		t.Fatal(err)
	}
	if a.ProjectID != "default" || a.CurrentVersion != "" || a.Builtin || !strings.HasPrefix(a.ID, "alg-") {
		t.Errorf("Create = %+v", a)
	}
	e.clk.add(time.Second)
	b, err := e.s.Create(ctx, "prj-a", "plates", "")
	if err != nil {
		t.Fatalf("same name in another project: %v", err)
	}
	_, err = e.s.Create(ctx, "default", "plates", "")
	wantCode(t, err, api.ResourceInUse, `Name: an algorithm named "plates" exists in project default`)
	_, err = e.s.Create(ctx, "default", "motion", "")
	wantCode(t, err, api.ResourceInUse, `Name: "motion" is a built-in algorithm's name`)
	_, err = e.s.Create(ctx, "prj-none", "x", "")
	wantCode(t, err, api.ResourceNotFound, `ProjectId "prj-none" not found`)

	got, err := e.s.Get(ctx, algorepo.BuiltinID("motion"))
	if err != nil || !got.Builtin || got.ProjectID != algorepo.BuiltinProject || got.CurrentVersion != "1" || got.ID != "alg-motion" {
		t.Errorf("Get(alg-motion) = %+v, %v", got, err)
	}
	_, err = e.s.Get(ctx, "alg-none")
	wantCode(t, err, api.ResourceNotFound, `AlgorithmId "alg-none" not found`)

	ids := func(as []algorepo.Algorithm) string {
		var s []string
		for _, a := range as {
			s = append(s, a.ID)
		}
		return strings.Join(s, ",")
	}
	builtinIDs := "alg-face-detect,alg-face-quality,alg-image-ops,alg-motion"
	for _, c := range []struct {
		name          string
		project       string
		algIDs, names []string
		offset, limit int
		want          string
		total         int
	}{
		{name: "every project", limit: 20, want: builtinIDs + "," + b.ID + "," + a.ID, total: 6},
		{name: "default", project: "default", limit: 20, want: builtinIDs + "," + a.ID, total: 5},
		{name: "prj-a", project: "prj-a", limit: 20, want: builtinIDs + "," + b.ID, total: 5},
		{name: "by name", project: "prj-a", names: []string{"plates", "motion"}, limit: 20, want: "alg-motion," + b.ID, total: 2},
		{name: "by id", algIDs: []string{a.ID}, limit: 20, want: a.ID, total: 1},
		{name: "page", project: "default", offset: 3, limit: 1, want: "alg-motion", total: 5},
		{name: "past the end", project: "default", offset: 9, limit: 5, want: "", total: 5},
	} {
		as, total, err := e.s.List(ctx, c.project, c.algIDs, c.names, c.offset, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if ids(as) != c.want || total != c.total {
			t.Errorf("%s: List = %s (total %d), want %s (total %d)", c.name, ids(as), total, c.want, c.total)
		}
	}
}

func TestVersions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, err := e.s.Create(ctx, "", "plates", "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.s.CreateVersion(ctx, a.ID, "", endpointDef(), false)
	if err != nil || v != "1" {
		t.Fatalf("first version = %q, %v", v, err)
	}
	e.clk.add(time.Second)
	v, err = e.s.CreateVersion(ctx, a.ID, "", builtinDef(), true)
	if err != nil || v != "2" {
		t.Fatalf("second version = %q, %v", v, err)
	}
	_, err = e.s.CreateVersion(ctx, a.ID, "1", endpointDef(), false)
	wantCode(t, err, api.ResourceInUse, "Version: "+a.ID+"@1 exists; versions are immutable")

	vs, err := e.s.Versions(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Def.Version != "2" || vs[0].Desired != algorepo.Running || vs[1].Def.Version != "1" || vs[1].Desired != algorepo.Stopped {
		t.Fatalf("Versions = %+v; want 2 (running) then 1 (stopped)", vs)
	}
	if vs[1].Def.AlgorithmID != a.ID || vs[1].Def.Endpoints[0] != "http://127.0.0.1:9/" {
		t.Errorf("stored definition = %+v", vs[1].Def)
	}
	if g, _ := e.s.Get(ctx, a.ID); g.CurrentVersion != "2" {
		t.Errorf("current version = %q, want 2", g.CurrentVersion)
	}
	// The started version runs here at once; the stopped one does not.
	if st, err := e.s.Instances(ctx, a.ID, "2"); err != nil || len(st) != 1 {
		t.Errorf("instances of version 2 = %+v, %v", st, err)
	}
	if st, err := e.s.Instances(ctx, a.ID, "1"); err != nil || len(st) != 0 {
		t.Errorf("instances of stopped version 1 = %+v, %v", st, err)
	}

	// Contracts are known for stopped versions too, from the store.
	c, err := e.s.Contract(ctx, flow.AlgorithmRef{ID: a.ID, Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Inputs) != 2 || !reflect.DeepEqual(c.Inputs[0], flow.Field{Name: "image", Type: "image", Required: true}) || !reflect.DeepEqual(c.Outputs[0], flow.Field{Name: "plates", Type: "objects"}) {
		t.Errorf("contract of version 1 = %+v", c)
	}
	if _, err := e.s.Contract(ctx, flow.AlgorithmRef{ID: a.ID, Version: "9"}); !errors.Is(err, flow.ErrUnknownAlgorithm) {
		t.Errorf("contract of a missing version: %v", err)
	}

	// Stop and start.
	if err := e.s.SetDesired(ctx, a.ID, "2", algorepo.Stopped); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.s.Instances(ctx, a.ID, "2"); len(st) != 0 {
		t.Errorf("instances after stop = %+v", st)
	}
	if err := e.s.SetDesired(ctx, a.ID, "", algorepo.Running); err != nil { // "" is the current version
		t.Fatal(err)
	}
	if st, _ := e.s.Instances(ctx, a.ID, "2"); len(st) != 1 {
		t.Errorf("instances after start = %+v", st)
	}
	wantCode(t, e.s.SetDesired(ctx, a.ID, "7", algorepo.Running), api.ResourceNotFound, `Version "`+a.ID+`@7" not found`)
	wantCode(t, e.s.SetDesired(ctx, "alg-motion", "", algorepo.Stopped), api.InvalidParameterValue, "AlgorithmId: built-in algorithms always run")

	// Built-ins have one version, their own.
	_, err = e.s.CreateVersion(ctx, "alg-motion", "", builtinDef(), false)
	wantCode(t, err, api.InvalidParameterValue, "AlgorithmId: alg-motion is built in and has no other versions")
	bv, err := e.s.Versions(ctx, "alg-motion")
	if err != nil || len(bv) != 1 || bv[0].Def.Runtime != algorithm.RuntimeBuiltin || bv[0].Desired != algorepo.Running {
		t.Errorf("Versions(alg-motion) = %+v, %v", bv, err)
	}
}

func TestContractValidation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, err := e.s.Create(ctx, "", "plates", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		change func(*algorithm.Version)
		msg    string
	}{
		"no inputs":         {func(v *algorithm.Version) { v.Contract.Inputs = nil }, "Definition.contract.inputs: declare at least one input"},
		"bad input type":    {func(v *algorithm.Version) { v.Contract.Inputs[1].Type = "float" }, "Definition.contract.inputs[1].type: unknown type \"float\"; use image, objects, embedding, text, json, number, integer, bool, object or list"},
		"duplicate output":  {func(v *algorithm.Version) { v.Contract.Outputs = append(v.Contract.Outputs, v.Contract.Outputs[0]) }, `Definition.contract.outputs[1].name: duplicate name "plates"`},
		"bad field name":    {func(v *algorithm.Version) { v.Contract.Inputs[0].Name = "-img" }, `Definition.contract.inputs[0].name: invalid name "-img"`},
		"no runtime":        {func(v *algorithm.Version) { v.Runtime = "" }, "Definition.runtime: required: builtin, endpoint, process or container"},
		"no endpoints":      {func(v *algorithm.Version) { v.Endpoints = nil }, "Definition.endpoints: the endpoint runtime needs at least one URL"},
		"bad endpoint":      {func(v *algorithm.Version) { v.Endpoints = []string{"ftp://x"} }, `Definition.endpoints[0]: must be an http or https URL, got "ftp://x"`},
		"unknown protocol":  {func(v *algorithm.Version) { v.Protocol = "grpc" }, `Definition.protocol: unknown protocol "grpc"; use tianshu-v1, oip-v2 or http-mapped`},
		"batch undeclared":  {func(v *algorithm.Version) { v.Batch.Max = 8 }, "Definition.batch.max: the contract does not declare batching"},
		"maxBatch no batch": {func(v *algorithm.Version) { v.Contract.MaxBatch = 4 }, "Definition.contract.maxBatch: set batch to declare a maximum batch"},
	} {
		t.Run(name, func(t *testing.T) {
			def := endpointDef()
			c.change(&def)
			_, err := e.s.CreateVersion(ctx, a.ID, "", def, false)
			wantCode(t, err, api.InvalidParameterValue, c.msg)
		})
	}
	_, err = e.s.CreateVersion(ctx, a.ID, "bad version!", endpointDef(), false)
	wantCode(t, err, api.InvalidParameterValue, "Definition.version: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	if vs, _ := e.s.Versions(ctx, a.ID); len(vs) != 0 {
		t.Errorf("refused definitions were stored: %+v", vs)
	}
}

// A version added without a name gets the next free number, even when a
// version was named by hand before.
func TestVersionNumberingSkipsNamedVersions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, err := e.s.Create(ctx, "", "plates", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.CreateVersion(ctx, a.ID, "2", endpointDef(), false); err != nil {
		t.Fatal(err)
	}
	if v, err := e.s.CreateVersion(ctx, a.ID, "", endpointDef(), false); err != nil {
		t.Fatalf("unnamed version after version 2: %v", err)
	} else if v == "2" {
		t.Fatalf("unnamed version took the name %q", v)
	}
}

func TestProjectScoping(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	mine, err := e.s.Create(ctx, "prj-a", "plates", "")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := e.s.Create(ctx, "default", "cars", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{mine.ID, theirs.ID} {
		if _, err := e.s.CreateVersion(ctx, id, "", endpointDef(), false); err != nil {
			t.Fatal(err)
		}
	}
	// A flow of prj-a may call its own algorithms and the built-ins only.
	algs := e.s.ForProject("prj-a")
	for _, id := range []string{mine.ID, "alg-motion", "alg-face-detect"} {
		if _, err := algs.Contract(ctx, flow.AlgorithmRef{ID: id}); err != nil {
			t.Errorf("prj-a cannot see %s: %v", id, err)
		}
	}
	if _, err := algs.Contract(ctx, flow.AlgorithmRef{ID: theirs.ID}); !errors.Is(err, flow.ErrUnknownAlgorithm) {
		t.Errorf("prj-a sees default's algorithm: %v", err)
	}

	// Studio validates flows against the same view.
	st := studio.New(e.db, studio.Options{AlgorithmsFor: e.s.ForProject})
	doc := func(alg string) []byte {
		return []byte(`{"nodes": [{"id": "det", "kind": "algorithm", "config": {"algorithm": "` + alg + `"}, "inputs": {"image": "$input.image"}}]}`)
	}
	if errs := st.Validate(ctx, "prj-a", doc(mine.ID)); errs != nil {
		t.Errorf("flow of prj-a calling its own algorithm: %v", errs)
	}
	if errs := st.Validate(ctx, "prj-a", doc(theirs.ID)); len(errs) != 1 || errs[0].Node != "det" || errs[0].Field != "config.algorithm" {
		t.Errorf("flow of prj-a calling default's algorithm: %v", errs)
	}

	// An algorithm a flow calls cannot be deleted.
	f, err := st.Create(ctx, "prj-a", "reader", "", doc(mine.ID), "")
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.s.Delete(ctx, mine.ID), api.ResourceInUse, "AlgorithmId: 1 flow version(s) call "+mine.ID+"; change or delete them first")
	if err := st.Delete(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Delete(ctx, mine.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Get(ctx, mine.ID)
	wantCode(t, err, api.ResourceNotFound, "")
	wantCode(t, e.s.Delete(ctx, "alg-motion"), api.InvalidParameterValue, "AlgorithmId: built-in algorithms cannot be deleted")
}

func call(t *testing.T, e *env, c *api.Caller, action string, req any, out any) error {
	t.Helper()
	a, ok := e.reg.Lookup(action)
	if !ok {
		t.Fatalf("no action %s", action)
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Call(context.Background(), c, body)
	if err != nil {
		return err
	}
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

func TestActions(t *testing.T) {
	e := newEnv(t)
	appA := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAdmin}
	var created algorepo.CreateAlgorithmResponse
	if err := call(t, e, appA, "CreateAlgorithm", map[string]any{"Name": "plates"}, &created); err != nil {
		t.Fatal(err)
	}
	theirs, err := e.s.Create(context.Background(), "default", "cars", "")
	if err != nil {
		t.Fatal(err)
	}

	def := json.RawMessage(`{"runtime": "builtin", "package": "motion", "contract": {"inputs": [{"name": "image", "type": "image", "required": true}]}}`)
	var v algorepo.CreateAlgorithmVersionResponse
	if err := call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId, "Definition": def, "Start": true}, &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != "1" || appA.Resource() != created.AlgorithmId {
		t.Errorf("CreateAlgorithmVersion = %+v", v)
	}
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId,
		"Definition": json.RawMessage(`{"runtime": "builtin", "contract": {"inputs": []}, "colour": "red"}`)}, nil)
	wantCode(t, err, api.UnknownParameter, "Definition.colour: no such field")
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId,
		"Definition": json.RawMessage(`{"runtime": "process", "replicas": "two"}`)}, nil)
	wantCode(t, err, api.InvalidParameterValue, "Definition.replicas: wrong type (string)")
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId, "Definition": def, "PackageBase64": "%%%"}, nil)
	wantCode(t, err, api.InvalidParameterValue, "")
	err = call(t, e, appA, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId}, nil)
	wantCode(t, err, api.MissingParameter, "Definition: required")

	var list algorepo.DescribeAlgorithmsResponse
	if err := call(t, e, appA, "DescribeAlgorithms", map[string]any{}, &list); err != nil {
		t.Fatal(err)
	}
	if list.TotalCount != len(builtinNames)+1 || list.AlgorithmSet[len(builtinNames)].AlgorithmId != created.AlgorithmId || !list.AlgorithmSet[0].Builtin || list.AlgorithmSet[0].CreatedTime != "" {
		t.Errorf("DescribeAlgorithms for prj-a = %+v", list)
	}
	var vs algorepo.DescribeAlgorithmVersionsResponse
	if err := call(t, e, appA, "DescribeAlgorithmVersions", map[string]any{"AlgorithmId": "alg-motion"}, &vs); err != nil {
		t.Fatal(err)
	}
	if vs.TotalCount != 1 || vs.VersionSet[0].DesiredState != "running" {
		t.Errorf("versions of a built-in = %+v", vs)
	}
	var inst algorepo.DescribeAlgorithmInstancesResponse
	if err := call(t, e, appA, "DescribeAlgorithmInstances", map[string]any{"AlgorithmId": created.AlgorithmId}, &inst); err != nil {
		t.Fatal(err)
	}
	if len(inst.InstanceSet) != 1 || inst.InstanceSet[0].Version != "1" || inst.InstanceSet[0].Gpus == nil {
		t.Errorf("DescribeAlgorithmInstances = %+v", inst)
	}

	// Another project's algorithm is "not found" for every action.
	for _, action := range []string{"CreateAlgorithmVersion", "DescribeAlgorithmVersions", "DeleteAlgorithm", "StartAlgorithmVersion",
		"StopAlgorithmVersion", "DescribeAlgorithmInstances", "InvokeAlgorithm"} {
		req := map[string]any{"AlgorithmId": theirs.ID}
		if action == "CreateAlgorithmVersion" {
			req["Definition"] = def
		}
		err := call(t, e, appA, action, req, nil)
		wantCode(t, err, api.ResourceNotFound, `AlgorithmId "`+theirs.ID+`" not found`)
	}
	err = call(t, e, appA, "CreateAlgorithm", map[string]any{"Name": "x", "ProjectId": "default"}, nil)
	wantCode(t, err, api.AuthFailureUnauthorizedOperation, "")

	if err := call(t, e, appA, "StopAlgorithmVersion", map[string]any{"AlgorithmId": created.AlgorithmId}, nil); err != nil {
		t.Fatal(err)
	}
	err = call(t, e, appA, "InvokeAlgorithm", map[string]any{"AlgorithmId": created.AlgorithmId, "Image": "aGk="}, nil)
	wantCode(t, err, api.ResourceUnavailable, "")
	if err := call(t, e, appA, "DeleteAlgorithm", map[string]any{"AlgorithmId": created.AlgorithmId}, nil); err != nil {
		t.Fatal(err)
	}
}
