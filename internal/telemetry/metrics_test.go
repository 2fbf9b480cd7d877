package telemetry_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

func TestRegisterSharesExistingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "test_total", Help: "A test counter."}
	a, err := telemetry.Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	b, err := telemetry.Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatalf("second register: %v", err)
	}
	if a != b {
		t.Fatal("second register returned a new collector, not the registered one")
	}
	c := telemetry.MustRegister(reg, prometheus.NewCounter(opts))
	c.Inc()
	if got := testValue(t, reg); got != 1 {
		t.Fatalf("counter = %v, want 1", got)
	}
}

func TestRegisterNilRegisterer(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "h"})
	got, err := telemetry.Register(nil, c)
	if err != nil || got != c {
		t.Fatalf("Register(nil) = %v, %v", got, err)
	}
}

func TestRegisterConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	telemetry.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "h"}))
	_, err := telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_total", Help: "h"}, []string{"x"}))
	if err == nil {
		t.Fatal("conflicting registration succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustRegister did not panic on a conflict")
		}
	}()
	telemetry.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_total", Help: "h"}, []string{"x"}))
}

func testValue(t *testing.T, g prometheus.Gatherer) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v, %d families", err, len(mfs))
	}
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}
