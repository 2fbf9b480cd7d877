package bus

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// Metrics are the Prometheus series every backend keeps, under the same
// names whichever backend runs. Consumer-side series carry the durable
// name too, because "which subscriber is dead-lettering" is the first
// question when they move.
type Metrics struct {
	Published   *prometheus.CounterVec   // topic
	Delivered   *prometheus.CounterVec   // topic, durable
	Redelivered *prometheus.CounterVec   // topic, durable
	Acked       *prometheus.CounterVec   // topic, durable
	Failed      *prometheus.CounterVec   // topic, durable
	Dead        *prometheus.CounterVec   // topic, durable
	Handler     *prometheus.HistogramVec // topic, durable
}

// NewMetrics registers the bus series with reg (nil: unregistered); a
// second backend on the same registry shares the first one's series.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	consumer := []string{"topic", "durable"}
	m := &Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_published_total",
			Help: "Messages stored by Publish.",
		}, []string{"topic"}),
		Delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_delivered_total",
			Help: "Messages received by subscriptions, redeliveries included.",
		}, consumer),
		Redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_redelivered_total",
			Help: "Messages received again after a subscriber failed to acknowledge them in time or stopped.",
		}, consumer),
		Acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_acked_total",
			Help: "Messages whose handler succeeded.",
		}, consumer),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_handler_errors_total",
			Help: "Handler calls that returned an error (each is retried or, at MaxDeliver, dead).",
		}, consumer),
		Dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_dead_total",
			Help: "Messages given up after MaxDeliver attempts.",
		}, consumer),
		Handler: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tianshu_bus_handler_seconds",
			Help:    "Time handlers took per attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, consumer),
	}
	var err error
	for _, c := range []**prometheus.CounterVec{&m.Published, &m.Delivered, &m.Redelivered, &m.Acked, &m.Failed, &m.Dead} {
		if *c, err = telemetry.Register(reg, *c); err != nil {
			return nil, fmt.Errorf("bus: register metrics: %w", err)
		}
	}
	if m.Handler, err = telemetry.Register(reg, m.Handler); err != nil {
		return nil, fmt.Errorf("bus: register metrics: %w", err)
	}
	return m, nil
}
