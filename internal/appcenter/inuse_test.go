package appcenter_test

import (
	"context"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// An app that owns push subscriptions is in use: deleting it would leave
// them delivering for an app that no longer exists, so DeleteApp refuses
// until they are deleted.
func TestDeleteAppOwningSubscriptions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		a := mustApp(t, e, "default", "pusher", "")
		// The push gateway's row, as CreateSubscription stores it.
		if _, err := db.Exec(ctx, `INSERT INTO subscriptions (id, project_id, app_id, name, channel, url, secret_enc, filter, max_attempts,
			max_age_ms, status, generation, start_pending, start_seq, start_time_ms, lease_holder, lease_until_ms, delivered, failed, retried,
			dead_lettered, acked_seq, last_error, last_error_ms, created_at, updated_at)
			VALUES (?, 'default', ?, 's', 'sse', '', '', '{}', 0, 0, 'active', 1, 0, 0, 0, '', 0, 0, 0, 0, 0, 0, '', 0, 0, 0)`, "sub-1", a.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, e.s.DeleteApp(ctx, a.ID), api.ResourceInUse, "AppId: app "+a.ID+" owns 1 subscription(s); delete them first (DeleteSubscription)")
		if _, err := db.Exec(ctx, "DELETE FROM subscriptions WHERE id = ?", "sub-1"); err != nil {
			t.Fatal(err)
		}
		if err := e.s.DeleteApp(ctx, a.ID); err != nil {
			t.Fatalf("DeleteApp without subscriptions: %v", err)
		}
	})
}
