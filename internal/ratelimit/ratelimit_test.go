package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// conformance: a burst passes, the next request waits about one interval,
// and the key frees up again later.
func conformance(t *testing.T, a, b Limiter) {
	ctx := context.Background()
	key := fmt.Sprintf("test-%d", rand.Int64())
	for i := 0; i < 3; i++ {
		ok, _, err := a.Allow(ctx, key, 0.5, 3)
		if err != nil || !ok {
			t.Fatalf("burst request %d refused: %v", i, err)
		}
	}
	ok, retry, err := b.Allow(ctx, key, 0.5, 3) // the other instance sees the same key
	if err != nil || ok || retry <= 0 || retry > 2*time.Second {
		t.Fatalf("4th request: ok=%v retry=%v err=%v; want refused with retry in (0, 2s]", ok, retry, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, _, _ := a.Allow(ctx, key, 0.5, 3); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key never freed up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, err := a.Allow(ctx, key, 0, 1); err == nil {
		t.Fatal("rate 0 accepted")
	}
}

func TestMemory(t *testing.T) {
	m := NewMemory(time.Now)
	conformance(t, m, m)
}

func TestRedisSharedAcrossInstances(t *testing.T) {
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
	conformance(t, a, b)
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(context.Background(), "memcache://x"); err == nil {
		t.Fatal("memcache accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Open(ctx, "redis://127.0.0.1:1/0"); err == nil {
		t.Fatal("unreachable redis accepted")
	}
}

func TestSchemes(t *testing.T) {
	if got, want := Schemes(), []string{"memory", "redis", "rediss"}; !slices.Equal(got, want) {
		t.Fatalf("Schemes() = %v, want %v", got, want)
	}
	if _, err := Open(t.Context(), "memcache://x"); err == nil {
		t.Fatal("Open accepted memcache://")
	}
	l, err := Open(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
}
