package iam_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// The queue appends in batches, in order, with the chain whole; reads
// through the Audit see every event queued before them; Close appends
// what is left.
func TestAuditQueue(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := iam.NewAudit(db, newClock().now)
		if a.Auditor() != a {
			t.Error("Auditor before StartQueue is not the Audit")
		}
		q := a.StartQueue(nil)
		if a.Auditor() != q {
			t.Error("Auditor after StartQueue is not the queue")
		}
		const workers, each = 4, 150
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if err := q.Record(ctx, event(w*each+i, fmt.Sprint("prj-", w))); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		recs, err := a.List(ctx, "prj-1", 0, 1000) // waits for the queue
		if err != nil || len(recs) != each {
			t.Fatalf("List = %d events, %v; want %d", len(recs), err, each)
		}
		for i, r := range recs {
			if r.Resource != fmt.Sprint("thing-", each+i) {
				t.Fatalf("event %d of prj-1 is %s: out of order", i, r.Resource)
			}
		}
		if err := q.Record(ctx, event(0, "late")); err != nil {
			t.Fatal(err)
		}
		if err := q.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := a.Verify(ctx); err != nil || n != workers*each+1 {
			t.Fatalf("Verify = %d, %v; want %d", n, err, workers*each+1)
		}
		if err := q.Record(ctx, event(1, "closed")); err == nil {
			t.Error("Record after Close: no error")
		}
	})
}
