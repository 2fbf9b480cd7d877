package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/blob"
	_ "github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// uploadMB is the size of the benchmark's file: BENCH_UPLOAD_MB, by
// default 256 MB to keep runs short (the figure is for 1 GB:
// BENCH_UPLOAD_MB=1024).
func uploadMB(b *testing.B) int {
	if v := os.Getenv("BENCH_UPLOAD_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("BENCH_UPLOAD_MB=%q: want a positive integer", v)
		}
		return n
	}
	return 256
}

// fileReader yields size bytes of a random 1 MiB block repeated, without
// holding the file in memory.
type fileReader struct {
	block []byte
	left  int64
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	off := int(r.left % int64(len(r.block)))
	if off == 0 {
		off = len(r.block)
	}
	n := copy(p, r.block[len(r.block)-off:])
	if int64(n) > r.left {
		n = int(r.left)
	}
	r.left -= int64(n)
	return n, nil
}

// BenchmarkUpload measures a tus upload of one file in a single PATCH,
// through the upload token check, tusd's staging store and the move into
// the file blob store (with its SHA-256) — done when the last PATCH is
// answered — beside one streaming PUT of the same bytes to a plain Go
// handler that writes them to a file, in the same run on the same disk.
func BenchmarkUpload(b *testing.B) {
	ctx := context.Background()
	mb := uploadMB(b)
	size := int64(mb) << 20
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	dir := b.TempDir()

	blobs, err := blob.Open(ctx, "file://"+filepath.Join(dir, "objects"), blob.Options{DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer blobs.Close()
	svc, err := data.New(storetest.Open(b, "sqlite"), blobs, data.Options{TokenKey: []byte("bench"), StagingDir: filepath.Join(dir, "uploads"), MaxUploadSize: size})
	if err != nil {
		b.Fatal(err)
	}
	tus := httptest.NewServer(svc.Handler())
	defer tus.Close()
	plainDir := filepath.Join(dir, "plain")
	if err := os.MkdirAll(plainDir, 0o750); err != nil {
		b.Fatal(err)
	}
	n := 0
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		f, err := os.Create(filepath.Join(plainDir, strconv.Itoa(n)))
		if err == nil {
			_, err = io.Copy(f, r.Body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer plain.Close()

	var tusT, plainT time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		// Alternate the sides so that load from elsewhere falls on both.
		start := time.Now()
		send(b, "PUT", plain.URL+"/f", nil, &fileReader{block: block, left: size}, size, http.StatusCreated)
		plainT += time.Since(start)

		start = time.Now()
		tok, _, err := svc.NewUploadToken("default", 0)
		if err != nil {
			b.Fatal(err)
		}
		h := map[string]string{"Tus-Resumable": "1.0.0", "Upload-Token": tok}
		resp := send(b, "POST", tus.URL+"/files/", merge(h, map[string]string{"Upload-Length": strconv.FormatInt(size, 10)}), nil, 0, http.StatusCreated)
		send(b, "PATCH", resp.Header.Get("Location"), merge(h, map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}),
			&fileReader{block: block, left: size}, size, http.StatusNoContent)
		tusT += time.Since(start)

		// Keep the disk from filling over many iterations.
		_ = os.RemoveAll(plainDir)
		_ = os.MkdirAll(plainDir, 0o750)
		_ = blobs.List(ctx, "uploads/", func(i blob.Info) error { return blobs.Delete(ctx, i.Key) })
	}
	rate := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(rate(tusT), "tus-MB/s")
	b.ReportMetric(rate(plainT), "put-MB/s")
	benchtable.Record(b, benchtable.Row{Metric: fmt.Sprintf("tus upload of a %d MB file (issue: 1 GB; BENCH_UPLOAD_MB) vs one streaming PUT to a file", mb),
		Unit: "MB/s", Target: "≥ 0.8× PUT", Tianshu: rate(tusT), Baseline: rate(plainT)})
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func send(b *testing.B, method, url string, hdr map[string]string, body io.Reader, size int64, want int) *http.Response {
	b.Helper()
	if body == nil {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		b.Fatal(err)
	}
	req.ContentLength = size
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %s %s", method, url, resp.Status, msg)
	}
	return resp
}
