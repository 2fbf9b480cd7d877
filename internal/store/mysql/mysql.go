// Package mysql is the store's MySQL and MariaDB engine. Importing it
// registers the schemes mysql and mariadb.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/tianshu-ai/tianshu/internal/store"
)

func init() {
	store.Register("mysql", Dialect{})
	store.Register("mariadb", Dialect{})
}

// Dialect is MySQL's and MariaDB's store.Plugin.
type Dialect struct{}

// Name implements store.Dialect.
func (Dialect) Name() string { return "mysql" }

// Rebind implements store.Dialect: MySQL takes `?` as it is.
func (Dialect) Rebind(q string) string { return q }

// ForUpdate implements store.Dialect.
func (Dialect) ForUpdate() string { return " FOR UPDATE" }

// JSONText implements store.Dialect. JSON_UNQUOTE yields the text of
// strings, numbers and booleans alike, but the word null for JSON null, so
// that case is mapped to SQL NULL as the other engines give; the COLLATE
// keeps comparisons byte-exact as elsewhere.
func (Dialect) JSONText(column, field string) string {
	return fmt.Sprintf("(CASE JSON_TYPE(JSON_EXTRACT(%[1]s, '$.%[2]s')) WHEN 'NULL' THEN NULL "+
		"ELSE JSON_UNQUOTE(JSON_EXTRACT(%[1]s, '$.%[2]s')) END) COLLATE utf8mb4_bin", column, field)
}

// JSONNumber implements store.Dialect. JSON_TYPE names numbers INTEGER,
// UNSIGNED INTEGER, DOUBLE or DECIMAL (MariaDB: INTEGER or DOUBLE); adding
// 0e0 turns the extracted text into a double on both engines.
func (Dialect) JSONNumber(column, field string) string {
	return fmt.Sprintf("(CASE WHEN JSON_TYPE(JSON_EXTRACT(%[1]s, '$.%[2]s')) IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL') "+
		"THEN JSON_UNQUOTE(JSON_EXTRACT(%[1]s, '$.%[2]s')) + 0e0 END)", column, field)
}

// OnConflict implements store.Dialect. MySQL's clause names no key: any
// unique key conflict takes it, so key only picks the no-op assignment
// when nothing is to be updated.
func (Dialect) OnConflict(key []string, update ...string) string {
	if len(update) == 0 {
		return " ON DUPLICATE KEY UPDATE " + key[0] + " = " + key[0]
	}
	set := make([]string, len(update))
	for i, c := range update {
		set[i] = c + " = VALUES(" + c + ")"
	}
	return " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
}

// DataSource implements store.Plugin: mysql://user:pass@host:3306/db?param=value.
func (Dialect) DataSource(u *url.URL) (string, string, error) {
	var b strings.Builder
	if u.User != nil {
		b.WriteString(u.User.Username())
		if p, ok := u.User.Password(); ok {
			b.WriteString(":" + p)
		}
		b.WriteString("@")
	}
	host := u.Host
	if host == "" {
		host = "127.0.0.1:3306"
	}
	if u.Port() == "" {
		host += ":3306"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		return "", "", fmt.Errorf("%w: mysql URL needs a database name, e.g. mysql://root@127.0.0.1:3306/tianshu", store.ErrUnsupportedURL)
	}
	q := u.Query()
	// utf8mb4 so that every Unicode name round-trips; multiStatements so a
	// migration file can hold several statements.
	if q.Get("charset") == "" {
		q.Set("charset", "utf8mb4")
	}
	if q.Get("collation") == "" {
		q.Set("collation", "utf8mb4_bin")
	}
	q.Set("multiStatements", "true")
	// Rows matched, not rows changed, as SQLite and PostgreSQL count them:
	// an UPDATE that writes the values a row already holds found it, and
	// callers that answer NotFound for 0 rows must not for that.
	q.Set("clientFoundRows", "true")
	q.Set("parseTime", "true") // goose scans its version table into time.Time
	// Values written into the statement's text by the driver (which
	// escapes them for the connection's mode and refuses charsets where
	// that is unsafe; utf8mb4 is safe), not sent apart: a statement with
	// arguments is one round trip instead of a prepare, an execute and a
	// close, and an audited change with its event can be sent as one
	// multi-statement transaction (ExecWithRow).
	q.Set("interpolateParams", "true")
	fmt.Fprintf(&b, "tcp(%s)/%s?%s", host, db, q.Encode())
	return "mysql", b.String(), nil
}

// IsUniqueViolation implements store.Plugin.
func (Dialect) IsUniqueViolation(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// Fault implements store.Plugin. The server shutting down (1053), a
// killed connection (1927), a server gone away or lost during a query
// (2006, 2013) and the driver's own invalid-connection error lose the
// connection; disk full (1021) and a table that cannot grow (1114) are
// a full disk, as are write errors with errno 28 (ENOSPC).
func (Dialect) Fault(err error) store.Fault {
	if errors.Is(err, mysql.ErrInvalidConn) {
		return store.FaultConnection
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return store.FaultNone
	}
	switch me.Number {
	case 1053, 1927, 2006, 2013:
		return store.FaultConnection
	case 1021, 1114:
		return store.FaultStorageFull
	}
	if strings.Contains(me.Message, "errno: 28") || strings.Contains(me.Message, "No space left") {
		return store.FaultStorageFull
	}
	return store.FaultNone
}

// GooseDialect implements store.Plugin.
func (Dialect) GooseDialect() goose.Dialect { return goose.DialectMySQL }

// TableOptions implements store.Plugin.
func (Dialect) TableOptions() string {
	return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
}

// LargeText implements store.Plugin.
func (Dialect) LargeText() string { return "MEDIUMTEXT" }

// MigrationLocker implements store.Plugin with a named lock held by the
// migrating connection (goose's own MySQL table locker did not work against
// MariaDB).
func (Dialect) MigrationLocker() (lock.SessionLocker, error) {
	return namedLock("tianshu_migrate"), nil
}

// namedLock is a MySQL GET_LOCK lock, held by one connection.
type namedLock string

func (l namedLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 120)", string(l)).Scan(&got); err != nil || got.Int64 != 1 {
		if err == nil {
			err = errors.New("timed out after 120 s")
		}
		return fmt.Errorf("store: lock %s: %w", string(l), err)
	}
	return nil
}

func (l namedLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "SELECT RELEASE_LOCK(?)", string(l))
	return err
}
