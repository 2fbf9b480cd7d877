package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/tianshu-ai/tianshu/internal/store"
)

// ExecWithRow implements the store's row unit: change, and the insert of
// row when change changed a row, in one transaction on sc, sent as one
// multi-statement text with its values interpolated by the driver
// (interpolateParams, see DataSource): one round trip where a
// transaction of the change and the insert is four (BEGIN, the change,
// the insert, COMMIT). MariaDB has no data-modifying WITH, so the insert
// is made conditional on the change's count by a session variable. The
// server stops at a failing statement, which may leave the transaction
// open: any failure rolls back on sc. Where the driver cannot
// interpolate (a value over max_allowed_packet, a type it does not
// write), the unit runs as a transaction of prepared statements.
func (Dialect) ExecWithRow(ctx context.Context, sc *sql.Conn, change string, args []any, row store.UnitRow) (n int64, err error) {
	insert := "INSERT INTO " + row.Into + " SELECT " + row.Placeholders() + " FROM DUAL WHERE @tianshu_unit_rows > 0"
	script := "START TRANSACTION; " + change + "; SET @tianshu_unit_rows = ROW_COUNT(); " + insert + "; COMMIT"
	err = sc.Raw(func(dc any) error {
		ex, ok := dc.(driver.ExecerContext)
		if !ok {
			return fmt.Errorf("mysql: ExecWithRow needs a connection that executes, not %T", dc)
		}
		all, err := named(dc, append(append(make([]any, 0, len(args)+len(row.Args)), args...), row.Args...))
		if err != nil {
			return err
		}
		res, err := ex.ExecContext(ctx, script, all)
		if err != nil {
			if !errors.Is(err, driver.ErrSkip) { // ErrSkip: nothing was sent
				_, _ = ex.ExecContext(context.Background(), "ROLLBACK", nil)
			}
			return err
		}
		counts := res.(mysql.Result).AllRowsAffected()
		if len(counts) != 5 {
			_, _ = ex.ExecContext(context.Background(), "ROLLBACK", nil)
			return fmt.Errorf("mysql: row unit ran %d statements, not 5", len(counts))
		}
		n = counts[1]
		return nil
	})
	if errors.Is(err, driver.ErrSkip) {
		return execWithRowTx(ctx, sc, change, args, row)
	}
	return n, err
}

// execWithRowTx is ExecWithRow as a database/sql transaction on sc.
func execWithRowTx(ctx context.Context, sc *sql.Conn, change string, args []any, row store.UnitRow) (int64, error) {
	tx, err := sc.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op
	res, err := tx.ExecContext(ctx, change, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+row.Into+" VALUES ("+row.Placeholders()+")", row.Args...); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// named converts args for the driver's connection dc as database/sql
// would (the driver's own checker first).
func named(dc any, args []any) ([]driver.NamedValue, error) {
	check, _ := dc.(driver.NamedValueChecker)
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		if check != nil {
			err := check.CheckNamedValue(&nv[i])
			if err == nil {
				continue
			}
			if !errors.Is(err, driver.ErrSkip) {
				return nil, fmt.Errorf("mysql: argument %d: %w", i+1, err)
			}
		}
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, fmt.Errorf("mysql: argument %d: %w", i+1, err)
		}
		nv[i].Value = v
	}
	return nv, nil
}
