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
	"sync"
	"time"
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
}

// DB is an open metadata store. It embeds *sql.DB, so callers use the
// standard API; queries are written with `?` placeholders and passed through
// Rebind (or the Exec/Query helpers below) so that they run on every dialect.
type DB struct {
	*sql.DB
	dialect Plugin
	log     *slog.Logger

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
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: connect to %s at %s: %w", d.Name(), redact(u), err)
	}
	log.Info("store opened", "dialect", d.Name(), "url", redact(u))
	return &DB{DB: db, dialect: d, log: log, stmts: map[string]*sql.Stmt{}}, nil
}

// Dialect returns the SQL dialect of the database.
func (db *DB) Dialect() Dialect { return db.dialect }

// Rebind rewrites `?` placeholders for the dialect.
func (db *DB) Rebind(query string) string { return db.dialect.Rebind(query) }

// Exec runs a statement written with `?` placeholders.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if pendingUnit(ctx, db) != nil {
		return db.execInUnit(ctx, query, args)
	}
	q := db.dialect.Rebind(query)
	if st := db.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return db.DB.ExecContext(ctx, q, args...)
}

// Query runs a query written with `?` placeholders.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := db.dialect.Rebind(query)
	if st := db.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.DB.QueryContext(ctx, q, args...)
}

// QueryRow runs a single-row query written with `?` placeholders.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	q := db.dialect.Rebind(query)
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
	return db.DB.Close()
}

// Tx is a transaction whose helpers take `?` placeholders, like DB's.
type Tx struct {
	*sql.Tx
	dialect Dialect
	db      *DB // for its statement cache (unit.go)
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
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, tx.dialect.Rebind(query), args...)
}

// Dialect returns the transaction's dialect.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise (and on panic, which is re-raised).
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) (err error) {
	stx, err := db.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
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
		return err
	}
	u, err := db.join(ctx, tx) // a Unit of ctx commits with this change
	if err != nil {
		_ = stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		u.end(false)
		return fmt.Errorf("store: commit: %w", err)
	}
	u.end(true)
	return nil
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
