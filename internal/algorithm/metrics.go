package algorithm

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// metrics are the invoker's and runtimes' metrics, labelled by algorithm,
// version and (where it applies) instance. A Manager registers them once.
type metrics struct {
	requests  *prometheus.CounterVec   // algorithm, version, instance
	errors    *prometheus.CounterVec   // algorithm, version, instance, reason
	duration  *prometheus.HistogramVec // algorithm, version
	inFlight  *prometheus.GaugeVec     // algorithm, version, instance
	breaker   *prometheus.GaugeVec     // algorithm, version, instance
	ready     *prometheus.GaugeVec     // algorithm, version, instance
	restarts  *prometheus.CounterVec   // algorithm, version, instance
	gpuMemory *prometheus.GaugeVec     // algorithm, version, instance
	batchSize *prometheus.HistogramVec // algorithm, version
	// tensors counts input tensors sent to serving runtimes by transport.
	tensors *prometheus.CounterVec // algorithm, version, transport
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	vl := []string{"algorithm", "version"}
	il := []string{"algorithm", "version", "instance"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_algorithm_requests_total",
			Help: "Calls sent to an algorithm instance, retries included.",
		}, il),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_algorithm_errors_total",
			Help: "Failed calls by reason (unavailable, connection, timeout, canceled, status, bad_response, bad_input, script, algorithm); instance is empty when none was reached.",
		}, []string{"algorithm", "version", "instance", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tianshu_algorithm_request_duration_seconds",
			Help:    "Invoke latency per version, from the caller's view (batch wait and retries included).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, vl),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tianshu_algorithm_in_flight_requests",
			Help: "Requests outstanding at an instance.",
		}, il),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tianshu_algorithm_breaker_state",
			Help: "Circuit breaker state per instance: 0 closed, 1 half-open, 2 open.",
		}, il),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tianshu_algorithm_instance_ready",
			Help: "1 while an instance is ready to take calls.",
		}, il),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_algorithm_instance_restarts_total",
			Help: "Process instance restarts.",
		}, il),
		gpuMemory: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tianshu_algorithm_instance_gpu_memory_bytes",
			Help: "GPU memory a process instance (its process group) holds, as nvidia-smi last reported it; instances with GPUs only.",
		}, il),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tianshu_algorithm_batch_size",
			Help:    "Items per call sent to a batching version.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, vl),
		tensors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_algorithm_serving_tensors_total",
			Help: "Input tensors sent to a serving runtime (model-file versions) by transport: shm (a system shared memory region) or body (the request's body).",
		}, []string{"algorithm", "version", "transport"}),
	}
	if r == nil {
		return m, nil
	}
	var err error
	if m.requests, err = telemetry.Register(r, m.requests); err != nil {
		return nil, err
	}
	if m.errors, err = telemetry.Register(r, m.errors); err != nil {
		return nil, err
	}
	if m.duration, err = telemetry.Register(r, m.duration); err != nil {
		return nil, err
	}
	if m.inFlight, err = telemetry.Register(r, m.inFlight); err != nil {
		return nil, err
	}
	if m.breaker, err = telemetry.Register(r, m.breaker); err != nil {
		return nil, err
	}
	if m.ready, err = telemetry.Register(r, m.ready); err != nil {
		return nil, err
	}
	if m.restarts, err = telemetry.Register(r, m.restarts); err != nil {
		return nil, err
	}
	if m.gpuMemory, err = telemetry.Register(r, m.gpuMemory); err != nil {
		return nil, err
	}
	if m.batchSize, err = telemetry.Register(r, m.batchSize); err != nil {
		return nil, err
	}
	if m.tensors, err = telemetry.Register(r, m.tensors); err != nil {
		return nil, err
	}
	return m, nil
}

// forget removes an instance's series when its version stops.
func (m *metrics) forget(alg, ver, inst string) {
	l := prometheus.Labels{"algorithm": alg, "version": ver, "instance": inst}
	m.requests.Delete(l)
	m.inFlight.Delete(l)
	m.breaker.Delete(l)
	m.ready.Delete(l)
	m.restarts.Delete(l)
	m.gpuMemory.Delete(l)
	m.errors.DeletePartialMatch(l)
	m.tensors.DeletePartialMatch(l)
}

// forgetVersion removes a version's own series.
func (m *metrics) forgetVersion(alg, ver string) {
	l := prometheus.Labels{"algorithm": alg, "version": ver}
	m.duration.Delete(l)
	m.batchSize.Delete(l)
	m.errors.DeletePartialMatch(l)
}
