package store

import (
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Dialect is what differs between the SQL engines in the queries centers
// write. Callers spell a difference through a method here rather than by
// switching on Name, so that an engine is added by one plugin package.
type Dialect interface {
	// Name names the engine ("sqlite", "mysql", "postgres") for logs and
	// messages; code must not branch on it.
	Name() string
	// Rebind rewrites `?` placeholders to the dialect's form.
	Rebind(query string) string
	// ForUpdate is the suffix that locks selected rows for the rest of the
	// transaction ("" where the whole database is locked by the transaction).
	ForUpdate() string
	// JSONText is an expression for the text of a field of the JSON
	// document in column: a top-level field name, or a dotted path of
	// names into nested objects (Attributes.age). Every dialect yields the same text for the
	// same JSON value: strings unquoted, numbers as written, true and false
	// as words, null as SQL NULL; comparisons with it are byte-exact. Both
	// names are written into the SQL text, so callers must pass identifiers
	// they have checked, never user input as is.
	JSONText(column, field string) string
	// JSONNumber is an expression for a field (a name or dotted path, as
	// for JSONText) of the JSON document in column as a double when it is a JSON number, and SQL NULL
	// otherwise (a string "7" is not a number), so that range comparisons
	// mean the same on every engine. The names are written into the SQL
	// text as with JSONText.
	JSONNumber(column, field string) string
	// OnConflict is the suffix of an INSERT ... VALUES statement that, where
	// a row with the same key (the columns of a primary or unique key)
	// exists, sets the update columns to the inserted values instead of
	// failing; with no update columns it leaves the existing row as it is.
	// Like ForUpdate, it starts with a space.
	OnConflict(key []string, update ...string) string
}

// Plugin is one SQL engine: its Dialect, and how to connect to and migrate
// it. Implementations live in subpackages (store/sqlite, store/mysql,
// store/postgres) and call Register from init; a binary chooses its engines
// with blank imports.
type Plugin interface {
	Dialect
	// DataSource returns the database/sql driver name and data source name
	// for u, a URL of one of the schemes the plugin registered. Errors for
	// URLs that lack something wrap ErrUnsupportedURL. It may prepare the
	// location (SQLite creates the file's directory).
	DataSource(u *url.URL) (driver, dsn string, err error)
	// IsUniqueViolation reports whether a non-nil err is a unique or
	// primary key conflict.
	IsUniqueViolation(err error) bool
	// Fault tells whether a non-nil err is the database's fault rather
	// than the query's: a lost connection or a full disk. It reports the
	// engine's own codes; the store adds what every driver shares
	// (driver.ErrBadConn, a reset socket, ENOSPC).
	Fault(err error) Fault
	// GooseDialect is the migration tool's name for the engine.
	GooseDialect() goose.Dialect
	// TableOptions is appended to CREATE TABLE in migrations ("" for none).
	TableOptions() string
	// LargeText is a column type for documents up to 16 MiB.
	LargeText() string
	// MigrationLocker returns the lock that lets one of several replicas
	// starting together against a shared server migrate while the others
	// wait; nil where no lock is needed (SQLite: the write transaction
	// already serialises).
	MigrationLocker() (lock.SessionLocker, error)
}

// The plugin registry is the package's one piece of state, kept for the
// same reason database/sql keeps its drivers: engines register themselves
// from init in the package that implements them.
var (
	pluginsMu sync.RWMutex
	plugins   = map[string]Plugin{}
)

// Register makes an engine available to Open under a URL scheme; an engine
// with several schemes ("postgres", "postgresql") registers each. It panics
// when the scheme is empty, the plugin nil or the scheme already taken,
// since each of those is a wiring bug to catch at start-up.
func Register(scheme string, p Plugin) {
	pluginsMu.Lock()
	defer pluginsMu.Unlock()
	if scheme == "" || p == nil {
		panic("store: Register needs a scheme and a plugin")
	}
	if _, dup := plugins[scheme]; dup {
		panic("store: Register called twice for scheme " + scheme)
	}
	plugins[scheme] = p
}

// Schemes lists the registered URL schemes, sorted, for error messages and
// config validation.
func Schemes() []string {
	pluginsMu.RLock()
	defer pluginsMu.RUnlock()
	s := make([]string, 0, len(plugins))
	for k := range plugins {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func lookup(scheme string) Plugin {
	pluginsMu.RLock()
	defer pluginsMu.RUnlock()
	return plugins[scheme]
}

// OnConflictExcluded is the standard SQL upsert suffix that SQLite and
// PostgreSQL share: ON CONFLICT (key) DO UPDATE SET col = excluded.col, or
// DO NOTHING without update columns. Plugins implement
// Dialect.OnConflict with it.
func OnConflictExcluded(key []string, update []string) string {
	var b strings.Builder
	b.WriteString(" ON CONFLICT (" + strings.Join(key, ", ") + ") DO ")
	if len(update) == 0 {
		b.WriteString("NOTHING")
		return b.String()
	}
	b.WriteString("UPDATE SET ")
	for i, c := range update {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c + " = excluded." + c)
	}
	return b.String()
}
