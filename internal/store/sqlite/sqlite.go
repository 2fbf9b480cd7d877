// Package sqlite is the store's SQLite engine, the embedded default: one
// file, no server. Importing it registers the schemes sqlite and sqlite3.
package sqlite

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite" // also the database/sql driver "sqlite"

	"github.com/tianshu-ai/tianshu/internal/store"
)

func init() {
	store.Register("sqlite", Dialect{})
	store.Register("sqlite3", Dialect{})
}

// Dialect is SQLite's store.Plugin.
type Dialect struct{}

// Name implements store.Dialect.
func (Dialect) Name() string { return "sqlite" }

// Rebind implements store.Dialect: SQLite takes `?` as it is.
func (Dialect) Rebind(q string) string { return q }

// ForUpdate implements store.Dialect: a write transaction locks the whole
// database (the store begins them IMMEDIATE), so rows need no lock.
func (Dialect) ForUpdate() string { return "" }

// JSONText implements store.Dialect. json_extract returns typed SQL values
// (1 for true), so booleans are mapped to the words the other engines give.
func (Dialect) JSONText(column, field string) string {
	return fmt.Sprintf("(CASE json_type(%[1]s, '$.%[2]s') WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "+
		"ELSE CAST(json_extract(%[1]s, '$.%[2]s') AS TEXT) END)", column, field)
}

// JSONNumber implements store.Dialect: json_extract yields an INTEGER or a
// REAL for JSON numbers, which SQLite compares numerically with each other.
func (Dialect) JSONNumber(column, field string) string {
	return fmt.Sprintf("(CASE WHEN json_type(%[1]s, '$.%[2]s') IN ('integer', 'real') THEN json_extract(%[1]s, '$.%[2]s') END)", column, field)
}

// OnConflict implements store.Dialect with SQLite's upsert clause (3.24+).
func (Dialect) OnConflict(key []string, update ...string) string {
	return store.OnConflictExcluded(key, update)
}

// DataSource implements store.Plugin: the URL's host and path name the file
// (sqlite:///abs/path.db or sqlite://relative/path.db), whose directory is
// created.
func (Dialect) DataSource(u *url.URL) (string, string, error) {
	path := u.Host + u.Path
	if path == "" {
		return "", "", fmt.Errorf("%w: sqlite URL needs a path, e.g. sqlite:///var/lib/tianshu/tianshu.db", store.ErrUnsupportedURL)
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return "", "", fmt.Errorf("store: create directory for %s: %w", path, err)
		}
	}
	// WAL lets readers proceed during a write; busy_timeout makes
	// concurrent writers wait instead of failing; _txlock=immediate takes
	// the write lock at BEGIN so read-then-write transactions cannot
	// deadlock on lock upgrade.
	return driverName, "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate", nil
}

// IsUniqueViolation implements store.Plugin. modernc.org/sqlite reports
// SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555)
// in the message.
func (Dialect) IsUniqueViolation(err error) bool {
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "(2067)") || strings.Contains(s, "(1555)")
}

// Fault implements store.Plugin: SQLITE_FULL (13, with its extended
// codes) is a full disk, SQLITE_IOERR (10, with its extended codes) an
// I/O error on the database's files, which the store looks into. An
// SQLite database has no connection to lose.
func (Dialect) Fault(err error) store.Fault {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return store.FaultNone
	}
	switch se.Code() & 0xff {
	case 13:
		return store.FaultStorageFull
	case 10:
		return store.FaultLocalIO
	}
	return store.FaultNone
}

// LocalPath returns the database file of u, for the store to watch the
// free space of its directory.
func (Dialect) LocalPath(u *url.URL) string {
	if p := u.Host + u.Path; p != ":memory:" {
		return p
	}
	return ""
}

// GooseDialect implements store.Plugin.
func (Dialect) GooseDialect() goose.Dialect { return goose.DialectSQLite3 }

// TableOptions implements store.Plugin.
func (Dialect) TableOptions() string { return "" }

// LargeText implements store.Plugin.
func (Dialect) LargeText() string { return "TEXT" }

// MigrationLocker implements store.Plugin: one process owns the file, and
// its write transactions serialise anyway.
func (Dialect) MigrationLocker() (lock.SessionLocker, error) { return nil, nil }
