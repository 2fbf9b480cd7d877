package kafkabus

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// metrics are the bus's Prometheus series. Consumer-side series carry the
// durable name too, because "which subscriber is dead-lettering" is the
// first question when they move.
type metrics struct {
	published   *prometheus.CounterVec   // topic
	delivered   *prometheus.CounterVec   // topic, durable
	redelivered *prometheus.CounterVec   // topic, durable
	acked       *prometheus.CounterVec   // topic, durable
	failed      *prometheus.CounterVec   // topic, durable
	dead        *prometheus.CounterVec   // topic, durable
	handler     *prometheus.HistogramVec // topic, durable
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	consumer := []string{"topic", "durable"}
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_published_total",
			Help: "Messages stored by Publish.",
		}, []string{"topic"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_delivered_total",
			Help: "Messages received by subscriptions, redeliveries included.",
		}, consumer),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_redelivered_total",
			Help: "Messages received again after a subscriber failed to acknowledge them in time or stopped.",
		}, consumer),
		acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_acked_total",
			Help: "Messages whose handler succeeded.",
		}, consumer),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_handler_errors_total",
			Help: "Handler calls that returned an error (each is retried or, at MaxDeliver, dead).",
		}, consumer),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_bus_dead_total",
			Help: "Messages given up after MaxDeliver attempts.",
		}, consumer),
		handler: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tianshu_bus_handler_seconds",
			Help:    "Time handlers took per attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, consumer),
	}
	var err error
	for _, c := range []**prometheus.CounterVec{&m.published, &m.delivered, &m.redelivered, &m.acked, &m.failed, &m.dead} {
		if *c, err = register(reg, *c); err != nil {
			return nil, err
		}
	}
	if m.handler, err = register(reg, m.handler); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c through the shared helper, or returns the collector
// already registered under the same name, so that several buses (two
// platforms in one test) can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	c, err := telemetry.Register(reg, c)
	if err != nil {
		return c, fmt.Errorf("kafkabus: register metrics: %w", err)
	}
	return c, nil
}
