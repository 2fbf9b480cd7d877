package app_test

import (
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// The scaled-out configuration differs only in backend URLs: two replicas
// on one MariaDB or PostgreSQL and the external NATS serve the same apps and
// keys.
func TestReplicasOnSharedBackends(t *testing.T) {
	for _, dialect := range []string{"mysql", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			testenv.NeedTCP(t, "NATS", "127.0.0.1:4222")
			dbURL := storetest.URL(t, dialect)
			key := map[string]string{"TIANSHU_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
			args := []string{"--db", dbURL, "--bus", testenv.NATSURL()}
			a := apptest.Start(t, apptest.Options{Args: args, Env: key})
			b := apptest.Start(t, apptest.Options{Args: args, Env: key})
			if a.P.DBDialect() != dialect {
				t.Fatalf("dialect %q", a.P.DBDialect())
			}
			sa := newSDK(t, a.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
			id := sa.mustCall("CreateApp", map[string]any{"Name": "天枢-" + dialect, "Role": "viewer"})["AppId"].(string)
			k := sa.mustCall("CreateAppKey", map[string]any{"AppId": id})
			// The key made through replica a signs calls to replica b.
			sb := newSDK(t, b.Host, k["SecretId"].(string), k["SecretKey"].(string))
			r := sb.mustCall("DescribeApps", map[string]any{"AppIds": []string{id}})
			set := r["AppSet"].([]any)
			if len(set) != 1 || set[0].(map[string]any)["Name"] != "天枢-"+dialect {
				t.Fatalf("replica b sees %v", r)
			}
			// Replica a stages its events before each call answers and
			// chains them (iam.AuditQueue); replica b verifies the chain.
			if err := a.P.Audit.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n, err := b.P.Audit.Verify(t.Context()); err != nil || n < 2 {
				t.Fatalf("audit chain on %s: %d events, %v", dialect, n, err)
			}
		})
	}
}
