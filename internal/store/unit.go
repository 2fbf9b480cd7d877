package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
)

// A Unit is work that must commit together with a change: the gateway
// attaches one to an audited call's context so that the call's audit event
// is written in the transaction that makes the call's change, and a crash
// can never keep the change and lose its event. The first transaction
// (InTx, or Exec outside one) under that context that commits runs the
// unit's function just before its commit; later ones do not.
type Unit struct {
	db  *DB // the unit joins this database's transactions only
	fn  func(ctx context.Context, tx *Tx) (bool, error)
	row func() (UnitRow, bool) // SetRow's

	mu    sync.Mutex
	state unitState
}

type unitState int

const (
	unitPending   unitState = iota // no transaction has taken it yet
	unitTaken                      // a transaction ran it and has not ended
	unitCommitted                  // its work committed
)

type unitKey struct{}

// WithUnit returns ctx carrying a unit that runs fn in the first
// transaction of db under ctx that commits, just before the commit. fn reports
// whether it did its work: when it returns false the unit stays for the
// next transaction; when it returns an error, the transaction rolls back
// with that error, so the change is not made without the unit's work.
func (db *DB) WithUnit(ctx context.Context, fn func(ctx context.Context, tx *Tx) (done bool, err error)) (context.Context, *Unit) {
	u := &Unit{db: db, fn: fn}
	return context.WithValue(ctx, unitKey{}, u), u
}

// A UnitRow is a unit's work when that work is one row to insert.
type UnitRow struct {
	// Into is the table and its columns: "audit_pending (id, time_ms)".
	Into string
	// Args are the row's values, one per column.
	Args []any
}

// Placeholders returns the `?` placeholders of the row's values,
// separated by commas.
func (r UnitRow) Placeholders() string {
	return strings.Repeat(", ?", len(r.Args))[2:]
}

// SetRow offers the unit's work as one row, where all its function does
// is insert that row: a change made by one statement outside a
// transaction of the caller's then commits with the row in that one
// statement on engines that can fold them (PostgreSQL: a data-modifying
// WITH), instead of a transaction of four (BEGIN, the statement, the
// insert, COMMIT), which is three round trips more and, under
// concurrency, holds the change's row locks for two of them. row
// reports false when there is nothing to insert yet (the unit then stays
// for the next transaction); it may be called more than once. Elsewhere
// the unit's function runs as before. Call it before ctx is used.
func (u *Unit) SetRow(row func() (UnitRow, bool)) { u.row = row }

// Committed reports whether the unit's work committed with a change.
func (u *Unit) Committed() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.state == unitCommitted
}

// pendingUnit returns the unit of ctx for db when no transaction has
// taken it.
func pendingUnit(ctx context.Context, db *DB) *Unit {
	u, _ := ctx.Value(unitKey{}).(*Unit)
	if u == nil || u.db != db {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state != unitPending {
		return nil
	}
	return u
}

// join runs ctx's pending unit in tx before its commit, and returns it
// (nil when there was none, another transaction holds it, or its function
// left its work for later). The caller settles it with end.
func (db *DB) join(ctx context.Context, tx *Tx) (*Unit, error) {
	u := pendingUnit(ctx, db)
	if u == nil {
		return nil, nil
	}
	u.mu.Lock()
	if u.state != unitPending {
		u.mu.Unlock()
		return nil, nil
	}
	u.state = unitTaken
	u.mu.Unlock()
	done, err := u.fn(ctx, tx)
	if err != nil || !done {
		u.end(false)
		return nil, err
	}
	return u, nil
}

// end records whether the transaction that took u committed; one that did
// not gives the unit back to the next.
func (u *Unit) end(committed bool) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if committed {
		u.state = unitCommitted
	} else {
		u.state = unitPending
	}
}

// execInUnit runs a statement outside a transaction of the caller's in one
// of its own, which takes ctx's unit when the statement changed a row: a
// statement that changed nothing made no change for the unit to join.
func (db *DB) execInUnit(ctx context.Context, query string, args []any) (sql.Result, error) {
	if res, folded, err := db.execFolded(ctx, query, args); folded {
		return res, err
	}
	db.PrepareCached(ctx, query)
	var res sql.Result
	var u *Unit
	hidden := context.WithValue(ctx, unitKey{}, (*Unit)(nil)) // InTx must not join it before the statement
	err := db.InTx(hidden, func(tx *Tx) error {
		var err error
		if res, err = tx.ExecCached(ctx, query, args...); err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return nil
		}
		u, err = db.join(ctx, tx)
		return err
	})
	u.end(err == nil)
	return res, err
}

// A folder is a Plugin that can run a change and an insert in one
// statement (PostgreSQL).
type folder interface {
	// Fold returns one statement that runs change (an INSERT, UPDATE or
	// DELETE without RETURNING) and then insert (an INSERT ... SELECT of
	// values, without FROM or WHERE) only when change changed a row, and
	// whose one row and column is the number of rows change changed.
	Fold(change, insert string) string
}

// A rowUnit is a Plugin that runs a change and an insert in a
// transaction of its own on one connection more cheaply than InTx
// (SQLite: cached BEGIN and COMMIT, no database/sql transaction; MySQL:
// the transaction as one multi-statement text, one round trip instead of
// four).
type rowUnit interface {
	// ExecWithRow runs change and then, only when change changed a row,
	// the insert of row, committing both or neither, on conn; it reports
	// the rows change changed. A failure leaves no transaction open on
	// conn.
	ExecWithRow(ctx context.Context, conn *sql.Conn, change string, args []any, row UnitRow) (int64, error)
}

// execFolded runs query with ctx's pending unit folded in, where the
// engine folds (folder) or runs a row unit (rowUnit), the unit offers its
// row (SetRow) and query is a statement that can carry it; folded
// reports whether it ran.
func (db *DB) execFolded(ctx context.Context, query string, args []any) (res sql.Result, folded bool, err error) {
	f, fold := db.dialect.(folder)
	r, rows := db.dialect.(rowUnit)
	u := pendingUnit(ctx, db)
	if !fold && !rows || u == nil || u.row == nil || !foldable(query) {
		return nil, false, nil
	}
	u.mu.Lock()
	if u.state != unitPending {
		u.mu.Unlock()
		return nil, false, nil
	}
	u.state = unitTaken
	u.mu.Unlock()
	row, ok := u.row()
	if !ok {
		u.end(false)
		return nil, false, nil
	}
	var n int64
	if fold {
		q := db.dialect.Rebind(f.Fold(query, "INSERT INTO "+row.Into+" SELECT "+row.Placeholders()))
		all := append(append(make([]any, 0, len(args)+len(row.Args)), args...), row.Args...)
		// Not queried a second time on a lost connection, as Exec: the
		// statement may have been applied.
		err = db.queryRow(ctx, q, all).Scan(&n)
	} else {
		n, err = db.execWithRow(ctx, r, query, args, row)
	}
	u.end(err == nil && n > 0) // a statement that changed nothing inserted nothing
	if err != nil {
		return nil, true, db.classify(err)
	}
	db.wrote()
	return foldedResult(n), true, nil
}

// execWithRow runs r's row unit on a connection of its own.
func (db *DB) execWithRow(ctx context.Context, r rowUnit, query string, args []any, row UnitRow) (int64, error) {
	conn, err := db.DB.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return r.ExecWithRow(ctx, conn, db.dialect.Rebind(query), args, row)
}

// foldable reports whether query is one INSERT, UPDATE or DELETE that a
// folder can wrap: no RETURNING of its own, no second statement.
func foldable(query string) bool {
	q := strings.ToUpper(strings.TrimSpace(query))
	return (strings.HasPrefix(q, "INSERT ") || strings.HasPrefix(q, "UPDATE ") || strings.HasPrefix(q, "DELETE ")) &&
		!strings.Contains(q, "RETURNING") && !strings.Contains(q, ";")
}

// foldedResult is the sql.Result of a folded statement: the rows its
// change changed.
type foldedResult int64

func (r foldedResult) LastInsertId() (int64, error) {
	return 0, errors.New("store: LastInsertId is not available for a statement with a unit folded in")
}

func (r foldedResult) RowsAffected() (int64, error) { return int64(r), nil }

// PrepareCached puts queries (written with `?` placeholders) in the database's
// statement cache, for ExecCached and QueryRowCached. Call it outside a
// transaction: preparing takes a connection of its own, which a
// transaction waiting for one could deadlock on when the pool is spent.
func (db *DB) PrepareCached(ctx context.Context, queries ...string) {
	for _, q := range queries {
		db.stmt(ctx, db.dialect.Rebind(q))
	}
}

// cached returns the statement of query if it is in the cache.
func (db *DB) cached(query string) *sql.Stmt {
	db.stmtMu.RLock()
	defer db.stmtMu.RUnlock()
	return db.stmts[query]
}

// ExecCached is Exec with the statement taken from the database's cache
// (see PrepareCached) and bound to the transaction's connection: for the few
// statements a hot path runs in a transaction on every call (an audited
// write's audit append). A statement not in the cache runs unprepared.
func (tx *Tx) ExecCached(ctx context.Context, query string, args ...any) (sql.Result, error) {
	q := tx.dialect.Rebind(query)
	if st := tx.db.cached(q); st != nil {
		return tx.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.Tx.ExecContext(ctx, q, args...)
}

// QueryCached is Query with the statement cached as ExecCached's.
func (tx *Tx) QueryCached(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := tx.dialect.Rebind(query)
	if st := tx.db.cached(q); st != nil {
		return tx.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.Tx.QueryContext(ctx, q, args...)
}

// QueryRowCached is QueryRow with the statement cached as ExecCached's.
func (tx *Tx) QueryRowCached(ctx context.Context, query string, args ...any) *sql.Row {
	q := tx.dialect.Rebind(query)
	if st := tx.db.cached(q); st != nil {
		return tx.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.Tx.QueryRowContext(ctx, q, args...)
}
