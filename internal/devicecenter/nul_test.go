package devicecenter_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// A NUL character is refused naming the field on every store alike;
// PostgreSQL used to answer it with an error of its own (an InternalError
// at the gateway) where SQLite and MariaDB stored it.
func TestNULRefusedOnEveryStore(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		box, _ := secrets.New(bytes.Repeat([]byte{5}, secrets.KeySize))
		reg := api.NewRegistry()
		devicecenter.RegisterActions(reg, devicecenter.New(db, box, nil, nil, slog.New(slog.DiscardHandler), nil), nil)
		a, _ := reg.Lookup("CreateDevice")
		_, err := a.Call(context.Background(), &api.Caller{AppID: "app-t", ProjectID: "default", Role: api.RoleAdmin},
			[]byte(`{"Name": "gate\u0000", "Driver": "rtsp", "Address": "rtsp://10.0.0.9/live"}`))
		if e, ok := api.AsError(err); !ok || e.Code != api.InvalidParameterValue || e.Message != "Name: contains a NUL character (U+0000)" {
			t.Fatalf("CreateDevice with a NUL in Name: %v", err)
		}
	})
}
