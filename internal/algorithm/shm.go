package algorithm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Input tensors reach a serving runtime on the same node through system
// shared memory, as OIP v2's (Triton's) system shared memory extension
// has it, instead of in the request's body: the platform maps a file
// under /dev/shm, registers it with the runtime server
// (POST /v2/systemsharedmemory/region/NAME/register {key, offset,
// byte_size}, key being shm_open's "/name"), which opens it, and then
// removes the file, so that nothing is left behind whoever exits first.
// A request names the region in the input's parameters
// (shared_memory_region, shared_memory_byte_size) and carries only its
// JSON header: the 600 kB of a 224×224 image no longer cross a socket, are
// no longer parsed out of an HTTP body nor allocated per call on either
// side. Each region holds one tensor of one call at a time; a pool per
// instance process keeps them. Where shared memory cannot be had (no
// /dev/shm, a runtime without the extension) tensors go in the body with
// the binary data extension, as before.

// shmMaxRegions bounds the regions of one instance: calls beyond that many
// in flight send their tensor in the body.
const shmMaxRegions = 8

// shmRegion is one mapped, registered region.
type shmRegion struct {
	name string
	mem  []byte
}

// shmPool is the regions registered with one instance process (its
// address: a restarted process has a new one, and none of the old
// registrations).
type shmPool struct {
	addr   string
	size   int
	mu     sync.Mutex
	free   []*shmRegion
	n      int
	broken bool // registration failed: this process gets no more tries
	closed bool
}

// shmPools holds a serving version's pools by instance.
type shmPools struct {
	size  int // bytes per region; 0: shared memory is off
	mu    sync.Mutex
	pools map[*instance]*shmPool
}

// pool returns the instance's pool for its current process.
func (s *shmPools) pool(in *instance) *shmPool {
	addr := in.address()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pools[in]
	if p != nil && p.addr == addr {
		return p
	}
	if p != nil {
		p.close()
	}
	if s.pools == nil {
		s.pools = map[*instance]*shmPool{}
	}
	p = &shmPool{addr: addr, size: s.size}
	s.pools[in] = p
	return p
}

// drop forgets the instance's pool (its process lost the registrations).
func (s *shmPools) drop(in *instance, p *shmPool) {
	s.mu.Lock()
	if s.pools[in] == p {
		delete(s.pools, in)
	}
	s.mu.Unlock()
	p.close()
}

// Close unmaps every region.
func (s *shmPools) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for in, p := range s.pools {
		p.close()
		delete(s.pools, in)
	}
	return nil
}

// acquire returns a free region of at least n bytes, mapping and
// registering a new one when none is free; nil when shared memory cannot
// carry this tensor.
func (s *shmPools) acquire(ctx context.Context, h *httpBase, in *instance, n int) (*shmPool, *shmRegion) {
	if s.size == 0 || n > s.size {
		return nil, nil
	}
	p := s.pool(in)
	p.mu.Lock()
	if p.broken || p.closed {
		p.mu.Unlock()
		return nil, nil
	}
	if k := len(p.free); k > 0 {
		r := p.free[k-1]
		p.free = p.free[:k-1]
		p.mu.Unlock()
		return p, r
	}
	if p.n >= shmMaxRegions {
		p.mu.Unlock()
		return nil, nil
	}
	p.n++
	p.mu.Unlock()
	r, err := newShmRegion(ctx, h, p.addr, p.size)
	if err != nil {
		p.mu.Lock()
		p.n--
		p.broken = true
		p.mu.Unlock()
		return nil, nil
	}
	return p, r
}

// release gives the region back to its pool, or unmaps it when the pool
// was closed meanwhile.
func (p *shmPool) release(r *shmRegion) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		shmUnmap(r.mem)
		return
	}
	p.free = append(p.free, r)
}

func (p *shmPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, r := range p.free {
		shmUnmap(r.mem)
	}
	p.free = nil
}

// newShmRegion maps a new region of size bytes and registers it with the
// server at addr; the file is gone once the server has opened it.
func newShmRegion(ctx context.Context, h *httpBase, addr string, size int) (*shmRegion, error) {
	name, mem, remove, err := shmCreate(size)
	if err != nil {
		return nil, err
	}
	defer remove()
	body, _ := json.Marshal(map[string]any{"key": "/" + name, "offset": 0, "byte_size": size})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr+"/v2/systemsharedmemory/region/"+name+"/register", bytes.NewReader(body))
	if err == nil {
		req.Header["Content-Type"] = []string{"application/json"}
		var resp *http.Response
		if resp, err = h.do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			_ = resp.Body.Close()
		}
	}
	if err != nil {
		shmUnmap(mem)
		return nil, fmt.Errorf("registering shared memory region %s: %w", name, err)
	}
	return &shmRegion{name: name, mem: mem}, nil
}
