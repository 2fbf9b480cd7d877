package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"
)

// TestVerify checks the receiver against a signature computed the way the
// Standard Webhooks specification describes it.
func TestVerify(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"id":"e1"}`)
	now := time.Unix(1795949290, 0)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("e1.1795949290." + string(body)))
	sig := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if err := verify(key, "e1", "1795949290", "v1,bogus "+sig, body, now); err != nil {
		t.Fatal(err)
	}
	if verify(key, "e1", "1795949290", sig, []byte(`{"id":"e2"}`), now) == nil {
		t.Fatal("tampered body accepted")
	}
	if verify(key, "e1", "1795949290", sig, body, now.Add(time.Hour)) == nil {
		t.Fatal("stale timestamp accepted")
	}
	k, err := decodeSecret("whsec_" + base64.StdEncoding.EncodeToString(key))
	if err != nil || string(k) != string(key) {
		t.Fatal("decodeSecret", err)
	}
}
