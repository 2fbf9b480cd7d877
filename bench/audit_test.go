package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// BenchmarkAuditAppend measures what the audit append adds to a write
// action: ModifyApp (an audited write: key lookup, signature check, one
// UPDATE) served by the gateway in-process on SQLite, with the audit log
// as the platform wires it (the event staged in the action's own
// transaction and chained in the background by the chainer, whose passes
// run during the rounds), with no auditor, and, for reference, with the
// event staged after the action through the group-commit queue in a
// transaction of its own (an older design); same store, same run, in
// alternating rounds so that load from elsewhere falls on all alike. One
// client calls at a time unless -audit-clients says otherwise (times are
// then elapsed time per call, the inverse of throughput), on SQLite unless
// -audit-dialect says otherwise, 2,000 calls a round of each unless
// -audit-per-round says otherwise. It times itself; run it at the default
// -benchtime or -benchtime=1x.
func BenchmarkAuditAppend(b *testing.B) {
	ctx := context.Background()
	db := storetest.Open(b, *auditDialect)
	box, err := secrets.New(bytes.Repeat([]byte{5}, secrets.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	apps := appcenter.New(db, box, log, nil)
	audit := iam.NewAudit(db, nil, iam.WithCheckpointKey(box.DeriveKey("audit-checkpoint")))
	queue := audit.StartQueue(log)
	reg := api.NewRegistry()
	appcenter.RegisterActions(reg, apps)
	with := api.NewGateway(api.DefaultConfig(), reg, api.GatewayOptions{Keys: apps, Auditor: audit.Auditor(), Logger: log})
	without := api.NewGateway(api.DefaultConfig(), reg, api.GatewayOptions{Keys: apps, Logger: log})
	// Only Record: the queue without WithEvent, as the gateway used it before.
	queuedOnly := struct{ api.Auditor }{queue}
	withQueue := api.NewGateway(api.DefaultConfig(), reg, api.GatewayOptions{Keys: apps, Auditor: queuedOnly, Logger: log})

	a, err := apps.CreateApp(ctx, "default", "bench", "", api.RoleAdmin)
	if err != nil {
		b.Fatal(err)
	}
	id, key, err := apps.CreateKey(ctx, a.ID, "", "")
	if err != nil {
		b.Fatal(err)
	}
	signer := tc3.Signer{SecretID: id, SecretKey: key}
	body := []byte(`{"AppId": "` + a.ID + `", "Description": "benchmark"}`)
	// Each round's CPU time too (the process's, user and system): on a
	// loaded machine it varies far less than elapsed time, since waiting
	// for a core is not in it.
	var cpu time.Duration
	serve := func(gw http.Handler, n int) time.Duration {
		cpu0, start := cpuTime(b), time.Now()
		defer func() { cpu = cpuTime(b) - cpu0 }()
		var wg sync.WaitGroup
		for range *auditClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / *auditClients {
					req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-TC-Action", "ModifyApp")
					req.Header.Set("X-TC-Version", api.Version)
					signer.Sign(req, body, time.Now())
					w := httptest.NewRecorder()
					gw.ServeHTTP(w, req)
					if !strings.Contains(w.Body.String(), `"RequestId"`) || strings.Contains(w.Body.String(), `"Error"`) {
						b.Errorf("ModifyApp: %s", w.Body.String())
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	perRound, rounds := *auditPerRound, 5
	serve(with, 500) // warm-up: caches, prepared statements, WAL
	serve(without, 500)
	serve(withQueue, 200)
	var tWith, tWithout, tQueue, cWith, cWithout time.Duration
	b.ResetTimer()
	for r := range rounds {
		for k := range 2 {
			if (r+k)%2 == 0 {
				tWith += serve(with, perRound)
				cWith += cpu
			} else {
				tWithout += serve(without, perRound)
				cWithout += cpu
			}
		}
		tQueue += serve(withQueue, perRound/4)
	}
	b.StopTimer()
	n := float64(perRound * rounds)
	withNs, withoutNs, queueNs := float64(tWith.Nanoseconds())/n, float64(tWithout.Nanoseconds())/n, float64(tQueue.Nanoseconds())/(n/4)
	b.ReportMetric(withNs, "ns/audited-op")
	b.ReportMetric(withoutNs, "ns/unaudited-op")
	b.ReportMetric(queueNs, "ns/queue-audited-op")
	b.ReportMetric(withNs/withoutNs, "ratio")
	b.ReportMetric(float64(cWith.Nanoseconds())/n, "cpu-ns/audited-op")
	b.ReportMetric(float64(cWithout.Nanoseconds())/n, "cpu-ns/unaudited-op")
	b.ReportMetric(float64(cWith)/float64(cWithout), "cpu-ratio")
	where := fmt.Sprintf("ModifyApp, %s, %d client(s)", *auditDialect, *auditClients)
	benchtable.Record(b, benchtable.Row{Metric: "write action (" + where + ") with the audit append vs without", Unit: "ns",
		Target: "≤ 1.1× without audit", Tianshu: withNs, Baseline: withoutNs})
	benchtable.Record(b, benchtable.Row{Metric: "write action (" + where + "), audit event in its own transaction after the action (not used) vs without", Unit: "ns",
		Tianshu: queueNs, Baseline: withoutNs})
	if err := queue.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if got, err := audit.Verify(ctx); err != nil || got < int64(n+n/4) {
		b.Fatalf("audit chain after the benchmark: %d events, %v", got, err)
	}
}

// BenchmarkAuditAppend's store and concurrency: -audit-dialect postgres
// -audit-clients 8 shows whether audited writes wait for one another
// under concurrent writers.
var (
	auditDialect = flag.String("audit-dialect", "sqlite", "BenchmarkAuditAppend: the store (sqlite, mysql, postgres)")
	auditClients = flag.Int("audit-clients", 1, "BenchmarkAuditAppend: clients calling at once")
	// A loaded machine's PostgreSQL can take milliseconds a call (the
	// commit's fsync): fewer calls a round keep a run short.
	auditPerRound = flag.Int("audit-per-round", 2000, "BenchmarkAuditAppend: calls a round of each gateway")
)
