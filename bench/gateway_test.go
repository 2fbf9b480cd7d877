package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/config"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// Fixed bootstrap credentials of the benchmark platform.
const (
	benchSecretID  = "AKIDbenchmark0000000000000000000"
	benchSecretKey = "benchmark-secret-key-000000000000"
	benchPassword  = "benchmark-password"
	// gatewayClients is the number of concurrent keep-alive clients.
	gatewayClients = 8
	// wireConns is the number of keep-alive connections of the load
	// generator: the wrk -c32.
	wireConns = 32
	// gatewayRounds alternates the two sides, so that load from elsewhere
	// on the machine falls on both alike.
	gatewayRounds = 3
)

// startPlatform runs an embedded-default platform in-process on a loopback
// port with a fresh data dir and fixed admin credentials, stopped at cleanup.
func startPlatform(b *testing.B) *app.Platform {
	b.Helper()
	return startPlatformIn(b, b.TempDir())
}

// startPlatformIn is startPlatform on the data dir dir (its media root is
// dir/media).
func startPlatformIn(b *testing.B, dir string) *app.Platform {
	b.Helper()
	getenv := func(k string) string {
		switch k {
		case "TIANSHU_ADMIN_SECRET_ID":
			return benchSecretID
		case "TIANSHU_ADMIN_SECRET_KEY":
			return benchSecretKey
		case "TIANSHU_ADMIN_PASSWORD":
			return benchPassword
		}
		return "" // nothing else from the caller's environment
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The benchmarks measure the gateway's own cost at full speed: the
	// default rate limits (which they would trip at once) are off.
	cfg, err := config.Load(fs, []string{"--data-dir", dir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--log.level", "error",
		"--api.default-read-rps", "0", "--api.default-write-rps", "0", "--api.project-rps", "0"}, getenv)
	if err != nil {
		b.Fatal(err)
	}
	// The push bench's webhook receivers listen on loopback.
	cfg.Outbound.AllowLoopback = true
	log := telemetry.NewLogger(os.Stderr, cfg.Log.Level, cfg.Log.Format) // as tianshu serve builds it
	p, err := app.New(cfg, app.Options{Logger: log, Getenv: getenv})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			b.Errorf("stop platform: %v", err)
		}
	})
	return p
}

// signedRequests returns a maker of requests, each signed fresh (the
// gateway accepts a signature once; tc3.Signer signs a random trace id).
func signedRequests(url, action string, body []byte) func() *http.Request {
	signer := tc3.Signer{SecretID: benchSecretID, SecretKey: benchSecretKey}
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", action)
		req.Header.Set("X-TC-Version", api.Version)
		signer.Sign(req, body, time.Now())
		return req
	}
}

// loadResult is what one side's load produced.
type loadResult struct {
	lat     []time.Duration
	errs    int
	elapsed time.Duration
	lastErr error
}

func (r *loadResult) add(o loadResult) {
	r.lat = append(r.lat, o.lat...)
	r.errs += o.errs
	r.elapsed += o.elapsed
	if o.lastErr != nil {
		r.lastErr = o.lastErr
	}
}

func (r *loadResult) rps() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

// quantile returns the q-quantile of the sorted latencies in seconds.
func (r *loadResult) quantile(q float64) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	i := min(len(r.lat)-1, int(q*float64(len(r.lat))))
	return r.lat[i].Seconds()
}

// runLoad keeps c clients calling newReq back to back for d and returns
// each successful call's latency: from building (and signing) the request
// to the last byte of the response.
func runLoad(hc *http.Client, c int, d time.Duration, newReq func() *http.Request) loadResult {
	var mu sync.Mutex
	var res loadResult
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			var my loadResult
			my.lat = make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := do(hc, newReq())
				if err != nil {
					my.errs++
					my.lastErr = err
					continue
				}
				my.lat = append(my.lat, time.Since(t0))
			}
			mu.Lock()
			res.add(my)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// do sends req and reads the whole response, which must be a 200 without
// an API error.
func do(hc *http.Client, req *http.Request) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"Error":`)) {
		return errors.New(resp.Status + ": " + string(body))
	}
	return nil
}

func benchDuration(b *testing.B) time.Duration {
	s := os.Getenv("BENCH_DURATION")
	if s == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		b.Fatalf("BENCH_DURATION=%q: want a positive duration such as 3s", s)
	}
	return d
}

// BenchmarkGateway measures a trivial signed action (DescribeApps, Limit 1)
// through the whole gateway — TC3 signature made by the client and checked
// by the server, key lookup, envelope, metrics, access log, and the action's
// read of the store — against the bare handler: a plain Go JSON handler
// that decodes the same request and answers the same app, held in memory,
// over plain HTTP, with nothing else. 8 keep-alive clients for
// BENCH_DURATION (default 3s) a side, in alternating rounds after a
// warm-up. It times itself, so run it at the default -benchtime or
// -benchtime=1x.
func BenchmarkGateway(b *testing.B) {
	p := startPlatform(b)
	ctx := context.Background()
	apps, _, err := p.Apps.ListApps(ctx, "", nil, []string{"admin"}, []string{api.RoleAdmin}, 0, 1)
	if err != nil || len(apps) == 0 {
		b.Fatalf("bootstrap admin app: %v (%d apps)", err, len(apps))
	}

	// The bare side: what a hand-written Go service answering this request
	// does at least — read and decode the body, encode the answer.
	type appInfo struct {
		AppId, ProjectId, Name, Description, Role, Status string
		ActiveKeyCount                                    int
		CreatedTime                                       string
	}
	answer := struct {
		TotalCount int
		AppSet     []appInfo
	}{1, []appInfo{{AppId: apps[0].ID, ProjectId: apps[0].ProjectID, Name: apps[0].Name, Description: apps[0].Description,
		Role: apps[0].Role, Status: apps[0].Status, ActiveKeyCount: apps[0].ActiveKeys, CreatedTime: apps[0].CreatedAt.Format(time.RFC3339)}}}
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Limit int }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, _ := json.Marshal(answer)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	compareWithBare(b, p, "DescribeApps", []byte(`{"Limit":1}`), bare, "gateway DescribeApps", "bare Go JSON handler")
}

// compareWithBare loads the signed action on the platform and the bare
// handler with the same body, in alternating rounds, and records the rates,
// the server CPU per call and the latencies of both under metric.
func compareWithBare(b *testing.B, p *app.Platform, action string, body []byte, bare http.Handler, metric, baseline string) {
	compareSides(b, signedWire(p.BaseURL()+"/", action, body), nil, body, bare, metric, baseline, "≥ 0.7× "+baseline)
}

// compareSides loads side (a service under test) and the bare handler with
// body, in alternating rounds A B A B A B, through the load generator
// (loadgen_test.go: prepared bytes written on wireConns keep-alive
// connections by a child process), and records the rates, the server CPU
// per call and the latencies of both under metric. sideCPU, when set, is
// the CPU time of the side's own process (one outside this one); it is
// added to the side's server CPU.
func compareSides(b *testing.B, side wireSource, sideCPU func() time.Duration, body []byte, bare http.Handler, metric, baseline, target string) {
	direct := &http.Server{Handler: bare, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = direct.Serve(ln) }()
	b.Cleanup(func() { _ = direct.Close() })
	bareSide := plainWire("http://"+ln.Addr().String()+"/", body)
	if sideCPU == nil {
		sideCPU = func() time.Duration { return 0 }
	}
	none := func() time.Duration { return 0 }
	dir := b.TempDir()

	// Each round of the side is prepared before either side's window:
	// signed requests are signed ahead, twice as many as the fastest rate
	// seen so far would send. Should they run out (the machine's speed
	// swings), the round ends there and its rate is measured over the
	// time it ran.
	d := benchDuration(b)
	round := d / gatewayRounds
	warm := min(500*time.Millisecond, d/4)
	w, _, _ := prepareWire(b, dir, bareSide, wireConns, warm, 0).run(b, none)
	rate := w.rps()
	need := func(t time.Duration) int { return int(rate*2*t.Seconds()) + 4*wireConns }
	w, _, _ = prepareWire(b, dir, side, wireConns, warm, need(warm)).run(b, sideCPU)
	for name, r := range map[string]loadResult{"warm-up": w} {
		if r.errs > 0 || len(r.lat) == 0 {
			b.Fatalf("%s: %d failed calls, %d done, last: %v", name, r.errs, len(r.lat), r.lastErr)
		}
	}
	var gw, dr loadResult
	var gwCPU, drCPU, gwClient, drClient time.Duration
	b.ResetTimer()
	for range gatewayRounds {
		bl := prepareWire(b, dir, bareSide, wireConns, round, 0)
		sl := prepareWire(b, dir, side, wireConns, round, need(round))
		r, cpu, o := bl.run(b, none)
		dr.add(r)
		drCPU, drClient = drCPU+cpu, drClient+o.CPU
		rate = max(rate, r.rps())
		r, cpu, o = sl.run(b, sideCPU)
		gw.add(r)
		gwCPU, gwClient = gwCPU+cpu, gwClient+o.CPU
	}
	b.StopTimer()
	for name, r := range map[string]*loadResult{"gateway": &gw, "direct": &dr} {
		if r.errs > 0 {
			b.Fatalf("%s: %d failed calls, last: %v", name, r.errs, r.lastErr)
		}
		if len(r.lat) == 0 {
			b.Fatalf("%s: no call completed", name)
		}
		slices.Sort(r.lat)
	}
	perCall := func(t time.Duration, r loadResult) float64 { return t.Seconds() / float64(len(r.lat)) }

	b.ReportMetric(gw.rps(), "gw-req/s")
	b.ReportMetric(dr.rps(), "bare-req/s")
	b.ReportMetric(gw.rps()/dr.rps(), "x-bare")
	// Server CPU per call, steadier than rates on a shared machine; the
	// load generator's own beside it (the same work on both sides).
	b.ReportMetric(perCall(gwCPU, gw)*1e6, "gw-cpu-µs/call")
	b.ReportMetric(perCall(drCPU, dr)*1e6, "bare-cpu-µs/call")
	b.ReportMetric(perCall(drCPU, dr)/perCall(gwCPU, gw), "x-bare-cpu")
	b.ReportMetric(perCall(gwClient, gw)*1e6, "gw-client-cpu-µs/call")
	b.ReportMetric(perCall(drClient, dr)*1e6, "bare-client-cpu-µs/call")
	b.ReportMetric(gw.quantile(0.5)*1e6, "gw-p50-µs")
	b.ReportMetric(gw.quantile(0.99)*1e6, "gw-p99-µs")
	b.ReportMetric(dr.quantile(0.5)*1e6, "bare-p50-µs")
	b.ReportMetric(dr.quantile(0.99)*1e6, "bare-p99-µs")
	benchtable.Record(b, benchtable.Row{Metric: metric + " req/s (32 conns, pre-signed; baseline: " + baseline + ")", Unit: "req/s",
		Target: target, Tianshu: gw.rps(), Baseline: dr.rps()})
	benchtable.Record(b, benchtable.Row{Metric: metric + " server CPU per call", Unit: "s",
		Tianshu: perCall(gwCPU, gw), Baseline: perCall(drCPU, dr)})
	benchtable.Record(b, benchtable.Row{Metric: metric + " load generator CPU per call", Unit: "s",
		Tianshu: perCall(gwClient, gw), Baseline: perCall(drClient, dr)})
	benchtable.Record(b, benchtable.Row{Metric: metric + " p50", Unit: "s",
		Tianshu: gw.quantile(0.5), Baseline: dr.quantile(0.5)})
	benchtable.Record(b, benchtable.Row{Metric: metric + " p99", Unit: "s",
		Tianshu: gw.quantile(0.99), Baseline: dr.quantile(0.99)})
}
