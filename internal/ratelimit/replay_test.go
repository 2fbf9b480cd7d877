package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// replaysConformance checks a and b, which share one replay cache: a key
// is fresh once, on either, until it expires.
func replaysConformance(t *testing.T, a, b Replays, wait func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	key := "AKIDtest:" + ids.Random(16, ids.Alnum)
	if ok, err := a.Remember(ctx, key, 200*time.Millisecond); err != nil || !ok {
		t.Fatalf("first Remember = %v, %v; want fresh", ok, err)
	}
	if ok, err := b.Remember(ctx, key, 200*time.Millisecond); err != nil || ok {
		t.Fatalf("second Remember = %v, %v; want a replay", ok, err)
	}
	if ok, _ := a.Remember(ctx, key+"x", time.Second); !ok {
		t.Fatal("another key is not fresh")
	}
	wait(300 * time.Millisecond)
	if ok, err := b.Remember(ctx, key, time.Second); err != nil || !ok {
		t.Fatalf("Remember after expiry = %v, %v; want fresh", ok, err)
	}
	// Concurrent copies: exactly one is fresh.
	key2 := key + ":race"
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a
			if i%2 == 1 {
				r = b
			}
			if ok, err := r.Remember(ctx, key2, time.Second); err == nil && ok {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Errorf("%d of 16 concurrent Remembers fresh, want 1", fresh.Load())
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestMemoryReplays(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	m := NewMemory(clk.now)
	replaysConformance(t, m, m, clk.add)
}

func TestRedisReplaysSharedAcrossInstances(t *testing.T) {
	testenv.NeedTCP(t, "Redis", "127.0.0.1:6379")
	a, err := Open(context.Background(), testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	replaysConformance(t, a, b, time.Sleep)
}

// A full memory cache refuses new keys (it cannot evict a live one without
// letting it be replayed) and takes them again once entries expire.
func TestMemoryReplaysFull(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	m := NewMemory(clk.now)
	m.replayShardCap = 2
	full := 0
	for i := range 200 {
		ok, err := m.Remember(ctx, "k"+strconv.Itoa(i), time.Minute)
		if errors.Is(err, ErrReplayCacheFull) {
			full++
			continue
		}
		if err != nil || !ok {
			t.Fatalf("Remember %d = %v, %v", i, ok, err)
		}
	}
	if full == 0 || full > 200-replayShards*2 {
		t.Fatalf("%d of 200 refused as full with %d slots", full, replayShards*2)
	}
	// A remembered key is still a replay, full or not.
	if ok, err := m.Remember(ctx, "k0", time.Minute); ok || err != nil {
		t.Errorf("k0 while full = %v, %v; want a replay", ok, err)
	}
	clk.add(time.Minute + time.Second)
	// Its entry expired, and the shard's others with it.
	if ok, err := m.Remember(ctx, "k0", time.Minute); !ok || err != nil {
		t.Fatalf("k0 after expiry = %v, %v; want fresh", ok, err)
	}
}

// A Redis that goes away is an error, never "fresh".
func TestRedisReplaysOutage(t *testing.T) {
	testenv.NeedTCP(t, "Redis", "127.0.0.1:6379")
	c, err := Open(context.Background(), testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if ok, err := c.Remember(context.Background(), "k", time.Second); err == nil || ok {
		t.Fatalf("Remember on a closed client = %v, %v; want an error", ok, err)
	}
}

// BenchmarkMemoryRemember is the replay cache's cost per signed request in
// memory, beside a plain mutex-guarded map insert of the same keys.
func BenchmarkMemoryRemember(b *testing.B) {
	ctx := context.Background()
	m := NewMemory(time.Now)
	var n atomic.Uint64
	b.Run("remember", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Remember(ctx, "AKIDbench:"+strconv.FormatUint(n.Add(1), 16), 10*time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	var mu sync.Mutex
	plain := map[string]int64{}
	b.Run("baseline-map", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k := "AKIDbench:" + strconv.FormatUint(n.Add(1), 16)
				mu.Lock()
				plain[k] = 1
				mu.Unlock()
			}
		})
	})
}
