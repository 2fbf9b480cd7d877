package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/bench/benchtable"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/media"
)

func benchPNG(b *testing.B, w, h int) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, w, h))); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func benchManager(b *testing.B) *algorithm.Manager {
	m, err := algorithm.New(algorithm.Options{Registerer: prometheus.NewRegistry(), WorkDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func applyEndpoint(b *testing.B, m *algorithm.Manager, v algorithm.Version) {
	if err := m.Apply(context.Background(), v); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := m.Instances(algorithm.Ref{ID: v.AlgorithmID, Version: v.Version})
		if err == nil && st[0].Status == algorithm.StatusReady {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s never became ready: %+v", v.AlgorithmID, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkAlgorithmInvoke measures one call through the invoker (lookup,
// balancing, breaker, metrics, tianshu-v1 encoding and JSON decoding)
// against the same POST made with a plain http.Client to the same
// in-process tianshu-v1 server, in the same run.
func BenchmarkAlgorithmInvoke(b *testing.B) {
	srv := httptest.NewServer((&algotest.V1Server{}).Handler())
	defer srv.Close()
	img := benchPNG(b, 320, 240)
	contract := algorithm.Contract{Inputs: []algorithm.Field{{Name: "image", Type: algorithm.TypeImage}}}
	m := benchManager(b)
	applyEndpoint(b, m, algorithm.Version{AlgorithmID: "det", Version: "1", Contract: contract,
		Runtime: algorithm.RuntimeEndpoint, Endpoints: []string{srv.URL}})
	ref := algorithm.Ref{ID: "det"}
	inputs := map[string]any{"image": media.Image{Bytes: img, ContentType: "image/png"}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
	direct := func() error {
		req, err := http.NewRequest(http.MethodPost, srv.URL+algorithm.TianshuInferPath, bytes.NewReader(img))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "image/png")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		var out map[string]any
		return json.Unmarshal(body, &out)
	}
	// The two are interleaved call by call, so that load from elsewhere on
	// the machine weighs on both alike.
	for range 200 { // warm both connection pools
		if err := direct(); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Invoke(context.Background(), ref, inputs); err != nil {
			b.Fatal(err)
		}
	}
	var directT, invokeT time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if err := direct(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := m.Invoke(context.Background(), ref, inputs); err != nil {
			b.Fatal(err)
		}
		invokeT += time.Since(t1)
		directT += t1.Sub(t0)
	}
	directNs := float64(directT.Nanoseconds()) / float64(b.N)
	invokeNs := float64(invokeT.Nanoseconds()) / float64(b.N)
	b.ReportMetric(directNs, "direct-ns/call")
	b.ReportMetric(invokeNs, "invoker-ns/call")
	b.ReportMetric(invokeNs/directNs, "x-direct")
	benchtable.Record(b, benchtable.Row{Metric: "algorithm invoke, tianshu-v1 320x240 PNG", Unit: "ns",
		Target: "≤ 1.2× direct", Tianshu: invokeNs, Baseline: directNs})
}

// BenchmarkAlgorithmBatching measures the throughput of 32 concurrent
// callers of a serial algorithm that costs 2 ms per request plus 0.2 ms
// per item, with micro-batching (up to 16 items, 2 ms wait) and without.
func BenchmarkAlgorithmBatching(b *testing.B) {
	img := benchPNG(b, 64, 64)
	contract := algorithm.Contract{Inputs: []algorithm.Field{{Name: "image", Type: algorithm.TypeImage}}, Batch: true, MaxBatch: 64}
	run := func(b *testing.B, batch algorithm.Batch) float64 {
		srv := httptest.NewServer((&algotest.V1Server{Fixed: 2 * time.Millisecond, PerItem: 200 * time.Microsecond, Serial: true}).Handler())
		defer srv.Close()
		m := benchManager(b)
		applyEndpoint(b, m, algorithm.Version{AlgorithmID: "slow", Version: "1", Contract: contract,
			Runtime: algorithm.RuntimeEndpoint, Endpoints: []string{srv.URL}, Batch: batch})
		ref := algorithm.Ref{ID: "slow"}
		inputs := map[string]any{"image": media.Image{Bytes: img, ContentType: "image/png"}}
		const callers = 32
		work := make(chan struct{})
		var wg sync.WaitGroup
		b.ResetTimer()
		start := time.Now()
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					if _, err := m.Invoke(context.Background(), ref, inputs); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		for range b.N {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		rate := float64(b.N) / time.Since(start).Seconds()
		b.ReportMetric(rate, "calls/s")
		return rate
	}
	var single, batched float64
	b.Run("unbatched", func(b *testing.B) { single = run(b, algorithm.Batch{}) })
	b.Run("batched", func(b *testing.B) {
		batched = run(b, algorithm.Batch{Max: 16, Wait: algorithm.Duration(2 * time.Millisecond)})
		if single > 0 {
			b.ReportMetric(batched/single, "x-unbatched")
		}
	})
	if single > 0 && batched > 0 {
		benchtable.Record(b, benchtable.Row{Metric: "algorithm micro-batching, 2ms+0.2ms/item, 32 callers", Unit: "calls/s",
			Target: "> unbatched", Tianshu: batched, Baseline: single})
	}
}
