package algorithm

import (
	"context"
	"time"

	"github.com/tianshu-ai/tianshu/internal/gpu"
)

// SampleGPUMemory asks nvidia-smi how much GPU memory each process holds
// and sets tianshu_algorithm_instance_gpu_memory_bytes for every running
// process instance that was given GPUs: the sum over its process group,
// so that a model server's worker processes count for their instance.
func (m *Manager) SampleGPUMemory(ctx context.Context) error {
	used, err := gpu.ProcessMemory(ctx, m.opts.SMI)
	if err != nil {
		return err
	}
	byGroup := make(map[int]int64, len(used))
	for pid, b := range used {
		if g := groupOf(pid); g > 0 {
			byGroup[g] += b
		}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, d := range m.deps {
		for _, in := range d.insts {
			in.mu.Lock()
			pid, gpus := in.pid, len(in.gpus)
			in.mu.Unlock()
			if pid > 0 && gpus > 0 {
				m.metrics.gpuMemory.WithLabelValues(d.v.AlgorithmID, d.v.Version, in.id).Set(float64(byGroup[pid]))
			}
		}
	}
	return nil
}

// WatchGPUMemory samples GPU memory every interval until ctx ends; a
// failing nvidia-smi is logged once per change of its error.
func (m *Manager) WatchGPUMemory(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := ""
	for {
		if err := m.SampleGPUMemory(ctx); err != nil && err.Error() != last {
			last = err.Error()
			m.log.Warn("gpu memory not sampled", "err", err)
		} else if err == nil {
			last = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
