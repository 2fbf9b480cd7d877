package bus

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestValidateTopic(t *testing.T) {
	for _, ok := range []string{"a", "0", "tasks.t-1.results", "a_b-c", "a.b.c", strings.Repeat("x", MaxTopicLen)} {
		if err := ValidateTopic(ok); err != nil {
			t.Errorf("ValidateTopic(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "A", "a b", ".a", "a.", "a..b", "-a", "_a", "a*", "a>", "a/b", "é", strings.Repeat("x", MaxTopicLen+1)} {
		if err := ValidateTopic(bad); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ValidateTopic(%q) = %v, want ErrInvalidTopic", bad, err)
		}
	}
}

func TestValidateDurable(t *testing.T) {
	for _, ok := range []string{"a", "Push-Gateway_1", strings.Repeat("D", MaxDurableLen)} {
		if err := ValidateDurable(ok); err != nil {
			t.Errorf("ValidateDurable(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a b", "-a", "a*", "é", strings.Repeat("D", MaxDurableLen+1)} {
		if err := ValidateDurable(bad); !errors.Is(err, ErrInvalidDurable) {
			t.Errorf("ValidateDurable(%q) = %v, want ErrInvalidDurable", bad, err)
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, ok := range []string{"", "dev-3k9x2m7q", "task-7f2a:frame-000123", "摄像头 1", strings.Repeat("k", MaxKeyLen)} {
		if err := ValidateKey(ok); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"a\nb", "a\tb", "\x00", string([]byte{0xff}), strings.Repeat("k", MaxKeyLen+1)} {
		if err := ValidateKey(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}
}

func TestValidateHeader(t *testing.T) {
	for _, ok := range [][2]string{{"id", "evt-1"}, {"traceparent", "00-ab-cd-01"}, {"ce-type", "a\tb"}, {"X.Y_z", ""}} {
		if err := ValidateHeader(ok[0], ok[1]); err != nil {
			t.Errorf("ValidateHeader(%q, %q) = %v, want nil", ok[0], ok[1], err)
		}
	}
	for _, bad := range [][2]string{{"", "v"}, {"a b", "v"}, {"a:b", "v"}, {"Nats-Msg-Id", "x"}, {"TIANSHU-KEY", "x"}, {"ok", "a\r\nb"}, {strings.Repeat("h", MaxHeaderLen+1), ""}} {
		if err := ValidateHeader(bad[0], bad[1]); !errors.Is(err, ErrInvalidHeader) {
			t.Errorf("ValidateHeader(%q, %q) = %v, want ErrInvalidHeader", bad[0], bad[1], err)
		}
	}
}

func TestRegistry(t *testing.T) {
	// The registry is process-wide, so this test uses a scheme of its own.
	const scheme = "bus-registry-test"
	var gotURL *url.URL
	Register(scheme, func(_ context.Context, u *url.URL, _ Options) (Bus, error) {
		gotURL = u
		return nil, errors.New("test factory")
	})
	if _, err := Open(context.Background(), scheme+"://x?y=1", Options{}); err == nil || err.Error() != "test factory" {
		t.Fatalf("Open = %v, want the factory's error", err)
	}
	if gotURL == nil || gotURL.Host != "x" || gotURL.Query().Get("y") != "1" {
		t.Fatalf("factory got URL %v", gotURL)
	}
	found := false
	for _, s := range Schemes() {
		found = found || s == scheme
	}
	if !found {
		t.Errorf("Schemes() = %v, missing %s", Schemes(), scheme)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("second Register of a scheme did not panic")
			}
		}()
		Register(scheme, func(context.Context, *url.URL, Options) (Bus, error) { return nil, nil })
	}()
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(context.Background(), "nobackend://h", Options{})
	if err == nil || !strings.Contains(err.Error(), `"nobackend"`) {
		t.Errorf("Open with an unknown scheme = %v, want an error naming it", err)
	}
	_, err = Open(context.Background(), "nats://user:secret@h:bad port", Options{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Open of a bad URL = %v, want an error without the password", err)
	}
}

func TestRetryDelay(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 30: MaxRetryDelay} {
		got := RetryDelay(100*time.Millisecond, attempt)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("RetryDelay(attempt %d) = %v, want %v ±20%%", attempt, got, want)
		}
	}
	if got := RetryDelay(time.Minute, 3); got < 48*time.Second || got > 72*time.Second {
		t.Errorf("RetryDelay(1m, 3) = %v, want 1m ±20%%", got)
	}
}
