// Package telemetry sets up logging and metrics registration (and, later,
// tracing) for a process. It is a leaf: it imports nothing of Tianshu's, so
// every package may use it.
package telemetry

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/term"
)

// NewLogger returns a slog logger writing to w in format ("json", "text",
// or "auto": text when w is a terminal, JSON otherwise) at level ("debug",
// "info", "warn", "error").
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: ParseLevel(level)}
	if ResolveFormat(format, w) == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// ParseLevel returns the slog level named by level; info for any other
// name (the config validates names first).
func ParseLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// ResolveFormat turns "auto" into "text" when w is a terminal (a person
// reads it) and "json" otherwise (a collector parses it); other formats
// are returned as they are.
func ResolveFormat(format string, w io.Writer) string {
	if format != "auto" {
		return format
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "text"
	}
	return "json"
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying an action request's id, which every
// log line written with ctx (by a handler from WithContextFields) carries
// as request_id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id in ctx, "" when none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithContextFields wraps h so that every record logged with a context
// gets that context's request_id (WithRequestID) and trace_id (its span,
// when tracing is on). A context with neither costs two lookups and no
// allocation.
func WithContextFields(h slog.Handler) slog.Handler { return contextHandler{h} }

type contextHandler struct{ next slog.Handler }

func (h contextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.next.Handle(ctx, r)
	}
	rid := RequestID(ctx)
	sc := trace.SpanContextFromContext(ctx)
	if rid == "" && !sc.IsValid() {
		return h.next.Handle(ctx, r)
	}
	// A line that names its request or trace itself keeps its own.
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "request_id":
			rid = ""
		case "trace_id":
			sc = trace.SpanContext{}
		}
		return true
	})
	if rid == "" && !sc.IsValid() {
		return h.next.Handle(ctx, r)
	}
	// Clone: the caller's record may share its attribute storage.
	r = r.Clone()
	if rid != "" {
		r.AddAttrs(slog.String("request_id", rid))
	}
	if sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
	}
	return h.next.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.next.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.next.WithGroup(name)}
}

// Tee returns a handler that passes every record to each of hs that is
// enabled for its level. Handlers must not change a record they did not
// clone (slog's contract), so all of them get the same one.
func Tee(hs ...slog.Handler) slog.Handler { return teeHandler(hs) }

type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range t {
		if !h.Enabled(ctx, r.Level) {
			continue
		}
		if err := h.Handle(ctx, r); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}
