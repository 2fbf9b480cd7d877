package store

import (
	"context"
	"database/sql"
	"sync"
)

// A Unit is work that must commit together with a change: the gateway
// attaches one to an audited call's context so that the call's audit event
// is written in the transaction that makes the call's change, and a crash
// can never keep the change and lose its event. The first transaction
// (InTx, or Exec outside one) under that context that commits runs the
// unit's function just before its commit; later ones do not.
type Unit struct {
	db *DB // the unit joins this database's transactions only
	fn func(ctx context.Context, tx *Tx) (bool, error)

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

// QueryRowCached is QueryRow with the statement cached as ExecCached's.
func (tx *Tx) QueryRowCached(ctx context.Context, query string, args ...any) *sql.Row {
	q := tx.dialect.Rebind(query)
	if st := tx.db.cached(q); st != nil {
		return tx.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.Tx.QueryRowContext(ctx, q, args...)
}
