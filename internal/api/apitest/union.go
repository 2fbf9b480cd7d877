// Package apitest holds checks that several centers' action tests share.
package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// Projects of a Union check: the caller holds a narrowed role in A, a
// role that is not narrowed in B, and none in C.
const (
	ProjectA = "default"
	ProjectB = "prj-b"
	ProjectC = "prj-c"
)

// Union is one check of a list registered with api.Spec.Union.
type Union struct {
	Action string
	// Scope narrows the caller's role in ProjectA (zero: not narrowed).
	Scope api.Scope
	// Key is the field of each listed item that names it in WantA, WantB.
	Key string
	// WantA and WantB are the names (values of Key) that ProjectA (with
	// Scope applied) and ProjectB list, sorted.
	WantA, WantB []string
	// Body is added to every request (e.g. a filter), JSON without braces.
	Body string
}

// CheckUnion calls u.Action as a person holding, in ProjectA, a custom
// role granting only u.Action narrowed to u.Scope, the same role not
// narrowed in ProjectB and no role in ProjectC. Without ProjectId the list
// must be the union of WantA and WantB, with that TotalCount, and pages of
// two must walk it in the same order; with ProjectId each project lists
// its own, and ProjectC is refused.
func CheckUnion(t *testing.T, reg *api.Registry, u Union) {
	t.Helper()
	acts, err := reg.MatchActions("Actions", []string{u.Action})
	if err != nil {
		t.Fatal(err)
	}
	role := &api.Role{Name: "union-" + u.Action, Actions: acts}
	c := &api.Caller{UserID: "usr-union", UserName: "union"}
	c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: ProjectA, Role: role.Narrow(u.Scope)}, {ProjectID: ProjectB, Role: role}}))
	want := append(append([]string(nil), u.WantA...), u.WantB...)
	sort.Strings(want)
	total, all, err := List(c, reg, u.Action, u.Key, u.Body)
	if err != nil {
		t.Fatalf("%s without ProjectId: %v", u.Action, err)
	}
	if got := sorted(all); total != len(want) || got != strings.Join(want, ",") {
		t.Errorf("%s without ProjectId = %d [%s]; want %d [%s]: %v of %s and %v of %s", u.Action, total, got, len(want), strings.Join(want, ","), u.WantA, ProjectA, u.WantB, ProjectB)
	}
	var paged []string
	for off := 0; off < len(want)+2; off += 2 {
		n, page, err := List(c, reg, u.Action, u.Key, join(u.Body, fmt.Sprintf(`"Offset": %d, "Limit": 2`, off)))
		if err != nil {
			t.Fatalf("%s at Offset %d: %v", u.Action, off, err)
		}
		if n != len(want) {
			t.Errorf("%s at Offset %d: TotalCount %d, want %d", u.Action, off, n, len(want))
		}
		paged = append(paged, page...)
	}
	if strings.Join(paged, ",") != strings.Join(all, ",") {
		t.Errorf("%s in pages of 2 = %v; want the whole list's order %v", u.Action, paged, all)
	}
	for _, p := range []struct {
		id   string
		want []string
	}{{ProjectA, u.WantA}, {ProjectB, u.WantB}} {
		n, got, err := List(c, reg, u.Action, u.Key, join(u.Body, `"ProjectId": "`+p.id+`"`))
		if err != nil {
			t.Fatalf("%s in %s: %v", u.Action, p.id, err)
		}
		if sorted(got) != strings.Join(p.want, ",") || n != len(p.want) {
			t.Errorf("%s in %s = %d %v; want %v", u.Action, p.id, n, got, p.want)
		}
	}
	_, _, err = List(c, reg, u.Action, u.Key, join(u.Body, `"ProjectId": "`+ProjectC+`"`))
	if e, ok := api.AsError(err); !ok || e.Code != api.AuthFailureUnauthorizedOperation {
		t.Errorf("%s in %s (no role there): %v; want %s", u.Action, ProjectC, err, api.AuthFailureUnauthorizedOperation)
	}
}

// List calls a list action as c with body (JSON without braces) and
// returns its TotalCount and the key field of each item of its …Set, in
// the order answered.
func List(c *api.Caller, reg *api.Registry, action, key, body string) (int, []string, error) {
	a, ok := reg.Lookup(action)
	if !ok {
		return 0, nil, fmt.Errorf("no action %s", action)
	}
	resp, err := a.Call(context.Background(), c, []byte("{"+body+"}"))
	if err != nil {
		return 0, nil, err
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return 0, nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return 0, nil, err
	}
	var total int
	if err := json.Unmarshal(fields["TotalCount"], &total); err != nil {
		return 0, nil, fmt.Errorf("%s: TotalCount: %w", action, err)
	}
	var names []string
	for f, v := range fields {
		if !strings.HasSuffix(f, "Set") {
			continue
		}
		var items []map[string]any
		if err := json.Unmarshal(v, &items); err != nil {
			return 0, nil, fmt.Errorf("%s: %s: %w", action, f, err)
		}
		for _, it := range items {
			names = append(names, fmt.Sprint(it[key]))
		}
	}
	return total, names, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

func sorted(v []string) string {
	s := append([]string(nil), v...)
	sort.Strings(s)
	return strings.Join(s, ",")
}
