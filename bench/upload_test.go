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
	"path"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/blob"
	_ "github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// uploadRounds is how many uploads of each kind one iteration makes.
const uploadRounds = 3

// uploadSizes are the benchmark's file sizes in MB: BENCH_UPLOAD_MB, by
// default 256 and the 1024.
func uploadSizes(b *testing.B) []int {
	v := os.Getenv("BENCH_UPLOAD_MB")
	if v == "" {
		return []int{256, 1024}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("BENCH_UPLOAD_MB=%q: want a positive integer", v)
	}
	return []int{n}
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
// through the upload token check, tusd's staging store (hashing the bytes
// as they are written) and the durable (fsynced) move into the file blob
// store — done when the last PATCH is answered — beside one streaming PUT
// of the same bytes to a plain Go handler that writes them to a file and
// fsyncs it, in the same run on the same disk: on a large file the disk's
// speed, not the network's, bounds a durable upload. A second baseline
// does not fsync (on a file that fits the page cache it measures memory,
// not the disk). A last row times the upload until its SHA-256 is stored;
// the next iteration starts only after it.
func BenchmarkUpload(b *testing.B) {
	for _, mb := range uploadSizes(b) {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) { benchUpload(b, mb) })
	}
}

func benchUpload(b *testing.B, mb int) {
	ctx := context.Background()
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
	dctx, stopDigests := context.WithCancel(ctx)
	defer stopDigests()
	go svc.RunDigests(dctx)
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
			if err == nil && r.URL.Query().Has("fsync") {
				err = f.Sync()
			}
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

	var tusT, digestT, plainT, syncedT time.Duration
	timed := func(d *time.Duration, fn func()) {
		// Start each side with no dirty pages left by another (the plain
		// handler's writeback would otherwise land on the next side).
		syscall.Sync()
		start := time.Now()
		fn()
		*d += time.Since(start)
	}
	b.SetBytes(uploadRounds * size)
	b.ResetTimer()
	rounds := 0
	for b.Loop() {
		// uploadRounds rounds per iteration: a 1 GB iteration outlasts the
		// default -benchtime, and a single round is at the mercy of the disk.
		for range uploadRounds {
			rounds++
			// Alternate the sides so that load from elsewhere falls on all.
			timed(&plainT, func() {
				send(b, "PUT", plain.URL+"/f", nil, &fileReader{block: block, left: size}, size, http.StatusCreated)
			})
			timed(&syncedT, func() {
				send(b, "PUT", plain.URL+"/f?fsync", nil, &fileReader{block: block, left: size}, size, http.StatusCreated)
			})
			var id string
			before := tusT
			timed(&tusT, func() {
				tok, _, err := svc.NewUploadToken("default", 0)
				if err != nil {
					b.Fatal(err)
				}
				h := map[string]string{"Tus-Resumable": "1.0.0", "Upload-Token": tok}
				resp := send(b, "POST", tus.URL+"/files/", merge(h, map[string]string{"Upload-Length": strconv.FormatInt(size, 10)}), nil, 0, http.StatusCreated)
				send(b, "PATCH", resp.Header.Get("Location"), merge(h, map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}),
					&fileReader{block: block, left: size}, size, http.StatusNoContent)
				id = path.Base(resp.Header.Get("Location"))
			})
			// Polled every millisecond: the row times the digest.
			start := time.Now()
			poll := time.NewTicker(time.Millisecond)
			for {
				up, err := svc.Upload(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				if up.SHA256 != "" {
					break
				}
				<-poll.C
			}
			poll.Stop()
			digestT += tusT - before + time.Since(start)

			// Keep the disk from filling over many iterations.
			_ = os.RemoveAll(plainDir)
			_ = os.MkdirAll(plainDir, 0o750)
			_ = blobs.List(ctx, "uploads/", func(i blob.Info) error { return blobs.Delete(ctx, i.Key) })
		}
	}
	rate := func(d time.Duration) float64 { return float64(size) * float64(rounds) / d.Seconds() / 1e6 }
	b.ReportMetric(rate(tusT), "tus-MB/s")
	b.ReportMetric(rate(plainT), "put-MB/s")
	b.ReportMetric(rate(syncedT), "put+fsync-MB/s")
	b.ReportMetric(rate(digestT), "tus+sha256-MB/s")
	what := fmt.Sprintf("tus upload of a %d MB file", mb)
	// The tus side is durable when answered (fsynced), so its target is
	// against the PUT that fsyncs too: fsync on both sides.
	benchtable.Record(b, benchtable.Row{Metric: what + " vs one streaming PUT to a file with fsync",
		Unit: "MB/s", Target: "≥ 0.8× PUT", Tianshu: rate(tusT), Baseline: rate(syncedT)})
	benchtable.Record(b, benchtable.Row{Metric: what + " vs the same PUT without fsync",
		Unit: "MB/s", Target: "—", Tianshu: rate(tusT), Baseline: rate(plainT)})
	benchtable.Record(b, benchtable.Row{Metric: what + " until its SHA-256 is stored vs the PUT with fsync",
		Unit: "MB/s", Target: "—", Tianshu: rate(digestT), Baseline: rate(syncedT)})
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
