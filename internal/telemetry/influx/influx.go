// Package influx writes the platform's Prometheus metrics to InfluxDB 1.x
// (or a Telegraf influxdb_listener) in line protocol, for sites whose
// monitoring is Telegraf + InfluxDB + Grafana rather than Prometheus.
//
// Every interval it gathers the platform's registry and turns each
// tianshu_* sample into a line: the measurement is the metric's name, the
// tags its labels, and the fields value (counters, gauges) or count and
// sum (histograms, summaries). The same names as /metrics, so an operator
// finds in InfluxDB what docs/metrics.md lists.
package influx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// maxBatch is how many lines one POST carries at most.
const maxBatch = 5000

// Writer samples a registry and writes it to InfluxDB.
type Writer struct {
	cfg    telemetry.InfluxConfig
	gather prometheus.Gatherer
	log    *slog.Logger
	client *http.Client
	write  string // the /write URL

	mu  sync.Mutex
	buf [][]byte // lines waiting, oldest first

	written prometheus.Counter
	dropped *prometheus.CounterVec
	errors  prometheus.Counter
}

// New returns a writer of g's metrics; reg receives the writer's own.
func New(cfg telemetry.InfluxConfig, g prometheus.Gatherer, reg prometheus.Registerer, log *slog.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/") + "/write")
	if err != nil {
		return nil, err
	}
	u.RawQuery = url.Values{"db": {cfg.Database}, "precision": {"ms"}}.Encode()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Writer{cfg: cfg, gather: g, log: log, client: &http.Client{Timeout: 10 * time.Second}, write: u.String(),
		written: telemetry.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_influx_lines_written_total",
			Help: "Line protocol lines InfluxDB accepted."})),
		dropped: telemetry.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_influx_lines_dropped_total",
			Help: "Line protocol lines dropped, by reason: buffer_full (InfluxDB was unreachable for longer than the buffer holds), rejected (InfluxDB refused them as malformed)."}, []string{"reason"})),
		errors: telemetry.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_influx_write_errors_total",
			Help: "Writes to InfluxDB that failed (unreachable, or an error answer); their lines stay buffered."})),
	}, nil
}

// Run samples and writes every interval until ctx ends, then writes once
// more.
func (w *Writer) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			w.Tick(fctx, time.Now())
			cancel()
			return
		case now := <-t.C:
			w.Tick(ctx, now)
		}
	}
}

// Tick samples the registry at now and writes what is buffered.
func (w *Writer) Tick(ctx context.Context, now time.Time) {
	mfs, err := w.gather.Gather()
	if err != nil {
		w.log.Warn("influx: metrics not all gathered", "err", err)
	}
	w.add(Lines(mfs, now))
	w.flush(ctx)
}

func (w *Writer) add(lines [][]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, lines...)
	if over := len(w.buf) - w.cfg.MaxBuffer; over > 0 {
		w.buf = append(w.buf[:0:0], w.buf[over:]...)
		w.dropped.WithLabelValues("buffer_full").Add(float64(over))
	}
}

// Buffered returns how many lines wait for InfluxDB.
func (w *Writer) Buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

// flush writes the buffer in batches, oldest first, until one fails.
func (w *Writer) flush(ctx context.Context) {
	for {
		w.mu.Lock()
		n := min(len(w.buf), maxBatch)
		batch := w.buf[:n:n]
		w.mu.Unlock()
		if n == 0 {
			return
		}
		status, err := w.post(ctx, batch)
		switch {
		case err != nil || status >= 500 || status == http.StatusTooManyRequests || status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound:
			// InfluxDB cannot take them now: keep them for the next tick.
			w.errors.Inc()
			w.log.Warn("influx: write failed; lines kept", "lines", w.Buffered(), "status", status, "err", err)
			return
		case status >= 400:
			w.dropped.WithLabelValues("rejected").Add(float64(n))
			w.log.Warn("influx: lines rejected", "lines", n, "status", status)
		default:
			w.written.Add(float64(n))
		}
		w.mu.Lock()
		w.buf = w.buf[min(n, len(w.buf)):]
		w.mu.Unlock()
	}
}

func (w *Writer) post(ctx context.Context, lines [][]byte) (int, error) {
	body := bytes.Join(lines, []byte{'\n'})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.write, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Lines turns the tianshu_* samples of mfs into line protocol lines
// stamped now (milliseconds).
func Lines(mfs []*dto.MetricFamily, now time.Time) [][]byte {
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	var out [][]byte
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "tianshu_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var fields []string
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				fields = field(fields, "value", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				fields = field(fields, "value", m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				fields = field(fields, "value", m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				fields = field(field(fields, "count", float64(h.GetSampleCount())), "sum", h.GetSampleSum())
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				fields = field(field(fields, "count", float64(s.GetSampleCount())), "sum", s.GetSampleSum())
			}
			if len(fields) == 0 {
				continue
			}
			var b strings.Builder
			b.WriteString(escape(name, ", "))
			labels := m.GetLabel()
			sort.Slice(labels, func(i, j int) bool { return labels[i].GetName() < labels[j].GetName() })
			for _, l := range labels {
				if l.GetValue() == "" {
					continue // InfluxDB refuses an empty tag value
				}
				fmt.Fprintf(&b, ",%s=%s", escape(l.GetName(), ",= "), escape(l.GetValue(), ",= "))
			}
			b.WriteByte(' ')
			b.WriteString(strings.Join(fields, ","))
			b.WriteByte(' ')
			b.WriteString(ts)
			out = append(out, []byte(b.String()))
		}
	}
	return out
}

// field appends name=v, leaving out values InfluxDB cannot store (NaN,
// infinities).
func field(fields []string, name string, v float64) []string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fields
	}
	return append(fields, name+"="+strconv.FormatFloat(v, 'g', -1, 64))
}

// escape backslash-escapes the characters line protocol reserves in a
// measurement (comma, space) or a tag key or value (comma, equals, space).
func escape(s, special string) string {
	if !strings.ContainsAny(s, special+"\n") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '\n' {
			b.WriteString(`\n`)
			continue
		}
		if strings.ContainsRune(special, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
