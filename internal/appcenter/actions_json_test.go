package appcenter

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// TestDescribeAppsResponseAppendJSON: the answer encodes itself byte for
// byte as encoding/json (HTML escaping off) encodes it.
func TestDescribeAppsResponseAppendJSON(t *testing.T) {
	app := AppInfo{AppId: "app-1", ProjectId: "proj-<&>", Name: "n\u2028\"x\"\n\t\x01é", Description: "",
		Role: "admin", Status: "active", ActiveKeyCount: 3, CreatedTime: "2026-12-06T23:00:00Z",
		RateLimit: RateLimit{ReadRps: 0.5, WriteRps: 1e21, Burst: 7}}
	odd := app
	odd.RateLimit = RateLimit{ReadRps: 1e-7, WriteRps: math.MaxFloat64, Burst: -1}
	for _, r := range []DescribeAppsResponse{
		{}, {TotalCount: 0, AppSet: []AppInfo{}}, {TotalCount: 2, AppSet: []AppInfo{app, odd}}, {TotalCount: 1, AppSet: []AppInfo{{}}},
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&r); err != nil {
			t.Fatal(err)
		}
		got, err := r.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if w := bytes.TrimSuffix(want.Bytes(), []byte("\n")); !bytes.Equal(got, w) {
			t.Errorf("AppendJSON\n %s\nencoding/json\n %s", got, w)
		}
	}
}
