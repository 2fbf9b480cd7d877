// Command tianshu is the whole platform in one binary:
//
//	tianshu serve [--target=all] [flags]   run the platform (every module by default)
//	tianshu ctl ACTION [--Field value ...]  call any action of a running platform
//	tianshu audit export|verify [flags]     export the audit log as JSON lines, or verify its chain
//	tianshu migrate [flags]                 apply the store's migrations and exit
//	tianshu secrets stage|rotate|status     rotate the master key (docs/secrets.md)
//	tianshu version                         print the version
//	tianshu docs                            print the API reference (docs/api.md)
//	tianshu gb28181-sim [flags]             run a simulated GB/T 28181 camera
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/config"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `usage: tianshu COMMAND [flags]

commands:
  serve     run the platform (all modules by default; --target=a,b for a subset)
  ctl       call an action: tianshu ctl ACTION [--Field value ...] [--json '{...}']
  audit     export the audit log as JSON lines (audit export --since T > f.jsonl) or verify it (audit verify)
  migrate   apply the metadata store's migrations and exit
  secrets   rotate the master key: tianshu secrets stage|rotate|status
  version   print the version
  docs      print the API reference
  gb28181-sim  run a simulated GB/T 28181 camera against a platform's SIP server

Run 'tianshu COMMAND -h' for a command's flags.
`

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr, getenv)
	case "ctl":
		return ctl(args[1:], stdout, stderr, getenv)
	case "audit":
		return auditCmd(args[1:], stdout, stderr, getenv)
	case "migrate":
		return migrate(args[1:], stdout, stderr, getenv)
	case "secrets":
		return secretsCmd(args[1:], stdout, stderr, getenv)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "tianshu %s (%s, %s/%s%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, vcsRevision())
		return 0
	case "docs":
		fmt.Fprint(stdout, api.Markdown(app.NewRegistry(nil)))
		return 0
	case "gb28181-sim":
		return gbSim(args[1:], stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tianshu: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func vcsRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return ", " + s.Value[:12]
		}
	}
	return ""
}

func loadConfig(name string, args []string, stderr io.Writer, getenv func(string) string) (config.Config, int) {
	fs := flag.NewFlagSet("tianshu "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := config.Load(fs, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return cfg, 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tianshu %s: %v\n", name, err)
		return cfg, 2
	}
	return cfg, -1
}

func serve(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, code := loadConfig("serve", args, stderr, getenv)
	if code >= 0 {
		return code
	}
	log := telemetry.NewLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	p, err := app.New(cfg, app.Options{Logger: log, Getenv: getenv})
	if err != nil {
		fmt.Fprintf(stderr, "tianshu serve: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := p.Start(ctx); err != nil {
		log.Error("start failed", "err", err)
		fmt.Fprintf(stderr, "tianshu serve: %v\n", err)
		return 1
	}
	if cfg.Demo {
		d, err := p.SetupDemo(ctx)
		if err != nil {
			log.Error("demo setup failed", "err", err)
			fmt.Fprintf(stderr, "tianshu serve --demo: %v\n", err)
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			_ = p.Stop(sctx)
			return 1
		}
		fmt.Fprint(stdout, app.DemoInstructions(d, cfg.DataDir, os.Args[0], time.Now()))
	}
	exit := 0
	select {
	case <-ctx.Done():
		log.Info("stopping", "reason", "signal")
	case err := <-p.Err():
		log.Error("http server failed", "err", err)
		exit = 1
	}
	// The grace period is for the HTTP server's last answers, the timeout
	// for the modules after it (Platform.Stop).
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace+cfg.ShutdownTimeout)
	defer cancel()
	if err := p.Stop(sctx); err != nil {
		log.Error("stop incomplete", "err", err)
		exit = 1
	}
	return exit
}

func migrate(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, code := loadConfig("migrate", args, stderr, getenv)
	if code >= 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		fmt.Fprintf(stderr, "tianshu migrate: %v\n", err)
		return 1
	}
	db, err := store.Open(ctx, cfg.DB, store.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "tianshu migrate: %v\n", err)
		return 1
	}
	defer db.Close()
	n, err := db.Migrate(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "tianshu migrate: %v\n", err)
		return 1
	}
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "tianshu migrate: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: applied %d migration(s); schema at version %d\n", db.Dialect().Name(), n, st[len(st)-1].Version)
	return 0
}
