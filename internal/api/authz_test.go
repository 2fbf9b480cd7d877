package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
)

type authzReq struct {
	ProjectId string `json:"ProjectId"`
}

// authzRegistry registers Describe/Create/Modify/Delete actions for nouns
// thing0..thingN-1 plus an audit read, a project write and a role write.
func authzRegistry(nouns int) *Registry {
	reg := NewRegistry()
	h := func(_ context.Context, _ *Caller, r *authzReq) (*authzReq, error) { return r, nil }
	for i := range nouns {
		n := fmt.Sprintf("Thing%d", i)
		res := fmt.Sprintf("thing%d", i)
		Register(reg, Spec{Name: "Describe" + n + "s", Summary: "s", Permission: Permission{res, Read}}, h)
		for _, verb := range []string{"Create", "Modify", "Delete"} {
			Register(reg, Spec{Name: verb + n, Summary: "s", Permission: Permission{res, Write}}, h)
		}
	}
	Register(reg, Spec{Name: "DescribeAuditEvents", Summary: "s", Permission: Permission{"audit", Read}}, h)
	Register(reg, Spec{Name: "CreateProject", Summary: "s", Permission: Permission{"project", Write}}, h)
	Register(reg, Spec{Name: "CreateRole", Summary: "s", Permission: Permission{"role", Write}}, h)
	return reg
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, n string
		ok   bool
	}{{"Describe*", "DescribeDevices", true}, {"Describe*", "CreateDevice", false}, {"*Device*", "DescribeDevices", true},
		{"*Device*", "CreateDevice", true}, {"*Device", "DescribeDevices", false}, {"*", "X", true}, {"CreateDevice", "CreateDevice", true},
		{"CreateDevice", "CreateDevices", false}, {"A*B*C", "ABC", true}, {"A*B*C", "AxBxC", true}, {"A*BB", "AB", false}, {"A*A", "A", false}} {
		if got := glob(c.p, c.n); got != c.ok {
			t.Errorf("glob(%q, %q) = %v", c.p, c.n, got)
		}
	}
}

func TestMatchActions(t *testing.T) {
	reg := authzRegistry(3)
	s, err := reg.MatchActions("Actions", []string{"Describe*", "*Thing1"})
	if err != nil {
		t.Fatal(err)
	}
	want := "[CreateThing1 DeleteThing1 DescribeAuditEvents DescribeThing0s DescribeThing1s DescribeThing2s ModifyThing1]"
	if got := fmt.Sprint(reg.Names(s)); got != want {
		t.Errorf("matched %s\nwant %s", got, want)
	}
	// No role, custom or built-in, grants a platform-only action.
	if s, _ := reg.MatchActions("Actions", []string{"*"}); fmt.Sprint(reg.Names(s)) == "" || hasName(reg.Names(s), "CreateProject") {
		t.Errorf("* matched %v", reg.Names(s))
	}
	for _, bad := range []string{"", "Describe?", "NoSuchAction", "CreateProject", "Describe Things"} {
		if _, err := reg.MatchActions("Actions", []string{"DescribeThing0s", bad}); err == nil {
			t.Errorf("pattern %q accepted", bad)
		} else if e, _ := AsError(err); e.Code != InvalidParameterValue {
			t.Errorf("pattern %q: %v", bad, err)
		}
	}
	op, _ := reg.BuiltinRole(RoleOperator)
	if got := fmt.Sprint(reg.Names(op.Actions)); hasName(reg.Names(op.Actions), "CreateRole") || hasName(reg.Names(op.Actions), "DescribeAuditEvents") || !hasName(reg.Names(op.Actions), "DeleteThing2") {
		t.Errorf("operator = %s", got)
	}
}

func hasName(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A viewer of project a who operates project b gets the answer of the
// project each call names; a role narrowed to devices reaches only those.
func TestGrantsPerProject(t *testing.T) {
	reg := authzRegistry(2)
	viewer, _ := reg.BuiltinRole(RoleViewer)
	operator, _ := reg.BuiltinRole(RoleOperator)
	cams, err := reg.MatchActions("Actions", []string{"*Thing0*"})
	if err != nil {
		t.Fatal(err)
	}
	site := (&Role{Name: "site-a-cameras", Actions: cams}).Narrow(Scope{DeviceGroups: []string{"site-a"}, DeviceIDs: []string{"dev-1"}})
	c := &Caller{AppID: "app-x", ProjectID: "a"}
	c.SetGrants(NewGrants(false, []Binding{{"a", viewer}, {"b", operator}, {"c", site}}))
	write, _ := reg.Lookup("ModifyThing0")
	read, _ := reg.Lookup("DescribeThing0s")
	audit, _ := reg.Lookup("DescribeAuditEvents")
	role, _ := reg.Lookup("CreateRole")
	for _, x := range []struct {
		a       *Action
		project string
		ok      bool
	}{{write, "a", false}, {write, "b", true}, {write, "c", true}, {write, "d", false}, {read, "a", true}, {read, "d", false},
		{audit, "a", false}, {audit, "b", false}, {role, "b", false}} {
		if got := c.MayRunIn(x.a, x.project); got != x.ok {
			t.Errorf("%s in %s = %v", x.a.Name, x.project, got)
		}
		c.act = x.a
		if got := c.Sees(x.project); got != x.ok {
			t.Errorf("Sees(%s) for %s = %v", x.project, x.a.Name, got)
		}
	}
	if !c.MayRun(write) || c.MayRun(audit) || c.MayRun(role) {
		t.Error("pre-check: want write allowed somewhere, audit and roles nowhere")
	}
	c.act = write
	for _, x := range []struct {
		project, id, group string
		ok                 bool
	}{{"c", "dev-1", "", true}, {"c", "dev-2", "site-a", true}, {"c", "dev-2", "site-b", false}, {"b", "dev-2", "site-b", true}, {"a", "dev-1", "", false}} {
		if got := c.SeesDevice(x.project, x.id, x.group); got != x.ok {
			t.Errorf("SeesDevice(%s, %s, %s) = %v", x.project, x.id, x.group, got)
		}
	}
	if got := c.SeesTask("c", "task-1"); !got {
		t.Error("a role narrowed to devices must still reach tasks")
	}
	devices := func(_ string, s Scope) (string, []any) {
		if len(s.DeviceIDs)+len(s.DeviceGroups) == 0 {
			return "", nil
		}
		return "reach", []any{fmt.Sprint(s.DeviceIDs, s.DeviceGroups)}
	}
	if in := c.ListIn("c", devices); len(in.Parts) != 1 || fmt.Sprint(in.Parts[0].Args) != "[[dev-1] [site-a]]" {
		t.Errorf("ListIn(c) = %+v", in)
	}
	if in := c.ListIn("b", devices); len(in.Parts) != 1 || in.Parts[0].Cond != "" {
		t.Errorf("ListIn(b) = %+v: an operator's list is not narrowed", in)
	}
	// An empty ProjectId becomes the app's own project, and is checked.
	_, err = write.Call(context.Background(), c, []byte(`{}`))
	if e, _ := AsError(err); e == nil || e.Code != AuthFailureUnauthorizedOperation || e.Message != `ProjectId: app:app-x holds no role in project "a" that grants ModifyThing0` {
		t.Errorf("ModifyThing0 in a: %v", err)
	}
	if r, err := write.Call(context.Background(), c, []byte(`{"ProjectId":"b"}`)); err != nil || r.(*authzReq).ProjectId != "b" {
		t.Errorf("ModifyThing0 in b: %v %v", r, err)
	}
	if !c.HasRole("b", RoleOperator) || c.HasRole("a", RoleOperator) {
		t.Error("HasRole")
	}
	if !(&Caller{AppID: "app-r", grants: NewGrants(true, nil)}).MayRunIn(write, "zzz") {
		t.Error("a platform admin runs everything everywhere")
	}
}

// legacyAllowed and legacySees are the check before project roles: a
// switch on the app's one role and a comparison of projects. They are the
// benchmark's baseline.
func legacyAllowed(role string, p Permission) bool {
	switch role {
	case RoleAdmin:
		return true
	case RoleViewer:
		return p.Access == Read
	}
	return false
}

func legacySees(c *Caller, projectID string) bool {
	return c.AppID == "" || (c.Role == RoleAdmin && c.ProjectID == "default") || projectID == c.ProjectID || projectID == "*"
}

// BenchmarkPermissionCheck measures what a call pays for its permission
// check with 1,000 custom roles holding 10,000 resource grants: the
// gateway's pre-check, the project check and a device scope check, for a
// principal bound to all 1,000 roles (10 in each of 100 projects), the
// worst case. Resolving the bindings is cached per principal (iam) and not
// part of it. The baseline is the check before project roles, measured in
// the same run.
func BenchmarkPermissionCheck(b *testing.B) {
	reg := authzRegistry(50) // 203 actions
	var bs []Binding
	for i := range 1000 {
		acts, err := reg.MatchActions("Actions", []string{"Describe*", fmt.Sprintf("*Thing%d", i%50)})
		if err != nil {
			b.Fatal(err)
		}
		var devs []string
		for j := range 10 {
			devs = append(devs, fmt.Sprintf("dev-%d-%d", i, j))
		}
		r := (&Role{Name: fmt.Sprintf("role-%d", i), Actions: acts}).Narrow(Scope{DeviceIDs: devs})
		bs = append(bs, Binding{ProjectID: fmt.Sprintf("prj-%d", i%100), Role: r})
	}
	c := &Caller{AppID: "app-x", ProjectID: "prj-7"}
	c.SetGrants(NewGrants(false, bs))
	a, _ := reg.Lookup("ModifyThing7") // granted by role-7 (prj-7), role-57 (prj-57), ...
	c.act = a
	check := func() bool {
		return c.MayRun(a) && c.MayRunIn(a, "prj-7") && c.SeesDevice("prj-7", "dev-907-3", "")
	}
	if !check() || c.SeesDevice("prj-7", "dev-8-1", "") || c.MayRunIn(a, "prj-8") {
		b.Fatal("fixture grants the wrong things")
	}
	legacy := &Caller{AppID: "app-x", ProjectID: "prj-7", Role: RoleAdmin}
	var base, ns float64
	b.Run("baseline", func(b *testing.B) {
		ok := true
		for range b.N {
			ok = ok && legacyAllowed(legacy.Role, a.Permission) && legacySees(legacy, "prj-7")
		}
		if !ok {
			b.Fatal("legacy check refused")
		}
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("grants", func(b *testing.B) {
		b.ReportAllocs()
		ok := true
		for range b.N {
			ok = ok && check()
		}
		if !ok {
			b.Fatal("check refused")
		}
		ns = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(base, "baseline-ns/op")
		b.ReportMetric(ns/max(base, 0.01), "x-baseline")
	})
	benchtable.Record(b, benchtable.Row{Metric: "permission check per call (1,000 custom roles, 10,000 resource grants)",
		Unit: "ns", Target: "≤ 2 µs", Tianshu: ns, Baseline: base})
}
