package push

import (
	"strings"
	"testing"
	"time"
)

// TestSignWebhookVector checks signing against the Standard Webhooks
// specification's published example.
func TestSignWebhookVector(t *testing.T) {
	key, err := secretKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := SignWebhook(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// A subscription's signer, which reuses its HMAC states, signs alike,
	// every time, and with ids of any length.
	sig := newSigner(key)
	for i := range 3 {
		if again := sig.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`)); again != got {
			t.Fatalf("signer, time %d: got %s, want %s", i+1, again, got)
		}
	}
	long := strings.Repeat("x", 300)
	if a, b := sig.sign(long, 7, []byte("b")), SignWebhook(key, long, 7, []byte("b")); a != b {
		t.Fatalf("signer with a 300-byte id: got %s, want %s", a, b)
	}
	if err := VerifyWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
		"v1,bogus "+got, []byte(`{"test": 2432232314}`), time.Unix(1614265330, 0), time.Minute); err != nil {
		t.Fatal(err)
	}
}
