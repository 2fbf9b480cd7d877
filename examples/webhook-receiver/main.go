// Command webhook-receiver is a minimal receiver of Tianshu webhooks: it
// verifies each request's Standard Webhooks signature and prints the
// CloudEvent. It needs nothing but the Go standard library, so it can be
// copied into any project.
//
//	go run ./examples/webhook-receiver -addr :9000 -secret whsec_…
//
// Point a subscription at it:
//
//	tianshu ctl CreateSubscription --Channel '{"Type":"webhook","Webhook":{"Url":"http://host:9000/"}}'
//
// and start it with the Secret the response returns (or pass TIANSHU_WEBHOOK_SECRET).
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// tolerance is how old (or how far ahead) a webhook-timestamp may be;
// older messages are refused as possible replays.
const tolerance = 5 * time.Minute

func main() {
	addr := flag.String("addr", ":9000", "address to listen on")
	secret := flag.String("secret", os.Getenv("TIANSHU_WEBHOOK_SECRET"), "the subscription's secret (whsec_…)")
	flag.Parse()
	key, err := decodeSecret(*secret)
	if err != nil {
		log.Fatalf("-secret: %v", err)
	}
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		id := r.Header.Get("webhook-id")
		if err := verify(key, id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now()); err != nil {
			log.Printf("refused %s: %v", id, err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev struct {
			ID      string          `json:"id"`
			Type    string          `json:"type"`
			Subject string          `json:"subject"`
			Time    string          `json:"time"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "not a CloudEvent", http.StatusBadRequest)
			return
		}
		// Delivery is at least once: deduplicate by ev.ID where it matters.
		fmt.Printf("%s %s %s %s %s\n", ev.Time, ev.Subject, ev.Type, ev.ID, ev.Data)
		w.WriteHeader(http.StatusNoContent) // any 2xx acknowledges
	})
	log.Printf("listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// decodeSecret returns the key bytes of a "whsec_" + base64 secret.
func decodeSecret(s string) ([]byte, error) {
	if !strings.HasPrefix(s, "whsec_") {
		return nil, errors.New(`must start with "whsec_"`)
	}
	return base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
}

// verify checks a Standard Webhooks signature: the header holds one or more
// space-separated "v1,<base64>" signatures of id.timestamp.body.
func verify(key []byte, id, timestamp, signatures string, body []byte, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("missing or bad webhook-timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp too old or too new")
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts)
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(signatures) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no valid signature")
}
