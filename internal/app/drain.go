package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// A graceful stop of the HTTP server, in the order a client sees it:
//
//  1. The listening socket stops taking new connections (on Linux a socket
//     filter drops new SYNs, so a client's connect is retried by its
//     kernel and refused once the socket is closed), and every response
//     from now on carries "Connection: close" (HTTP/2: GOAWAY).
//  2. The connections the kernel had already completed, waiting in the
//     accept queue, are accepted and answered; the listener closes once
//     the queue stays empty for drainQuiet.
//  3. Requests in flight finish; an idle keep-alive connection is closed
//     once it has been idle for idleLinger, so that a request its client
//     sent just before gets its answer instead of a reset.
//
// All of it within the grace period (--shutdown-grace); what is still
// open then is closed.
const (
	drainQuiet = 100 * time.Millisecond
	idleLinger = time.Second
)

// errDrained ends Serve once the accept queue is empty during a stop.
var errDrained = errors.New("listener drained")

// drainListener is the TCP listener that can empty its accept queue
// before it closes, instead of resetting the connections in it.
type drainListener struct {
	*net.TCPListener
	mu       sync.Mutex
	draining bool
	drained  chan struct{}
}

func newDrainListener(ln *net.TCPListener) *drainListener {
	return &drainListener{TCPListener: ln, drained: make(chan struct{})}
}

// Accept accepts as usual; while draining, it gives up (errDrained) when no
// connection is waiting for drainQuiet.
func (l *drainListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.draining {
		_ = l.SetDeadline(time.Now().Add(drainQuiet))
	}
	l.mu.Unlock()
	c, err := l.TCPListener.Accept()
	if err == nil {
		return c, nil
	}
	// The drain may have begun while this Accept waited: its deadline
	// (set by drain) is what ended the wait.
	l.mu.Lock()
	defer l.mu.Unlock()
	var ne net.Error
	if l.draining && (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed)) {
		select {
		case <-l.drained:
		default:
			close(l.drained)
		}
		return nil, errDrained
	}
	return nil, err
}

// drain stops new connections and returns a channel closed once the
// accept queue is empty.
func (l *drainListener) drain(log *slog.Logger) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.draining {
		l.draining = true
		if err := refuseNewConnections(l.TCPListener); err != nil {
			log.Debug("no socket filter; the drain also answers connections that arrive during it", "err", err)
		}
		// Wakes an Accept that is waiting without a deadline.
		_ = l.SetDeadline(time.Now().Add(drainQuiet))
	}
	return l.drained
}

// connTracker knows, of every open connection, since when it is idle
// (zero while a request is on it).
type connTracker struct {
	mu        sync.Mutex
	idleSince map[net.Conn]time.Time
}

func newConnTracker() *connTracker { return &connTracker{idleSince: map[net.Conn]time.Time{}} }

// track is the server's ConnState hook.
func (t *connTracker) track(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s {
	case http.StateNew, http.StateIdle:
		// A new connection's request is in the kernel's buffer when it
		// is accepted: one that stays silent is as good as idle.
		t.idleSince[c] = time.Now()
	case http.StateActive:
		t.idleSince[c] = time.Time{}
	case http.StateHijacked, http.StateClosed:
		delete(t.idleSince, c)
	}
}

// settled reports whether every open connection has been idle for at
// least linger, and how many are open.
func (t *connTracker) settled(linger time.Duration) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for _, since := range t.idleSince {
		if since.IsZero() || now.Sub(since) < linger {
			return false, len(t.idleSince)
		}
	}
	return true, len(t.idleSince)
}

// closeOnStop marks every response written after a stop began with
// "Connection: close", so that a keep-alive client opens no further
// request on it.
func (p *Platform) closeOnStop(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.stopping.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// endOnStop ends a streaming request (SSE, gRPC streams on the main port)
// when a stop begins: a stream has no last answer to wait for, and its
// client reconnects to another replica or after the restart.
func (p *Platform) endOnStop(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(p.streams, cancel)()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// stopHTTP stops the HTTP server gracefully within ctx (the grace period).
func (p *Platform) stopHTTP(ctx context.Context) error {
	p.stopping.Store(true)
	p.endStreams()
	t0 := time.Now()
	if p.drainLn != nil {
		select {
		case <-p.drainLn.drain(p.log):
		case <-ctx.Done():
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		if ok, _ := p.conns.settled(idleLinger); ok {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	// Shutdown closes the listener (if the drain did not), the idle
	// connections and waits for the active ones.
	if err := p.server.Shutdown(ctx); err != nil {
		_, open := p.conns.settled(0)
		p.log.Warn("shutdown grace ended; closing connections still open", "open_connections", open, "grace", p.cfg.ShutdownGrace.String())
		_ = p.server.Close()
		return err
	}
	p.log.Info("http server stopped", "duration_ms", time.Since(t0).Milliseconds())
	return nil
}
