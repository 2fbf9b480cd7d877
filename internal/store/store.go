// Package store is Tianshu's metadata store: one SQL schema over SQLite (the
// embedded default), MySQL/MariaDB and PostgreSQL, chosen by URL. It knows no
// domain: centers write their own queries against DB, using the dialect only
// for the few places where the engines differ (placeholders, locking, upserts,
// JSON fields, errors). The engines are plugins in subpackages that register
// by URL scheme (see Register).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrUnsupportedURL is returned by Open for a URL whose scheme names no
// registered engine, or that the engine cannot use.
var ErrUnsupportedURL = errors.New("store: unsupported database URL")

// Options configures Open.
type Options struct {
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// MaxOpenConns bounds the connection pool; 0 picks a default per dialect.
	MaxOpenConns int
	// Registerer receives the store's metrics (tianshu_store_faults_total,
	// tianshu_store_storage_full); nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// DB is an open metadata store. It embeds *sql.DB, so callers use the
// standard API; queries are written with `?` placeholders and passed through
// Rebind (or the Exec/Query helpers below) so that they run on every dialect.
type DB struct {
	*sql.DB
	dialect Plugin
	log     *slog.Logger
	url     *url.URL
	maxIdle int
	faults  *faults

	stmtMu sync.RWMutex
	stmts  map[string]*sql.Stmt // prepared once per query text
}

// maxStmts bounds the statement cache; queries beyond it (e.g. IN lists of
// many lengths) run unprepared.
const maxStmts = 256

// stmt returns a cached prepared statement for query, or nil when the
// cache is full or preparing fails (the caller then runs it directly).
// Preparing once saves the engine's parse on every call, which dominates
// small lookups on SQLite.
func (db *DB) stmt(ctx context.Context, query string) *sql.Stmt {
	db.stmtMu.RLock()
	st, ok := db.stmts[query]
	db.stmtMu.RUnlock()
	if ok {
		return st
	}
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if st, ok := db.stmts[query]; ok {
		return st
	}
	if len(db.stmts) >= maxStmts {
		return nil
	}
	st, err := db.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	db.stmts[query] = st
	return st
}

// Open connects to the database named by rawURL, with the engine
// registered for its scheme:
//
//	sqlite:///abs/path/tianshu.db   (or sqlite://relative/path.db)
//	mysql://user:pass@host:3306/db?param=value
//	postgres://user:pass@host:5432/db?sslmode=disable
//
// It does not migrate; call Migrate.
func Open(ctx context.Context, rawURL string, o Options) (*DB, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: parse URL: %w", err)
	}
	d := lookup(u.Scheme)
	if d == nil {
		return nil, fmt.Errorf("%w: scheme %q (registered: %v)", ErrUnsupportedURL, u.Scheme, Schemes())
	}
	driver, dsn, err := d.DataSource(u)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", d.Name(), err)
	}
	maxConns := o.MaxOpenConns
	if maxConns == 0 {
		maxConns = 16
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f, err := newFaults(o.Registerer)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: metrics: %w", err)
	}
	sdb := &DB{DB: db, dialect: d, log: log, url: u, maxIdle: maxConns, faults: f, stmts: map[string]*sql.Stmt{}}
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: connect to %s at %s: %w", d.Name(), redact(u), sdb.classify(err))
	}
	log.Info("store opened", "dialect", d.Name(), "url", redact(u))
	return sdb, nil
}

// Dialect returns the SQL dialect of the database.
func (db *DB) Dialect() Dialect { return db.dialect }

// Rebind rewrites `?` placeholders for the dialect.
func (db *DB) Rebind(query string) string { return db.dialect.Rebind(query) }

// Exec runs a statement written with `?` placeholders. It is not run a
// second time when the connection is lost: the statement may have been
// applied, so the error wraps ErrUnavailable and the caller decides
// (database/sql itself retries where the driver knows nothing was sent).
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if pendingUnit(ctx, db) != nil {
		return db.execInUnit(ctx, query, args)
	}
	q := db.dialect.Rebind(query)
	var res sql.Result
	var err error
	if st := db.stmt(ctx, q); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = db.DB.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return nil, db.classify(err)
	}
	db.wrote()
	return res, nil
}

// Query runs a query written with `?` placeholders. A query that fails
// because its connection was lost runs once more on a fresh one; errors
// that remain wrap ErrUnavailable or ErrStorageFull where they are the
// database's. Errors met while iterating the rows are the driver's.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := db.dialect.Rebind(query)
	rows, err := db.query(ctx, q, args)
	if db.lostConnection(ctx, err) {
		rows, err = db.query(ctx, q, args)
	}
	return rows, db.classify(err)
}

func (db *DB) query(ctx context.Context, q string, args []any) (*sql.Rows, error) {
	if st := db.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.DB.QueryContext(ctx, q, args...)
}

// Row is the result of QueryRow: *sql.Row's Scan and Err, with the
// database's faults wrapped as Query wraps them.
type Row struct {
	row *sql.Row
	db  *DB
}

// Scan copies the row's columns into dest; it returns sql.ErrNoRows when
// there was no row.
func (r *Row) Scan(dest ...any) error { return r.db.classify(r.row.Scan(dest...)) }

// Err returns the error of running the query, if any.
func (r *Row) Err() error { return r.db.classify(r.row.Err()) }

// QueryRow runs a single-row query written with `?` placeholders, once
// more on a fresh connection when the first lost its connection.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *Row {
	q := db.dialect.Rebind(query)
	row := db.queryRow(ctx, q, args)
	if db.lostConnection(ctx, row.Err()) {
		row = db.queryRow(ctx, q, args)
	}
	return &Row{row: row, db: db}
}

func (db *DB) queryRow(ctx context.Context, q string, args []any) *sql.Row {
	if st := db.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.DB.QueryRowContext(ctx, q, args...)
}

// Close closes the cached statements and the database.
func (db *DB) Close() error {
	db.stmtMu.Lock()
	for _, st := range db.stmts {
		_ = st.Close()
	}
	db.stmts = map[string]*sql.Stmt{}
	db.stmtMu.Unlock()
	err := db.DB.Close()
	if db.fault(err) == FaultConnection {
		// A connection the server already closed has nothing to release.
		return nil
	}
	return err
}

// Tx is a transaction whose helpers take `?` placeholders, like DB's.
type Tx struct {
	*sql.Tx
	dialect Dialect
	db      *DB // for fault classification and its statement cache (unit.go)
}

// Exec runs a statement in the transaction.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.Tx.ExecContext(ctx, tx.dialect.Rebind(query), args...)
}

// Query runs a query in the transaction.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.dialect.Rebind(query), args...)
}

// QueryRow runs a single-row query in the transaction.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *Row {
	return &Row{row: tx.Tx.QueryRowContext(ctx, tx.dialect.Rebind(query), args...), db: tx.db}
}

// Dialect returns the transaction's dialect.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise (and on panic, which is re-raised).
//
// When the connection is lost before the commit (at BEGIN or in one of
// fn's statements), nothing was applied, and InTx runs fn once more in a
// transaction on a fresh connection: fn must therefore do nothing but
// through tx, or only what may be done twice. A lost connection at COMMIT
// is not retried, since the commit may have been applied; its error, like
// every fault that remains, wraps ErrUnavailable or ErrStorageFull.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	committing, err := db.inTx(ctx, fn)
	if !committing && db.lostConnection(ctx, err) {
		_, err = db.inTx(ctx, fn)
	}
	if err != nil {
		return db.classify(err)
	}
	db.wrote()
	return nil
}

// inTx runs one transaction; committing reports whether an error came
// from COMMIT.
func (db *DB) inTx(ctx context.Context, fn func(tx *Tx) error) (committing bool, err error) {
	stx, err := db.DB.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: begin: %w", err)
	}
	tx := &Tx{Tx: stx, dialect: db.dialect, db: db}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		return false, err
	}
	u, err := db.join(ctx, tx) // a Unit of ctx commits with this change
	if err != nil {
		_ = stx.Rollback()
		return false, err
	}
	if err := stx.Commit(); err != nil {
		u.end(false)
		return true, fmt.Errorf("store: commit: %w", err)
	}
	u.end(true)
	return false, nil
}

// IsUniqueViolation reports whether err is a unique or primary key conflict.
func (db *DB) IsUniqueViolation(err error) bool {
	return err != nil && db.dialect.IsUniqueViolation(err)
}

// redact returns u without its password, for logs and errors.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		}
	}
	return c.String()
}

// ProbeWrite writes the one row of the store_heartbeat table, to tell
// whether the store takes writes (readiness). Its error is classified like
// any other write's.
func (db *DB) ProbeWrite(ctx context.Context) error {
	_, err := db.Exec(ctx, "UPDATE store_heartbeat SET beat_ms = ? WHERE id = 1", time.Now().UnixMilli())
	return err
}

// LocalDir returns the directory of the database's files when they are
// on this machine (SQLite), and "" for a database behind a server. The
// platform watches its free space.
func (db *DB) LocalDir() string {
	if l, ok := db.dialect.(interface{ LocalPath(u *url.URL) string }); ok {
		if p := l.LocalPath(db.url); p != "" {
			return filepath.Dir(p)
		}
	}
	return ""
}
