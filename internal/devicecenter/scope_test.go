package devicecenter

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// A role narrowed to the cameras of one site (a device group, plus one
// device by id) lists only those, and any other device of the project is
// "not found" to it, as are devices of other projects.
func TestDeviceScope(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	box, err := secrets.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	// Replay devices read folders under the test's temporary directory.
	media, err := execpolicy.NewMedia(execpolicy.MediaConfig{Root: []string{os.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := device.NewRuntime(device.Options{Media: media})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	svc := New(db, box, rt, nil, slog.New(slog.DiscardHandler), time.Now)
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
