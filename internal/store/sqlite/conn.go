package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/store"
)

// driverName is the database/sql driver the store opens: modernc's, whose
// connections also keep the few statements of ExecWithRow prepared, so
// that an audited change runs as four cached statements on one
// connection (BEGIN IMMEDIATE, the change, the insert, COMMIT) instead of
// a database/sql transaction, which costs more than the change itself
// here (a goroutine per transaction, a statement wrapper per use, BEGIN
// and COMMIT compiled anew each time).
const driverName = "tianshu-sqlite"

// The driver registry is database/sql's one piece of state; registering
// from init is how a driver becomes openable by name.
func init() {
	db, err := sql.Open("sqlite", "") // modernc's registered driver; opens no connection
	if err != nil {
		panic("sqlite: " + err.Error())
	}
	sql.Register(driverName, wrapDriver{db.Driver()})
	_ = db.Close()
}

// wrapDriver opens modernc's connections wrapped in conn.
type wrapDriver struct{ inner driver.Driver }

func (d wrapDriver) Open(name string) (driver.Conn, error) {
	c, err := d.inner.Open(name)
	if err != nil {
		return nil, err
	}
	w, ok := wrap(c)
	if !ok {
		_ = c.Close()
		return nil, errors.New("sqlite: the driver's connection lacks a context method the store needs")
	}
	return w, nil
}

// full is what a modernc connection implements and database/sql uses.
type full interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// conn is a modernc connection with a few statements kept prepared
// (stmts, at most maxConnStmts), closed with it.
type conn struct {
	full
	stmts map[string]driver.Stmt
}

const maxConnStmts = 16

func wrap(c driver.Conn) (*conn, bool) {
	f, ok := c.(full)
	return &conn{full: f, stmts: map[string]driver.Stmt{}}, ok
}

// Close closes the kept statements, then the connection: SQLite keeps a
// connection with statements open alive.
func (c *conn) Close() error {
	for _, st := range c.stmts {
		_ = st.Close()
	}
	c.stmts = nil
	return c.full.Close()
}

// exec runs query, prepared once per connection while there is room.
func (c *conn) exec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	st := c.stmts[query]
	if st == nil && len(c.stmts) < maxConnStmts {
		var err error
		if st, err = c.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		c.stmts[query] = st
	}
	if st == nil {
		return c.ExecContext(ctx, query, args)
	}
	return st.(driver.StmtExecContext).ExecContext(ctx, args)
}

// ExecWithRow implements the store's row unit: change, and insert when
// change changed a row, in one transaction on sc, so that they commit
// together or not at all. It reports the rows change changed.
func (Dialect) ExecWithRow(ctx context.Context, sc *sql.Conn, change string, args []any, row store.UnitRow) (n int64, err error) {
	err = sc.Raw(func(dc any) error {
		c, ok := dc.(*conn)
		if !ok {
			return fmt.Errorf("sqlite: ExecWithRow needs a connection of %s, not %T", driverName, dc)
		}
		cargs, err := named(args)
		if err != nil {
			return err
		}
		iargs, err := named(row.Args)
		if err != nil {
			return err
		}
		n, err = c.execWithRow(ctx, change, cargs, "INSERT INTO "+row.Into+" VALUES ("+row.Placeholders()+")", iargs)
		return err
	})
	return n, err
}

func (c *conn) execWithRow(ctx context.Context, change string, args []driver.NamedValue, insert string, insertArgs []driver.NamedValue) (n int64, err error) {
	if _, err := c.exec(ctx, "BEGIN IMMEDIATE", nil); err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			// A failed COMMIT may have left the transaction open too;
			// ROLLBACK outside one only fails, harmlessly.
			_, _ = c.exec(context.Background(), "ROLLBACK", nil)
		}
	}()
	res, err := c.exec(ctx, change, args)
	if err != nil {
		return 0, err
	}
	if n, err = res.RowsAffected(); err != nil {
		return 0, err
	}
	if n > 0 {
		if _, err := c.exec(ctx, insert, insertArgs); err != nil {
			return 0, err
		}
	}
	if _, err := c.exec(ctx, "COMMIT", nil); err != nil {
		return 0, err
	}
	return n, nil
}

// named converts args as database/sql does for a driver that checks no
// value itself (modernc's).
func named(args []any) ([]driver.NamedValue, error) {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, fmt.Errorf("sqlite: argument %d: %w", i+1, err)
		}
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv, nil
}
