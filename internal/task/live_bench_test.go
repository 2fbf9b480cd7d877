package task

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
)

// BenchmarkLiveTransport compares the transports the live view could use
// to bring one 720p frame with its objects from the task to a viewer, each
// over a real loopback connection, one frame in flight at a time (what a
// live view does: the next frame is the newest one): WebSocket JPEG
// through the real Live handler (the transport chosen), MJPEG over HTTP
// (multipart/x-mixed-replace, the header in a part header), and as the
// baseline a plain GET of the JPEG per frame. Each reports p50 and p99
// latency from publish to the whole frame received, and prints its ratio
// to the baseline's p50. Run: go test ./internal/task -run '^$' -bench LiveTransport
func BenchmarkLiveTransport(b *testing.B) {
	pic := frame720p(b)
	objects := []PreviewObject{{Box: [4]float64{412, 96, 88, 88}, TrackId: 17, Label: "face", Score: 0.83}}
	var baseline float64
	for _, tr := range []struct {
		name string
		run  func(b *testing.B, pic []byte, objects []PreviewObject) []time.Duration
	}{
		{"http-get-jpeg-baseline", benchGET},
		{"mjpeg-over-http", benchMJPEG},
		{"websocket-jpeg", benchWebSocket},
	} {
		b.Run(tr.name, func(b *testing.B) {
			lat := tr.run(b, pic, objects)
			if b.N < 20 {
				return // the framework's first, tiny round: too few to report
			}
			p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
			b.ReportMetric(p50, "p50-µs")
			b.ReportMetric(p99, "p99-µs")
			b.ReportMetric(float64(len(pic)), "frame-bytes")
			if tr.name == "http-get-jpeg-baseline" {
				baseline = p50
			} else if baseline > 0 {
				fmt.Printf("live transport %s: p50 %.0f µs, %.2fx baseline (plain GET %.0f µs)\n", tr.name, p50, p50/baseline, baseline)
				benchtable.Record(b, benchtable.Row{Metric: "live view transport p50, one 720p frame, " + tr.name + " (baseline: GET of the JPEG)", Unit: "µs",
					Tianshu: p50, Baseline: baseline})
			}
		})
	}
}

// frame720p encodes a 1280×720 picture with detail, so that its JPEG is
// camera-sized.
func frame720p(b *testing.B) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	for y := 0; y < 720; y++ {
		for x := 0; x < 1280; x++ {
			img.Set(x, y, color.RGBA{uint8(x ^ y), uint8(x * 3 / (y + 1)), uint8((x * y) >> 5), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func percentile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds())
}

func benchGET(b *testing.B, pic []byte, _ []PreviewObject) []time.Duration {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(pic)
	}))
	defer srv.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp, err := http.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != int64(len(pic)) {
			b.Fatalf("got %d bytes", n)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat
}

// benchMJPEG streams the previews as multipart/x-mixed-replace, as an
// MJPEG live view would, the frame's header in a part header. Each part
// carries its Content-Length and is followed at once by the next boundary,
// so a reader knows a frame is complete without waiting for the next one.
func benchMJPEG(b *testing.B, pic []byte, objects []PreviewObject) []time.Duration {
	p := NewPreviews()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub := p.Subscribe("task-b", 0)
		defer sub.Stop()
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		_, _ = io.WriteString(w, "--frame\r\n")
		w.(http.Flusher).Flush()
		var hb []byte
		for {
			select {
			case <-r.Context().Done():
				return
			case f := <-sub.C:
				hb = appendFrameHeader(hb[:0], f, sub.Dropped(), time.Now())
				_, _ = fmt.Fprintf(w, "Content-Type: image/jpeg\r\nContent-Length: %d\r\nX-Live-Header: %s\r\n\r\n", len(f.JPEG), hb[4:])
				_, _ = w.Write(f.JPEG)
				if _, err := io.WriteString(w, "\r\n--frame\r\n"); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	tp := textproto.NewReader(br)
	if line, err := tp.ReadLine(); err != nil || line != "--frame" {
		b.Fatalf("first line %q: %v", line, err)
	}
	t := waitTap(b, p, "task-b")
	lat := make([]time.Duration, 0, b.N)
	buf := make([]byte, len(pic))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		t.publish(&PreviewFrame{TaskID: "task-b", JPEG: pic, Objects: objects, Captured: t0, Width: 1280, Height: 720})
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			b.Fatal(err)
		}
		n, _ := strconv.Atoi(h.Get("Content-Length"))
		if n != len(pic) || h.Get("X-Live-Header") == "" {
			b.Fatalf("part %v", h)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			b.Fatal(err)
		}
		if _, err := tp.ReadLine(); err != nil { // the CRLF ending the part
			b.Fatal(err)
		}
		if line, err := tp.ReadLine(); err != nil || line != "--frame" {
			b.Fatalf("boundary %q: %v", line, err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat
}

func benchWebSocket(b *testing.B, pic []byte, objects []PreviewObject) []time.Duration {
	p := NewPreviews()
	run := p.acquire("task-b")
	run.running.Add(1)
	l := NewLive(&Service{now: time.Now}, p, []byte("bench key"), LiveConfig{}, nil, nil)
	srv := httptest.NewServer(l)
	defer srv.Close()
	tok, err := l.ticket(liveGrant{T: "task-b", P: "p", E: time.Now().Add(time.Minute).Unix()})
	if err != nil {
		b.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+LivePath+"?ticket="+tok, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	t := waitTap(b, p, "task-b")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		t.publish(&PreviewFrame{TaskID: "task-b", JPEG: pic, Objects: objects, Captured: t0, Width: 1280, Height: 720})
		_, msg, err := conn.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if n := binary.BigEndian.Uint32(msg); len(msg) != 4+int(n)+len(pic) {
			b.Fatalf("message of %d bytes", len(msg))
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte("ack")); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat
}

// waitTap returns the task's tap once a viewer subscribed to it.
func waitTap(b *testing.B, p *Previews, taskID string) *tap {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		p.mu.Lock()
		t := p.taps[taskID]
		p.mu.Unlock()
		if t.watched() {
			return t
		}
	}
	b.Fatal("no viewer subscribed")
	return nil
}
