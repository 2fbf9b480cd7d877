package push

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// SignWebhook returns the webhook-signature header value for a message, per
// the Standard Webhooks specification: "v1," + base64 of HMAC-SHA256 over
// id + "." + timestamp + "." + body, keyed with the secret's key bytes.
func SignWebhook(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signer signs one subscription's webhooks as SignWebhook does, reusing
// HMAC states keyed once instead of keying one per webhook.
type signer struct{ pool sync.Pool }

func newSigner(key []byte) *signer {
	s := &signer{}
	s.pool.New = func() any { return hmac.New(sha256.New, key) }
	return s
}

func (s *signer) sign(id string, ts int64, body []byte) string {
	m := s.pool.Get().(hash.Hash)
	defer s.pool.Put(m)
	m.Reset()
	var pre [128]byte
	b := append(pre[:0], id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, ts, 10)
	m.Write(append(b, '.'))
	m.Write(body)
	var sum [sha256.Size]byte
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(sum[:0]))
}

// VerifyWebhook checks a webhook's signature headers against a whsec_
// secret, with a tolerance on the timestamp. The signature header may hold
// several space-separated signatures (during secret rotation); one valid
// one suffices.
func VerifyWebhook(secret, id, timestamp, signatures string, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("bad webhook-timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp outside the tolerance")
	}
	want := SignWebhook(key, id, ts, body)
	for _, sig := range strings.Fields(signatures) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no valid signature")
}

// Stream credentials, as gRPC metadata or HTTP headers; SSE also takes them
// as query parameters secret_id, timestamp (or expires) and signature.
const (
	MetaSecretID  = "x-tianshu-secret-id"
	MetaTimestamp = "x-tianshu-timestamp"
	MetaExpires   = "x-tianshu-expires"
	MetaSignature = "x-tianshu-signature"
)

// StreamWindow is how far a stream signature's timestamp may be from the
// server's clock; MaxExpiry how far in the future an expires may be.
const (
	StreamWindow = 5 * time.Minute
	MaxExpiry    = 24 * time.Hour
)

// SignStream returns the signature a stream client sends for a
// subscription: lowercase hex HMAC-SHA256(SecretKey, subscriptionID + "." +
// value), value being the timestamp or the expiry in unix seconds.
func SignStream(secretKey, subscriptionID string, value int64) string {
	m := hmac.New(sha256.New, []byte(secretKey))
	m.Write([]byte(subscriptionID + "." + strconv.FormatInt(value, 10)))
	return hex.EncodeToString(m.Sum(nil))
}
