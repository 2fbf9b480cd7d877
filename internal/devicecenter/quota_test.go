package devicecenter_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
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

// Creates racing on a project's last device are decided one at a time:
// exactly one of 20 concurrent creates at quota-1 succeeds, on every
// dialect (issue #26, part 6: the count and the insert are one decision).
func TestConcurrentCreateDeviceAtQuota(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		box, _ := secrets.New(bytes.Repeat([]byte{3}, secrets.KeySize))
		svc := devicecenter.New(db, box, nil, nil, slog.New(slog.DiscardHandler), nil)
		svc.UseQuotas(quotas{"default/devices": 3})
		for i := range 2 {
			if err := svc.Create(ctx, &devicecenter.Device{Name: fmt.Sprintf("cam%d", i), Config: device.Config{Driver: "rtsp", Address: fmt.Sprintf("rtsp://10.0.0.%d/live", i+1)}}); err != nil {
				t.Fatal(err)
			}
		}
		const racers = 20
		errs := make(chan error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- svc.Create(ctx, &devicecenter.Device{Name: fmt.Sprintf("race%d", i), Config: device.Config{Driver: "rtsp", Address: fmt.Sprintf("rtsp://10.0.1.%d/live", i+1)}})
			}()
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			if err == nil {
				ok++
				continue
			}
			if e, is := api.AsError(err); !is || e.Code != api.LimitExceeded {
				t.Errorf("racing create: %v", err)
			}
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM devices WHERE project_id = 'default'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if ok != 1 || n != 3 {
			t.Fatalf("%d of %d racing creates succeeded, project holds %d devices; want 1 and 3", ok, racers, n)
		}
	})
}
