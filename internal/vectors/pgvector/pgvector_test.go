package pgvector_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/vectors"
	"github.com/tianshu-ai/tianshu/internal/vectors/pgvector"
	"github.com/tianshu-ai/tianshu/internal/vectors/vectortest"
)

// serverURL is the PostgreSQL server to test against: TIANSHU_TEST_PGVECTOR,
// else the tests' PostgreSQL when it has the pgvector extension.
//
// Debian bookworm (this project's machines) packages no pgvector, so on
// them the suite skips, even in CI, unless a server with pgvector is named;
// it was run against PostgreSQL 15 with pgvector 0.8 built from source
// (docs/search.md says how).
func serverURL(t *testing.T) string {
	if u := testenv.Getenv("TIANSHU_TEST_PGVECTOR", ""); u != "" {
		return u
	}
	u := testenv.PostgresURL()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	host := pu.Host
	testenv.NeedTCP(t, "PostgreSQL", host)
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM pg_available_extensions WHERE name = 'vector'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Skip("the PostgreSQL at " + host + " has no pgvector extension (Debian bookworm does not package it); " +
			"set TIANSHU_TEST_PGVECTOR to a postgres:// URL of a server with pgvector to run this suite")
	}
	return u
}

func openIndex(t *testing.T, base, table string) *pgvector.Index {
	t.Helper()
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	ix, err := vectors.Open(context.Background(), base+sep+"table="+table, vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ix.(*pgvector.Index)
}

func TestConformance(t *testing.T) {
	base := serverURL(t)
	tables := map[vectors.Index]string{}
	vectortest.Run(t, vectortest.Backend{
		Open: func(t *testing.T) vectors.Index {
			table := fmt.Sprintf("vt_%x", rand.Uint64())
			ix := openIndex(t, base, table)
			tables[ix] = table
			t.Cleanup(func() {
				d := openIndex(t, base, table)
				if err := d.Drop(context.Background()); err != nil {
					t.Error(err)
				}
				d.Close()
				ix.Close()
			})
			return ix
		},
		Reopen: func(t *testing.T, ix vectors.Index) vectors.Index {
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
			n := openIndex(t, base, tables[ix])
			tables[n] = tables[ix]
			t.Cleanup(func() { n.Close() })
			return n
		},
	})
}

func TestBadTable(t *testing.T) {
	if _, err := vectors.Open(context.Background(), "postgres://127.0.0.1:1/x?table=Bad-Name", vectors.Options{}); err == nil ||
		!strings.Contains(err.Error(), "table=") {
		t.Fatalf("Open with a bad table name = %v", err)
	}
}
