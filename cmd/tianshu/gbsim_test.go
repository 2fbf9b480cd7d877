package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/gb28181"
)

type noDevices struct{}

func (noDevices) Password(context.Context, string) (string, error) {
	return "", gb28181.ErrUnknownDevice
}
func (noDevices) Status(context.Context, string, bool, string) {}
func (noDevices) Catalog(context.Context, string, int, []gb28181.CatalogItem) {
}

// TestGBSim: tianshu gb28181-sim names what is missing or wrong, and exits
// 3 when the platform refuses the device.
func TestGBSim(t *testing.T) {
	var errb bytes.Buffer
	if code := gbSim(nil, &errb, func(string) string { return "" }); code != 2 || !strings.Contains(errb.String(), "TIANSHU_GB28181_SIM_PASSWORD") {
		t.Fatalf("no password: %d %s", code, errb.String())
	}
	env := func(k string) string {
		if k == "TIANSHU_GB28181_SIM_PASSWORD" {
			return "pw"
		}
		return ""
	}
	errb.Reset()
	if code := gbSim([]string{"-channels", "12=a"}, &errb, env); code != 2 || !strings.Contains(errb.String(), "-channels") {
		t.Fatalf("bad channel: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := gbSim([]string{"-changes", "MOVE:34020000001310000001=a"}, &errb, env); code != 2 || !strings.Contains(errb.String(), `"MOVE"`) {
		t.Fatalf("bad change: %d %s", code, errb.String())
	}
	srv, err := gb28181.New(gb28181.Config{Addr: "127.0.0.1:0"}, gb28181.Options{Directory: noDevices{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	errb.Reset()
	if code := gbSim([]string{"-server", srv.Addr(), "-transport", "tcp"}, &errb, env); code != 3 || !strings.Contains(errb.String(), "403") {
		t.Fatalf("unknown device: %d %s", code, errb.String())
	}
}
