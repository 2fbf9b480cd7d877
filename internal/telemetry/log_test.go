package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

func TestResolveFormat(t *testing.T) {
	var b bytes.Buffer
	for _, c := range []struct {
		format string
		w      io.Writer
		want   string
	}{{"auto", &b, "json"}, {"text", &b, "text"}, {"json", &b, "json"}} {
		if got := ResolveFormat(c.format, c.w); got != c.want {
			t.Errorf("ResolveFormat(%q) = %q, want %q", c.format, got, c.want)
		}
	}
	// A regular file is no terminal.
	f, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := ResolveFormat("auto", f); got != "json" {
		t.Errorf("auto on a file: %q, want json", got)
	}
}

// Lines logged with a request's or a span's context carry request_id and
// trace_id; lines that name them already keep their own, and lines
// without either are left alone.
func TestContextFields(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(WithContextFields(slog.NewJSONHandler(&b, nil))).With("component", "api")
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(WithRequestID(context.Background(), "req-1"), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))

	log.InfoContext(ctx, "served", "n", 1)
	log.InfoContext(ctx, "served", "request_id", "req-own")
	log.InfoContext(context.Background(), "idle")
	log.Info("plain")
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, m)
	}
	if got[0]["request_id"] != "req-1" || got[0]["trace_id"] != tid.String() || got[0]["component"] != "api" {
		t.Errorf("line in a request: %v", got[0])
	}
	if got[1]["request_id"] != "req-own" || got[1]["trace_id"] != tid.String() {
		t.Errorf("line naming its request: %v", got[1])
	}
	for _, m := range got[2:] {
		if m["request_id"] != nil || m["trace_id"] != nil {
			t.Errorf("line outside a request: %v", m)
		}
	}
}

// Outside a request the wrapper adds no allocation.
func TestContextFieldsCostNothingOutsideARequest(t *testing.T) {
	plain := slog.New(slog.NewJSONHandler(io.Discard, nil))
	wrapped := slog.New(WithContextFields(slog.NewJSONHandler(io.Discard, nil)))
	ctx := context.Background()
	a := testing.AllocsPerRun(100, func() { plain.InfoContext(ctx, "m", "k", 1) })
	w := testing.AllocsPerRun(100, func() { wrapped.InfoContext(ctx, "m", "k", 1) })
	if w > a {
		t.Errorf("wrapped handler: %v allocations a line, plain %v", w, a)
	}
}

// The ring keeps the newest lines of each component within its line and
// byte bounds, and answers queries newest first.
func TestLogRing(t *testing.T) {
	r := NewLogRing(3, 1<<20)
	log := slog.New(Tee(slog.NewJSONHandler(io.Discard, nil), r.Handler(slog.LevelDebug)))
	api := log.With("component", "api")
	for i := range 5 {
		api.Info("served", "i", i, "path", "/a b")
	}
	log.Warn("disk low", slog.Group("disk", "free", 10))
	log.Debug("noise")

	if got := r.Components(); fmt.Sprint(got) != "[api main]" {
		t.Fatalf("components %v", got)
	}
	lines := r.Lines(LogQuery{Component: "api"})
	if len(lines) != 3 || lines[0].Fields != `component=api i=4 path="/a b"` || lines[2].Fields != `component=api i=2 path="/a b"` {
		t.Fatalf("api lines %+v: want the newest 3, newest first", lines)
	}
	if w := r.Lines(LogQuery{MinLevel: slog.LevelWarn}); len(w) != 1 || w[0].Fields != "disk.free=10" || w[0].Component != MainComponent {
		t.Fatalf("warn lines %+v", w)
	}
	if c := r.Lines(LogQuery{Contains: "i=3"}); len(c) != 1 {
		t.Fatalf("contains i=3: %+v", c)
	}
	if l := r.Lines(LogQuery{Limit: 2, MinLevel: slog.LevelDebug}); len(l) != 2 || l[0].Message != "noise" {
		t.Fatalf("limit 2: %+v", l)
	}
	if l := r.Lines(LogQuery{Since: time.Now().Add(time.Hour)}); len(l) != 0 {
		t.Fatalf("since an hour ahead: %+v", l)
	}

	// Bytes: a 64 KiB cap keeps far fewer than 1,000 lines of 4 KiB.
	small := NewLogRing(1000, 64<<10)
	sl := slog.New(small.Handler(slog.LevelInfo))
	big := strings.Repeat("x", 4<<10)
	for range 1000 {
		sl.Info("big", "v", big)
	}
	var total int64
	kept := small.Lines(LogQuery{})
	for _, l := range kept {
		total += l.size()
	}
	if total > 64<<10 || len(kept) == 0 {
		t.Fatalf("kept %d lines, %d bytes: want some, at most 64 KiB", len(kept), total)
	}

	// Components past the limit share "other".
	many := NewLogRing(10, 1<<20)
	ml := slog.New(many.Handler(slog.LevelInfo))
	for i := range MaxLogComponents + 5 {
		ml.Info("x", "component", fmt.Sprint("c", i))
	}
	if n := len(many.Components()); n != MaxLogComponents+1 {
		t.Fatalf("%d components, want %d", n, MaxLogComponents+1)
	}

	// Off: nothing kept, and the handler is not even asked.
	off := NewLogRing(0, 1<<20)
	if off.Handler(slog.LevelDebug).Enabled(context.Background(), slog.LevelError) {
		t.Fatal("ring of 0 lines is enabled")
	}
}
