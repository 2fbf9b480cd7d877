package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// SSEPath is where the platform mounts SSEHandler.
const SSEPath = "/push/sse"

// SSEHandler serves server-sent events at GET /push/sse?subscription=sub-…
// for subscriptions of channel sse. Credentials come as query parameters
// secret_id, timestamp or expires, and signature (an EventSource cannot set
// headers), or as the x-tianshu-* headers. Each event's id: is its bus
// sequence; a client that reconnects with Last-Event-ID (header, or query
// last_event_id) gets every event after it again. An event counts as
// acknowledged once written to the connection. A comment line is written
// every Heartbeat to keep proxies from closing an idle stream.
func (s *Service) SSEHandler() http.Handler {
	return http.HandlerFunc(s.serveSSE)
}

func (s *Service) serveSSE(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	pick := func(param, header string) string {
		if v := q.Get(param); v != "" {
			return v
		}
		return r.Header.Get(header)
	}
	creds := Credentials{SecretID: pick("secret_id", MetaSecretID), Timestamp: pick("timestamp", MetaTimestamp),
		Expires: pick("expires", MetaExpires), Signature: pick("signature", MetaSignature)}
	id := q.Get("subscription")
	sub, err := s.authenticate(r.Context(), id, ChannelSSE, creds)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrAuth) {
			code = http.StatusUnauthorized
		}
		http.Error(w, err.Error(), code)
		return
	}
	var from uint64
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("last_event_id")
	}
	if last != "" {
		n, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			http.Error(w, "Last-Event-ID must be an event's id (a sequence number)", http.StatusBadRequest)
			return
		}
		from = n + 1
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ss, err := s.openSession(r.Context(), sub, ChannelSSE, from, 1, nil)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrBusyElsewhere) || errors.Is(err, ErrChanged) {
			code = http.StatusConflict
		}
		http.Error(w, err.Error(), code)
		return
	}
	defer ss.end(errors.New("client disconnected"))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "retry: 2000\n: subscription %s\n\n", sub.ID)
	fl.Flush()
	hb := time.NewTicker(s.cfg.Heartbeat)
	defer hb.Stop()
	var buf bytes.Buffer
	for {
		select {
		case p := <-ss.out:
			buf.Reset()
			buf.WriteString("id: ")
			buf.WriteString(strconv.FormatUint(p.m.Seq, 10))
			buf.WriteByte('\n')
			for line := range bytes.SplitSeq(p.m.Data, []byte{'\n'}) {
				buf.WriteString("data: ")
				buf.Write(bytes.TrimSuffix(line, []byte{'\r'}))
				buf.WriteByte('\n')
			}
			buf.WriteByte('\n')
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			fl.Flush()
			close(p.acked)
		case <-hb.C:
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil {
				return
			}
			fl.Flush()
		case <-ss.ctx.Done():
			_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", context.Cause(ss.ctx))
			fl.Flush()
			return
		case <-r.Context().Done():
			return
		}
	}
}
