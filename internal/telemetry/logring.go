package telemetry

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the log ring: how many components it tells apart (the rest
// share OtherComponent) and how long one line's fields may be.
const (
	MaxLogComponents = 64
	MaxLogLineBytes  = 8 << 10
	// MainComponent names lines logged without a component attribute.
	MainComponent = "main"
	// OtherComponent collects the lines of components past the limit.
	OtherComponent = "other"
)

// LogLine is one line kept by a LogRing.
type LogLine struct {
	// Seq orders lines across components (1, 2, …).
	Seq       uint64
	Time      time.Time
	Level     slog.Level
	Component string
	Message   string
	// Fields are the line's attributes as key=value pairs, quoted where
	// needed, as the text handler writes them.
	Fields string
}

func (l LogLine) size() int64 { return int64(len(l.Message)+len(l.Fields)+len(l.Component)) + 64 }

// LogRing keeps the last lines each component logged, bounded per
// component by a count and a byte size, for DescribeLogs. The zero
// component limit (NewLogRing(0, …)) keeps nothing.
type LogRing struct {
	maxLines int
	maxBytes int64

	mu    sync.Mutex
	seq   uint64
	comps map[string]*logQueue
}

type logQueue struct {
	lines []LogLine
	head  int // lines[head:] are kept
	bytes int64
}

// NewLogRing returns a ring keeping up to lines lines and bytes bytes per
// component.
func NewLogRing(lines int, bytes int64) *LogRing {
	return &LogRing{maxLines: lines, maxBytes: bytes, comps: map[string]*logQueue{}}
}

func (r *LogRing) add(l LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.comps[l.Component]
	if q == nil {
		if len(r.comps) >= MaxLogComponents {
			l.Component = OtherComponent
			q = r.comps[OtherComponent]
		}
		if q == nil {
			q = &logQueue{}
			r.comps[l.Component] = q
		}
	}
	r.seq++
	l.Seq = r.seq
	q.lines = append(q.lines, l)
	q.bytes += l.size()
	for len(q.lines)-q.head > r.maxLines || (q.bytes > r.maxBytes && len(q.lines)-q.head > 1) {
		q.bytes -= q.lines[q.head].size()
		q.lines[q.head] = LogLine{}
		q.head++
	}
	// Compact once half the slice is dropped lines: amortised O(1).
	if q.head > len(q.lines)/2 {
		q.lines = append(q.lines[:0], q.lines[q.head:]...)
		q.head = 0
	}
}

// LogQuery selects lines of a LogRing; zero fields select everything but
// debug lines (MinLevel's zero is info).
type LogQuery struct {
	Component string
	MinLevel  slog.Level
	Since     time.Time
	Contains  string
	// Limit is how many lines at most, the newest; 0: no limit.
	Limit int
}

// Lines returns the lines q selects, newest first.
func (r *LogRing) Lines(q LogQuery) []LogLine {
	r.mu.Lock()
	var out []LogLine
	for name, c := range r.comps {
		if q.Component != "" && name != q.Component {
			continue
		}
		for _, l := range c.lines[c.head:] {
			if l.Level < q.MinLevel || l.Time.Before(q.Since) {
				continue
			}
			if q.Contains != "" && !strings.Contains(l.Message, q.Contains) && !strings.Contains(l.Fields, q.Contains) {
				continue
			}
			out = append(out, l)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b LogLine) int { return cmp.Compare(b.Seq, a.Seq) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

// Components returns the names of the components that logged a kept
// line, sorted.
func (r *LogRing) Components() []string {
	r.mu.Lock()
	out := make([]string, 0, len(r.comps))
	for name, c := range r.comps {
		if len(c.lines) > c.head {
			out = append(out, name)
		}
	}
	r.mu.Unlock()
	slices.Sort(out)
	return out
}

// Handler returns a slog handler that keeps every record at level or
// above in r, under the value of its "component" attribute (MainComponent
// when it has none). Tee it beside the handler that writes the log.
func (r *LogRing) Handler(level slog.Leveler) slog.Handler {
	return &ringHandler{ring: r, level: level, component: MainComponent}
}

type ringHandler struct {
	ring      *LogRing
	level     slog.Leveler
	component string
	prefix    string // the open groups, "a.b."
	pre       string // the fields of WithAttrs, formatted
}

func (h *ringHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.ring.maxLines > 0 && l >= h.level.Level()
}

func (h *ringHandler) Handle(_ context.Context, r slog.Record) error {
	b := make([]byte, 0, len(h.pre)+32*r.NumAttrs())
	b = append(b, h.pre...)
	comp := h.component
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "component" && h.prefix == "" {
			comp = a.Value.String()
		}
		b = appendAttr(b, h.prefix, a)
		return len(b) < MaxLogLineBytes
	})
	if len(b) > MaxLogLineBytes {
		b = append(b[:MaxLogLineBytes], "…"...)
	}
	msg := r.Message
	if len(msg) > MaxLogLineBytes {
		msg = msg[:MaxLogLineBytes] + "…"
	}
	h.ring.add(LogLine{Time: r.Time, Level: r.Level, Component: comp, Message: msg, Fields: string(b)})
	return nil
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	b := []byte(h.pre)
	for _, a := range as {
		if a.Key == "component" && h.prefix == "" {
			n.component = a.Value.String()
		}
		b = appendAttr(b, h.prefix, a)
	}
	n.pre = string(b)
	return &n
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

// appendAttr appends a to b as " key=value" (groups flattened to dotted
// keys), quoting a value as the text handler does.
func appendAttr(b []byte, prefix string, a slog.Attr) []byte {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			b = appendAttr(b, p, g)
		}
		return b
	}
	if a.Equal(slog.Attr{}) {
		return b
	}
	if len(b) > 0 {
		b = append(b, ' ')
	}
	b = append(b, prefix...)
	b = append(b, a.Key...)
	b = append(b, '=')
	switch v.Kind() {
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	}
	s := v.String()
	if s == "" || strings.ContainsAny(s, " =\"\n\t") {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}
