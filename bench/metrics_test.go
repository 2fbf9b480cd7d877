package bench

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
)

// scrapeSeries is how many series the scrape target names (#22:
// "metrics scraping 10,000 series ≤ 50 ms").
const scrapeSeries = 10_000

// BenchmarkMetricsScrape measures one GET /metrics of a running platform
// whose registry holds scrapeSeries series: the platform's own families
// (the Go and process collectors, the task collector that reads at scrape
// time, every component's vectors) topped up with a per-device gauge the
// way a site with thousands of cameras fills it. The baseline is
// promhttp serving a bare registry of the same number of plain gauge
// series over its own listener, in the same run.
func BenchmarkMetricsScrape(b *testing.B) {
	p := startPlatform(b)
	have := countSeries(b, scrape(b, "http://"+p.Addr()+"/metrics", "identity"))
	extra := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tianshu_bench_device_series", Help: "Series the scrape benchmark adds, one per simulated camera."}, []string{"device"})
	if err := p.Metrics.Register(extra); err != nil {
		b.Fatal(err)
	}
	for i := 0; have+i < scrapeSeries; i++ {
		extra.WithLabelValues("dev-" + strconv.Itoa(i)).Set(float64(i))
	}
	bare := prometheus.NewRegistry()
	plain := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bare_series", Help: "Plain gauge series."}, []string{"device"})
	bare.MustRegister(plain)
	for i := 0; i < scrapeSeries; i++ {
		plain.WithLabelValues("dev-" + strconv.Itoa(i)).Set(float64(i))
	}
	srv := httptest.NewServer(promhttp.HandlerFor(bare, promhttp.HandlerOpts{}))
	defer srv.Close()

	ours, base := "http://"+p.Addr()+"/metrics", srv.URL
	b.Logf("series: platform %d (its own %d), bare %d", countSeries(b, scrape(b, ours, "identity")), have, countSeries(b, scrape(b, base, "identity")))
	// Plain text, and gzip as Prometheus asks for it (Accept-Encoding: gzip):
	// compressing the answer is most of a gzip scrape's cost.
	b.ResetTimer()
	for _, enc := range []string{"identity", "gzip"} {
		const rounds = 5 // A B A B …, each side scraped per round
		per := max(b.N, 20)
		var oursT, baseT time.Duration
		for r := 0; r < rounds; r++ {
			oursT += timeScrapes(b, ours, enc, per)
			baseT += timeScrapes(b, base, enc, per)
		}
		n := float64(rounds * per)
		oursNs, baseNs := float64(oursT.Nanoseconds())/n, float64(baseT.Nanoseconds())/n
		b.ReportMetric(oursNs/1e6, enc+"-ms/scrape")
		b.ReportMetric(baseNs/1e6, enc+"-bare-ms/scrape")
		benchtable.Record(b, benchtable.Row{Metric: "GET /metrics (" + enc + ") with 10,000 series vs promhttp over a bare registry of as many", Unit: "ns",
			Target: "≤ 50 ms", Tianshu: oursNs, Baseline: baseNs})
	}
}

// timeScrapes scrapes url n times, one after another, reading each body.
func timeScrapes(b *testing.B, url, encoding string, n int) time.Duration {
	t0 := time.Now()
	for i := 0; i < n; i++ {
		scrape(b, url, encoding)
	}
	return time.Since(t0)
}

// scrape GETs url asking for encoding and returns the body as sent (not
// decompressed).
func scrape(b *testing.B, url, encoding string) []byte {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", encoding)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return body
}

// countSeries counts the sample lines of a text exposition.
func countSeries(b *testing.B, body []byte) int {
	n := 0
	for _, line := range bytes.Split(body, []byte("\n")) {
		if len(line) > 0 && line[0] != '#' {
			n++
		}
	}
	return n
}
