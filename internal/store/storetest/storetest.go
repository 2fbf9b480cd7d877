// Package storetest opens fresh, migrated databases on every dialect for
// tests, and holds the conformance suite that every dialect must pass.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/testenv"

	// Every engine, so that tests opening a store through storetest get
	// them without importing the platform's backend list.
	_ "github.com/tianshu-ai/tianshu/internal/store/mysql"
	_ "github.com/tianshu-ai/tianshu/internal/store/postgres"
	_ "github.com/tianshu-ai/tianshu/internal/store/sqlite"
)

// Dialects lists the dialects that ForEach runs.
var Dialects = []string{"sqlite", "mysql", "postgres"}

// ForEach runs fn once per dialect as a subtest, each on its own fresh,
// migrated database. MariaDB and PostgreSQL come from testenv's URLs; where
// one is not reachable the subtest skips (fails in CI).
func ForEach(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh, migrated database of the given dialect, dropped when
// the test ends.
func Open(t testing.TB, dialect string) *store.DB {
	t.Helper()
	db := OpenEmpty(t, dialect)
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// OpenEmpty returns a fresh database of the given dialect without migrating.
func OpenEmpty(t testing.TB, dialect string) *store.DB {
	t.Helper()
	return openURL(t, URL(t, dialect))
}

// URL creates a fresh empty database (or schema) of the dialect and returns
// its URL; it is dropped when the test ends.
func URL(t testing.TB, dialect string) string {
	t.Helper()
	ctx := context.Background()
	name := "ts_" + randHex(6)
	switch dialect {
	case "sqlite":
		return "sqlite://" + filepath.Join(t.TempDir(), "tianshu.db")
	case "mysql":
		base := testenv.MySQLURL()
		u, _ := url.Parse(base)
		testenv.NeedTCP(t, "MariaDB/MySQL", hostPort(u, "3306"))
		admin := openURL(t, base)
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			t.Fatalf("create database: %v", err)
		}
		t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name) })
		u.Path = "/" + name
		return u.String()
	case "postgres":
		base := testenv.PostgresURL()
		u, _ := url.Parse(base)
		testenv.NeedTCP(t, "PostgreSQL", hostPort(u, "5432"))
		admin := openURL(t, base)
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+name+" CASCADE") })
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	t.Fatalf("unknown dialect %q", dialect)
	return ""
}

func openURL(t testing.TB, u string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, u, store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func hostPort(u *url.URL, def string) string {
	if u.Port() != "" {
		return u.Host
	}
	h := u.Hostname()
	if h == "" {
		h = "127.0.0.1"
	}
	return h + ":" + def
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run is the conformance suite: what the rest of Tianshu relies on from
// every dialect.
func Run(t *testing.T, dialect string) {
	ctx := context.Background()

	t.Run("MigrateIsIdempotent", func(t *testing.T) {
		db := OpenEmpty(t, dialect)
		n, err := db.Migrate(ctx)
		if err != nil || n == 0 {
			t.Fatalf("first migrate: applied %d, err %v", n, err)
		}
		n, err = db.Migrate(ctx)
		if err != nil || n != 0 {
			t.Fatalf("second migrate: applied %d, err %v; want 0, nil", n, err)
		}
		st, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if !s.Applied {
				t.Errorf("migration %d %s not applied", s.Version, s.Name)
			}
		}
	})

	t.Run("DefaultProject", func(t *testing.T) {
		db := Open(t, dialect)
		var name string
		if err := db.QueryRow(ctx, "SELECT name FROM projects WHERE id = ?", "default").Scan(&name); err != nil {
			t.Fatalf("default project: %v", err)
		}
	})

	t.Run("UniqueViolation", func(t *testing.T) {
		db := Open(t, dialect)
		ins := "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)"
		if _, err := db.Exec(ctx, ins, "k", "v", 1); err != nil {
			t.Fatal(err)
		}
		_, err := db.Exec(ctx, ins, "k", "v2", 2)
		if !db.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert: err %v, IsUniqueViolation false", err)
		}
		if db.IsUniqueViolation(nil) {
			t.Fatal("IsUniqueViolation(nil) = true")
		}
	})

	t.Run("UnicodeAndLongValues", func(t *testing.T) {
		db := Open(t, dialect)
		vals := []string{"天枢 人脸结构化 🚀", strings.Repeat("é", 4096), "quote ' and ? and $1", ""}
		for i, v := range vals {
			k := "k" + string(rune('a'+i))
			if _, err := db.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)", k, v, i); err != nil {
				t.Fatalf("insert %d: %v", i, err)
			}
			var got string
			if err := db.QueryRow(ctx, "SELECT value FROM settings WHERE name = ?", k).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != v {
				t.Errorf("value %d: got %q (%d bytes), want %d bytes", i, trunc(got), len(got), len(v))
			}
		}
	})

	t.Run("TransactionRollback", func(t *testing.T) {
		db := Open(t, dialect)
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)", "gone", "x", 1); err != nil {
				return err
			}
			return sql.ErrTxDone // any error rolls back
		})
		if err == nil {
			t.Fatal("InTx returned nil for a failing fn")
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM settings WHERE name = ?", "gone").Scan(&n); err != nil || n != 0 {
			t.Fatalf("row after rollback: n=%d err=%v", n, err)
		}
	})

	t.Run("SerializedIncrement", func(t *testing.T) {
		// Read-modify-write under ForUpdate must not lose updates: the audit
		// chain and leases depend on it.
		db := Open(t, dialect)
		if _, err := db.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)", "counter", "", 0); err != nil {
			t.Fatal(err)
		}
		const workers, each = 4, 10
		errc := make(chan error, workers)
		for w := 0; w < workers; w++ {
			go func() {
				for i := 0; i < each; i++ {
					err := db.InTx(ctx, func(tx *store.Tx) error {
						var n int64
						if err := tx.QueryRow(ctx, "SELECT updated_at FROM settings WHERE name = ?"+tx.Dialect().ForUpdate(), "counter").Scan(&n); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, "UPDATE settings SET updated_at = ? WHERE name = ?", n+1, "counter")
						return err
					})
					if err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
		}
		for w := 0; w < workers; w++ {
			if err := <-errc; err != nil {
				t.Fatalf("increment: %v", err)
			}
		}
		var n int64
		if err := db.QueryRow(ctx, "SELECT updated_at FROM settings WHERE name = ?", "counter").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != workers*each {
			t.Fatalf("counter = %d, want %d", n, workers*each)
		}
	})

	t.Run("OnConflict", func(t *testing.T) {
		db := Open(t, dialect)
		d := db.Dialect()
		ins := "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)"
		for i, q := range []string{ins, ins + d.OnConflict([]string{"name"}, "value", "updated_at"), ins + d.OnConflict([]string{"name"})} {
			if _, err := db.Exec(ctx, q, "k", "v"+string(rune('0'+i)), i); err != nil {
				t.Fatalf("insert %d: %v", i, err)
			}
		}
		var v string
		var at int
		if err := db.QueryRow(ctx, "SELECT value, updated_at FROM settings WHERE name = ?", "k").Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		if v != "v1" || at != 1 {
			t.Fatalf("row = %q, %d; want the update's v1, 1 (and the do-nothing insert ignored)", v, at)
		}
	})

	t.Run("JSONText", func(t *testing.T) {
		db := Open(t, dialect)
		doc := `{"s":"天枢 'q'","sn":"null","i":7,"n":1.5,"t":true,"f":false,"z":null}`
		if _, err := db.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)", "doc", doc, 0); err != nil {
			t.Fatal(err)
		}
		for field, want := range map[string]sql.NullString{
			"s": {String: "天枢 'q'", Valid: true}, "sn": {String: "null", Valid: true}, "i": {String: "7", Valid: true}, "n": {String: "1.5", Valid: true},
			"t": {String: "true", Valid: true}, "f": {String: "false", Valid: true}, "z": {}, "missing": {},
		} {
			var got sql.NullString
			q := "SELECT " + db.Dialect().JSONText("value", field) + " FROM settings WHERE name = ?"
			if err := db.QueryRow(ctx, q, "doc").Scan(&got); err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			if got != want {
				t.Errorf("%s: got %+v, want %+v", field, got, want)
			}
			var n int
			if want.Valid {
				q := "SELECT COUNT(*) FROM settings WHERE " + db.Dialect().JSONText("value", field) + " = ?"
				if err := db.QueryRow(ctx, q, want.String).Scan(&n); err != nil || n != 1 {
					t.Errorf("%s = %q matched %d rows, err %v", field, want.String, n, err)
				}
			}
		}
	})

	t.Run("IAMTables", func(t *testing.T) { iamTables(t, Open(t, dialect)) })

	t.Run("UnitCommitsWithChange", func(t *testing.T) { unitCommitsWithChange(t, Open(t, dialect)) })
	t.Run("UnitRowCommitsWithChange", func(t *testing.T) { unitRowCommitsWithChange(t, Open(t, dialect)) })

	t.Run("ManyPlaceholders", func(t *testing.T) {
		db := Open(t, dialect)
		var args []any
		var ph []string
		for i := 0; i < 50; i++ {
			ph = append(ph, "(?, ?, ?)")
			args = append(args, "n"+randHex(4), "v", i)
		}
		if _, err := db.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES "+strings.Join(ph, ","), args...); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM settings WHERE updated_at >= ? AND value = ?", 0, "v").Scan(&n); err != nil || n != 50 {
			t.Fatalf("count = %d, err %v", n, err)
		}
	})
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Terminating creates a fresh empty database of the dialect ("postgres"
// or "mysql") like URL, and returns its URL with a function that makes the
// server end every connection to it, as an operator's
// pg_terminate_backend or KILL (or a failover) would. Only the
// connections of that URL are ended, found by an application name
// (PostgreSQL) or the database's name (MariaDB/MySQL), so that tests
// sharing the server keep theirs.
func Terminating(t testing.TB, dialect string) (string, func(t testing.TB)) {
	t.Helper()
	raw := URL(t, dialect)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	admin := OpenEmpty(t, dialect)
	ctx := context.Background()
	if dialect == "postgres" {
		app := "ts_term_" + randHex(6)
		q := u.Query()
		q.Set("application_name", app)
		u.RawQuery = q.Encode()
		return u.String(), func(t testing.TB) {
			if _, err := admin.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", app); err != nil {
				t.Fatalf("terminate connections: %v", err)
			}
		}
	}
	name := strings.TrimPrefix(u.Path, "/")
	return raw, func(t testing.TB) {
		rows, err := admin.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", name)
		if err != nil {
			t.Fatalf("list connections: %v", err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		_ = rows.Close()
		for _, id := range ids {
			// A connection may have ended by itself meanwhile.
			_, _ = admin.ExecContext(ctx, fmt.Sprintf("KILL %d", id))
		}
	}
}
