package api

import (
	"context"
	"database/sql"
	"errors"

	"github.com/tianshu-ai/tianshu/internal/store"
)

// The kinds of resources a project's quotas count.
const (
	QuotaApps    = "apps"
	QuotaDevices = "devices"
	QuotaTasks   = "tasks"
	// QuotaStorage is bytes of records and uploads (see data's quota.go).
	QuotaStorage = "storage"
)

// Quotas answers a project's quota of a kind of resource (implemented by
// the IAM center, which keeps projects). Centers that create a project's
// resources check it before they insert.
type Quotas interface {
	// Quota returns how many resources of kind (QuotaApps, ...) the
	// project may hold; 0 is no quota.
	Quota(ctx context.Context, projectID, kind string) (int, error)
}

// overQuota answers LimitExceeded when count says the project holds max
// resources of kind or more.
func overQuota(ctx context.Context, projectID, kind string, max int, count func(context.Context) (int, error)) error {
	n, err := count(ctx)
	if err != nil {
		return err
	}
	if n >= max {
		return Errorf(LimitExceeded, "project %s holds %d %s, its quota of %s; a platform admin raises it with ModifyProjectQuota", projectID, n, kind, kind)
	}
	return nil
}

// InsertWithinQuota runs insert in a transaction of db in which the
// project's quota of kind was checked: it locks the project's row (so the
// creates of one project are decided one at a time; on SQLite the write
// transaction already serialises them), counts with countQuery (one `?`,
// the project) and answers LimitExceeded when the project holds its quota,
// without inserting. Two creates racing on the last unit: one inserts, the
// other sees its row. q nil, or no quota, runs insert alone in the
// transaction.
//
// The quota is read before the transaction begins, so that no transaction
// waits for a second connection of the pool.
func InsertWithinQuota(ctx context.Context, db *store.DB, q Quotas, projectID, kind, countQuery string, insert func(tx *store.Tx) error) error {
	max := 0
	if q != nil {
		var err error
		if max, err = q.Quota(ctx, projectID, kind); err != nil {
			return err
		}
	}
	return db.InTx(ctx, func(tx *store.Tx) error {
		if max > 0 {
			var one int
			err := tx.QueryRow(ctx, "SELECT 1 FROM projects WHERE id = ?"+tx.Dialect().ForUpdate(), projectID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return NotFound("ProjectId", projectID)
			}
			if err != nil {
				return err
			}
			if err := overQuota(ctx, projectID, kind, max, func(ctx context.Context) (n int, err error) {
				err = tx.QueryRow(ctx, countQuery, projectID).Scan(&n)
				return n, err
			}); err != nil {
				return err
			}
		}
		return insert(tx)
	})
}
