package algorithm

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/redact"
)

const maxLogLine = 4 << 10

// LogLine is one line a process instance wrote to stdout or stderr.
type LogLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // stdout or stderr
	Text   string    `json:"text"`
}

// logRing keeps the last lines written by a process, bounded in count and
// line length, so that a chatty algorithm cannot grow memory.
type logRing struct {
	mu    sync.Mutex
	buf   []LogLine
	next  int
	full  bool
	now   func() time.Time
	limit int
	// secrets are masked in every line (a process may print its
	// environment).
	secrets []string
}

func newLogRing(n int, now func() time.Time) *logRing {
	return &logRing{buf: make([]LogLine, n), now: now, limit: n}
}

func (r *logRing) add(stream, text string) {
	if len(r.secrets) > 0 {
		text = redact.Text(text, r.secrets...)
	}
	r.mu.Lock()
	r.buf[r.next] = LogLine{Time: r.now(), Stream: stream, Text: text}
	r.next++
	if r.next == r.limit {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

func (r *logRing) lines() []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]LogLine(nil), r.buf[:r.next]...)
	}
	out := make([]LogLine, 0, r.limit)
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// tail returns the last n lines of one stream joined by " | ", for error
// reasons such as "exited: exit status 1: <stderr tail>".
func (r *logRing) tail(stream string, n int) string {
	all := r.lines()
	var pick []string
	for i := len(all) - 1; i >= 0 && len(pick) < n; i-- {
		if all[i].Stream == stream {
			pick = append(pick, all[i].Text)
		}
	}
	for i, j := 0, len(pick)-1; i < j; i, j = i+1, j-1 {
		pick[i], pick[j] = pick[j], pick[i]
	}
	return strings.Join(pick, " | ")
}

// writer returns an io.Writer that splits what a process writes into
// lines of the given stream.
func (r *logRing) writer(stream string) *lineWriter {
	return &lineWriter{r: r, stream: stream}
}

type lineWriter struct {
	r      *logRing
	stream string
	part   []byte
}

// Write splits p into lines; a line longer than maxLogLine is cut.
func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLine - len(w.part)
			if room > 0 {
				w.part = append(w.part, p[:min(room, len(p))]...)
			}
			break
		}
		room := maxLogLine - len(w.part)
		w.part = append(w.part, p[:min(max(room, 0), i)]...)
		w.r.add(w.stream, strings.TrimRight(string(w.part), "\r"))
		w.part = w.part[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush records a last line without a newline.
func (w *lineWriter) flush() {
	if len(w.part) > 0 {
		w.r.add(w.stream, string(w.part))
		w.part = w.part[:0]
	}
}
