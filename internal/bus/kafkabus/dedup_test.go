package kafkabus

import (
	"errors"
	"testing"
	"time"
)

func TestDedupWindow(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	w := newDedupWindow(time.Minute, 2, func() time.Time { return now })
	calls := 0
	pub := func(seq uint64) func() (uint64, error) {
		return func() (uint64, error) { calls++; return seq, nil }
	}
	check := func(what string, got uint64, err error, want uint64, wantCalls int) {
		t.Helper()
		if err != nil || got != want || calls != wantCalls {
			t.Errorf("%s: seq %d err %v after %d publishes, want seq %d after %d", what, got, err, calls, want, wantCalls)
		}
	}
	seq, err := w.publish("t", "x", pub(1))
	check("first x", seq, err, 1, 1)
	seq, err = w.publish("t", "x", pub(2))
	check("repeated x", seq, err, 1, 1)
	seq, err = w.publish("u", "x", pub(3))
	check("x on another topic", seq, err, 3, 2)

	_, err = w.publish("t", "y", func() (uint64, error) { return 0, errors.New("broker down") })
	if err == nil {
		t.Fatal("failed publish returned no error")
	}
	seq, err = w.publish("t", "y", pub(4))
	check("y after a failed publish", seq, err, 4, 3)

	// The window holds two ids: t/y pushed out t/x, and t/z pushes out
	// u/x, the oldest.
	seq, err = w.publish("t", "z", pub(5))
	check("z", seq, err, 5, 4)
	seq, err = w.publish("u", "x", pub(6))
	check("x on u after it left the window", seq, err, 6, 5)

	now = now.Add(2 * time.Minute)
	seq, err = w.publish("u", "x", pub(7))
	check("x on u after the ttl", seq, err, 7, 6)

	w.forgetTopic("u")
	seq, err = w.publish("u", "x", pub(8))
	check("x on u after the topic was deleted", seq, err, 8, 7)
}

func TestDedupWindowConcurrent(t *testing.T) {
	t.Parallel()
	w := newDedupWindow(time.Minute, 10, time.Now)
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan uint64)
	go func() {
		seq, _ := w.publish("t", "x", func() (uint64, error) {
			close(started)
			<-release
			return 9, nil
		})
		first <- seq
	}()
	<-started
	// The second publish of x must wait for the first instead of
	// publishing again.
	second := make(chan uint64)
	go func() {
		seq, _ := w.publish("t", "x", func() (uint64, error) { return 10, nil })
		second <- seq
	}()
	close(release)
	if a, b := <-first, <-second; a != 9 || b != 9 {
		t.Errorf("concurrent publishes of one id got %d and %d, want 9 twice", a, b)
	}
}
