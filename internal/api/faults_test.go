package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/bus"
)

// diskFull is an error that reports a full disk through the Fault method
// the gateway looks for. The store's own (a real SQLite on a full tmpfs)
// is exercised in internal/app's TestDiskFull; here it stands in so that
// the gateway's mapping is tested without a full disk.
type diskFull struct{}

func (diskFull) Error() string                   { return "no space left on device" }
func (diskFull) Fault() (component, kind string) { return "store", "storage_full" }

// TestGatewayAnswersFaults: errors of a backend that cannot serve answer
// ResourceUnavailable naming the component, with Retry-After, or
// ResourceInsufficient.StorageFull; other plain errors stay InternalError.
func TestGatewayAnswersFaults(t *testing.T) {
	reg := api.NewRegistry()
	errs := map[string]error{
		"BusDown":    fmt.Errorf("device status: %w", fmt.Errorf("%w: connection RECONNECTING", bus.ErrUnavailable)),
		"BusClosed":  bus.ErrClosed,
		"StoreFull":  fmt.Errorf("flows: %w", diskFull{}),
		"PlainError": fmt.Errorf("a bug"),
	}
	for name, err := range errs {
		api.Register(reg, api.Spec{Name: name, Summary: "Fails.", Public: true, Permission: api.Permission{Resource: "thing", Access: api.Write}},
			func(context.Context, *api.Caller, *struct{}) (*struct{}, error) { return nil, err })
	}
	srv := httptest.NewServer(api.NewGateway(api.DefaultConfig(), reg, api.GatewayOptions{}))
	defer srv.Close()

	for _, tc := range []struct {
		action     string
		code       api.Code
		component  string
		retryAfter string
	}{
		{"BusDown", api.ResourceUnavailable, "bus", "2"},
		{"BusClosed", api.ResourceUnavailable, "bus", "2"},
		{"StoreFull", api.ResourceInsufficientStorageFull, "store", ""},
		{"PlainError", api.InternalError, "", ""},
	} {
		t.Run(tc.action, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-TC-Action", tc.action)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct {
				Response struct {
					Error struct{ Code, Message string }
				}
			}
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			e := body.Response.Error
			if e.Code != string(tc.code) {
				t.Fatalf("code %s (%s), want %s", e.Code, e.Message, tc.code)
			}
			if tc.component != "" && !strings.HasPrefix(e.Message, tc.component+": ") {
				t.Errorf("message %q does not name %s", e.Message, tc.component)
			}
			if got := res.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
		})
	}
}
