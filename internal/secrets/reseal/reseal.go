// Package reseal re-encrypts the sealed values of a table column under a
// Box's current key: the data half of a master-key rotation. The centers
// that keep sealed values name their columns and run it.
package reseal

import (
	"context"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Column names a column of sealed values and its table's primary key (a
// single string column). Values that are empty hold no secret.
type Column struct {
	Table, Key, Column string
}

func (c Column) String() string { return c.Table + "." + c.Column }

// Counts says what a Run did to a column.
type Counts struct {
	// Rows is how many rows were read.
	Rows int
	// Resealed is how many values were re-encrypted under the current key.
	Resealed int
	// Current is how many were under it already, or empty.
	Current int
	// Raced is how many changed between the read and the write (another
	// process updated the row); they are left as that process wrote them,
	// and the next Run moves them if they are not current.
	Raced int
}

// Add returns the sum of two counts.
func (c Counts) Add(o Counts) Counts {
	return Counts{Rows: c.Rows + o.Rows, Resealed: c.Resealed + o.Resealed, Current: c.Current + o.Current, Raced: c.Raced + o.Raced}
}

// batch is how many rows one read fetches.
const batch = 100

// Run re-encrypts every value of col that is not under box's current key.
// Each row is written by its own statement, only if it still holds the
// value read (compare and set), so a concurrent writer is never undone and
// no transaction holds locks for long. Run can stop anywhere (ctx, crash)
// and run again: values already under the current key are skipped.
// onRow, if not nil, is called after each row it writes, with the counts
// so far.
// A value that box cannot open stops Run with an error naming the row.
func Run(ctx context.Context, db *store.DB, box *secrets.Box, col Column, onRow func(Counts)) (Counts, error) {
	var n Counts
	// COALESCE: a column added by a later migration is NULL in rows that
	// binaries from before it wrote.
	sel := fmt.Sprintf("SELECT %s, COALESCE(%s, '') FROM %s WHERE %s > ? ORDER BY %s LIMIT %d", col.Key, col.Column, col.Table, col.Key, col.Key, batch)
	upd := fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ? AND %s = ?", col.Table, col.Column, col.Key, col.Column)
	after := ""
	for {
		type row struct{ key, val string }
		var page []row
		rows, err := db.Query(ctx, sel, after)
		if err != nil {
			return n, fmt.Errorf("reseal %s: %w", col, err)
		}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.key, &r.val); err != nil {
				rows.Close()
				return n, fmt.Errorf("reseal %s: %w", col, err)
			}
			page = append(page, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return n, fmt.Errorf("reseal %s: %w", col, err)
		}
		for _, r := range page {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			n.Rows++
			after = r.key
			if r.val == "" || box.Current(r.val) {
				n.Current++
				continue
			}
			v, _, err := box.Reseal(r.val)
			if err != nil {
				return n, fmt.Errorf("reseal %s row %s: %w", col, r.key, err)
			}
			res, err := db.Exec(ctx, upd, v, r.key, r.val)
			if err != nil {
				return n, fmt.Errorf("reseal %s row %s: %w", col, r.key, err)
			}
			if k, err := res.RowsAffected(); err == nil && k == 0 {
				n.Raced++
			} else {
				n.Resealed++
			}
			if onRow != nil {
				onRow(n)
			}
		}
		if len(page) < batch {
			return n, nil
		}
	}
}

// Status counts a column's values by the id of the key that sealed them
// ("" for empty values), so an operator can tell when no value needs an
// old key any more.
func Status(ctx context.Context, db *store.DB, box *secrets.Box, col Column) (map[string]int, error) {
	rows, err := db.Query(ctx, fmt.Sprintf("SELECT COALESCE(%s, '') FROM %s", col.Column, col.Table))
	if err != nil {
		return nil, fmt.Errorf("reseal %s: %w", col, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("reseal %s: %w", col, err)
		}
		id := ""
		if v != "" {
			if id, err = box.SealedKeyID(v); err != nil {
				id = "unreadable"
			}
		}
		out[id]++
	}
	return out, rows.Err()
}
