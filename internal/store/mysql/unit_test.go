package mysql_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// TestRowUnitPastInterpolation runs an audited change whose row the driver
// cannot write into the statement's text (the text would pass the
// client's maxAllowedPacket, set low here): the unit runs as a
// transaction of prepared statements instead, with the same outcome.
func TestRowUnitPastInterpolation(t *testing.T) {
	ctx := context.Background()
	raw := storetest.URL(t, "mysql")
	migrated, err := store.Open(ctx, raw, store.Options{}) // migrations need the server's packet size
	if err != nil {
		t.Fatal(err)
	}
	_, err = migrated.Migrate(ctx)
	_ = migrated.Close()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("maxAllowedPacket", "1024")
	u.RawQuery = q.Encode()
	db, err := store.Open(ctx, u.String(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES (?, 'v', 0)", "a"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 3000)
	run := func(where string) (int64, bool) {
		c, unit := db.WithUnit(ctx, func(context.Context, *store.Tx) (bool, error) {
			t.Fatal("the unit's row is offered: its function must not run")
			return false, nil
		})
		unit.SetRow(func() (store.UnitRow, bool) {
			return store.UnitRow{Into: "settings (name, value, updated_at)", Args: []any{"row-" + where, long, int64(7)}}, true
		})
		res, err := db.Exec(c, "UPDATE settings SET updated_at = ? WHERE name = ?", 1, where)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		n, _ := res.RowsAffected()
		return n, unit.Committed()
	}
	if n, ok := run("none"); n != 0 || ok || storetest.Count(t, db, "SELECT COUNT(*) FROM settings WHERE name = 'row-none'") != 0 {
		t.Fatalf("no change: rows %d, committed %v", n, ok)
	}
	if n, ok := run("a"); n != 1 || !ok || storetest.Count(t, db, "SELECT COUNT(*) FROM settings WHERE name = 'row-a' AND value = ?", long) != 1 {
		t.Fatalf("change: rows %d, committed %v", n, ok)
	}
}
