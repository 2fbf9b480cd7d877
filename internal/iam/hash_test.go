package iam

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// referenceHash is eventHash as first written (a field at a time into the
// hash), kept to check that the chain's hashes do not change: every
// stored chain must still verify.
func referenceHash(prev string, seq, ms int64, e api.AuditEvent) string {
	h := sha256.New()
	for _, f := range []string{prev, strconv.FormatInt(seq, 10), strconv.FormatInt(ms, 10), e.ProjectID, e.Actor,
		e.Action, e.Resource, e.Result, e.SourceIP, e.RequestID, e.Detail} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

var hashEvents = []api.AuditEvent{
	{},
	{ProjectID: "default", Actor: "app:app-1", Action: "ModifyApp", Resource: "app-1", Result: "OK",
		SourceIP: "127.0.0.1", RequestID: "req-1", Detail: `{"AppId":"app-1","Description":"benchmark"}`},
	{ProjectID: "项目", Actor: "user:ü", Action: "X", Detail: strings.Repeat("d", 4096)}, // past the stack buffer
}

func TestEventHashUnchanged(t *testing.T) {
	for i, e := range hashEvents {
		for _, seq := range []int64{1, 42, 1 << 40} {
			if got, want := eventHash("prev", seq, 1700000000123, e), referenceHash("prev", seq, 1700000000123, e); got != want {
				t.Fatalf("event %d seq %d: hash %s, was %s", i, seq, got, want)
			}
		}
	}
}

// BenchmarkEventHash reports eventHash's time for a typical event and
// its ratio to the reference's, measured in the same run, alternately.
func BenchmarkEventHash(b *testing.B) {
	e := hashEvents[1]
	var tNew, tRef time.Duration
	for i := range b.N {
		start := time.Now()
		eventHash("prev", int64(i), 1700000000123, e)
		mid := time.Now()
		referenceHash("prev", int64(i), 1700000000123, e)
		tNew, tRef = tNew+mid.Sub(start), tRef+time.Since(mid)
	}
	b.ReportMetric(float64(tNew.Nanoseconds())/float64(b.N), "ns/hash")
	b.ReportMetric(float64(tRef.Nanoseconds())/float64(b.N), "ns/reference-hash")
	b.ReportMetric(float64(tNew)/float64(tRef), "ratio")
}
