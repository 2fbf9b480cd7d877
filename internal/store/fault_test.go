package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// openWithMetrics opens rawURL with a registry of its own and migrates it.
func openWithMetrics(t *testing.T, rawURL string, maxConns int) (*store.DB, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, rawURL, store.Options{MaxOpenConns: maxConns, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db, reg
}

func gathered(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				match = match && found
			}
			if match {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// TestSQLiteFullIsStorageFull: a SQLite database that cannot grow (its
// page limit reached, as on a full disk) fails writes with an error that
// wraps ErrStorageFull, counts it and raises the gauge; the first write
// that succeeds afterwards lowers it. The write probe succeeds again too.
func TestSQLiteFullIsStorageFull(t *testing.T) {
	db, reg := openWithMetrics(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), 1)
	ctx := context.Background()
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatalf("ProbeWrite: %v", err)
	}
	if _, err := db.Exec(ctx, "CREATE TABLE blobs (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := db.QueryRow(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages+2)); err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		werr = db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO blobs (v) VALUES (?)", strings.Repeat("x", 8000))
			return err
		})
	}
	if !errors.Is(werr, store.ErrStorageFull) {
		t.Fatalf("write to a full database: %v, want ErrStorageFull", werr)
	}
	if v := gathered(t, reg, "tianshu_store_faults_total", "kind", "storage_full"); v != 1 {
		t.Errorf("tianshu_store_faults_total{kind=storage_full} = %v, want 1", v)
	}
	if v := gathered(t, reg, "tianshu_store_storage_full"); v != 1 {
		t.Errorf("tianshu_store_storage_full = %v, want 1", v)
	}
	if _, err := db.Exec(ctx, "PRAGMA max_page_count = 1000000"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "INSERT INTO blobs (v) VALUES ('small')"); err != nil {
		t.Fatalf("write after the database may grow again: %v", err)
	}
	if v := gathered(t, reg, "tianshu_store_storage_full"); v != 0 {
		t.Errorf("tianshu_store_storage_full after a write succeeded = %v, want 0", v)
	}
}

// TestTerminatedConnections: after the server terminates every connection
// of the pool, reads and transactions succeed (run again on a fresh
// connection) and a single statement either succeeds or fails with an
// error that wraps ErrUnavailable, counted in tianshu_store_faults_total.
func TestTerminatedConnections(t *testing.T) {
	for _, dialect := range []string{"postgres", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			raw, terminate := storetest.Terminating(t, dialect)
			kill := func() { terminate(t) }
			ctx := context.Background()
			db, reg := openWithMetrics(t, raw, 4)
			if _, err := db.Exec(ctx, "CREATE TABLE kv (k VARCHAR(32) NOT NULL PRIMARY KEY, v INTEGER NOT NULL)"); err != nil {
				t.Fatal(err)
			}
			acked := map[string]bool{}
			for i := 0; i < 10; i++ {
				kill()
				var n int
				if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM kv").Scan(&n); err != nil {
					t.Fatalf("round %d: QueryRow after the connections were terminated: %v", i, err)
				}
				kill()
				rows, err := db.Query(ctx, "SELECT k FROM kv")
				if err != nil {
					t.Fatalf("round %d: Query after the connections were terminated: %v", i, err)
				}
				rows.Close()
				kill()
				k := fmt.Sprintf("tx-%d", i)
				if err := db.InTx(ctx, func(tx *store.Tx) error {
					_, err := tx.Exec(ctx, "INSERT INTO kv (k, v) VALUES (?, ?)", k, i)
					return err
				}); err != nil {
					t.Fatalf("round %d: InTx after the connections were terminated: %v", i, err)
				}
				acked[k] = true
				kill()
				k = fmt.Sprintf("exec-%d", i)
				if _, err := db.Exec(ctx, "INSERT INTO kv (k, v) VALUES (?, ?)", k, i); err == nil {
					acked[k] = true
				} else if !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("round %d: Exec after the connections were terminated: %v, want success or ErrUnavailable", i, err)
				}
			}
			for k := range acked {
				var n int
				if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM kv WHERE k = ?", k).Scan(&n); err != nil || n != 1 {
					t.Errorf("acknowledged row %s: count %d, err %v", k, n, err)
				}
			}
			t.Logf("retries %v, unavailable faults %v", gathered(t, reg, "tianshu_store_retries_total"),
				gathered(t, reg, "tianshu_store_faults_total", "kind", "unavailable"))
		})
	}
}
