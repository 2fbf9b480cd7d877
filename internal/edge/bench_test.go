package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// benchRecords makes n face-like records with increasing ids.
func benchRecords(prefix string, n int) []data.Record {
	out := make([]data.Record, n)
	now := time.Now()
	for i := range out {
		out[i] = data.Record{ID: fmt.Sprintf("rec-%s%014d", prefix, i), TaskID: "task-bench", DeviceID: "dev-bench", Type: "face",
			Time: now, Data: json.RawMessage(`{"TrackId": 17, "Box": [412, 96, 88, 88], "Quality": 0.83, "Attributes": {"age": 31}}`)}
	}
	return out
}

// BenchmarkCatchUp measures how fast an edge empties its buffer into the
// cloud after an outage (records buffered while the hub was down, then
// the hub started), against the baseline of writing the same records
// straight into the cloud's store in batches of the same size, in the
// same run: ratio = forwarded per second (from the hub's start, its
// reconnect included) / direct per second; drain-ratio leaves the
// reconnect and the first batch out.
//
//	go test -run '^$' -bench CatchUp -benchtime 3x ./internal/edge
func BenchmarkCatchUp(b *testing.B) {
	const n = 5000
	ctx := context.Background()
	var direct, forwarded, reconnect time.Duration
	for i := range b.N {
		// Baseline: the cloud's store, written directly.
		base := startCloud(b)
		recs := benchRecords(fmt.Sprintf("a%04d", i), n)
		start := time.Now()
		for lo := 0; lo < n; lo += maxBatch {
			if err := base.data.Insert(ctx, recs[lo:min(lo+maxBatch, n)]); err != nil {
				b.Fatal(err)
			}
		}
		direct += time.Since(start)

		// Catch-up: buffered on the edge during an outage, then forwarded.
		c := startCloud(b)
		_, tok := newNode(b, c, "site")
		l := startEdge(b, c, b.TempDir(), tok, nil)
		testenv.Eventually(b, 30*time.Second, "link up", l.Up)
		addr := c.hub.Addr()
		_ = c.hub.Close()
		testenv.Eventually(b, 30*time.Second, "link down", func() bool { return !l.Up() })
		recs = benchRecords(fmt.Sprintf("b%04d", i), n)
		for lo := 0; lo < n; lo += maxBatch {
			if err := l.Enqueue(ctx, recs[lo:min(lo+maxBatch, n)]); err != nil {
				b.Fatal(err)
			}
		}
		start = time.Now()
		c.startHub(b, addr)
		testenv.Eventually(b, time.Minute, "first batch forwarded", func() bool {
			_, total, _ := c.data.Records(ctx, data.Query{Limit: 1})
			return total > 0
		})
		reconnect += time.Since(start)
		testenv.Eventually(b, 5*time.Minute, "buffer forwarded", func() bool {
			left, err := l.Buffered(ctx)
			return err == nil && left == 0
		})
		forwarded += time.Since(start)
		if _, total, err := c.data.Records(ctx, data.Query{Limit: 1}); err != nil || total != n {
			b.Fatalf("cloud has %d of %d records, %v", total, n, err)
		}
	}
	directRate := float64(n*b.N) / direct.Seconds()
	fwdRate := float64(n*b.N) / forwarded.Seconds()
	b.ReportMetric(directRate, "direct-records/s")
	b.ReportMetric(fwdRate, "forwarded-records/s")
	// The drain excludes the leaf reconnect (nats-server redials every
	// second) and the first batch.
	drainRate := float64((n-maxBatch)*b.N) / (forwarded - reconnect).Seconds()
	b.ReportMetric(drainRate, "drain-records/s")
	b.ReportMetric(fwdRate/directRate, "ratio")
	b.ReportMetric(drainRate/directRate, "drain-ratio")
}
