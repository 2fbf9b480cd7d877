package device

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tianshu-ai/tianshu/internal/execpolicy"
)

// ffmpegJob describes one ffmpeg child: its input arguments and the frames
// it must write to stdout.
type ffmpegJob struct {
	// bin is the device's own ffmpeg (Options.ffmpeg), resolved under the
	// exec policy when the job runs; empty runs the Runtime's.
	bin string
	// check, when set, vets the input's address before every start.
	check func(ctx context.Context) error
	input []string // everything up to and including "-i", url
	// inputScript, when set, is written to the child's file descriptor 3
	// (the input is then "pipe:3"): what must stay off the command line.
	inputScript string
	// stdin, when set, is copied to the child's standard input (the input
	// is then "pipe:0"); its read error, other than EOF, ends the session
	// with stdinReason.
	stdin       io.Reader
	stdinReason string
	// fps > 0 adds an fps filter; width > 0 a scale filter keeping the aspect.
	fps     float64
	width   int
	format  PixelFormat
	quality int // mjpeg -q:v, 2 (best) to 31
	// pace, when set, spaces delivered frames (replay); ffmpeg is held back
	// by the pipe meanwhile.
	pace *pacer
	// skip is how many frames to read and discard before the first one
	// delivered (a replay resuming at a frame number).
	skip uint64
	// firstFrame bounds the wait for the first frame, stall the gap between
	// frames; past either, ffmpeg is killed and the session fails.
	firstFrame time.Duration
	stall      time.Duration
}

func (j ffmpegJob) args() []string {
	a := []string{"-hide_banner", "-nostdin", "-loglevel", "warning"}
	a = append(a, j.input...)
	a = append(a, "-an", "-sn", "-dn")
	var filters []string
	if j.fps > 0 {
		filters = append(filters, "fps="+strconv.FormatFloat(j.fps, 'f', -1, 64))
	}
	if j.width > 0 {
		filters = append(filters, "scale="+strconv.Itoa(j.width)+":-2:flags=bilinear")
	}
	if len(filters) > 0 {
		a = append(a, "-vf", strings.Join(filters, ","))
	}
	a = append(a, "-fps_mode", "passthrough", "-f", "image2pipe")
	switch j.format {
	case FormatRGB24:
		a = append(a, "-c:v", "ppm", "-pix_fmt", "rgb24")
	case FormatGray:
		a = append(a, "-c:v", "pgm", "-pix_fmt", "gray")
	default:
		q := j.quality
		if q == 0 {
			q = 5
		}
		a = append(a, "-c:v", "mjpeg", "-q:v", strconv.Itoa(q))
	}
	return append(a, "pipe:1")
}

// runFFmpeg runs one ffmpeg child until it exits, stalls or ctx ends, and
// hands each frame it writes to em. The child runs in its own process group,
// killed whole when the session ends, so nothing it spawned outlives it.
func runFFmpeg(parent context.Context, em *emitter, j ffmpegJob) error {
	if j.check != nil {
		if err := j.check(parent); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	bin, err := resolveFFmpeg(em.s.env, j.bin)
	if err != nil {
		return err
	}
	child, err := newChild(ctx, em.s.env.Exec, bin, j.args())
	if err != nil {
		return statusErr(ReasonProcess, err)
	}
	defer child.Cleanup()
	cmd := child.Cmd
	tail := newTailBuffer(16, 4096)
	cmd.Stderr = tail
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return statusErr(ReasonProcess, err)
	}
	var stdin io.WriteCloser
	if j.stdin != nil {
		if stdin, err = cmd.StdinPipe(); err != nil {
			return statusErr(ReasonProcess, err)
		}
	}
	var script *os.File
	if j.inputScript != "" {
		r, w, err := os.Pipe()
		if err != nil {
			return statusErr(ReasonProcess, err)
		}
		defer r.Close()
		cmd.ExtraFiles, script = []*os.File{r}, w
	}
	if err := child.Start(); err != nil {
		if script != nil {
			_ = script.Close()
		}
		return statusErrf(ReasonProcess, "start %s: %w", bin, err)
	}
	if script != nil {
		// The script is far below a pipe's buffer: the write does not wait
		// for ffmpeg, and closing marks its end.
		go func() {
			_, _ = io.WriteString(script, j.inputScript)
			_ = script.Close()
		}()
	}
	var inErr atomic.Pointer[error]
	if stdin != nil {
		// The input's failure (a network stream that stops) closes
		// ffmpeg's input; ffmpeg then ends and the error says why.
		go func() {
			_, err := io.Copy(stdin, j.stdin)
			if err != nil && ctx.Err() == nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, os.ErrClosed) {
				inErr.Store(&err)
			}
			_ = stdin.Close()
		}()
	}
	pid := cmd.Process.Pid
	em.process(pid, true)
	defer em.process(pid, false)

	// The watchdog kills ffmpeg when no frame arrives in time: a stream that
	// stops without closing (UDP, a frozen camera) must not hang the session.
	// Time spent waiting on our side (pacing, a sink applying back-pressure)
	// is not ffmpeg's stall: the watchdog waits again meanwhile.
	progress := make(chan struct{}, 1)
	var holding atomic.Bool
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		limit := j.firstFrame
		for {
			select {
			case <-ctx.Done():
				return
			case <-progress:
				limit = j.stall
			case <-em.s.env.Clock.After(limit):
				if holding.Load() {
					continue
				}
				cancel(errStalled{limit})
				return
			}
		}
	}()

	frames := 0
	skipped := uint64(0)
	r := bufio.NewReaderSize(stdout, 1<<20)
	var readErr error
	for {
		f, err := readFrame(r, j.format)
		if err != nil {
			readErr = err
			break
		}
		frames++
		select {
		case progress <- struct{}{}:
		default:
		}
		if skipped < j.skip {
			skipped++
			continue
		}
		holding.Store(true)
		if j.pace != nil {
			if err := j.pace.wait(ctx); err != nil {
				holding.Store(false)
				break
			}
		}
		em.frame(f)
		holding.Store(false)
		select { // the wait was ours: give ffmpeg a whole stall period again
		case progress <- struct{}{}:
		default:
		}
	}
	// Drain so ffmpeg can exit on its own; Wait kills it when ctx ends.
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	badOutput := ctx.Err() == nil && readErr != nil && !errors.Is(readErr, io.EOF) && !errors.Is(readErr, io.ErrUnexpectedEOF)
	if badOutput {
		cancel(readErr)
	}
	waitErr := cmd.Wait()
	stalled := context.Cause(ctx)
	cancel(nil)
	<-watchDone

	if parent.Err() != nil {
		return parent.Err()
	}
	msg := strings.TrimSpace(tail.String())
	if e := inErr.Load(); e != nil {
		return statusErrf(j.stdinReason, "%v (ffmpeg: %d frames: %s)", *e, frames, orNone(msg))
	}
	var st errStalled
	switch {
	case errors.As(stalled, &st):
		return statusErrf(ReasonStreamEnded, "no frame from ffmpeg for %v: %s", st.d, orNone(msg))
	case badOutput:
		return statusErrf(ReasonBadImage, "ffmpeg output: %v", readErr)
	}
	reason := ffmpegReason(msg, frames > 0)
	if waitErr == nil {
		return statusErrf(reason, "ffmpeg ended after %d frames: %s", frames, orNone(msg))
	}
	return statusErrf(reason, "ffmpeg %v after %d frames: %s", waitErr, frames, orNone(msg))
}

// resolveFFmpeg returns the ffmpeg to run: the Runtime's (the operator's,
// found on PATH at start) when the device names none, else the device's
// own, only from a directory the exec policy allows.
func resolveFFmpeg(env *Env, bin string) (string, error) {
	if bin == "" {
		return env.FFmpeg, nil
	}
	real, err := env.Exec.Resolve(bin)
	if err != nil {
		return "", fieldErr("Options.ffmpeg", "%v", err)
	}
	return real, nil
}

// newChild builds an ffmpeg child under the exec policy (a clean
// environment, a directory of its own, limits, the children's user), in
// its own process group, killed whole when ctx ends.
func newChild(ctx context.Context, pol *execpolicy.Policy, bin string, args []string) (*execpolicy.Child, error) {
	child, err := pol.Command(ctx, execpolicy.Spec{Path: bin, Args: args})
	if err != nil {
		return nil, err
	}
	cmd := child.Cmd
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 3 * time.Second
	return child, nil
}

type errStalled struct{ d time.Duration }

func (e errStalled) Error() string { return fmt.Sprintf("stalled for %v", e.d) }

func orNone(s string) string {
	if s == "" {
		return "(no output)"
	}
	return s
}

// ffmpegReason reads ffmpeg's complaint for the status reason.
func ffmpegReason(stderr string, hadFrames bool) string {
	l := strings.ToLower(stderr)
	switch {
	case strings.Contains(l, "401 unauthorized"), strings.Contains(l, "403 forbidden"):
		return ReasonAuthFailed
	case strings.Contains(l, "connection refused"), strings.Contains(l, "no route to host"),
		strings.Contains(l, "network is unreachable"), strings.Contains(l, "name or service not known"),
		strings.Contains(l, "temporary failure in name resolution"):
		return ReasonUnreachable
	case strings.Contains(l, "timed out"), strings.Contains(l, "timeout"):
		return ReasonTimeout
	case strings.Contains(l, "404 not found"), strings.Contains(l, "invalid data found"):
		return ReasonBadResponse
	case strings.Contains(l, "no such file or directory"):
		return ReasonConfig
	case hadFrames:
		return ReasonStreamEnded
	}
	return ReasonProcess
}

// readFrame reads one picture from ffmpeg's image2pipe output.
func readFrame(r *bufio.Reader, format PixelFormat) (Frame, error) {
	switch format {
	case FormatRGB24, FormatGray:
		w, h, pix, err := readPNM(r)
		if err != nil {
			return Frame{}, err
		}
		return Frame{Pixels: pix, Format: format, Width: w, Height: h}, nil
	}
	img, err := readJPEG(r, 32<<20)
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Image: img}
	if c, err := jpeg.DecodeConfig(bytes.NewReader(img)); err == nil {
		f.Width, f.Height = c.Width, c.Height
	}
	return f, nil
}

// readJPEG reads one JPEG from a concatenation of JPEGs by walking its
// segments (APP segments may hold a thumbnail with its own EOI, so searching
// for FFD9 alone would split it wrong) and scanning entropy-coded data for the
// next marker.
func readJPEG(r *bufio.Reader, maxSize int) ([]byte, error) {
	var soi [2]byte
	if _, err := io.ReadFull(r, soi[:]); err != nil {
		return nil, err
	}
	if soi[0] != 0xFF || soi[1] != 0xD8 {
		return nil, fmt.Errorf("not a JPEG (starts %x)", soi)
	}
	buf := bytes.NewBuffer(make([]byte, 0, 64<<10))
	buf.Write(soi[:])
	pendingFF := false // the entropy scan consumed the next marker's 0xFF
	for {
		if buf.Len() > maxSize {
			return nil, fmt.Errorf("JPEG larger than %d bytes", maxSize)
		}
		// marker: 0xFF (fill bytes allowed) then a code
		b, err := byte(0xFF), error(nil)
		if !pendingFF {
			if b, err = r.ReadByte(); err != nil {
				return nil, noEOF(err)
			}
		}
		pendingFF = false
		if b != 0xFF {
			return nil, fmt.Errorf("JPEG: expected marker, got %#x", b)
		}
		code := byte(0xFF)
		for code == 0xFF {
			if code, err = r.ReadByte(); err != nil {
				return nil, noEOF(err)
			}
		}
		buf.WriteByte(0xFF)
		buf.WriteByte(code)
		switch {
		case code == 0xD9: // EOI
			return buf.Bytes(), nil
		case code == 0x01 || (code >= 0xD0 && code <= 0xD7):
			continue
		}
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, noEOF(err)
		}
		n := int(l[0])<<8 | int(l[1])
		if n < 2 {
			return nil, errors.New("JPEG: bad segment length")
		}
		buf.Write(l[:])
		if _, err := io.CopyN(buf, r, int64(n-2)); err != nil {
			return nil, noEOF(err)
		}
		if code != 0xDA { // not SOS
			continue
		}
		// Entropy-coded data: 0xFF is followed by 0x00 (stuffing) or a
		// restart marker inside the data; anything else is the next marker.
		for {
			chunk, err := r.ReadSlice(0xFF)
			buf.Write(chunk)
			if err == bufio.ErrBufferFull {
				if buf.Len() > maxSize {
					return nil, fmt.Errorf("JPEG larger than %d bytes", maxSize)
				}
				continue
			}
			if err != nil {
				return nil, noEOF(err)
			}
			next, err := r.Peek(1)
			if err != nil {
				return nil, noEOF(err)
			}
			if c := next[0]; c == 0x00 || (c >= 0xD0 && c <= 0xD7) {
				_, _ = r.ReadByte()
				buf.WriteByte(c)
				continue
			}
			if next[0] == 0xFF { // fill byte before a marker
				continue
			}
			// The 0xFF starts the next marker; the outer loop writes it.
			buf.Truncate(buf.Len() - 1)
			pendingFF = true
			break
		}
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readPNM reads one binary PPM (P6) or PGM (P5) with maxval 255, as ffmpeg's
// ppm and pgm encoders write them.
func readPNM(r *bufio.Reader) (w, h int, pix []byte, err error) {
	var magic [2]byte
	if _, err = io.ReadFull(r, magic[:]); err != nil {
		return 0, 0, nil, err
	}
	var ch int
	switch string(magic[:]) {
	case "P6":
		ch = 3
	case "P5":
		ch = 1
	default:
		return 0, 0, nil, fmt.Errorf("not a PNM frame (starts %q)", magic)
	}
	var vals [3]int
	for i := range vals {
		if vals[i], err = pnmInt(r); err != nil {
			return 0, 0, nil, noEOF(err)
		}
	}
	w, h = vals[0], vals[1]
	if vals[2] != 255 || w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return 0, 0, nil, fmt.Errorf("unsupported PNM header %dx%d maxval %d", w, h, vals[2])
	}
	pix = make([]byte, w*h*ch)
	if _, err = io.ReadFull(r, pix); err != nil {
		return 0, 0, nil, noEOF(err)
	}
	return w, h, pix, nil
}

// pnmInt skips whitespace and comments, reads a decimal number, and consumes
// the single whitespace byte after it.
func pnmInt(r *bufio.Reader) (int, error) {
	b, err := r.ReadByte()
	for err == nil && (b == ' ' || b == '\n' || b == '\r' || b == '\t' || b == '#') {
		if b == '#' {
			_, err = r.ReadString('\n')
		}
		if err == nil {
			b, err = r.ReadByte()
		}
	}
	if err != nil {
		return 0, err
	}
	n, digits := 0, 0
	for err == nil && b >= '0' && b <= '9' && digits < 6 {
		n = n*10 + int(b-'0')
		digits++
		b, err = r.ReadByte()
	}
	if digits == 0 || digits >= 6 && b >= '0' && b <= '9' {
		return 0, errors.New("bad PNM header number")
	}
	return n, err
}

// tailBuffer keeps the last lines written to it, bounded in lines and bytes:
// ffmpeg's stderr, kept as the device's last error.
type tailBuffer struct {
	mu       sync.Mutex
	maxLines int
	maxBytes int
	lines    []string
	partial  []byte
}

func newTailBuffer(maxLines, maxBytes int) *tailBuffer {
	return &tailBuffer{maxLines: maxLines, maxBytes: maxBytes}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.partial = append(t.partial, p...)
			if len(t.partial) > t.maxBytes {
				t.partial = t.partial[len(t.partial)-t.maxBytes:]
			}
			break
		}
		line := string(append(t.partial, p[:i]...))
		t.partial = t.partial[:0]
		p = p[i+1:]
		if line = strings.TrimRight(line, "\r"); line == "" || strings.Contains(line, "deprecated pixel format used") {
			// swscaler repeats that warning for every mjpeg frame (yuvj
			// formats); it would push the real error out of the tail.
			continue
		}
		if len(line) > t.maxBytes/t.maxLines*2 {
			line = line[:t.maxBytes/t.maxLines*2] + "…"
		}
		t.lines = append(t.lines, line)
		if len(t.lines) > t.maxLines {
			t.lines = t.lines[len(t.lines)-t.maxLines:]
		}
	}
	return n, nil
}

// String returns the kept lines joined by newlines (the last few only, to at
// most maxBytes).
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	all := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		all = append(all, string(t.partial))
	}
	s := strings.Join(all, "\n")
	if len(s) > t.maxBytes {
		s = s[len(s)-t.maxBytes:]
	}
	return s
}
