package devicecenter

import (
	"context"
	"errors"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/flow"
)

// Flows see the zones of their own project's devices only, and a change
// made through Modify is seen at once in this process (the cache forgets it).
func TestZonesForProject(t *testing.T) {
	dir := t.TempDir()
	_, s := newTestService(t, dir)
	ctx := context.Background()
	d := &Device{Name: "cam", Config: device.Config{Driver: "replay", Address: dir},
		Zones: []Zone{{Name: "door", Kind: "line", Points: [][2]float64{{0, 0.5}, {1, 0.5}}}}}
	if err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	z, err := s.ZonesFor("default").Zone(ctx, d.ID, "door")
	if err != nil || z.Kind != "line" || z.Points[1] != [2]float64{1, 0.5} {
		t.Fatalf("own project: %+v %v", z, err)
	}
	for _, tc := range []struct{ project, dev, name string }{{"other", d.ID, "door"}, {"default", d.ID, "window"}, {"default", "dev-none", "door"}} {
		if _, err := s.ZonesFor(tc.project).Zone(ctx, tc.dev, tc.name); !errors.Is(err, flow.ErrUnknownZone) {
			t.Errorf("%+v: %v, want ErrUnknownZone", tc, err)
		}
	}
	zs := []Zone{{Name: "door", Kind: "polygon", Points: [][2]float64{{0, 0}, {1, 0}, {1, 1}}}}
	if err := s.Modify(ctx, d.ID, Change{Zones: &zs}); err != nil {
		t.Fatal(err)
	}
	if z, err := s.ZonesFor("default").Zone(ctx, d.ID, "door"); err != nil || z.Kind != "polygon" {
		t.Fatalf("after Modify: %+v %v", z, err)
	}
}
