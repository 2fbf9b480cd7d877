package algorithm

import (
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/redact"
)

// Instance statuses.
const (
	StatusStarting   = "starting"
	StatusReady      = "ready"
	StatusUnhealthy  = "unhealthy"
	StatusRestarting = "restarting"
	StatusFailed     = "failed"
	StatusStopped    = "stopped"
)

// InstanceStatus is what Manager.Instances reports about one instance.
type InstanceStatus struct {
	Algorithm   string    `json:"algorithm"`
	Version     string    `json:"version"`
	ID          string    `json:"id"`      // "0", "1", ... for replicas; the URL for endpoints
	Address     string    `json:"address"` // base URL, empty for builtins
	Status      string    `json:"status"`  // starting, ready, unhealthy, restarting, failed, stopped
	Since       time.Time `json:"since"`   // when Status last changed
	Restarts    int       `json:"restarts"`
	LastError   string    `json:"lastError,omitempty"`
	PID         int       `json:"pid,omitempty"`
	GPUs        []int     `json:"gpus,omitempty"`
	Outstanding int64     `json:"outstanding"`
	Breaker     string    `json:"breaker"` // closed, half-open, open
	Logs        []LogLine `json:"logs,omitempty"`
	// Replicas are the cluster's replicas of a container version.
	Replicas *ContainerStatus `json:"replicas,omitempty"`
}

// instance is one place a version's calls can go. Invocation reads only
// atomics; status details sit under mu.
type instance struct {
	id    string
	hash  uint64 // of id, for rendezvous hashing
	addr  atomic.Pointer[string]
	ready atomic.Bool

	outstanding atomic.Int64
	br          breaker
	builtin     *Builtin

	requests prometheus.Counter
	inFlight prometheus.Gauge
	readyG   prometheus.Gauge
	restartC prometheus.Counter

	mu        sync.Mutex
	status    string
	since     time.Time
	restarts  int
	lastError string
	secrets   []string // values masked in lastError and logs
	pid       int
	gpus      []int
	logs      *logRing
	replicas  *ContainerStatus // container versions: as last read from the cluster

	onReady func() // wakes callers waiting for a ready instance
	now     func() time.Time
}

func (d *deployment) newInstance(id, addr string) *instance {
	m := d.m.metrics
	l := []string{d.v.AlgorithmID, d.v.Version, id}
	h := fnv.New64a()
	h.Write([]byte(id))
	in := &instance{
		id:       id,
		hash:     h.Sum64(),
		requests: m.requests.WithLabelValues(l...),
		inFlight: m.inFlight.WithLabelValues(l...),
		readyG:   m.ready.WithLabelValues(l...),
		restartC: m.restarts.WithLabelValues(l...),
		status:   StatusStarting,
		now:      d.m.now,
		onReady:  d.notifyReady,
		secrets:  d.v.secretValues(),
	}
	in.since = in.now()
	in.br = breaker{
		threshold: int32(d.m.opts.BreakerFailures),
		cooldown:  d.m.opts.BreakerCooldown,
		gauge:     m.breaker.WithLabelValues(l...),
	}
	in.br.gauge.Set(0)
	in.readyG.Set(0)
	in.addr.Store(&addr)
	return in
}

func (in *instance) address() string { return *in.addr.Load() }

// setStatus records a status change; ready instances take calls.
func (in *instance) setStatus(status, lastError string) {
	in.mu.Lock()
	if in.status != status {
		in.since = in.now()
	}
	in.status = status
	if lastError != "" {
		in.lastError = redact.Text(lastError, in.secrets...)
	}
	in.mu.Unlock()
	ready := status == StatusReady
	if in.ready.Swap(ready) != ready {
		if ready {
			in.readyG.Set(1)
			in.br.success()
			in.onReady()
		} else {
			in.readyG.Set(0)
		}
	}
}

func (in *instance) statusOf() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.status
}

func (in *instance) snapshot(alg, ver string) InstanceStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := InstanceStatus{
		Algorithm:   alg,
		Version:     ver,
		ID:          in.id,
		Address:     in.address(),
		Status:      in.status,
		Since:       in.since,
		Restarts:    in.restarts,
		LastError:   in.lastError,
		PID:         in.pid,
		GPUs:        slices.Clone(in.gpus),
		Outstanding: in.outstanding.Load(),
		Breaker:     in.br.String(),
	}
	if in.logs != nil {
		s.Logs = in.logs.lines()
	}
	if in.replicas != nil {
		r := *in.replicas
		r.Message = redact.Text(r.Message, in.secrets...)
		s.Replicas = &r
	}
	return s
}
