package store

import (
	"errors"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
)

// Dialect is what differs between the SQL engines Tianshu supports.
type Dialect interface {
	// Name is "sqlite", "mysql" or "postgres".
	Name() string
	// Rebind rewrites `?` placeholders to the dialect's form.
	Rebind(query string) string
	// ForUpdate is the suffix that locks selected rows for the rest of the
	// transaction ("" where the whole database is locked by the transaction).
	ForUpdate() string

	driver() string
	goose() goose.Dialect
	tableOptions() string
	largeText() string // a column type for documents up to 16 MiB
	isUniqueViolation(err error) bool
}

type sqliteDialect struct{}

func (sqliteDialect) Name() string           { return "sqlite" }
func (sqliteDialect) Rebind(q string) string { return q }
func (sqliteDialect) ForUpdate() string      { return "" }
func (sqliteDialect) driver() string         { return "sqlite" }
func (sqliteDialect) goose() goose.Dialect   { return goose.DialectSQLite3 }
func (sqliteDialect) tableOptions() string   { return "" }
func (sqliteDialect) largeText() string      { return "TEXT" }
func (sqliteDialect) isUniqueViolation(err error) bool {
	// modernc.org/sqlite reports SQLITE_CONSTRAINT_UNIQUE (2067) and
	// SQLITE_CONSTRAINT_PRIMARYKEY (1555) in the message.
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "(2067)") || strings.Contains(s, "(1555)")
}

type mysqlDialect struct{}

func (mysqlDialect) Name() string           { return "mysql" }
func (mysqlDialect) Rebind(q string) string { return q }
func (mysqlDialect) ForUpdate() string      { return " FOR UPDATE" }
func (mysqlDialect) driver() string         { return "mysql" }
func (mysqlDialect) goose() goose.Dialect   { return goose.DialectMySQL }
func (mysqlDialect) tableOptions() string {
	return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
}
func (mysqlDialect) largeText() string { return "MEDIUMTEXT" }
func (mysqlDialect) isUniqueViolation(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

type postgresDialect struct{}

func (postgresDialect) Name() string         { return "postgres" }
func (postgresDialect) ForUpdate() string    { return " FOR UPDATE" }
func (postgresDialect) driver() string       { return "pgx" }
func (postgresDialect) goose() goose.Dialect { return goose.DialectPostgres }
func (postgresDialect) tableOptions() string { return "" }
func (postgresDialect) largeText() string    { return "TEXT" }
func (postgresDialect) isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Rebind turns `?` into `$1, $2, …`, leaving quoted strings alone.
func (postgresDialect) Rebind(q string) string {
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
