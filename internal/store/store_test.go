package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/sqlite"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) { storetest.Run(t, d) })
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	_, err := store.Open(context.Background(), "oracle://x/y", store.Options{})
	if !errors.Is(err, store.ErrUnsupportedURL) {
		t.Fatalf("err = %v, want ErrUnsupportedURL", err)
	}
}

func TestSchemesAreRegistered(t *testing.T) {
	want := []string{"mariadb", "mysql", "postgres", "postgresql", "sqlite", "sqlite3"}
	if got := store.Schemes(); !slices.Equal(got, want) {
		t.Fatalf("Schemes() = %v, want %v", got, want)
	}
}

func TestRegisterPanicsOnDuplicate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("second Register of sqlite did not panic")
		}
	}()
	store.Register("sqlite", sqlite.Dialect{})
}

func TestSQLiteRebindIsIdentity(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	if got := db.Rebind("a = ? AND b = '?'"); got != "a = ? AND b = '?'" {
		t.Fatalf("sqlite rebind changed query: %q", got)
	}
}
