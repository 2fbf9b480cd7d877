package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/store"
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

func TestPostgresRebind(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	_ = db // Rebind for sqlite is the identity
	if got := db.Rebind("a = ? AND b = '?'"); got != "a = ? AND b = '?'" {
		t.Fatalf("sqlite rebind changed query: %q", got)
	}
}
