package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The load generator of the gateway rows works as wrk does, the issue's
// tool: it writes requests prepared before the timed window on keep-alive
// connections and reads each answer, nothing else. It runs in a child
// process (this test binary again, TestLoadgenChild), so that the CPU of
// this process during a load is the servers' alone and the client's is
// counted apart. Signed requests are signed before the window, each once
// (the gateway accepts a signature once), so that the signed side's client
// does the same work as the bare side's.

// loadgenEnv names the spec file of a child load generator.
const loadgenEnv = "TIANSHU_BENCH_LOADGEN"

// loadSpec is what the child load generator runs.
type loadSpec struct {
	Addr     string
	Conns    int
	Duration time.Duration
	// Once sends each request once, in turn; otherwise the requests are
	// reused in turn for the whole window.
	Once     bool
	Requests string // file: each request as a 4-byte big-endian length and its bytes
	Result   string // file the child writes its loadOutcome to
}

// loadOutcome is what the child measured.
type loadOutcome struct {
	Lat     []time.Duration
	Errs    int
	LastErr string
	Elapsed time.Duration
	CPU     time.Duration // the child's own CPU time during the window
	// RanOut says a Once load used every request before the window ended:
	// the load then ended early, Elapsed with it.
	RanOut bool
}

// wireSource makes the bytes of requests as a client writes them.
type wireSource struct {
	addr string
	// make returns n requests (once) or requests to reuse (n ignored).
	make func(n int) [][]byte
	once bool
}

// wireBytes serializes req as an HTTP/1.1 client writes it.
func wireBytes(req *http.Request) []byte {
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		panic(err) // a request built here with a bytes body cannot fail to write
	}
	return buf.Bytes()
}

// signedWire makes requests of action with body to url, each signed anew
// with the bench's admin key (signedRequests: a random trace id each, so
// that every one has its own signature).
func signedWire(url, action string, body []byte) wireSource {
	newReq := signedRequests(url, action, body)
	return wireSource{addr: hostOf(url), once: true, make: func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = wireBytes(newReq())
		}
		return out
	}}
}

// plainWire makes the one unsigned request of body to url, reused.
func plainWire(url string, body []byte) wireSource {
	return wireSource{addr: hostOf(url), make: func(int) [][]byte {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return [][]byte{wireBytes(req)}
	}}
}

func hostOf(url string) string {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		panic(err)
	}
	return req.URL.Host
}

// wireLoad is one run of the child load generator, prepared.
type wireLoad struct {
	spec loadSpec
	file string
}

// prepareWire writes the requests and the spec of a load of src on conns
// connections for d into dir. For a source sent once, n is how many.
func prepareWire(b *testing.B, dir string, src wireSource, conns int, d time.Duration, n int) wireLoad {
	reqs := src.make(n)
	f, err := os.CreateTemp(dir, "requests-*")
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, r := range reqs {
		_ = binary.Write(w, binary.BigEndian, uint32(len(r)))
		_, _ = w.Write(r)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		b.Fatal(err)
	}
	spec := loadSpec{Addr: src.addr, Conns: conns, Duration: d, Once: src.once, Requests: f.Name(), Result: f.Name() + ".result"}
	data, _ := json.Marshal(spec)
	specFile := f.Name() + ".spec"
	if err := os.WriteFile(specFile, data, 0o600); err != nil {
		b.Fatal(err)
	}
	return wireLoad{spec: spec, file: specFile}
}

// run runs the prepared load in a child process and returns its outcome
// and the CPU time this process and extra (the server's, when outside this
// process) spent while the child ran: the server's side of the load.
func (l wireLoad) run(b *testing.B, extra func() time.Duration) (loadResult, time.Duration, loadOutcome) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadgenChild$", "-test.bench=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), loadgenEnv+"="+l.file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	c0, e0 := cpuTime(b), extra()
	err := cmd.Run()
	server := cpuTime(b) - c0 + extra() - e0
	if err != nil {
		b.Fatalf("load generator: %v\n%s", err, out.String())
	}
	data, err := os.ReadFile(l.spec.Result)
	if err != nil {
		b.Fatalf("load generator's result: %v\n%s", err, out.String())
	}
	var o loadOutcome
	if err := json.Unmarshal(data, &o); err != nil {
		b.Fatal(err)
	}
	_ = os.Remove(l.spec.Requests)
	if o.RanOut {
		b.Logf("load generator: the prepared requests ran out %s into the %s window; the rate is measured over that time", o.Elapsed.Round(time.Millisecond), l.spec.Duration)
	}
	r := loadResult{lat: o.Lat, errs: o.Errs, elapsed: o.Elapsed}
	if o.LastErr != "" {
		r.lastErr = errors.New(o.LastErr)
	}
	return r, server, o
}

// TestLoadgenChild is the load generator's child process; it runs only when
// a benchmark starts it.
func TestLoadgenChild(t *testing.T) {
	file := os.Getenv(loadgenEnv)
	if file == "" {
		t.Skip("the gateway benchmarks' load generator: runs only as their child process")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var spec loadSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(spec.Requests)
	if err != nil {
		t.Fatal(err)
	}
	var reqs [][]byte
	for len(raw) >= 4 {
		n := binary.BigEndian.Uint32(raw)
		reqs = append(reqs, raw[4:4+n])
		raw = raw[4+n:]
	}
	if len(reqs) == 0 {
		t.Fatal("no request to send")
	}
	conns := make([]net.Conn, spec.Conns)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", spec.Addr); err != nil {
			t.Fatal(err)
		}
	}
	var next atomic.Int64
	var stop atomic.Bool // the requests ran out: every connection stops
	var mu sync.Mutex
	var o loadOutcome
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now()
	deadline := start.Add(spec.Duration)
	for _, conn := range conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<14)
			var errs int
			var lastErr error
			ranOut := false
			br := bufio.NewReaderSize(conn, 64<<10)
			var body []byte
			for time.Now().Before(deadline) && !stop.Load() {
				i := next.Add(1) - 1
				if spec.Once && i >= int64(len(reqs)) {
					ranOut = true
					stop.Store(true)
					break
				}
				req := reqs[i%int64(len(reqs))]
				t0 := time.Now()
				var err error
				if _, err = conn.Write(req); err == nil {
					body, err = readAnswer(br, body[:0])
				}
				if err != nil {
					errs++
					lastErr = err
					if errors.Is(err, errReconnect) || isConnErr(err) {
						_ = conn.Close()
						if conn, err = net.Dial("tcp", spec.Addr); err != nil {
							lastErr = err
							break
						}
						br.Reset(conn)
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			_ = conn.Close()
			mu.Lock()
			o.Lat = append(o.Lat, lat...)
			o.Errs += errs
			if lastErr != nil {
				o.LastErr = lastErr.Error()
			}
			o.RanOut = o.RanOut || ranOut
			mu.Unlock()
		})
	}
	wg.Wait()
	o.Elapsed = time.Since(start)
	o.CPU = processCPU() - cpu0
	data, _ = json.Marshal(o)
	if err := os.WriteFile(spec.Result, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// errReconnect says the server closed the connection after its answer.
var errReconnect = errors.New("server closed the connection")

func isConnErr(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne)
}

// readAnswer reads one HTTP/1.1 answer into body, which must be a 200
// with a Content-Length and without an API error.
func readAnswer(br *bufio.Reader, body []byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return body, err
	}
	if len(line) < 12 {
		return body, fmt.Errorf("status line %q", line)
	}
	status := string(line[9:12])
	length, closing := -1, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return body, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return body, fmt.Errorf("content-length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			return body, fmt.Errorf("answer with Transfer-Encoding %s: the load generator reads Content-Length only", v)
		case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
			closing = true
		}
	}
	if length < 0 {
		return body, errors.New("answer without Content-Length")
	}
	if cap(body) < length {
		body = make([]byte, length)
	}
	body = body[:length]
	if _, err := io.ReadFull(br, body); err != nil {
		return body, err
	}
	if status != "200" || bytes.Contains(body, []byte(`"Error":`)) {
		return body, fmt.Errorf("%s: %s", status, body)
	}
	if closing {
		return body, errReconnect
	}
	return body, nil
}
