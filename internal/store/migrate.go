package store

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"testing/fstest"
	"text/template"

	"github.com/pressly/goose/v3"
)

// The migrations are written once for all dialects; the few differences
// (MySQL's table options) are template fields filled in per dialect.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationTable is goose's version table.
const migrationTable = "schema_migrations"

// MigrationStatus is one migration and whether it has been applied.
type MigrationStatus struct {
	Version int64
	Name    string
	Applied bool
}

func (db *DB) provider() (*goose.Provider, error) {
	fsys, err := renderMigrations(db.dialect)
	if err != nil {
		return nil, err
	}
	// Out-of-order is allowed: migrations are numbered per component when they
	// are written, and one that lands after a higher number must still apply.
	opts := []goose.ProviderOption{goose.WithTableName(migrationTable), goose.WithDisableGlobalRegistry(true), goose.WithAllowOutofOrder(true)}
	// Several replicas may start at once against a shared server: a lock
	// makes one of them migrate while the others wait.
	l, err := db.dialect.MigrationLocker()
	if err != nil {
		return nil, err
	}
	if l != nil {
		opts = append(opts, goose.WithSessionLocker(l))
	}
	return goose.NewProvider(db.dialect.GooseDialect(), db.DB, fsys, opts...)
}

// Migrate applies every pending migration embedded in the binary and returns
// how many it applied.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	p, err := db.provider()
	if err != nil {
		return 0, fmt.Errorf("store: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("store: migrate %s: %w", db.dialect.Name(), db.classify(err))
	}
	for _, r := range res {
		db.log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return len(res), nil
}

// MigrationStatus lists the embedded migrations and which are applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	p, err := db.provider()
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: migration status: %w", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationStatus{Version: s.Source.Version, Name: s.Source.Path, Applied: s.State == goose.StateApplied})
	}
	return out, nil
}

func renderMigrations(d Plugin) (fs.FS, error) {
	// dropIndex writes DROP INDEX, which MySQL wants with its table.
	dropIndex := func(index, table string) string {
		if d.Name() == "mysql" {
			return "DROP INDEX " + index + " ON " + table
		}
		return "DROP INDEX " + index
	}
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	out := fstest.MapFS{}
	// Int64Key is a 64-bit primary key column's type: on SQLite the
	// rowid itself (INTEGER PRIMARY KEY adds no index of its own).
	int64Key := "BIGINT NOT NULL PRIMARY KEY"
	if d.Name() == "sqlite" {
		int64Key = "INTEGER NOT NULL PRIMARY KEY"
	}
	data := struct{ TableOptions, LargeText, Int64Key string }{d.TableOptions(), d.LargeText(), int64Key}
	for _, f := range files {
		src, err := migrationFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		t, err := template.New(f).Option("missingkey=error").Funcs(template.FuncMap{"dropIndex": dropIndex}).Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", f, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("migration %s: %w", f, err)
		}
		out[f[len("migrations/"):]] = &fstest.MapFile{Data: b.Bytes(), Mode: 0o444}
	}
	return out, nil
}
