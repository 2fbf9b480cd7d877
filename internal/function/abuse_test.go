package function

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The abuses of issue #26: each must end within its budget with a
// LimitError naming the limit, whether it runs in main or at top level.
func TestAbuseIsBounded(t *testing.T) {
	tests := []struct {
		name  string
		body  string // statements; run as main's body and as top-level code
		limit string
	}{
		{"list of large strings", "x = ['a' * 1000000 for i in range(300)]", "memory"},
		{"list of split results", "s = 'a,' * 1000000\nx = [s.split(',') for i in range(10)]", "memory"},
		{"list of copies", "s = 'a' * 3000000\nx = [s.upper() for i in range(100)]", "memory"},
		{"list of slices", "l = list(range(200000))\nx = [l[1:] for i in range(100)]", "memory"},
		{"json.decode of many lists", "x = json.decode('[' + '[],' * 1000000 + '[]]')", "memory"},
		{"int of a long string", "x = int('9' * 1000000)", "int-size"},
		{"json.decode of a long number", "x = json.decode('9' * 1000000)", "int-size"},
		{"bigint squaring", "x = 3\nfor i in range(40):\n    x = x * x", "int-size"},
		{"bigint shifting", "x = 1\nfor i in range(1000000):\n    x = x << 500", "int-size"},
		{"slow steps", "l = list(range(1000000))\nfor i in range(100000):\n    x = -1 in l", "time"},
	}
	for _, tc := range tests {
		for _, where := range []string{"main", "top level"} {
			t.Run(tc.name+"/"+where, func(t *testing.T) {
				src := tc.body + "\ndef main(input):\n    return 1\n"
				if where == "main" {
					src = "def main(input):\n    " + strings.ReplaceAll(tc.body, "\n", "\n    ") + "\n    return 1\n"
				}
				// The limit named is the proof that the script was stopped by
				// it (no timing: the machine may be loaded). Only the "time"
				// case runs under the default time limit; the others get a
				// minute, so that a slow machine cannot stop them by time first.
				limits := Limits{MaxDuration: time.Minute}
				if tc.limit == "time" {
					limits = Limits{}
				}
				var err error
				if p, cerr := Compile("t", src, limits); cerr != nil {
					err = cerr
				} else {
					_, err = p.Call(context.Background(), nil, nil)
				}
				var le *LimitError
				if !errors.As(err, &le) || le.Limit != tc.limit {
					t.Fatalf("err = %v, want the %s limit", err, tc.limit)
				}
				if !strings.Contains(err.Error(), tc.limit) || !strings.Contains(err.Error(), `"t"`) {
					t.Errorf("message %q should name the program and the limit", err)
				}
			})
		}
	}
}

// Two concurrent calls building lists of large strings must keep the heap
// within a stated bound: each call's memory budget (64 MiB by default)
// stops it long before it matters. The sampler cancels the calls if the
// bound is passed, so the test fails without exhausting the machine.
func TestConcurrentMemoryBound(t *testing.T) {
	const bound = 256 << 20
	// The time limit is far off: fresh memory costs about 13 ms per MiB on
	// some machines here, and the memory limit must be what stops the calls.
	p := mustCompile(t, "def main(input):\n    x = ['a' * 1000000 for i in range(10000)]\n    return len(x)", Limits{MaxDuration: 20 * time.Second})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			if peak.Load() > bound {
				cancel()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.Call(ctx, nil, nil)
		}()
	}
	wg.Wait()
	close(done)
	if peak.Load() > bound {
		t.Errorf("heap grew by %d MiB, want at most %d MiB", peak.Load()>>20, bound>>20)
	}
	for _, err := range errs {
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != "memory" {
			t.Errorf("err = %v, want the memory limit", err)
		}
	}
	t.Logf("heap peak %d MiB over the baseline", peak.Load()>>20)
}

// A call whose context ends (the client went away) stops promptly even
// when its limits would let it run for an hour, in main and at top level.
func TestCancelStopsRunningScript(t *testing.T) {
	p := mustCompile(t, "def main(input):\n    l = list(range(1000000))\n    while True:\n        x = -1 in l", Limits{MaxSteps: 1 << 62, MaxDuration: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Call(ctx, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	// A hang guard, not a timing target: without the cancellation it would
	// run for an hour.
	if took := time.Since(start); took > time.Minute {
		t.Fatalf("took %v after the context ended at 50ms", took)
	}
}
