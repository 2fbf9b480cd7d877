package influx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/telemetry/influx"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

func registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_test_messages_total", Help: "h"}, []string{"task", "outcome"})
	c.WithLabelValues("task-1", "completed").Add(42)
	c.WithLabelValues("task 2,x=y", "failed").Add(1)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tianshu_test_seconds", Help: "h"})
	h.Observe(0.5)
	h.Observe(1.5)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "other_gauge", Help: "not ours"})
	reg.MustRegister(c, h, g)
	return reg
}

// Samples become line protocol with labels as tags (escaped), counters'
// and gauges' value, histograms' count and sum; only tianshu_ families.
func TestLines(t *testing.T) {
	mfs, err := registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range influx.Lines(mfs, time.UnixMilli(1700000000123)) {
		got = append(got, string(l))
	}
	want := []string{
		`tianshu_test_messages_total,outcome=completed,task=task-1 value=42 1700000000123`,
		`tianshu_test_messages_total,outcome=failed,task=task\ 2\,x\=y value=1 1700000000123`,
		`tianshu_test_seconds count=2,sum=2 1700000000123`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// While InfluxDB cannot be reached (a port nothing listens on), lines stay
// buffered up to the bound, the oldest beyond it are dropped and counted,
// and each failed write is counted.
func TestBufferBound(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tianshu_test_gauge", Help: "h"}, []string{"n"})
	for i := range 700 {
		g.WithLabelValues(strconv.Itoa(i)).Set(float64(i))
	}
	reg.MustRegister(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	cfg := telemetry.DefaultInfluxConfig()
	cfg.URL, cfg.MaxBuffer = "http://"+addr, 1000
	own := prometheus.NewRegistry()
	w, err := influx.New(cfg, reg, own, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Tick(context.Background(), time.Now())
	w.Tick(context.Background(), time.Now())
	if n := w.Buffered(); n != 1000 {
		t.Errorf("buffered %d lines, want the bound 1000", n)
	}
	if got := counter(t, own, "tianshu_influx_lines_dropped_total"); got != 400 {
		t.Errorf("dropped %v, want 400", got)
	}
	if got := counter(t, own, "tianshu_influx_write_errors_total"); got != 2 {
		t.Errorf("write errors %v, want 2", got)
	}
}

// counter sums the series of counter family name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			v := 0.0
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	t.Fatalf("%s not exported", name)
	return 0
}

// Against a real InfluxDB 1.x server (Debian's influxdb package): the
// lines are accepted and a query returns the counter's value.
func TestWriteToInfluxDB(t *testing.T) {
	bin := testenv.NeedCommand(t, "influxd")
	dir := t.TempDir()
	httpAddr, rpcAddr := freeAddr(t), freeAddr(t)
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = %q
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
[http]
  bind-address = %q
  log-enabled = false
`, rpcAddr, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpAddr)
	if err := os.WriteFile(filepath.Join(dir, "influxdb.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-config", filepath.Join(dir, "influxdb.conf"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + httpAddr
	testenv.Eventually(t, 30*time.Second, "influxd answering /ping", func() bool {
		resp, err := http.Get(base + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNoContent
	})
	query(t, base, "CREATE DATABASE tianshu")
	cfg := telemetry.DefaultInfluxConfig()
	cfg.URL = base
	own := prometheus.NewRegistry()
	w, err := influx.New(cfg, registry(), own, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Tick(context.Background(), time.Now())
	if w.Buffered() != 0 {
		t.Fatalf("%d lines still buffered", w.Buffered())
	}
	out := query(t, base, `SELECT "value" FROM "tianshu"."autogen"."tianshu_test_messages_total" WHERE "task" = 'task-1'`)
	if !strings.Contains(out, `,42]`) {
		t.Fatalf("query answered %s", out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func query(t *testing.T, base, q string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/query", url.Values{"q": {q}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !json.Valid(b) {
		t.Fatalf("%s: %s %s", q, resp.Status, b)
	}
	return string(b)
}
