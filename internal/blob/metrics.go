package blob

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// metrics are shared by every store opened with the same Registerer; the
// backend label tells them apart.
type metrics struct {
	ops      *prometheus.CounterVec   // backend, op, result
	duration *prometheus.HistogramVec // backend, op
	bytesIn  *prometheus.CounterVec   // backend
	bytesOut *prometheus.CounterVec   // backend
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_blob_operations_total",
			Help: "Object store operations by backend, operation and result (ok, not_found, invalid, canceled, error).",
		}, []string{"backend", "op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tianshu_blob_operation_duration_seconds",
			Help: "Object store operation latency; for get, until the object is open, not until it is read.",
			// From a local stat (~50µs) to a large S3 upload (tens of seconds).
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"backend", "op"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_blob_bytes_written_total",
			Help: "Content bytes written by successful puts.",
		}, []string{"backend"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_blob_bytes_read_total",
			Help: "Content bytes read through get (not through presigned URLs).",
		}, []string{"backend"}),
	}
	var err error
	if m.ops, err = telemetry.Register(r, m.ops); err != nil {
		return nil, err
	}
	if m.duration, err = telemetry.Register(r, m.duration); err != nil {
		return nil, err
	}
	if m.bytesIn, err = telemetry.Register(r, m.bytesIn); err != nil {
		return nil, err
	}
	if m.bytesOut, err = telemetry.Register(r, m.bytesOut); err != nil {
		return nil, err
	}
	return m, nil
}

func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrInvalidKey):
		return "invalid"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	default:
		return "error"
	}
}

// instrumented wraps a backend with metrics and the ErrClosed contract, so
// backends need implement neither.
type instrumented struct {
	s       Store
	backend string
	m       *metrics
	closed  atomic.Bool
}

func newInstrumented(s Store, backend string, m *metrics) *instrumented {
	return &instrumented{s: s, backend: backend, m: m}
}

// Unwrap returns the backend store; Handler uses it.
func (s *instrumented) Unwrap() Store { return s.s }

func (s *instrumented) observe(op string, start time.Time, err error) {
	s.m.ops.WithLabelValues(s.backend, op, result(err)).Inc()
	s.m.duration.WithLabelValues(s.backend, op).Observe(time.Since(start).Seconds())
}

func (s *instrumented) Put(ctx context.Context, key string, r io.Reader, o PutOptions) (info Info, err error) {
	if s.closed.Load() {
		return Info{}, ErrClosed
	}
	defer func(start time.Time) { s.observe("put", start, err) }(time.Now())
	info, err = s.s.Put(ctx, key, r, o)
	if err == nil {
		s.m.bytesIn.WithLabelValues(s.backend).Add(float64(info.Size))
	}
	return info, err
}

func (s *instrumented) Get(ctx context.Context, key string) (rc io.ReadCloser, info Info, err error) {
	if s.closed.Load() {
		return nil, Info{}, ErrClosed
	}
	defer func(start time.Time) { s.observe("get", start, err) }(time.Now())
	rc, info, err = s.s.Get(ctx, key)
	if err != nil {
		return nil, Info{}, err
	}
	c := counter{s.m.bytesOut.WithLabelValues(s.backend)}
	if rs, ok := rc.(readSeekCloser); ok {
		return &countingReadSeeker{rs, c}, info, nil
	}
	return &countingReader{rc, c}, info, nil
}

func (s *instrumented) Stat(ctx context.Context, key string) (info Info, err error) {
	if s.closed.Load() {
		return Info{}, ErrClosed
	}
	defer func(start time.Time) { s.observe("stat", start, err) }(time.Now())
	return s.s.Stat(ctx, key)
}

func (s *instrumented) Delete(ctx context.Context, key string) (err error) {
	if s.closed.Load() {
		return ErrClosed
	}
	defer func(start time.Time) { s.observe("delete", start, err) }(time.Now())
	return s.s.Delete(ctx, key)
}

func (s *instrumented) List(ctx context.Context, prefix string, fn func(Info) error) (err error) {
	if s.closed.Load() {
		return ErrClosed
	}
	defer func(start time.Time) { s.observe("list", start, err) }(time.Now())
	return s.s.List(ctx, prefix, fn)
}

func (s *instrumented) PresignGet(ctx context.Context, key string, ttl time.Duration) (u string, err error) {
	if s.closed.Load() {
		return "", ErrClosed
	}
	defer func(start time.Time) { s.observe("presign", start, err) }(time.Now())
	return s.s.PresignGet(ctx, key, ttl)
}

func (s *instrumented) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.s.Close()
}

type readSeekCloser interface {
	io.ReadSeeker
	io.Closer
}

type counter struct{ c prometheus.Counter }

func (c counter) add(n int) {
	if n > 0 {
		c.c.Add(float64(n))
	}
}

// countingReader counts bytes as the caller reads them, since Get returns
// before any content has moved.
type countingReader struct {
	io.ReadCloser
	c counter
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.c.add(n)
	return n, err
}

// countingReadSeeker keeps the backend's io.Seeker visible, so callers can
// still hand the reader to http.ServeContent.
type countingReadSeeker struct {
	readSeekCloser
	c counter
}

func (r *countingReadSeeker) Read(p []byte) (int, error) {
	n, err := r.readSeekCloser.Read(p)
	r.c.add(n)
	return n, err
}
