package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// Errors that say what went wrong with the database rather than with the
// query. The store wraps a driver's error with one of them (errors.Is
// finds both the sentinel and the driver's error), so that callers and the
// API gateway can answer "try again later" or "the disk is full" instead
// of an internal error.
var (
	// ErrUnavailable means the database could not be reached or dropped
	// the connection, and a retry on a fresh connection (where the store
	// makes one) failed too. Reads and writes that were not committed may
	// be retried later; a failed commit may or may not have been applied.
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrStorageFull means the database's disk is full: writes fail until
	// an operator frees space; reads still work.
	ErrStorageFull = errors.New("store: storage full")
)

// Fault is the kind of trouble an error shows about the database itself.
type Fault int

// The faults a Plugin tells apart.
const (
	// FaultNone: the error is about the query (a constraint, a missing
	// row) or unknown.
	FaultNone Fault = iota
	// FaultConnection: the connection was lost or could not be made; the
	// server may be restarting or an operator terminated it.
	FaultConnection
	// FaultStorageFull: the server (or, for SQLite, the file system) has no
	// space left.
	FaultStorageFull
	// FaultLocalIO: an I/O error on the database's local files (SQLite's
	// SQLITE_IOERR). The store calls it a full disk when the files'
	// file system has (almost) no space left, as SQLite reports a shared
	// memory file it cannot grow this way; otherwise it is no fault of
	// the kinds above.
	FaultLocalIO
)

// nearlyFull is the free space under which a local I/O error is taken for
// a full disk.
const nearlyFull = 1 << 20

// faultError is a driver error with the sentinel of its fault. Its Fault
// method is how the API gateway, which knows no backend, tells a fault of
// the store from a bug.
type faultError struct {
	sentinel error
	err      error
}

func (e *faultError) Error() string   { return e.sentinel.Error() + ": " + e.err.Error() }
func (e *faultError) Unwrap() []error { return []error{e.sentinel, e.err} }

// Fault names the component and the kind of fault ("unavailable",
// "storage_full"), for the API gateway.
func (e *faultError) Fault() (component, kind string) {
	if e.sentinel == ErrStorageFull {
		return "store", "storage_full"
	}
	return "store", "unavailable"
}

// commonFault classifies the errors every driver shares: a connection the
// pool had to give up (driver.ErrBadConn), a socket closed or reset under
// it, a server that refuses connections, and ENOSPC.
func commonFault(err error) Fault {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return FaultStorageFull
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, net.ErrClosed):
		return FaultConnection
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return FaultConnection
	}
	// Drivers that flatten the cause into text.
	s := err.Error()
	for _, m := range []string{"broken pipe", "connection reset", "connection refused", "unexpected EOF", "conn closed", "bad connection"} {
		if strings.Contains(s, m) {
			return FaultConnection
		}
	}
	return FaultNone
}

// faults counts and flags the store's faults.
type faults struct {
	total *prometheus.CounterVec
	retry prometheus.Counter
	full  prometheus.Gauge
	// isFull mirrors the gauge so that the write path clears it with one
	// atomic load.
	isFull atomic.Bool
}

func newFaults(r prometheus.Registerer) (*faults, error) {
	f := &faults{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_store_faults_total",
			Help: "Errors of the metadata store that were the database's, not the query's, by kind (unavailable: connection lost or refused; storage_full: no space left).",
		}, []string{"kind"}),
		retry: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tianshu_store_retries_total",
			Help: "Reads and transactions run a second time on a fresh connection after the first lost its connection.",
		}),
		full: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tianshu_store_storage_full",
			Help: "1 while the metadata store's last write failed for lack of space (until a write succeeds), else 0.",
		}),
	}
	var err error
	if f.total, err = telemetry.Register(r, f.total); err != nil {
		return nil, err
	}
	if f.retry, err = telemetry.Register(r, f.retry); err != nil {
		return nil, err
	}
	if f.full, err = telemetry.Register(r, f.full); err != nil {
		return nil, err
	}
	f.total.WithLabelValues("unavailable")
	f.total.WithLabelValues("storage_full")
	return f, nil
}

// fault returns the fault err shows, asking the dialect first.
func (db *DB) fault(err error) Fault {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return FaultNone
	}
	switch f := db.dialect.Fault(err); f {
	case FaultNone:
		return commonFault(err)
	case FaultLocalIO:
		if dir := db.LocalDir(); dir != "" {
			if free, ferr := FreeBytes(dir); ferr == nil && free < nearlyFull {
				return FaultStorageFull
			}
		}
		return FaultNone
	default:
		return f
	}
}

// classify wraps err with the sentinel of its fault, counts it and logs
// it; errors that are no fault, or already classified, come back as they
// are.
func (db *DB) classify(err error) error {
	var fe *faultError
	if err == nil || errors.As(err, &fe) {
		return err
	}
	switch db.fault(err) {
	case FaultConnection:
		db.faults.total.WithLabelValues("unavailable").Inc()
		db.log.Warn("store unavailable", "dialect", db.dialect.Name(), "err", err)
		return &faultError{sentinel: ErrUnavailable, err: err}
	case FaultStorageFull:
		db.faults.total.WithLabelValues("storage_full").Inc()
		if !db.faults.isFull.Swap(true) {
			db.faults.full.Set(1)
			db.log.Error("store storage full: writes fail until space is freed", "dialect", db.dialect.Name(), "dir", db.LocalDir(), "err", err)
		}
		return &faultError{sentinel: ErrStorageFull, err: err}
	}
	return err
}

// wrote notes a successful write: the storage is no longer full. On a
// local database the file system must have room again too, since SQLite
// rewrites pages of its write-ahead log in place and so takes a small
// write (readiness's probe) on a disk that refuses the next larger one.
func (db *DB) wrote() {
	if !db.faults.isFull.Load() {
		return
	}
	if dir := db.LocalDir(); dir != "" {
		if free, err := FreeBytes(dir); err == nil && free < nearlyFull {
			return
		}
	}
	if db.faults.isFull.Swap(false) {
		db.faults.full.Set(0)
		db.log.Info("store storage writable again", "dialect", db.dialect.Name())
	}
}

// lostConnection reports whether err is a lost connection worth one more
// try, and prepares that try: the pool's idle connections are closed,
// since a server that dropped one (restarted, failed over, an operator
// terminating sessions) has usually dropped them all, and the retry must
// dial afresh rather than take a sibling that is just as dead.
func (db *DB) lostConnection(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || db.fault(err) != FaultConnection {
		return false
	}
	db.DB.SetMaxIdleConns(0)
	db.DB.SetMaxIdleConns(db.maxIdle)
	db.faults.retry.Inc()
	db.log.Info("store connection lost; retrying on a fresh one", "dialect", db.dialect.Name(), "err", err)
	return true
}
