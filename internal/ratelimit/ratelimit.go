// Package ratelimit limits request rates per key with GCRA (the generic
// cell rate algorithm: one timestamp per key, exact bursts), in memory for
// one process or in Redis so that N gateway replicas share one limit.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter decides whether one more request under key is allowed at rate
// requests per second with bursts of up to burst requests. When it is not,
// retryAfter says when it would be.
type Limiter interface {
	Allow(ctx context.Context, key string, rate float64, burst int) (ok bool, retryAfter time.Duration, err error)
	Close() error
}

// openers are the cache backends by URL scheme. The table is fixed: both
// backends live in this package, so there is nothing to register.
var openers = map[string]func(ctx context.Context, rawURL string) (Cache, error){
	"memory": openMemory,
	"redis":  openRedis,
	"rediss": openRedis,
}

// Schemes lists the cache URL schemes Open accepts, sorted, for config
// validation.
func Schemes() []string {
	return slices.Sorted(maps.Keys(openers))
}

// Open returns the cache for a cache URL: memory:// or
// redis://[user:pass@]host:port[/db] (rediss:// for TLS). An empty URL is
// memory://. Replicas that open the same Redis share their limits and
// attempt counts.
func Open(ctx context.Context, rawURL string) (Cache, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	scheme := u.Scheme
	if scheme == "" {
		scheme = "memory"
	}
	open := openers[scheme]
	if open == nil {
		return nil, fmt.Errorf("ratelimit: unsupported cache URL scheme %q (want one of %v)", u.Scheme, Schemes())
	}
	return open(ctx, rawURL)
}

func openMemory(context.Context, string) (Cache, error) { return NewMemory(time.Now), nil }

func openRedis(ctx context.Context, rawURL string) (Cache, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	c := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("ratelimit: connect to redis at %s: %w", opt.Addr, err)
	}
	return &Redis{c: c, prefix: "tianshu:rl:"}, nil
}

func check(rate float64, burst int) error {
	if rate <= 0 || burst < 1 {
		return errors.New("ratelimit: rate must be > 0 and burst >= 1")
	}
	return nil
}

// Memory is an in-process limiter, attempt counter and replay cache.
type Memory struct {
	now func() time.Time
	mu  sync.Mutex
	tat map[string]time.Time // theoretical arrival time per key
	att memAttempts
	rep memReplays
	// replayShardCap bounds each replay shard (replayShardCap unless a
	// test shrinks it).
	replayShardCap int
}

// NewMemory returns an in-process limiter with the given clock.
func NewMemory(now func() time.Time) *Memory {
	return &Memory{now: now, tat: map[string]time.Time{}, replayShardCap: replayShardCap}
}

// maxKeys bounds the memory limiter's map.
const maxKeys = 100_000

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	if err := check(rate, burst); err != nil {
		return false, 0, err
	}
	interval := time.Duration(float64(time.Second) / rate)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now() // under the lock, so that times only move forward
	tat, ok := m.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	if over := next.Sub(now) - time.Duration(burst)*interval; over > 0 {
		return false, over, nil
	}
	if len(m.tat) >= maxKeys {
		for k, t := range m.tat { // drop keys whose bucket is full again
			if t.Before(now) {
				delete(m.tat, k)
			}
		}
	}
	m.tat[key] = next
	return true, 0, nil
}

// Close implements Limiter.
func (m *Memory) Close() error { return nil }

// Redis is a limiter, attempt counter and replay cache shared through a Redis server. The decision runs as one
// Lua script on the server's clock, so replicas with skewed clocks agree.
type Redis struct {
	c      *redis.Client
	prefix string
}

// gcra: KEYS[1] the key; ARGV[1] interval in µs; ARGV[2] burst.
// Returns {allowed 0|1, retry-after µs}.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + interval
local over = nxt - now - burst * interval
if over > 0 then return {0, over} end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
return {1, 0}
`)

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	if err := check(rate, burst); err != nil {
		return false, 0, err
	}
	interval := int64(1e6 / rate)
	if interval < 1 {
		interval = 1
	}
	res, err := gcra.Run(ctx, r.c, []string{r.prefix + key}, interval, burst).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

// Close implements Limiter.
func (r *Redis) Close() error { return r.c.Close() }
