package bench

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
)

// BenchmarkGatewaySession measures DescribeApps (Limit 1) called by a
// person — session cookie and CSRF header, the session looked up in the
// store on every call — against the same call signed with a key, in one
// run: 8 keep-alive clients for BENCH_DURATION (default 3s) a side, in
// alternating rounds after a warm-up. The target is within 10% of
// key-signed.
func BenchmarkGatewaySession(b *testing.B) {
	p := startPlatform(b)
	body := []byte(`{"Limit":1}`)
	newReq := func(action string, b []byte) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, p.BaseURL()+"/", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", action)
		req.Header.Set("X-TC-Version", api.Version)
		return req
	}
	login, _ := json.Marshal(map[string]string{"UserName": "admin", "Password": benchPassword})
	resp, err := http.DefaultClient.Do(newReq("Login", login))
	if err != nil {
		b.Fatal(err)
	}
	var env struct{ Response struct{ CsrfToken string } }
	err = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			cookie = c
		}
	}
	if err != nil || cookie == nil || env.Response.CsrfToken == "" {
		b.Fatalf("Login: %v, cookie %v, csrf %q", err, cookie, env.Response.CsrfToken)
	}
	sessionReq := func() *http.Request {
		req := newReq("DescribeApps", body)
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
		req.Header.Set(api.CSRFHeader, env.Response.CsrfToken)
		return req
	}
	signer := tc3.Signer{SecretID: benchSecretID, SecretKey: benchSecretKey}
	keyReq := func() *http.Request {
		req := newReq("DescribeApps", body)
		signer.Sign(req, body, time.Now())
		return req
	}
	client := func() *http.Client {
		tr := &http.Transport{MaxIdleConns: 2 * gatewayClients, MaxIdleConnsPerHost: 2 * gatewayClients,
			IdleConnTimeout: time.Minute, DisableCompression: true}
		b.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	sClient, kClient := client(), client()
	if err := do(sClient, sessionReq()); err != nil {
		b.Fatalf("session: first call: %v", err)
	}
	if err := do(kClient, keyReq()); err != nil {
		b.Fatalf("key: first call: %v", err)
	}

	d := benchDuration(b)
	warm := min(500*time.Millisecond, d/4)
	runLoad(kClient, gatewayClients, warm, keyReq)
	runLoad(sClient, gatewayClients, warm, sessionReq)
	var ses, key loadResult
	b.ResetTimer()
	for range gatewayRounds {
		key.add(runLoad(kClient, gatewayClients, d/gatewayRounds, keyReq))
		ses.add(runLoad(sClient, gatewayClients, d/gatewayRounds, sessionReq))
	}
	b.StopTimer()
	for name, r := range map[string]*loadResult{"session": &ses, "key": &key} {
		if r.errs > 0 {
			b.Fatalf("%s: %d failed calls, last: %v", name, r.errs, r.lastErr)
		}
		if len(r.lat) == 0 {
			b.Fatalf("%s: no call completed", name)
		}
		slices.Sort(r.lat)
	}
	b.ReportMetric(ses.rps(), "session-req/s")
	b.ReportMetric(key.rps(), "key-req/s")
	b.ReportMetric(ses.rps()/key.rps(), "x-key")
	b.ReportMetric(ses.quantile(0.5)*1e6, "session-p50-µs")
	b.ReportMetric(key.quantile(0.5)*1e6, "key-p50-µs")
	benchtable.Record(b, benchtable.Row{Metric: "session DescribeApps req/s (8 clients)", Unit: "req/s",
		Target: "≥ 0.9× key-signed", Tianshu: ses.rps(), Baseline: key.rps()})
	benchtable.Record(b, benchtable.Row{Metric: "session DescribeApps p50", Unit: "s",
		Tianshu: ses.quantile(0.5), Baseline: key.quantile(0.5)})
}
