package devicecenter

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// Saving, changing or probing (unsaved) a device that would run a program
// outside the exec policy or read outside the media roots is refused
// before anything runs, naming the field.
func TestDevicesUnderExecPolicy(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	box, err := secrets.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	media := t.TempDir()
	m, err := execpolicy.NewMedia(execpolicy.MediaConfig{Root: []string{media}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := device.NewRuntime(device.Options{Media: m}) // no --exec.allow
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	svc := New(db, box, rt, nil, slog.New(slog.DiscardHandler), time.Now)
	marker := filepath.Join(t.TempDir(), "ran")
	shell := device.Config{ID: "probe", Driver: "adapter", Address: "x",
		Options: map[string]any{"command": "/bin/sh", "args": []any{"-c", "touch " + marker}}}
	wantRefused := func(what string, err error, field string) {
		t.Helper()
		e, ok := api.AsError(err)
		if !ok || e.Code != api.InvalidParameterValue || !strings.Contains(e.Message, field) {
			t.Errorf("%s: got %v; want %s refused", what, err, field)
		}
	}
	_, err = svc.Probe(ctx, shell)
	wantRefused("probe adapter /bin/sh", err, "Options.command")
	err = svc.Create(ctx, &Device{Name: "sh", Config: shell})
	wantRefused("create adapter /bin/sh", err, "Options.command")
	err = svc.Create(ctx, &Device{Name: "etc", Config: device.Config{Driver: "replay", Address: "/etc"}})
	wantRefused("create replay /etc", err, "Address")
	_, err = svc.Probe(ctx, device.Config{ID: "probe", Driver: "replay", Address: filepath.Join(media, "v.mp4"), Options: map[string]any{"ffmpeg": "/bin/sh"}})
	wantRefused("probe replay ffmpeg /bin/sh", err, "Options.ffmpeg")

	// Inside the root it is saved (even before the folder exists), and
	// cannot then be pointed outside.
	d := &Device{Name: "cam", Config: device.Config{Driver: "replay", Address: filepath.Join(media, "cam")}}
	if err := svc.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	etc := "/etc"
	wantRefused("modify replay to /etc", svc.Modify(ctx, d.ID, Change{Address: &etc}), "Address")
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the shell ran")
	}
}
