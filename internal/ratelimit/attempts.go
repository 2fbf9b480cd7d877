package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Backoff is how Attempts answers repeated attempts under one key: Free
// attempts pass; each one after them passes too but holds the key for
// Base, doubling with every further attempt up to Max, so that only one
// attempt per hold gets through. A key's count is forgotten Window after
// its last attempt.
type Backoff struct {
	Free   int
	Window time.Duration
	Base   time.Duration
	Max    time.Duration
}

func (b Backoff) check() error {
	if b.Free < 1 || b.Window <= 0 || b.Base <= 0 || b.Max < b.Base {
		return errors.New("ratelimit: backoff needs Free >= 1, Window > 0 and 0 < Base <= Max")
	}
	return nil
}

// hold returns how long the count-th attempt holds its key (0 for a free one).
func (b Backoff) hold(count int64) time.Duration {
	over := count - int64(b.Free)
	if over <= 0 {
		return 0
	}
	d := b.Base
	for i := int64(1); i < over && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Attempts counts attempts per key (failed logins, per user and per source
// address) and holds keys that had too many, with a back-off that grows.
// Attempts are counted when they start, before the caller knows whether
// they succeed, so that a burst of concurrent attempts, on one process or
// on replicas sharing Redis, gets at most Free of them through before the
// first hold; Reset or Refund gives back what a success should not cost.
type Attempts interface {
	// Attempt counts one attempt under key. ok is false while the key is
	// held; retryAfter then says for how long. A passing attempt may start
	// a hold for the attempts after it.
	Attempt(ctx context.Context, key string, b Backoff) (ok bool, retryAfter time.Duration, err error)
	// Refund takes back one counted attempt (a success that should not count
	// against a shared key, such as a source address).
	Refund(ctx context.Context, key string) error
	// Reset forgets key: its count and any hold.
	Reset(ctx context.Context, key string) error
	// Held returns how much longer the longest hold of keys lasts (0 when
	// none is held), counting nothing: a check that may come before every
	// request without costing it an attempt.
	Held(ctx context.Context, keys ...string) (time.Duration, error)
}

// Cache is what a cache URL opens: request rate limits, attempt counts
// and the replay cache of request signatures.
type Cache interface {
	Limiter
	Attempts
	Replays
}

type attemptState struct {
	count  int64
	until  time.Time // held until
	expire time.Time // forgotten at
}

// memAttempts is the in-process Attempts of Memory.
type memAttempts struct {
	mu sync.Mutex
	m  map[string]*attemptState
	// holdsEnd is when the last hold started so far ends (Unix ns; set
	// under mu): before it no key can be held.
	holdsEnd atomic.Int64
}

// MayHold reports whether a key may be held now. It is false when no hold
// was ever started, or the last one has ended: then Held answers 0 for
// every key, and a caller checking every request (the gateway) need not
// build keys nor take the lock to ask.
func (m *Memory) MayHold() bool {
	return m.att.holdsEnd.Load() > m.now().UnixNano()
}

// Attempt implements Attempts.
func (m *Memory) Attempt(_ context.Context, key string, b Backoff) (bool, time.Duration, error) {
	if err := b.check(); err != nil {
		return false, 0, err
	}
	// The clock is read under the lock: a time read before it could be
	// older than a hold another attempt set meanwhile, and see a free
	// attempt as held.
	m.att.mu.Lock()
	defer m.att.mu.Unlock()
	now := m.now()
	if m.att.m == nil {
		m.att.m = map[string]*attemptState{}
	}
	s := m.att.m[key]
	if s == nil || !now.Before(s.expire) {
		if len(m.att.m) >= maxKeys {
			for k, v := range m.att.m {
				if !now.Before(v.expire) {
					delete(m.att.m, k)
				}
			}
		}
		s = &attemptState{}
		m.att.m[key] = s
	}
	if now.Before(s.until) {
		return false, s.until.Sub(now), nil
	}
	s.count++
	hold := b.hold(s.count)
	s.until = now.Add(hold)
	s.expire = now.Add(max(b.Window, hold))
	if hold > 0 && s.until.UnixNano() > m.att.holdsEnd.Load() {
		m.att.holdsEnd.Store(s.until.UnixNano())
	}
	return true, 0, nil
}

// Refund implements Attempts.
func (m *Memory) Refund(_ context.Context, key string) error {
	m.att.mu.Lock()
	defer m.att.mu.Unlock()
	if s := m.att.m[key]; s != nil && s.count > 0 {
		s.count--
	}
	return nil
}

// Held implements Attempts.
func (m *Memory) Held(_ context.Context, keys ...string) (time.Duration, error) {
	m.att.mu.Lock()
	defer m.att.mu.Unlock()
	now := m.now()
	var d time.Duration
	for _, k := range keys {
		if s := m.att.m[k]; s != nil && now.Before(s.until) {
			d = max(d, s.until.Sub(now))
		}
	}
	return d, nil
}

// Reset implements Attempts.
func (m *Memory) Reset(_ context.Context, key string) error {
	m.att.mu.Lock()
	defer m.att.mu.Unlock()
	delete(m.att.m, key)
	return nil
}

// attempt: KEYS[1] the key (a hash: c the count, u held-until µs);
// ARGV free, window µs, base µs, max µs. Returns {ok 0|1, retry-after µs}.
// It runs on the server's clock, so replicas with skewed clocks agree.
var attempt = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local free, window, base, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local held = tonumber(redis.call('HGET', KEYS[1], 'u') or '0')
if held > now then return {0, held - now} end
local c = redis.call('HINCRBY', KEYS[1], 'c', 1)
local hold = 0
if c > free then
  hold = base
  local i = 1
  while i < c - free and hold < cap do hold = hold * 2; i = i + 1 end
  if hold > cap then hold = cap end
end
redis.call('HSET', KEYS[1], 'u', string.format('%.0f', now + hold))
redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(window, hold) / 1000))
return {1, 0}
`)

var refund = redis.NewScript(`
local c = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
if c > 0 then redis.call('HINCRBY', KEYS[1], 'c', -1) end
return 0
`)

// held: KEYS the keys; returns the longest remaining hold in µs (0: none).
var held = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local d = 0
for _, k in ipairs(KEYS) do
  local u = tonumber(redis.call('HGET', k, 'u') or '0')
  if u - now > d then d = u - now end
end
return d
`)

// Held implements Attempts. The keys go in one script, one round trip.
func (r *Redis) Held(ctx context.Context, keys ...string) (time.Duration, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = r.prefix + "att:" + k
	}
	d, err := held.Run(ctx, r.c, ks).Int64()
	if err != nil {
		return 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return time.Duration(d) * time.Microsecond, nil
}

// Attempt implements Attempts.
func (r *Redis) Attempt(ctx context.Context, key string, b Backoff) (bool, time.Duration, error) {
	if err := b.check(); err != nil {
		return false, 0, err
	}
	res, err := attempt.Run(ctx, r.c, []string{r.prefix + "att:" + key}, b.Free, b.Window.Microseconds(), b.Base.Microseconds(), b.Max.Microseconds()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

// Refund implements Attempts.
func (r *Redis) Refund(ctx context.Context, key string) error {
	if err := refund.Run(ctx, r.c, []string{r.prefix + "att:" + key}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("ratelimit: redis: %w", err)
	}
	return nil
}

// Reset implements Attempts.
func (r *Redis) Reset(ctx context.Context, key string) error {
	if err := r.c.Del(ctx, r.prefix+"att:"+key).Err(); err != nil {
		return fmt.Errorf("ratelimit: redis: %w", err)
	}
	return nil
}
