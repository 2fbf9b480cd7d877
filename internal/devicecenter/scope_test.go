package devicecenter

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// A role narrowed to the cameras of one site (a device group, plus one
// device by id) lists only those, and any other device of the project is
// "not found" to it, as are devices of other projects.
func TestDeviceScope(t *testing.T) {
	ctx := context.Background()
	db, svc := newTestService(t, os.TempDir()) // replay devices read folders under the temporary directory
	reg := api.NewRegistry()
	RegisterActions(reg, svc, nil)
	if _, err := db.Exec(ctx, "INSERT INTO projects (id, name, description, created_at, updated_at) VALUES ('prj-b', 'b', '', 0, 0)"); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, d := range []struct{ name, project, group string }{{"a1", "default", "site-a"}, {"a2", "default", "site-a"}, {"b1", "default", "site-b"},
		{"b2", "default", "site-b"}, {"x1", "prj-b", "site-a"}} {
		dev := &Device{ProjectID: d.project, Name: d.name, Group: d.group, Config: device.Config{Driver: "replay", Address: t.TempDir(), FPS: 1}}
		if err := svc.Create(ctx, dev); err != nil {
			t.Fatal(err)
		}
		ids[d.name] = dev.ID
	}
	acts, err := reg.MatchActions("Actions", []string{"*Device*"})
	if err != nil {
		t.Fatal(err)
	}
	role := (&api.Role{Name: "site-a-cameras", Actions: acts}).Narrow(api.Scope{DeviceGroups: []string{"site-a"}, DeviceIDs: []string{ids["b2"]}})
	c := &api.Caller{AppID: "app-cam", ProjectID: "default"}
	c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: "default", Role: role}}))
	call := func(action, body string) (any, error) {
		a, _ := reg.Lookup(action)
		return a.Call(ctx, c, []byte(body))
	}
	r, err := call("DescribeDevices", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	list := r.(*DescribeDevicesResponse)
	var names []string
	for _, d := range list.DeviceSet {
		names = append(names, d.Name)
	}
	sort.Strings(names)
	if got, _ := json.Marshal(names); list.TotalCount != 3 || string(got) != `["a1","a2","b2"]` {
		t.Errorf("DescribeDevices = %d %s, want a1, a2 (site-a) and b2 (by id)", list.TotalCount, got)
	}
	for name, visible := range map[string]bool{"a1": true, "b2": true, "b1": false, "x1": false} {
		_, err := call("ModifyDevice", `{"DeviceId": "`+ids[name]+`", "Name": "renamed-`+name+`"}`)
		if visible && err != nil {
			t.Errorf("ModifyDevice %s: %v", name, err)
		}
		if e, _ := api.AsError(err); !visible && (e == nil || e.Code != api.ResourceNotFound) {
			t.Errorf("ModifyDevice %s outside the scope: %v, want ResourceNotFound", name, err)
		}
	}
	if d, _ := svc.Get(ctx, ids["b1"]); d.Name != "b1" {
		t.Errorf("a refused ModifyDevice changed the device: %q", d.Name)
	}
	_, err = call("DeleteDevice", `{"DeviceId": "`+ids["b1"]+`"}`)
	if e, _ := api.AsError(err); e == nil || e.Code != api.ResourceNotFound {
		t.Errorf("DeleteDevice outside the scope: %v", err)
	}
}

// A person with roles in two projects (a custom role narrowed to the
// cameras of site-a in default, viewer in prj-b) who lists devices without
// ProjectId sees the union of what those roles reach, and nothing of a
// project where they hold no role; paging walks that union.
func TestDeviceListUnion(t *testing.T) {
	ctx := context.Background()
	db, svc := newTestService(t, os.TempDir())
	reg := api.NewRegistry()
	RegisterActions(reg, svc, nil)
	for _, p := range []string{"prj-b", "prj-c"} {
		if _, err := db.Exec(ctx, "INSERT INTO projects (id, name, description, created_at, updated_at) VALUES (?, ?, '', 0, 0)", p, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct{ name, project, group string }{{"a1", "default", "site-a"}, {"a2", "default", "site-a"}, {"b1", "default", "site-b"},
		{"x1", "prj-b", "site-b"}, {"x2", "prj-b", ""}, {"y1", "prj-c", "site-a"}} {
		dev := &Device{ProjectID: d.project, Name: d.name, Group: d.group, Config: device.Config{Driver: "replay", Address: t.TempDir(), FPS: 1}}
		if err := svc.Create(ctx, dev); err != nil {
			t.Fatal(err)
		}
	}
	acts, err := reg.MatchActions("Actions", []string{"*Device*"})
	if err != nil {
		t.Fatal(err)
	}
	siteA := (&api.Role{Name: "site-a-cameras", Actions: acts}).Narrow(api.Scope{DeviceGroups: []string{"site-a"}})
	viewer, _ := reg.BuiltinRole(api.RoleViewer)
	c := &api.Caller{UserID: "usr-erin", UserName: "erin"}
	c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: "default", Role: siteA}, {ProjectID: "prj-b", Role: viewer}}))
	list := func(body string) (int, []string) {
		t.Helper()
		a, _ := reg.Lookup("DescribeDevices")
		r, err := a.Call(ctx, c, []byte(body))
		if err != nil {
			t.Fatalf("DescribeDevices %s: %v", body, err)
		}
		resp := r.(*DescribeDevicesResponse)
		var names []string
		for _, d := range resp.DeviceSet {
			names = append(names, d.Name)
		}
		return resp.TotalCount, names
	}
	total, names := list(`{}`)
	sort.Strings(names)
	if got, _ := json.Marshal(names); total != 4 || string(got) != `["a1","a2","x1","x2"]` {
		t.Errorf("DescribeDevices without ProjectId = %d %s; want a1, a2 (site-a of default) and x1, x2 (all of prj-b)", total, got)
	}
	var paged []string
	for off := 0; off < 6; off += 3 {
		n, page := list(`{"Offset": ` + strconv.Itoa(off) + `, "Limit": 3}`)
		if n != 4 {
			t.Errorf("page at %d: TotalCount %d, want 4", off, n)
		}
		paged = append(paged, page...)
	}
	sort.Strings(paged)
	if got, _ := json.Marshal(paged); string(got) != `["a1","a2","x1","x2"]` {
		t.Errorf("pages of 3 = %s; want each of the 4 once", got)
	}
	if total, names := list(`{"ProjectId": "prj-b"}`); total != 2 || len(names) != 2 {
		t.Errorf("DescribeDevices in prj-b = %d %v; want x1 and x2", total, names)
	}
	if total, names := list(`{"Filters": [{"Name": "Group", "Values": ["site-b"]}]}`); total != 1 || len(names) != 1 || names[0] != "x1" {
		t.Errorf("group site-b across the union = %d %v; want x1 only (b1 is outside the site-a role)", total, names)
	}
}

// newTestService is a device center on a fresh SQLite store whose replay
// devices may read folders under mediaRoot.
func newTestService(t testing.TB, mediaRoot string) (*store.DB, *Service) {
	t.Helper()
	db := storetest.Open(t, "sqlite")
	box, err := secrets.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	media, err := execpolicy.NewMedia(execpolicy.MediaConfig{Root: []string{mediaRoot}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := device.NewRuntime(device.Options{Media: media})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return db, New(db, box, rt, nil, slog.New(slog.DiscardHandler), time.Now)
}
