package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// ErrReplayCacheFull is returned by Memory.Remember when every slot holds
// a signature that has not expired: the caller cannot tell a replay from
// a new request, so it must refuse the request (and retry later).
var ErrReplayCacheFull = errors.New("ratelimit: replay cache full")

// Replays remembers keys (accepted request signatures) for a while, so
// that each is accepted once.
type Replays interface {
	// Remember records key for ttl unless it is already recorded. fresh is
	// false for a key recorded before and not yet expired (a replay). An
	// error means the answer is unknown; the caller decides whether that
	// refuses the request.
	Remember(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error)
}

// Replay cache bounds in memory: replayShards maps of at most
// replayShardCap entries each, 2M in all. An entry is a 16-byte hash and
// an expiry (about 30 bytes with the map's overhead, so at most ~60 MB);
// filling it takes more than 3,000 signed requests a second, sustained
// for the signature window, on one replica.
const (
	replayShards   = 16
	replayShardCap = 1 << 17
	// replaySweep is how often a shard drops its expired entries.
	replaySweep = time.Minute
)

type replayShard struct {
	mu        sync.Mutex
	m         map[replayKey]int64 // expiry, Unix ns
	lastSweep int64               // Unix ns
	nextSweep int64               // Unix ns
	cap       int
}

// replayKey is a key's 128-bit hash under the process's two random seeds.
// The keys are signatures, which a client cannot choose to collide, and
// the seeds are never seen outside the process; a collision would only
// refuse one request as a replay. (It used to be SHA-256, a fifth of the
// gateway's own CPU per request in a profile: issue #18.)
type replayKey [2]uint64

// memReplays is the in-process Replays of Memory: sharded so that
// concurrent requests rarely wait on one lock.
type memReplays struct {
	once   sync.Once
	seeds  [2]maphash.Seed
	shards [replayShards]replayShard
}

func (r *memReplays) init(capPerShard int) {
	r.once.Do(func() {
		r.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
		for i := range r.shards {
			r.shards[i].m = map[replayKey]int64{}
			r.shards[i].cap = capPerShard
		}
	})
}

// Remember implements Replays. When a shard is full of live entries it
// refuses new keys with ErrReplayCacheFull rather than evicting: evicting
// the oldest would let that signature be replayed.
func (m *Memory) Remember(_ context.Context, key string, ttl time.Duration) (bool, error) {
	m.rep.init(m.replayShardCap)
	h := replayKey{maphash.String(m.rep.seeds[0], key), maphash.String(m.rep.seeds[1], key)}
	s := &m.rep.shards[h[0]%replayShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.now().UnixNano()
	if exp, ok := s.m[h]; ok && exp > now {
		return false, nil
	}
	if len(s.m) >= s.cap || now >= s.nextSweep {
		// A full shard sweeps at most once a second, so that a flood
		// while full costs a refusal each, not a sweep each.
		if now >= s.lastSweep+int64(time.Second) {
			for k, exp := range s.m {
				if exp <= now {
					delete(s.m, k)
				}
			}
			s.lastSweep, s.nextSweep = now, now+int64(replaySweep)
		}
		if len(s.m) >= s.cap {
			return false, ErrReplayCacheFull
		}
	}
	s.m[h] = now + int64(ttl)
	return true, nil
}

// Remember implements Replays with SET NX: the first replica to record a
// key wins, on every replica sharing the Redis.
func (r *Redis) Remember(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := r.c.SetNX(ctx, r.prefix+"sig:"+key, 1, max(ttl, time.Millisecond)).Result()
	if err != nil {
		return false, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return ok, nil
}
