package push

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// metrics are the tianshu_push_ metrics, labelled by channel.
type metrics struct {
	delivered, failed, retried, dead *prometheus.CounterVec
	latency                          *prometheus.HistogramVec
	inFlight                         *prometheus.GaugeVec
	ownReaders                       prometheus.Gauge
	ownReads                         prometheus.Counter
	// webhook holds the webhook channel's children, bound once: each
	// delivery updates several.
	webhook channelMetrics
}

// channelMetrics are one channel's children of the metrics.
type channelMetrics struct {
	delivered, failed, retried, dead prometheus.Counter
	latency                          prometheus.Observer
	inFlight                         prometheus.Gauge
	// ownReaders counts the webhook subscriptions reading their own bus
	// durable rather than their topic's shared reader (fanout.go), and
	// ownReads how often one started to.
	ownReaders prometheus.Gauge
	ownReads   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	ch := []string{"channel"}
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_push_delivered_total",
			Help: "Events delivered (acknowledged by the receiver), per channel."}, ch),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_push_failed_total",
			Help: "Delivery attempts that failed, per channel."}, ch),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_push_retried_total",
			Help: "Failed attempts that will be retried, per channel."}, ch),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_push_dead_total",
			Help: "Events given up and dead-lettered, per channel."}, ch),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tianshu_push_latency_seconds",
			Help:    "Time from an event's publication to its acknowledgement by the receiver, per channel.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, ch),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tianshu_push_in_flight",
			Help: "Events sent and not yet acknowledged, per channel."}, ch),
		ownReaders: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tianshu_push_webhook_own_readers",
			Help: "Webhook subscriptions reading the bus through their own durable (started behind, or fell behind, their topic's shared reader)."}),
		ownReads: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_push_webhook_own_reads_total",
			Help: "Times a webhook subscription started reading the bus through its own durable."}),
	}
	if reg == nil {
		m.bind()
		return m, nil
	}
	var err error
	if m.delivered, err = telemetry.Register(reg, m.delivered); err != nil {
		return nil, err
	}
	if m.failed, err = telemetry.Register(reg, m.failed); err != nil {
		return nil, err
	}
	if m.retried, err = telemetry.Register(reg, m.retried); err != nil {
		return nil, err
	}
	if m.dead, err = telemetry.Register(reg, m.dead); err != nil {
		return nil, err
	}
	if m.latency, err = telemetry.Register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.inFlight, err = telemetry.Register(reg, m.inFlight); err != nil {
		return nil, err
	}
	if m.ownReaders, err = telemetry.Register(reg, m.ownReaders); err != nil {
		return nil, err
	}
	if m.ownReads, err = telemetry.Register(reg, m.ownReads); err != nil {
		return nil, err
	}
	m.bind()
	return m, nil
}

func (m *metrics) bind() {
	ch := ChannelWebhook
	m.webhook = channelMetrics{delivered: m.delivered.WithLabelValues(ch), failed: m.failed.WithLabelValues(ch),
		retried: m.retried.WithLabelValues(ch), dead: m.dead.WithLabelValues(ch),
		latency: m.latency.WithLabelValues(ch), inFlight: m.inFlight.WithLabelValues(ch),
		ownReaders: m.ownReaders, ownReads: m.ownReads}
}
