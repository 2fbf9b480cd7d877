package blob_test

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tianshu-ai/tianshu/internal/blob"
	_ "github.com/tianshu-ai/tianshu/internal/blob/fileblob"
)

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering \"file\" twice did not panic")
		}
	}()
	blob.Register("file", func(context.Context, *url.URL, blob.Options) (blob.Store, error) { return nil, nil })
}

func TestOpenUnknownScheme(t *testing.T) {
	_, err := blob.Open(t.Context(), "gopher://user:secret@x/y", blob.Options{})
	if err == nil || !strings.Contains(err.Error(), "file") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open = %v; want an error listing the schemes, without the password", err)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return float64(m.GetHistogram().GetSampleCount())
}

func TestMetricsAndClose(t *testing.T) {
	reg := prometheus.NewRegistry()
	open := func() blob.Store {
		s, err := blob.Open(t.Context(), "file://"+t.TempDir(), blob.Options{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	s2 := open() // a second store on the same registry shares the collectors
	defer s2.Close()
	ctx := t.Context()
	if _, err := s.Put(ctx, "k", strings.NewReader("hello"), blob.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rc.(io.Seeker); !ok {
		t.Error("Open's wrapper hid the file reader's io.Seeker")
	}
	_, _ = io.ReadAll(rc)
	rc.Close()
	if _, err := s2.Stat(ctx, "k"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat = %v", err)
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tianshu_blob_operations_total", map[string]string{"backend": "file", "op": "put", "result": "ok"}, 1},
		{"tianshu_blob_operations_total", map[string]string{"backend": "file", "op": "stat", "result": "not_found"}, 1},
		{"tianshu_blob_operation_duration_seconds", map[string]string{"backend": "file", "op": "get"}, 1},
		{"tianshu_blob_bytes_written_total", map[string]string{"backend": "file"}, 5},
		{"tianshu_blob_bytes_read_total", map[string]string{"backend": "file"}, 5},
	} {
		if got := counterValue(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	if _, ok := blob.Handler(s); !ok {
		t.Error("blob.Handler does not see through Open's wrapper")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := s.Stat(ctx, "k"); !errors.Is(err, blob.ErrClosed) {
		t.Fatalf("Stat after Close = %v, want ErrClosed", err)
	}
}
