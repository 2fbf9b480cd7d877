// Package apptest starts a whole platform in the test process, on a fresh
// data dir and a free loopback port, with known admin credentials.
package apptest

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/config"
)

// Admin credentials every test platform starts with.
const (
	AdminSecretID  = "AKIDtianshutestadmin000000000000000"
	AdminSecretKey = "tianshu-test-admin-secret-key-000"
	AdminPassword  = "tianshu-test-password"
)

// Env is a running test platform.
type Env struct {
	P        *app.Platform
	Endpoint string // http://127.0.0.1:PORT
	Host     string // 127.0.0.1:PORT
	DataDir  string
}

// Options adjust the platform a test starts.
type Options struct {
	// Args are extra `serve` flags, e.g. "--db", url.
	Args []string
	// Env overrides environment variables the platform reads.
	Env map[string]string
	// Now is the platform's clock.
	Now func() time.Time
	// Logs receives the platform's logs (discarded when nil unless
	// TIANSHU_TEST_LOGS=1).
	Logs io.Writer
}

// Start starts a platform and stops it when the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{
		"TIANSHU_ADMIN_SECRET_ID":  AdminSecretID,
		"TIANSHU_ADMIN_SECRET_KEY": AdminSecretKey,
		"TIANSHU_ADMIN_PASSWORD":   AdminPassword,
	}
	for k, v := range o.Env {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	// Test algorithms, cameras and webhook receivers listen on loopback,
	// which a real server's outbound policy refuses.
	args := append([]string{"--data-dir", dir, "--http-addr", "127.0.0.1:0", "--log.level", "debug", "--outbound.allow-loopback"}, o.Args...)
	cfg, err := config.Load(flag.NewFlagSet("serve", flag.ContinueOnError), args, getenv)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := o.Logs
	if logs == nil {
		logs = io.Discard
		if os.Getenv("TIANSHU_TEST_LOGS") == "1" {
			logs = os.Stderr
		}
	}
	p, err := app.New(cfg, app.Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Getenv: getenv, Now: o.Now})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	u, _ := url.Parse(p.BaseURL())
	return &Env{P: p, Endpoint: p.BaseURL(), Host: u.Host, DataDir: dir}
}
