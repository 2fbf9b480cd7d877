package iam

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// auditMetrics are the audit log's metrics (RegisterMetrics); nil fields
// count nothing.
type auditMetrics struct {
	failures *prometheus.CounterVec
	chained  prometheus.Counter
}

// RegisterMetrics registers the audit log's metrics with r:
// tianshu_audit_pending_events, the events staged and not yet chained
// (read from the store at each scrape, so every replica's);
// tianshu_audit_chain_failures_total{where}, chaining passes that failed,
// by the chainer ("chainer") or by a writer after its commit ("writer"); and
// tianshu_audit_chained_events_total, the events this process chained
// (counted as its chaining transactions append them).
// Call it before StartQueue.
func (a *Audit) RegisterMetrics(r prometheus.Registerer) error {
	failures, err := telemetry.Register(r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tianshu_audit_chain_failures_total",
		Help: "Audit chaining passes that failed, by where they ran (chainer, writer); their events stay staged for the next pass.",
	}, []string{"where"}))
	if err != nil {
		return err
	}
	chained, err := telemetry.Register(r, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tianshu_audit_chained_events_total",
		Help: "Staged audit events this process moved into the hash chain.",
	}))
	if err != nil {
		return err
	}
	if _, err := telemetry.Register(r, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tianshu_audit_pending_events",
		Help: "Audit events staged and not yet chained, in the store (every replica's); NaN when the store could not be read.",
	}, a.pendingGauge)); err != nil {
		return err
	}
	for _, w := range []string{"chainer", "writer"} {
		failures.WithLabelValues(w) // present at 0 before the first failure
	}
	a.metrics = auditMetrics{failures: failures, chained: chained}
	return nil
}

func (a *Audit) pendingGauge() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := a.Pending(ctx)
	if err != nil {
		return math.NaN()
	}
	return float64(n)
}

func (m auditMetrics) failed(where string) {
	if m.failures != nil {
		m.failures.WithLabelValues(where).Inc()
	}
}

func (m auditMetrics) moved(n int) {
	if m.chained != nil && n > 0 {
		m.chained.Add(float64(n))
	}
}
