package algorithm

import (
	"fmt"
	"math"
	"sync"
)

// gpuAllocator hands out the node's GPUs to process replicas: a whole
// number of free devices for GPU >= 1, the least-loaded device with room
// for a fraction below 1 (shared, not isolated).
type gpuAllocator struct {
	mu   sync.Mutex
	ids  []int
	load map[int]float64
}

func newGPUAllocator(ids []int) *gpuAllocator {
	a := &gpuAllocator{ids: append([]int(nil), ids...), load: map[int]float64{}}
	for _, id := range ids {
		a.load[id] = 0
	}
	return a
}

// alloc reserves devices for one replica needing gpu (count or fraction).
func (a *gpuAllocator) alloc(gpu float64) ([]int, error) {
	if gpu <= 0 {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ids) == 0 {
		return nil, fmt.Errorf("resources.gpu: %v GPUs requested but this node reports none", gpu)
	}
	if gpu < 1 {
		best, bestLoad := -1, math.Inf(1)
		for _, id := range a.ids {
			if l := a.load[id]; l+gpu <= 1+1e-9 && l < bestLoad {
				best, bestLoad = id, l
			}
		}
		if best < 0 {
			return nil, fmt.Errorf("resources.gpu: no GPU has %v free", gpu)
		}
		a.load[best] += gpu
		return []int{best}, nil
	}
	n := int(gpu)
	var got []int
	for _, id := range a.ids {
		if a.load[id] == 0 {
			got = append(got, id)
			if len(got) == n {
				break
			}
		}
	}
	if len(got) < n {
		return nil, fmt.Errorf("resources.gpu: %d GPUs requested, %d free of %d", n, len(got), len(a.ids))
	}
	for _, id := range got {
		a.load[id] = 1
	}
	return got, nil
}

// free returns what alloc reserved for the same gpu amount.
func (a *gpuAllocator) free(ids []int, gpu float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	per := 1.0
	if gpu < 1 {
		per = gpu
	}
	for _, id := range ids {
		a.load[id] = max(0, a.load[id]-per)
	}
}
