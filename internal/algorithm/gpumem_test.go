package algorithm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// Each GPU process instance reports the GPU memory its process group
// holds. This machine has no GPU, so nvidia-smi is a stand-in script (the
// only fake here) printing what the real one prints for
// --query-compute-apps=pid,used_memory: the instance's own pid and a
// process of no instance. The instances are real processes.
func TestGPUMemoryPerInstance(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "apps.csv")
	smi := filepath.Join(dir, "nvidia-smi")
	if err := os.WriteFile(smi, []byte("#!/bin/sh\ncat "+pids+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := newManager(t, Options{GPUs: []int{0}, SMI: smi, Registerer: reg})
	v := processVersion("gpumem", v1Package(t, v1Manifest(nil)), 1)
	v.Resources.GPU = 1
	applyReady(t, m, v)
	other := processVersion("cpuonly", v1Package(t, v1Manifest(nil)), 1)
	applyReady(t, m, other)
	st := statuses(t, m, ref("gpumem", "1"))
	if len(st) != 1 || st[0].PID == 0 {
		t.Fatalf("status %+v", st)
	}
	// 1536 MiB in the instance's process, 99 MiB in a process of no instance.
	if err := os.WriteFile(pids, []byte(fmt.Sprintf("%d, 1536\n1, 99\n", st[0].PID)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.SampleGPUMemory(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := m.metrics.gpuMemory.WithLabelValues("gpumem", "1", st[0].ID)
	if got := gaugeOf(t, g); got != 1536<<20 {
		t.Errorf("gpu memory = %v bytes, want %v", got, 1536<<20)
	}
	if n := seriesOf(m.metrics.gpuMemory); n != 1 {
		t.Errorf("%d gpu memory series, want only the GPU instance's", n)
	}
	// The watch loop keeps it current; a broken nvidia-smi is an error.
	if err := os.WriteFile(pids, []byte(fmt.Sprintf("%d, 512\n", st[0].PID)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.WatchGPUMemory(ctx, 50*time.Millisecond)
	testenv.Eventually(t, 10*time.Second, "512 MiB reported", func() bool { return gaugeOf(t, g) == 512<<20 })
	if err := os.WriteFile(pids, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.SampleGPUMemory(context.Background()); err == nil {
		t.Error("an unreadable nvidia-smi answer was taken")
	}
	// Stopping the version removes its series.
	cancel()
	if err := m.Stop(context.Background(), ref("gpumem", "1")); err != nil {
		t.Fatal(err)
	}
	if n := seriesOf(m.metrics.gpuMemory); n != 0 {
		t.Errorf("%d gpu memory series after the version stopped", n)
	}
}

func gaugeOf(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var mm dto.Metric
	if err := g.Write(&mm); err != nil {
		t.Fatal(err)
	}
	return mm.GetGauge().GetValue()
}

func seriesOf(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 64)
	c.Collect(ch)
	close(ch)
	return len(ch)
}
