package algorithm

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/media"
)

func TestMetricsPerVersionAndInstance(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newManager(t, Options{Registerer: reg})
	// A second manager on the same registerer shares the collectors.
	if _, err := New(Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	srv := v1Endpoint(t, &algotest.V1Server{})
	applyReady(t, m, endpointVersion("met", srv.URL))
	for range 3 {
		if _, err := m.Invoke(context.Background(), ref("met", ""), map[string]any{"image": pngImage(t, 2, 2)}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = m.Invoke(context.Background(), ref("met", ""), map[string]any{"image": media.Image{Bytes: []byte("x"), ContentType: "image/png"}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["algorithm"] != "met" {
				continue
			}
			found[mf.GetName()] = true
			if mf.GetName() == "tianshu_algorithm_requests_total" && (mt.GetCounter().GetValue() != 4 || labels["instance"] != srv.URL) {
				t.Errorf("requests %v %v", mt.GetCounter().GetValue(), labels)
			}
			if mf.GetName() == "tianshu_algorithm_errors_total" && labels["reason"] != ReasonStatus {
				t.Errorf("error reason %v", labels)
			}
		}
	}
	for _, name := range []string{"tianshu_algorithm_requests_total", "tianshu_algorithm_errors_total", "tianshu_algorithm_request_duration_seconds",
		"tianshu_algorithm_in_flight_requests", "tianshu_algorithm_breaker_state", "tianshu_algorithm_instance_ready"} {
		if !found[name] {
			t.Errorf("metric %s missing", name)
		}
	}
	if err := m.Stop(context.Background(), ref("met", "")); err != nil {
		t.Fatal(err)
	}
	mfs, _ = reg.Gather()
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "algorithm" && l.GetValue() == "met" {
					t.Errorf("%s still exported after Stop", mf.GetName())
				}
			}
		}
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add([]byte("PK\x03\x04garbage"))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Add([]byte("plain text"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		_ = Unpack(strings.NewReader(string(data)), filepath.Join(parent, "pkg"), PackageLimits{MaxBytes: 1 << 20, MaxFiles: 100})
		ents, err := filepath.Glob(filepath.Join(parent, "*"))
		if err != nil || len(ents) > 1 {
			t.Fatalf("wrote outside the package: %v", ents)
		}
	})
}
