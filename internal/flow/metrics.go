package flow

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-node RED metrics of every plan compiled with them.
// They are registered once on the registerer passed in (never the global
// one) and shared by all plans, labelled by flow name, node id and kind.
type Metrics struct {
	executions *prometheus.CounterVec
	errors     *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	messages   *prometheus.CounterVec
}

// NewMetrics creates and registers the flow metrics:
// tianshu_flow_node_executions_total, tianshu_flow_node_errors_total,
// tianshu_flow_node_duration_seconds and tianshu_flow_messages_total.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"flow", "node", "kind"}
	m := &Metrics{
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_flow_node_executions_total", Help: "Node executions, successful or not.",
		}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_flow_node_errors_total", Help: "Node executions that ended in an error (after retries).",
		}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tianshu_flow_node_duration_seconds",
			Help:    "Node execution time, including retries.",
			Buckets: []float64{1e-6, 1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5},
		}, labels),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_flow_messages_total", Help: "Messages run through a flow, by outcome (ok, failed).",
		}, []string{"flow", "status"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.executions, m.errors, m.latency, m.messages} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// nodeMetrics are one node's children, looked up once at compile time so
// the hot path does no label hashing.
type nodeMetrics struct {
	executions prometheus.Counter
	errors     prometheus.Counter
	latency    prometheus.Observer
}

func (m *Metrics) forNode(flow, node, kind string) *nodeMetrics {
	if m == nil {
		return nil
	}
	return &nodeMetrics{
		executions: m.executions.WithLabelValues(flow, node, kind),
		errors:     m.errors.WithLabelValues(flow, node, kind),
		latency:    m.latency.WithLabelValues(flow, node, kind),
	}
}
