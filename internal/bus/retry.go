package bus

import (
	"math/rand/v2"
	"time"
)

// MaxRetryDelay caps the pause between two attempts at one message
// (unless SubscribeOptions.RetryDelay is larger).
const MaxRetryDelay = 30 * time.Second

// RetryDelay is the pause after attempt (1 for the first) failed: first,
// doubled per further attempt up to MaxRetryDelay (or first if larger),
// ±20 %, so that messages that failed together do not retry in lock step.
// Backends and subscribers that retry in place share it.
func RetryDelay(first time.Duration, attempt int) time.Duration {
	limit := max(MaxRetryDelay, first)
	d := first
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
