package api_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// BenchmarkGatewayServe measures one signed call through Gateway.ServeHTTP
// with a recorded request, no network: authentication (TC3 verification,
// key lookup, replay check), rate limits, authorization, decoding, the
// envelope, metrics and the access log. NopThing is the gateway's own cost;
// DescribeApps adds the app center's queries on SQLite. Requests are signed
// before the timer starts (each with its own trace id, as the replay cache
// accepts a signature once).
func BenchmarkGatewayServe(b *testing.B) {
	for _, tc := range []struct{ action, body string }{
		{"NopThing", `{}`},
		{"DescribeApps", `{"Limit":1}`},
	} {
		b.Run(tc.action, func(b *testing.B) {
			// As make bench runs the platform: rate limits off (the fixed
			// clock would trip them at once), the limiter still consulted.
			e := newGatewayWith(b, func(c *api.Config, _ *api.GatewayOptions) {
				c.DefaultReadRPS, c.DefaultWriteRPS, c.ProjectRPS = 0, 0, 0
			})
			reqs := make([]*http.Request, b.N)
			for i := range reqs {
				req := httptest.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(tc.body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-TC-Action", tc.action)
				req.Header.Set("X-TC-Version", api.Version)
				e.admin.Sign(req, []byte(tc.body), e.clk.now())
				reqs[i] = req
			}
			var w discardWriter
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := range b.N {
				w.reset()
				e.gw.ServeHTTP(&w, reqs[i])
				if w.code != http.StatusOK || bytes.Contains(w.body, []byte(`"Error"`)) {
					b.Fatalf("answer %d %s", w.code, w.body)
				}
			}
			// Process CPU time per call: steadier than ns/op on a shared
			// machine, where ns/op counts the time other work holds the CPU.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// discardWriter is a reusable http.ResponseWriter that keeps the last
// answer, so that the benchmark counts the gateway's allocations only.
type discardWriter struct {
	h    http.Header
	code int
	body []byte
}

func (w *discardWriter) reset() {
	if w.h == nil {
		w.h = http.Header{}
	}
	clear(w.h)
	w.code, w.body = 0, w.body[:0]
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) { w.code = code }

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
