package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// attemptsConformance: Free attempts pass, a burst of concurrent attempts
// split over two instances gets exactly Free+1 through (the first over the
// limit passes and starts the hold), the hold answers a retry time, and
// Reset and Refund give attempts back.
func attemptsConformance(t *testing.T, a, b Cache) {
	ctx := context.Background()
	bo := Backoff{Free: 5, Window: time.Minute, Base: 300 * time.Millisecond, Max: 2 * time.Second}
	key := fmt.Sprintf("att-%d", rand.Int64())
	var passed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(c Cache) {
			defer wg.Done()
			ok, retry, err := c.Attempt(ctx, key, bo)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				passed.Add(1)
			} else if retry <= 0 || retry > bo.Base {
				t.Errorf("refused with retry %v; want (0, %v]", retry, bo.Base)
			}
		}([]Cache{a, b}[i%2])
	}
	wg.Wait()
	if got := passed.Load(); got != int32(bo.Free)+1 {
		t.Fatalf("%d of 40 concurrent attempts passed; want %d", got, bo.Free+1)
	}
	// After the hold one more passes and holds twice as long.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, _, err := b.Attempt(ctx, key, bo)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hold never ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, retry, _ := a.Attempt(ctx, key, bo); ok || retry <= bo.Base || retry > 2*bo.Base {
		t.Fatalf("after the second hold: ok=%v retry=%v; want refused for (%v, %v]", ok, retry, bo.Base, 2*bo.Base)
	}
	if err := a.Reset(ctx, key); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < bo.Free; i++ {
		if ok, _, err := b.Attempt(ctx, key, bo); !ok || err != nil {
			t.Fatalf("attempt %d after Reset refused: %v", i, err)
		}
		if i < 2 {
			if err := a.Refund(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Two were refunded: two more pass free before a hold starts.
	for i := 0; i < 2; i++ {
		if ok, _, _ := a.Attempt(ctx, key, bo); !ok {
			t.Fatalf("refunded attempt %d refused", i)
		}
	}
	if ok, _, _ := a.Attempt(ctx, key, bo); !ok {
		t.Fatal("first attempt over the limit refused; it should pass and start the hold")
	}
	if ok, _, _ := b.Attempt(ctx, key, bo); ok {
		t.Fatal("attempt during the hold passed")
	}
	// Held sees the hold from either instance and counts nothing.
	for _, c := range []Cache{a, b, a} {
		if d, err := c.Held(ctx, "unheld-"+key, key); err != nil || d <= 0 || d > bo.Max {
			t.Fatalf("Held during the hold = %v, %v", d, err)
		}
	}
	if d, err := b.Held(ctx, "unheld-"+key); err != nil || d != 0 {
		t.Fatalf("Held of a fresh key = %v, %v", d, err)
	}
	if _, _, err := a.Attempt(ctx, key, Backoff{}); err == nil {
		t.Fatal("zero backoff accepted")
	}
}

func TestMemoryAttempts(t *testing.T) {
	m := NewMemory(time.Now)
	attemptsConformance(t, m, m)
}

func TestRedisAttemptsSharedAcrossInstances(t *testing.T) {
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
	attemptsConformance(t, a, b)
}

func TestBackoffHoldGrows(t *testing.T) {
	b := Backoff{Free: 3, Window: time.Hour, Base: time.Second, Max: 10 * time.Second}
	for count, want := range map[int64]time.Duration{1: 0, 3: 0, 4: time.Second, 5: 2 * time.Second, 6: 4 * time.Second, 7: 8 * time.Second, 8: 10 * time.Second, 100: 10 * time.Second} {
		if got := b.hold(count); got != want {
			t.Errorf("hold(%d) = %v, want %v", count, got, want)
		}
	}
}
