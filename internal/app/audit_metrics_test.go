package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// scrape reads /metrics and returns the value of the sample written as
// sample (a name with its labels as the exposition prints them), and
// whether it was there.
func scrape(t *testing.T, e *apptest.Env, sample string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(e.Endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d, %v", resp.StatusCode, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// /metrics shows the audit events staged and not yet chained, and the
// chainer's failed passes: with the chain head gone, events a writer
// staged stay staged and every pass fails; once the head is back, the
// chainer chains them. On every dialect.
func TestAuditMetrics(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			e := apptest.Start(t, apptest.Options{Args: []string{"--db", storetest.URL(t, d)}})
			db := e.P.DB
			testenv.Eventually(t, 15*time.Second, "nothing staged", func() bool {
				v, ok := scrape(t, e, "tianshu_audit_pending_events")
				return ok && v == 0
			})
			if v, ok := scrape(t, e, `tianshu_audit_chain_failures_total{where="chainer"}`); !ok || v != 0 {
				t.Fatalf("chainer failures before: %v, %v; want 0", v, ok)
			}
			var seq int64
			var hash string
			if err := db.QueryRow(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&seq, &hash); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ctx, "DELETE FROM audit_head WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			// Events as a writer stages them (iam's stageQuery).
			for i := range 3 {
				if _, err := db.Exec(ctx, `INSERT INTO audit_pending (id, time_ms, project_id, actor, action, resource, result, source_ip, request_id, detail)
					VALUES (?, ?, 'default', 'app:test', 'ModifyApp', ?, 'OK', '127.0.0.1', ?, '{}')`, 1<<40+i, time.Now().UnixMilli(), fmt.Sprint("app-", i), fmt.Sprint("req-", i)); err != nil {
					t.Fatal(err)
				}
			}
			testenv.Eventually(t, 15*time.Second, "3 events staged and a failed chainer pass in /metrics", func() bool {
				p, _ := scrape(t, e, "tianshu_audit_pending_events")
				f, _ := scrape(t, e, `tianshu_audit_chain_failures_total{where="chainer"}`)
				return p == 3 && f >= 1
			})
			before, _ := scrape(t, e, "tianshu_audit_chained_events_total")
			if _, err := db.Exec(ctx, "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)", seq, hash); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 15*time.Second, "the chainer to chain them", func() bool {
				p, _ := scrape(t, e, "tianshu_audit_pending_events")
				c, _ := scrape(t, e, "tianshu_audit_chained_events_total")
				return p == 0 && c >= before+3
			})
		})
	}
}
