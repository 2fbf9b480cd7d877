package bench

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
)

// BenchmarkGatewayReplayCache measures signed DescribeApps through two
// gateways over the same platform (keys, registry, authorizer) that differ
// only in the replay cache: the in-memory one that tianshu serve uses by
// default, and none. 8 keep-alive clients for BENCH_DURATION a side, in
// alternating rounds after a warm-up; every request is signed fresh.
func BenchmarkGatewayReplayCache(b *testing.B) {
	p := startPlatform(b)
	serve := func(replays api.ReplayCache) string {
		lim := ratelimit.NewMemory(time.Now)
		var opt api.GatewayOptions
		opt.Keys, opt.Authorizer, opt.Limiter, opt.Registerer = p.Apps, p.Access, lim, prometheus.NewRegistry()
		opt.Replays = replays
		srv := httptest.NewServer(api.NewGateway(api.DefaultConfig(), p.Registry, opt))
		b.Cleanup(srv.Close)
		return srv.URL + "/"
	}
	body := []byte(`{"Limit":1}`)
	onReq := signedRequests(serve(ratelimit.NewMemory(time.Now)), "DescribeApps", body)
	offReq := signedRequests(serve(nil), "DescribeApps", body)
	client := func() *http.Client {
		tr := &http.Transport{MaxIdleConns: 2 * gatewayClients, MaxIdleConnsPerHost: 2 * gatewayClients,
			IdleConnTimeout: time.Minute, DisableCompression: true}
		b.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	onClient, offClient := client(), client()
	if err := do(onClient, onReq()); err != nil {
		b.Fatalf("replay cache on: first call: %v", err)
	}
	if err := do(offClient, offReq()); err != nil {
		b.Fatalf("replay cache off: first call: %v", err)
	}
	d := benchDuration(b)
	warm := min(500*time.Millisecond, d/4)
	runLoad(offClient, gatewayClients, warm, offReq)
	runLoad(onClient, gatewayClients, warm, onReq)
	var on, off loadResult
	b.ResetTimer()
	for range gatewayRounds {
		off.add(runLoad(offClient, gatewayClients, d/gatewayRounds, offReq))
		on.add(runLoad(onClient, gatewayClients, d/gatewayRounds, onReq))
	}
	b.StopTimer()
	for name, r := range map[string]*loadResult{"on": &on, "off": &off} {
		if r.errs > 0 {
			b.Fatalf("replay cache %s: %d failed calls, last: %v", name, r.errs, r.lastErr)
		}
		if len(r.lat) == 0 {
			b.Fatalf("replay cache %s: no call completed", name)
		}
		slices.Sort(r.lat)
	}
	b.ReportMetric(on.rps(), "on-req/s")
	b.ReportMetric(off.rps(), "off-req/s")
	b.ReportMetric(on.rps()/off.rps(), "x-off")
	b.ReportMetric(on.quantile(0.99)*1e6, "on-p99-µs")
	b.ReportMetric(off.quantile(0.99)*1e6, "off-p99-µs")
	b.Logf("signed DescribeApps: replay cache on %.0f req/s, off %.0f req/s, ratio %.3f", on.rps(), off.rps(), on.rps()/off.rps())
	benchtable.Record(b, benchtable.Row{Metric: "gateway signed DescribeApps req/s, replay cache on (8 clients)", Unit: "req/s",
		Target: "≥ 0.9× off", Tianshu: on.rps(), Baseline: off.rps()})
	benchtable.Record(b, benchtable.Row{Metric: "gateway signed DescribeApps p99, replay cache on", Unit: "s",
		Tianshu: on.quantile(0.99), Baseline: off.quantile(0.99)})
}
