package studio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
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
	db    *store.DB
	clk   *clock
	s     *studio.Service
	reg   *api.Registry
	inUse atomic.Bool
	calls atomic.Int64
}

// newEnv runs the studio over a fresh SQLite store with the real algorithm
// runtime, which serves one in-test builtin, alg-double (y = 2x): the
// shipped builtins need images, and this flow logic needs none.
func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{db: storetest.Open(t, "sqlite"), clk: &clock{t: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}}
	m, err := algorithm.New(algorithm.Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	contract := algorithm.Contract{
		Inputs:  []algorithm.Field{{Name: "x", Type: algorithm.TypeInteger, Required: true}},
		Outputs: []algorithm.Field{{Name: "y", Type: algorithm.TypeInteger}},
	}
	double := func(_ context.Context, in map[string]any) (map[string]any, error) {
		e.calls.Add(1)
		switch x := in["x"].(type) {
		case int64:
			return map[string]any{"y": 2 * x}, nil
		case float64:
			return map[string]any{"y": 2 * x}, nil
		}
		return nil, fmt.Errorf("%w: x: not a number", algorithm.ErrBadInput)
	}
	// The algorithm repository adapts the runtime to the flow engine, as
	// in the platform; its one builtin "double" is the algorithm alg-double.
	repo := algorepo.New(e.db, map[string]algorithm.Builtin{"double": {Func: double, Contract: contract}}, slog.New(slog.DiscardHandler), e.clk.now)
	if err := repo.StartRuntime(ctx, m); err != nil {
		t.Fatal(err)
	}
	e.s = studio.New(e.db, studio.Options{Now: e.clk.now, Algorithms: repo, Catalog: repo.Catalog,
		InUse: func(context.Context, *store.Tx, string) (bool, error) { return e.inUse.Load(), nil }})
	e.reg = api.NewRegistry()
	studio.RegisterActions(e.reg, e.s)
	if _, err := iam.NewProjects(e.db, e.clk.now).Create(ctx, "prj-a", "A", ""); err != nil {
		t.Fatal(err)
	}
	return e
}

const doubleDoc = `{"name": "doubler", "nodes": [
  {"id": "twice", "kind": "algorithm", "config": {"algorithm": "alg-double"}, "inputs": {"x": "$input.x"}, "next": ["out"]},
  {"id": "out", "kind": "passthrough", "inputs": {"y": "$twice.y"}}
]}`

// badDoc has problems in two nodes: an unknown algorithm and an input the
// algorithm does not take.
const badDoc = `{"nodes": [
  {"id": "ghost", "kind": "algorithm", "config": {"algorithm": "alg-ghost"}, "next": ["twice"]},
  {"id": "twice", "kind": "algorithm", "config": {"algorithm": "alg-double"}, "inputs": {"x": 1, "z": 2}}
]}`

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

func TestCreateAndVersions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	f, err := e.s.Create(ctx, "", "", "first", []byte(doubleDoc), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	if f.ProjectID != "default" || f.Name != "doubler" || f.LatestVersion != 1 || !strings.HasPrefix(f.ID, "flow-") {
		t.Errorf("Create = %+v; want the document's name, project default, version 1", f)
	}
	v1, err := e.s.GetVersion(ctx, f.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || v1.CreatedBy != "user:alice" || len(v1.Digest) != 64 || !json.Valid(v1.Document) {
		t.Errorf("version 1 = %+v", v1)
	}

	// A YAML document with the same content is the same version.
	e.clk.add(time.Second)
	yaml := "name: doubler\nnodes:\n  - id: twice\n    kind: algorithm\n    config: {algorithm: alg-double}\n    inputs: {x: $input.x}\n    next: [out]\n  - id: out\n    kind: passthrough\n    inputs: {y: $twice.y}\n"
	v, err := e.s.Modify(ctx, f.ID, nil, nil, []byte(yaml), "same", "user:bob")
	if err != nil {
		t.Fatal(err)
	}
	if v != 1 {
		t.Errorf("identical document made version %d", v)
	}

	// A changed document makes version 2; version 1 stays as it was.
	changed := strings.Replace(doubleDoc, `"y": "$twice.y"`, `"y": "$twice.y", "x": "$input.x"`, 1)
	e.clk.add(time.Second)
	desc := "second"
	v, err = e.s.Modify(ctx, f.ID, nil, &desc, []byte(changed), "add x", "user:bob")
	if err != nil || v != 2 {
		t.Fatalf("Modify = %d, %v; want version 2", v, err)
	}
	again, err := e.s.GetVersion(ctx, f.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Document) != string(v1.Document) || again.Digest != v1.Digest || again.Comment != "" || again.CreatedBy != "user:alice" {
		t.Errorf("version 1 changed: %+v", again)
	}
	latest, err := e.s.GetVersion(ctx, f.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Version != 2 || latest.Comment != "add x" || latest.CreatedBy != "user:bob" || latest.Digest == v1.Digest {
		t.Errorf("latest = %+v", latest)
	}
	got, err := e.s.Get(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LatestVersion != 2 || got.Description != "second" || !got.UpdatedAt.Equal(e.clk.now()) {
		t.Errorf("Get = %+v", got)
	}
	vs, total, err := e.s.ListVersions(ctx, f.ID, 0, 10)
	if err != nil || total != 2 || len(vs) != 2 || vs[0].Version != 2 || vs[1].Version != 1 || vs[0].Document != nil {
		t.Errorf("ListVersions = %+v, %d, %v; want 2 then 1, without documents", vs, total, err)
	}
	_, err = e.s.GetVersion(ctx, f.ID, 3)
	wantCode(t, err, api.ResourceNotFound, `Version "`+f.ID+`@3" not found`)
	_, err = e.s.GetVersion(ctx, "flow-none", 0)
	wantCode(t, err, api.ResourceNotFound, `FlowId "flow-none" not found`)

	// A rename alone keeps the version.
	name := "tripler"
	if v, err := e.s.Modify(ctx, f.ID, &name, nil, nil, "", "user:bob"); err != nil || v != 2 {
		t.Errorf("rename = %d, %v", v, err)
	}

	// Names are unique per project.
	_, err = e.s.Create(ctx, "default", "tripler", "", []byte(doubleDoc), "")
	wantCode(t, err, api.ResourceInUse, `Name: a flow named "tripler" already exists in project default`)
	if _, err := e.s.Create(ctx, "prj-a", "tripler", "", []byte(doubleDoc), ""); err != nil {
		t.Errorf("same name in another project: %v", err)
	}
	_, err = e.s.Create(ctx, "prj-none", "x", "", []byte(doubleDoc), "")
	wantCode(t, err, api.ResourceNotFound, `ProjectId "prj-none" not found`)
	_, err = e.s.Create(ctx, "", "", "", []byte(`{"nodes": [{"id": "a", "kind": "noop"}]}`), "")
	wantCode(t, err, api.MissingParameter, "Name: required")
}

func TestValidationNamesTheNode(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.s.Create(ctx, "", "bad", "", []byte(badDoc), "")
	var ve *studio.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Create(bad) = %v; want a *studio.ValidationError", err)
	}
	got := map[string]string{}
	for _, fe := range ve.Errs {
		got[fe.Node+" "+fe.Field] = fe.Msg
	}
	want := map[string]string{
		"ghost config.algorithm": `unknown algorithm "alg-ghost"`,
		"twice inputs.z":         `algorithm alg-double has no input "z"; it takes [x]`,
	}
	if len(got) != len(want) {
		t.Errorf("problems = %v, want %v", got, want)
	}
	for k, msg := range want {
		if got[k] != msg {
			t.Errorf("problem at %s = %q, want %q", k, got[k], msg)
		}
	}
	if errs := e.s.Validate(ctx, "", []byte(doubleDoc)); errs != nil {
		t.Errorf("Validate(good) = %v", errs)
	}
	if errs := e.s.Validate(ctx, "", []byte(`{"nodes": [`)); len(errs) != 1 || errs[0].Node != "" {
		t.Errorf("Validate(truncated) = %v; want one document-level problem", errs)
	}
	// Nothing was stored.
	if _, total, _ := e.s.List(ctx, store.OneProject(""), nil, nil, 0, 10); total != 0 {
		t.Errorf("%d flows stored after failed creates", total)
	}
	// Modify with a bad document keeps the flow as it was.
	f, err := e.s.Create(ctx, "", "", "", []byte(doubleDoc), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Modify(ctx, f.ID, nil, nil, []byte(badDoc), "", ""); !errors.As(err, &ve) {
		t.Errorf("Modify(bad) = %v; want a *studio.ValidationError", err)
	}
	if g, _ := e.s.Get(ctx, f.ID); g.LatestVersion != 1 {
		t.Errorf("latest version after a refused modify = %d", g.LatestVersion)
	}
}

func TestDeleteRefusedWhileInUse(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	f, err := e.s.Create(ctx, "", "", "", []byte(doubleDoc), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.s.Plan(ctx, f.ID, 0); err != nil {
		t.Fatal(err)
	}
	e.inUse.Store(true)
	wantCode(t, e.s.Delete(ctx, f.ID), api.ResourceInUse, "FlowId: flow "+f.ID+" is used by a task; delete the task first")
	if _, err := e.s.Get(ctx, f.ID); err != nil {
		t.Fatalf("flow gone after a refused delete: %v", err)
	}
	e.inUse.Store(false)
	if err := e.s.Delete(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Get(ctx, f.ID)
	wantCode(t, err, api.ResourceNotFound, "")
	// The cached plan went with it.
	_, _, err = e.s.Plan(ctx, f.ID, 0)
	wantCode(t, err, api.ResourceNotFound, "")
	var n int
	if err := e.db.QueryRow(ctx, "SELECT COUNT(*) FROM flow_versions WHERE flow_id = ?", f.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d versions left (%v)", n, err)
	}
	wantCode(t, e.s.Delete(ctx, f.ID), api.ResourceNotFound, `FlowId "`+f.ID+`" not found`)
}

func TestPlanAndCompile(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	f, err := e.s.Create(ctx, "", "", "", []byte(doubleDoc), "")
	if err != nil {
		t.Fatal(err)
	}
	p1, v, err := e.s.Plan(ctx, f.ID, 0)
	if err != nil || v.Version != 1 {
		t.Fatalf("Plan = %v, %v", v, err)
	}
	// Versions are immutable, so the plan is compiled once.
	if p2, _, _ := e.s.Plan(ctx, f.ID, 1); p2 != p1 {
		t.Error("Plan compiled the same version twice")
	}
	// Compile makes a fresh plan each time.
	c1, err := e.s.Compile(ctx, f.ID, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c1 == p1 {
		t.Error("Compile returned the cached plan")
	}
	res, err := c1.Run(ctx, flow.Input{Data: map[string]any{"x": int64(21)}, Key: "test"})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := res.Output["out"].(map[string]any)
	if out["y"] != int64(42) {
		t.Errorf("output = %#v; want out.y = 42", res.Output)
	}
	_, err = e.s.Compile(ctx, f.ID, 7, nil)
	wantCode(t, err, api.ResourceNotFound, `Version "`+f.ID+`@7" not found`)
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
	root := &api.Caller{UserName: "alice", Role: api.RoleAdmin}
	appA := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAdmin}

	// A document may be a JSON object or a string of JSON or YAML.
	var created studio.CreateFlowResponse
	if err := call(t, e, appA, "CreateFlow", map[string]any{"Name": "from-string", "Document": doubleDoc}, &created); err != nil {
		t.Fatal(err)
	}
	if created.Version != 1 || appA.Resource() != created.FlowId {
		t.Errorf("CreateFlow = %+v", created)
	}
	err := call(t, e, root, "CreateFlow", map[string]any{"Document": json.RawMessage(badDoc)}, nil)
	wantCode(t, err, api.InvalidParameterValue, `Document: 2 problem(s): node "ghost": config.algorithm: unknown algorithm "alg-ghost"; `+
		`node "twice": inputs.z: algorithm alg-double has no input "z"; it takes [x]`)
	err = call(t, e, root, "CreateFlow", map[string]any{"Document": 5}, nil)
	wantCode(t, err, api.InvalidParameterValue, "Document: want a JSON object, or a string holding JSON or YAML")
	err = call(t, e, root, "CreateFlow", map[string]any{"Name": "x"}, nil)
	wantCode(t, err, api.MissingParameter, "Document: required")

	var val studio.ValidateFlowResponse
	if err := call(t, e, root, "ValidateFlow", map[string]any{"Document": json.RawMessage(badDoc)}, &val); err != nil {
		t.Fatal(err)
	}
	if val.Valid || len(val.ErrorSet) != 2 || val.ErrorSet[0].NodeId != "ghost" || val.ErrorSet[1].NodeId != "twice" || val.ErrorSet[1].Field != "inputs.z" {
		t.Errorf("ValidateFlow = %+v", val)
	}

	// ModifyFlow makes version 2; DescribeFlowVersion returns either.
	var mod studio.ModifyFlowResponse
	changed := strings.Replace(doubleDoc, `"passthrough"`, `"passthrough", "next": []`, 1)
	if err := call(t, e, appA, "ModifyFlow", map[string]any{"FlowId": created.FlowId, "Document": json.RawMessage(changed), "Comment": "c"}, &mod); err != nil {
		t.Fatal(err)
	}
	var fv studio.FlowVersionInfo
	if err := call(t, e, appA, "DescribeFlowVersion", map[string]any{"FlowId": created.FlowId, "Version": 1}, &fv); err != nil {
		t.Fatal(err)
	}
	if fv.Version != 1 || len(fv.Document) == 0 || fv.CreatedBy != "app:app-a" {
		t.Errorf("DescribeFlowVersion 1 = %+v", fv)
	}
	var vs studio.DescribeFlowVersionsResponse
	if err := call(t, e, appA, "DescribeFlowVersions", map[string]any{"FlowId": created.FlowId}, &vs); err != nil {
		t.Fatal(err)
	}
	if int64(vs.TotalCount) != mod.Version || vs.FlowVersionSet[0].Version != mod.Version {
		t.Errorf("DescribeFlowVersions = %+v after ModifyFlow to %d", vs, mod.Version)
	}

	// InvokeFlow runs the real algorithm runtime.
	var inv studio.InvokeFlowResponse
	if err := call(t, e, appA, "InvokeFlow", map[string]any{"FlowId": created.FlowId, "Input": map[string]any{"x": 4}, "Trace": true}, &inv); err != nil {
		t.Fatal(err)
	}
	if out, _ := inv.Output["out"].(map[string]any); out["y"] != float64(8) || len(inv.NodeSet) != 2 || e.calls.Load() != 1 {
		t.Errorf("InvokeFlow = %+v (algorithm called %d times)", inv, e.calls.Load())
	}

	// Flows of other projects are not found for an app of prj-a.
	other, err := e.s.Create(context.Background(), "default", "elsewhere", "", []byte(doubleDoc), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"DescribeFlowVersion", "DescribeFlowVersions", "DeleteFlow", "ModifyFlow", "InvokeFlow"} {
		err := call(t, e, appA, action, map[string]any{"FlowId": other.ID}, nil)
		wantCode(t, err, api.ResourceNotFound, `FlowId "`+other.ID+`" not found`)
	}
	var list studio.DescribeFlowsResponse
	if err := call(t, e, appA, "DescribeFlows", map[string]any{}, &list); err != nil {
		t.Fatal(err)
	}
	if list.TotalCount != 1 || list.FlowSet[0].FlowId != created.FlowId || list.FlowSet[0].LatestVersion != mod.Version {
		t.Errorf("DescribeFlows for prj-a = %+v", list)
	}
	if err := call(t, e, root, "DescribeFlows", map[string]any{"Filters": []map[string]any{{"Name": "Name", "Values": []string{"elsewhere"}}}}, &list); err != nil {
		t.Fatal(err)
	}
	if list.TotalCount != 1 || list.FlowSet[0].FlowId != other.ID {
		t.Errorf("DescribeFlows by name = %+v", list)
	}

	e.inUse.Store(true)
	err = call(t, e, appA, "DeleteFlow", map[string]any{"FlowId": created.FlowId}, nil)
	wantCode(t, err, api.ResourceInUse, "")
	e.inUse.Store(false)
	if err := call(t, e, appA, "DeleteFlow", map[string]any{"FlowId": created.FlowId}, nil); err != nil {
		t.Fatal(err)
	}
}
