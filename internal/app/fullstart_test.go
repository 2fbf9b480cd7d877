package app_test

import (
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/config"
)

// startPlatform starts a platform with its SQLite store at dbPath and
// returns it (stopped when the test ends) or the error of Start.
func startPlatform(t *testing.T, dbPath string) (*app.Platform, error) {
	t.Helper()
	cfg, err := config.Load(flag.NewFlagSet("serve", flag.ContinueOnError), []string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0",
		"--db", "sqlite://" + dbPath, "--store.min-free-bytes", "0"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	p, err := app.New(cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return p, p.Start(ctx)
}

// TestStartOnFullDisk: a platform whose SQLite store is on a full disk,
// new or written before, does not start, and says that the storage is
// full rather than "disk I/O error".
func TestStartOnFullDisk(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run(map[bool]string{false: "new", true: "existing"}[existing], func(t *testing.T) {
			dir := mountTmpfs(t, "4m")
			db := filepath.Join(dir, "tianshu.db")
			if existing {
				p, err := startPlatform(t, db)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Stop(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			fillDisk(t, filepath.Join(dir, "fill"))
			p, err := startPlatform(t, db)
			if err == nil {
				_ = p.Stop(context.Background())
				t.Fatal("started on a full disk")
			}
			t.Logf("start: %v", err)
			if !strings.Contains(err.Error(), "storage full") {
				t.Errorf("start on a full disk: %v; want it to say the storage is full", err)
			}
		})
	}
}
