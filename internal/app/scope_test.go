package app_test

import (
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// TestScopedRoleStartsTasksOnlyOnItsDevices: a role narrowed to one site's
// cameras cannot create a task that reads a camera of another site (the
// task would see its frames); the refusal reads as if the camera did not
// exist, and the task is not created.
func TestScopedRoleStartsTasksOnlyOnItsDevices(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	// Loopback discard port: nothing listens, and no probe leaves the host.
	devA := admin.mustCall("CreateDevice", map[string]any{"Name": "gate-a", "Driver": "http-snapshot", "Address": "http://127.0.0.1:9/a.jpg", "Group": "site-a"})["DeviceId"].(string)
	devB := admin.mustCall("CreateDevice", map[string]any{"Name": "gate-b", "Driver": "http-snapshot", "Address": "http://127.0.0.1:9/b.jpg", "Group": "site-b"})["DeviceId"].(string)
	flowID := admin.mustCall("CreateFlow", map[string]any{"Document": echoFlow})["FlowId"].(string)
	admin.mustCall("CreateRole", map[string]any{"Name": "site-a-tasks", "Actions": []string{"CreateTask", "Describe*"}, "DeviceGroups": []string{"site-a"}})
	appID := admin.mustCall("CreateApp", map[string]any{"Name": "site-a-integrator", "Role": "site-a-tasks"})["AppId"].(string)
	k := admin.mustCall("CreateAppKey", map[string]any{"AppId": appID})
	site := newSDK(t, e.Host, k["SecretId"].(string), k["SecretKey"].(string))

	task := func(dev string) map[string]any {
		return map[string]any{"Name": "t-" + dev, "FlowId": flowID, "Sources": []any{map[string]any{"Type": "device", "Id": dev}}}
	}
	if _, code := site.call("CreateTask", task(devB)); code != "ResourceNotFound" {
		t.Fatalf("CreateTask on another site's camera: %q, want ResourceNotFound", code)
	}
	if _, code := site.call("CreateTask", task("dev-nosuch")); code != "ResourceNotFound" {
		t.Fatalf("CreateTask on an unknown camera: %q, want ResourceNotFound", code)
	}
	site.mustCall("CreateTask", task(devA))
	r := admin.mustCall("DescribeTasks", map[string]any{})
	if n := r["TotalCount"].(float64); n != 1 {
		t.Fatalf("%v tasks exist, want only the one on site A's camera", n)
	}
}
