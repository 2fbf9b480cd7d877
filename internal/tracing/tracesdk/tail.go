package tracesdk

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/trace"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// Bounds of the tail processor.
const (
	// maxPending bounds the traces whose local root has not ended yet; a
	// span of another trace beyond it is dropped.
	maxPending = 8192
	// maxPendingSpans bounds one pending trace (a foreach over many faces).
	maxPendingSpans = 2048
	// staleAfter is when a pending trace whose root never ended (a span
	// that outlived its root) is flushed anyway, checked when full.
	staleAfter = 30 * time.Second
	// exportQueue bounds the traces waiting for the exporter.
	exportQueue = 1024
	// exportBatch is how many spans one export carries at most, and
	// exportEvery how long a partial batch waits.
	exportBatch   = 512
	exportEvery   = time.Second
	exportTimeout = 10 * time.Second
)

// tail is the span processor: it groups the spans of each trace until the
// trace's local root ends, then hands the group to the ring and the
// exporter. Every span it sees is recorded: the spans of a sampled trace,
// or those made for a failure in a sampled-out one.
type tail struct {
	// exp is the OTLP client (nil: no export) and res the resource its
	// requests name.
	exp    otlptrace.Client
	res    *resourcepb.Resource
	recent *Recent
	log    *slog.Logger

	mu      sync.Mutex
	pending map[trace.TraceID]*group

	queue    chan []*span
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	// flushes asks the exporter to export what it holds now; it closes
	// the channel sent when it has.
	flushes chan chan struct{}

	traces   *prometheus.CounterVec
	exported prometheus.Counter
	dropped  *prometheus.CounterVec
}

type group struct {
	spans []*span
	// forced: the trace was sampled out and its spans were made because
	// something in it failed (its root is marked KeyForce).
	forced bool
	first  time.Time
}

func newTail(exp otlptrace.Client, res *resourcepb.Resource, recent *Recent, log *slog.Logger, reg prometheus.Registerer) *tail {
	t := &tail{exp: exp, res: res, recent: recent, log: log, pending: map[trace.TraceID]*group{},
		queue: make(chan []*span, exportQueue), stop: make(chan struct{}), done: make(chan struct{}), flushes: make(chan chan struct{}),
		traces: telemetry.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_trace_traces_total",
			Help: "Local parts of traces finished, by export decision: sampled, error (sampled out, kept for a failed span), none (no exporter; in memory only). Sampled-out traces record nothing and are not counted."}, []string{"decision"})),
		exported: telemetry.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_trace_spans_exported_total",
			Help: "Spans the OTLP exporter accepted."})),
		dropped: telemetry.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tianshu_trace_spans_dropped_total",
			Help: "Spans lost before export, by reason: queue_full, export_failed, pending_full, trace_too_long."}, []string{"reason"})),
	}
	if exp != nil {
		go t.export()
	} else {
		close(t.done)
	}
	return t
}

// onEnd takes a span that ended.
func (t *tail) onEnd(s *span) {
	id := s.sc.TraceID()
	root := s.root()
	t.mu.Lock()
	g := t.pending[id]
	if g == nil {
		if len(t.pending) >= maxPending && !t.flushStaleLocked(time.Now()) {
			t.mu.Unlock()
			t.dropped.WithLabelValues("pending_full").Inc()
			return
		}
		g = &group{first: s.start, spans: make([]*span, 0, 8)}
		if !root {
			t.pending[id] = g
		}
	}
	if len(g.spans) < maxPendingSpans {
		g.spans = append(g.spans, s)
	} else {
		t.dropped.WithLabelValues("trace_too_long").Inc()
	}
	if root {
		g.forced = hasForce(s.attrs)
		delete(t.pending, id)
	}
	t.mu.Unlock()
	if root {
		t.finish(g)
	}
}

// flushStaleLocked finishes pending traces older than staleAfter; it
// reports whether room was made.
func (t *tail) flushStaleLocked(now time.Time) bool {
	var stale []*group
	for id, g := range t.pending {
		if now.Sub(g.first) > staleAfter {
			stale = append(stale, g)
			delete(t.pending, id)
		}
	}
	for _, g := range stale {
		go t.finish(g)
	}
	return len(stale) > 0
}

func (t *tail) finish(g *group) {
	if t.recent != nil {
		t.recent.add(g.spans)
	}
	// Only recorded traces come here: sampled ones, and the failures
	// made after the fact in sampled-out ones.
	decision := "sampled"
	if g.forced {
		decision = "error"
	}
	if t.exp == nil {
		decision = "none"
	}
	t.traces.WithLabelValues(decision).Inc()
	if t.exp == nil {
		return
	}
	select {
	case t.queue <- g.spans:
	default:
		t.dropped.WithLabelValues("queue_full").Add(float64(len(g.spans)))
	}
}

// export batches queued traces to the exporter until Shutdown.
func (t *tail) export() {
	defer close(t.done)
	tick := time.NewTicker(exportEvery)
	defer tick.Stop()
	var batch []*span
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
		err := t.exp.UploadTraces(ctx, resourceSpans(t.res, batch))
		cancel()
		if err != nil {
			t.dropped.WithLabelValues("export_failed").Add(float64(len(batch)))
			t.log.Warn("trace export failed", "spans", len(batch), "err", err)
		} else {
			t.exported.Add(float64(len(batch)))
		}
		batch = nil
	}
	for {
		select {
		case spans := <-t.queue:
			batch = append(batch, spans...)
			if len(batch) >= exportBatch {
				flush()
			}
		case <-tick.C:
			flush()
		case done := <-t.flushes:
			for drained := false; !drained; {
				select {
				case spans := <-t.queue:
					batch = append(batch, spans...)
				default:
					drained = true
				}
			}
			flush()
			close(done)
		case <-t.stop:
			for {
				select {
				case spans := <-t.queue:
					batch = append(batch, spans...)
				default:
					flush()
					return
				}
			}
		}
	}
}

// ForceFlush exports the traces
// queued and the batch being gathered, and returns once the exporter
// has; not the traces whose root is still open.
func (t *tail) ForceFlush(ctx context.Context) error {
	if t.exp == nil {
		return nil
	}
	done := make(chan struct{})
	select {
	case t.flushes <- done:
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued and stops the exporter's client.
func (t *tail) Shutdown(ctx context.Context) error {
	t.stopOnce.Do(func() {
		if t.exp != nil {
			close(t.stop)
		}
	})
	select {
	case <-t.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if t.exp != nil {
		return t.exp.Stop(ctx)
	}
	return nil
}
