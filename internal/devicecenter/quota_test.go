package devicecenter_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

type quotas map[string]int

func (q quotas) Quota(_ context.Context, projectID, kind string) (int, error) {
	return q[projectID+"/"+kind], nil
}

// A project holds at most its quota of devices (issue #26, part 6).
func TestCreateDeviceWithinProjectQuota(t *testing.T) {
	ctx := context.Background()
	box, _ := secrets.New(bytes.Repeat([]byte{3}, secrets.KeySize))
	svc := devicecenter.New(storetest.Open(t, "sqlite"), box, nil, nil, slog.New(slog.DiscardHandler), nil)
	svc.UseQuotas(quotas{"default/devices": 2})
	create := func(i int) error {
		return svc.Create(ctx, &devicecenter.Device{Name: fmt.Sprintf("cam%d", i), Config: device.Config{Driver: "rtsp", Address: fmt.Sprintf("rtsp://10.0.0.%d/live", i+1)}})
	}
	for i := range 2 {
		if err := create(i); err != nil {
			t.Fatal(err)
		}
	}
	err := create(2)
	if e, ok := api.AsError(err); !ok || e.Code != api.LimitExceeded || e.Message != "project default holds 2 devices, its quota of devices; a platform admin raises it with ModifyProjectQuota" {
		t.Fatalf("third device: %v", err)
	}
}
