package function

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// A project's calls beyond the gate's cap wait, then fail with the
// concurrency limit; another project's calls are not held up.
func TestGateCapsCallsPerProject(t *testing.T) {
	g := NewGate(2)
	spin := "def main(input):\n    while True:\n        pass"
	a := mustCompile(t, spin, Limits{Gate: g, GateKey: "prj-a", MaxSteps: 1 << 62, MaxDuration: 300 * time.Millisecond, MaxMemoryBytes: 1 << 40})
	quickA := mustCompile(t, "def main(input):\n    return 1", Limits{Gate: g, GateKey: "prj-a", MaxDuration: 50 * time.Millisecond})
	quickB := mustCompile(t, "def main(input):\n    return 1", Limits{Gate: g, GateKey: "prj-b", MaxDuration: 50 * time.Millisecond})
	done := make(chan error, 2)
	for range 2 {
		go func() { _, err := a.Call(context.Background(), nil, nil); done <- err }()
	}
	// Wait until both spinners hold their slots.
	testenv.Eventually(t, 5*time.Second, "both spinners hold a slot", func() bool { return len(g.slots("prj-a")) == 2 })
	if _, err := quickB.Call(context.Background(), nil, nil); err != nil {
		t.Fatalf("another project's call: %v", err)
	}
	_, err := quickA.Call(context.Background(), nil, nil)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitConcurrency || !strings.Contains(err.Error(), "2 calls at once per project") {
		t.Fatalf("err = %v, want the concurrency limit", err)
	}
	<-done
	<-done
	if _, err := quickA.Call(context.Background(), nil, nil); err != nil {
		t.Fatalf("after the spinners ended: %v", err)
	}
}

// Top-level code stops when the compiling caller goes away.
func TestCompileContextCancels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := CompileContext(ctx, "t", "while True:\n    pass\ndef main(input):\n    return 1", Limits{MaxSteps: 1 << 62, MaxDuration: time.Hour, MaxMemoryBytes: 1 << 40})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 300*time.Millisecond {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestCheckRunsNothing(t *testing.T) {
	for _, src := range []string{
		"fail('ran')\ndef main(input):\n    return 1",
		"while True:\n    pass\ndef main(input, params):\n    return 1",
		"def f(input):\n    return 1\nmain = f",
	} {
		if _, err := Check("t", src, Limits{}); err != nil {
			t.Errorf("Check(%q) = %v", src, err)
		}
		p, _ := Check("t", src, Limits{})
		var se *ScriptError
		if _, err := p.Call(context.Background(), nil, nil); !errors.As(err, &se) {
			t.Errorf("calling a checked program: %v", err)
		}
	}
	for src, want := range map[string]string{
		"load('os', 'x')\ndef main(input):\n    return 1": "load() is not allowed",
		"def main(input):\n    return open('x')":          "undefined: open",
		"x = 1":                                           "must define main",
		"def main(a, b, c):\n    return 1":                "main must take",
		"def main(*args):\n    return 1":                  "main must take",
		"__add = 1\ndef main(input):\n    return 1":       "reserved",
	} {
		if _, err := Check("t", src, Limits{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want %q", src, err, want)
		}
	}
}

// Slices keep Python's semantics through the guard.
func TestSliceSemantics(t *testing.T) {
	p := mustCompile(t, `def main(input):
    l = [0, 1, 2, 3, 4, 5]
    s = "abcdef"
    return [l[1:], l[:2], l[::2], l[::-1], l[-2:], l[4:1], l[4:1:-1], l[10:], l[-10:2], s[1:3], s[::-2], s[5:0:-2], (1, 2, 3)[1:]]`, Limits{})
	got, err := p.Call(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	i := func(v ...int64) []any {
		out := make([]any, len(v))
		for k, x := range v {
			out[k] = x
		}
		return out
	}
	want := []any{i(1, 2, 3, 4, 5), i(0, 1), i(0, 2, 4), i(5, 4, 3, 2, 1, 0), i(4, 5), i(), i(4, 3, 2), i(), i(0, 1), "bc", "fdb", "fdb", i(2, 3)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}
