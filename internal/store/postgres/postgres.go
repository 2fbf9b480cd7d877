// Package postgres is the store's PostgreSQL engine. Importing it registers
// the schemes postgres and postgresql.
package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/tianshu-ai/tianshu/internal/store"
)

func init() {
	store.Register("postgres", Dialect{})
	store.Register("postgresql", Dialect{})
}

// Dialect is PostgreSQL's store.Plugin.
type Dialect struct{}

// Name implements store.Dialect.
func (Dialect) Name() string { return "postgres" }

// ForUpdate implements store.Dialect.
func (Dialect) ForUpdate() string { return " FOR UPDATE" }

// JSONText implements store.Dialect; a dotted path becomes a text array
// path (#>> '{Attributes,age}').
func (Dialect) JSONText(column, field string) string {
	if strings.Contains(field, ".") {
		return fmt.Sprintf("(%s::jsonb)#>>'{%s}'", column, strings.ReplaceAll(field, ".", ","))
	}
	return fmt.Sprintf("(%s::jsonb)->>'%s'", column, field)
}

// Fold lets the store run an audited change and its staged event in one
// statement (see store.Unit.SetRow): data-modifying WITH clauses run
// together, atomically, and the insert sees what the change returned.
func (Dialect) Fold(change, insert string) string {
	return "WITH changed AS (" + change + " RETURNING 1), unit AS (" + insert +
		" WHERE EXISTS (SELECT 1 FROM changed)) SELECT COUNT(*) FROM changed"
}

// JSONNumber implements store.Dialect: the text of a jsonb number always
// casts to double precision, and CASE evaluates the cast only for numbers.
func (Dialect) JSONNumber(column, field string) string {
	if strings.Contains(field, ".") {
		path := strings.ReplaceAll(field, ".", ",")
		return fmt.Sprintf("(CASE WHEN jsonb_typeof((%[1]s::jsonb)#>'{%[2]s}') = 'number' THEN ((%[1]s::jsonb)#>>'{%[2]s}')::double precision END)", column, path)
	}
	return fmt.Sprintf("(CASE WHEN jsonb_typeof((%[1]s::jsonb)->'%[2]s') = 'number' THEN ((%[1]s::jsonb)->>'%[2]s')::double precision END)", column, field)
}

// OnConflict implements store.Dialect.
func (Dialect) OnConflict(key []string, update ...string) string {
	return store.OnConflictExcluded(key, update)
}

// Rebind implements store.Dialect: it turns `?` into `$1, $2, …`, leaving
// quoted strings alone.
func (Dialect) Rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	inQuote := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DataSource implements store.Plugin: pgx takes the URL as it is.
func (Dialect) DataSource(u *url.URL) (string, string, error) {
	return "pgx", u.String(), nil
}

// IsUniqueViolation implements store.Plugin.
func (Dialect) IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Fault implements store.Plugin. Class 57P (the server shutting down or
// an administrator terminating the session) and class 08 (connection
// exceptions) lose the connection; 53100 (disk_full) is a full disk. pgx
// reports a connection it closed with its own errors, which the store
// recognises.
func (Dialect) Fault(err error) store.Fault {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			return store.FaultConnection
		}
		return store.FaultNone
	}
	switch {
	case pe.Code == "53100":
		return store.FaultStorageFull
	case strings.HasPrefix(pe.Code, "57P"), strings.HasPrefix(pe.Code, "08"):
		return store.FaultConnection
	}
	return store.FaultNone
}

// GooseDialect implements store.Plugin.
func (Dialect) GooseDialect() goose.Dialect { return goose.DialectPostgres }

// TableOptions implements store.Plugin.
func (Dialect) TableOptions() string { return "" }

// LargeText implements store.Plugin.
func (Dialect) LargeText() string { return "TEXT" }

// MigrationLocker implements store.Plugin with an advisory session lock.
func (Dialect) MigrationLocker() (lock.SessionLocker, error) {
	return lock.NewPostgresSessionLocker()
}
