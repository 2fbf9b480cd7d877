package store

import (
	"context"
	"slices"
	"strings"
)

// LockIDs locks the rows of table whose id column is one of ids until the
// transaction ends (SELECT ... FOR UPDATE; on SQLite the write transaction
// already holds the database) and returns the first id, in sorted order,
// that no row has ("" when all exist). A row that a
// concurrent transaction deleted before the lock was granted counts as
// missing. The use of a row and its delete become one decision when both
// sides lock it this way: the user inserts its reference in the locking
// transaction, the deleter checks for users in its. table is written into
// the SQL: pass a table name, never user input.
func (tx *Tx) LockIDs(ctx context.Context, table string, ids []string) (missing string, err error) {
	if len(ids) == 0 {
		return "", nil
	}
	// One order for every locker, so two lockers of the same rows cannot
	// each hold one the other waits for.
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.Query(ctx, "SELECT id FROM "+table+" WHERE id IN (?"+strings.Repeat(", ?", len(ids)-1)+") ORDER BY id"+tx.dialect.ForUpdate(), args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	found := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", err
		}
		found[id] = true
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	for _, id := range ids {
		if !found[id] {
			return id, nil
		}
	}
	return "", nil
}

// LockUsers is the deleter's side of LockIDs: it locks the row of table
// with id, then counts the row's users with count (a SELECT COUNT(*) query
// of args) in the same transaction. found is false when the row does not
// exist, or was deleted before the lock was granted.
func (tx *Tx) LockUsers(ctx context.Context, table, id, count string, args ...any) (found bool, users int, err error) {
	missing, err := tx.LockIDs(ctx, table, []string{id})
	if err != nil || missing != "" {
		return false, 0, err
	}
	err = tx.QueryRow(ctx, count, args...).Scan(&users)
	return true, users, err
}
