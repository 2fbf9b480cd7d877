package iam_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

var checkpointKey = bytes.Repeat([]byte{7}, 32)

// recordN appends n events one second apart; event i (from 1) fails with
// AuthFailure.UnauthorizedOperation when i is a multiple of 3.
func recordN(t *testing.T, a *iam.Audit, clk *clock, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		clk.add(time.Second)
		e := event(i, "default")
		if i%3 == 0 {
			e.Result = string(api.AuthFailureUnauthorizedOperation)
		}
		if err := a.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func check(t *testing.T, a *iam.Audit) iam.VerifyResult {
	t.Helper()
	res, err := a.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wantBroken(t *testing.T, res iam.VerifyResult, seq int64, reason string) {
	t.Helper()
	if res.Valid || res.BrokenSeq != seq || res.Reason != reason {
		t.Errorf("Check = valid %v, broken at %d (%s); want broken at %d (%s)", res.Valid, res.BrokenSeq, res.Reason, seq, reason)
	}
}

// exec runs a statement straight on the database, as someone with access
// to it (and not to the master key) would.
func exec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		a := iam.NewAudit(db, clk.now)
		recordN(t, a, clk, 9)
		res := check(t, a)
		if !res.Valid || res.Checked != 9 || res.HeadSeq != 9 || len(res.HeadHash) != 64 || !res.Checkpoint.IsZero() {
			t.Fatalf("Check of a whole chain = %+v", res)
		}

		// Someone hides a denial by rewriting its result.
		exec(t, db, "UPDATE audit_events SET result = 'OK' WHERE seq = 6")
		wantBroken(t, check(t, a), 6, iam.BreakHash)
		exec(t, db, "UPDATE audit_events SET result = ? WHERE seq = 6", string(api.AuthFailureUnauthorizedOperation))
		if res := check(t, a); !res.Valid {
			t.Fatalf("restored row: %+v", res)
		}

		// Recomputing the edited row's hash moves the break to the next row.
		var prev string
		if err := db.QueryRow(context.Background(), "SELECT hash FROM audit_events WHERE seq = 4").Scan(&prev); err != nil {
			t.Fatal(err)
		}
		exec(t, db, "UPDATE audit_events SET prev_hash = ? WHERE seq = 6", prev)
		wantBroken(t, check(t, a), 6, iam.BreakPrevHash)
	})
}

func TestAuditVerifyFindsRemovals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		a := iam.NewAudit(db, clk.now)
		recordN(t, a, clk, 9)
		// A row in the middle...
		exec(t, db, "DELETE FROM audit_events WHERE seq = 5")
		res := check(t, a)
		wantBroken(t, res, 5, iam.BreakMissing)
		if res.Checked != 4 {
			t.Errorf("checked %d events before the break, want 4", res.Checked)
		}
		if _, err := a.Verify(context.Background()); err == nil || err.Error() != "iam: audit chain broken at event 5: missing row" {
			t.Errorf("Verify = %v", err)
		}
	})
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		a := iam.NewAudit(db, clk.now)
		recordN(t, a, clk, 9)
		// ...and the newest rows, which no later row links to: the head
		// still names them.
		exec(t, db, "DELETE FROM audit_events WHERE seq >= 8")
		wantBroken(t, check(t, a), 8, iam.BreakMissing)
		// Rewinding the head too needs its hash to match the row.
		exec(t, db, "UPDATE audit_head SET seq = 7 WHERE id = 1")
		wantBroken(t, check(t, a), 7, iam.BreakHead)
	})
}

func TestAuditTruncateAndCheckpoint(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := newClock()
		a := iam.NewAudit(db, clk.now, iam.WithCheckpointKey(checkpointKey))
		recordN(t, a, clk, 10) // events at 12:00:01 .. 12:00:10
		if _, err := a.Truncate(ctx, clk.now().Add(-time.Hour), iam.TruncateBatch); err != nil {
			t.Fatal(err)
		}
		if res := check(t, a); !res.Valid || res.Checked != 10 || !res.Checkpoint.IsZero() {
			t.Fatalf("nothing old enough: %+v", res)
		}

		// Everything before 12:00:07 goes: events 1..6.
		clk.add(time.Minute)
		cutoff := time.Date(2026, 5, 4, 12, 0, 7, 0, time.UTC)
		tr, err := a.Truncate(ctx, cutoff, iam.TruncateBatch)
		if err != nil || tr.ThroughSeq != 6 || tr.Deleted != 6 {
			t.Fatalf("Truncate = %+v, %v; want through 6, 6 deleted", tr, err)
		}
		res := check(t, a)
		if !res.Valid || res.Checked != 5 || res.Checkpoint.Seq != 6 || res.HeadSeq != 11 {
			t.Fatalf("Check after truncation = %+v; want valid, 5 checked (7..11), checkpoint 6", res)
		}
		recs, err := a.List(ctx, "", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 5 || recs[0].Seq != 7 {
			t.Fatalf("remaining events %d from %d", len(recs), recs[0].Seq)
		}
		// The truncation is an event of its own.
		last := recs[4]
		if last.Actor != "system" || last.Action != "TruncateAuditLog" || last.Resource != "audit" || last.Result != "OK" ||
			last.Detail != `{"Cutoff":"2026-05-04T12:00:07Z","Deleted":6,"ThroughSeq":6}` {
			t.Errorf("truncation event %+v", last)
		}
		// Appends continue the chain.
		recordN(t, a, clk, 2)
		if res := check(t, a); !res.Valid || res.Checked != 7 {
			t.Fatalf("Check after more appends = %+v", res)
		}

		// A batch bounds one truncation; the next picks up after it.
		clk.add(time.Hour)
		tr, err = a.Truncate(ctx, clk.now(), 3)
		if err != nil || tr.ThroughSeq != 9 || tr.Deleted != 3 {
			t.Fatalf("batched Truncate = %+v, %v", tr, err)
		}
		if res := check(t, a); !res.Valid || res.Checkpoint.Seq != 9 {
			t.Fatalf("Check after a batch = %+v", res)
		}

		cp, err := a.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		restore := func() {
			exec(t, db, "UPDATE audit_checkpoint SET seq = ?, hash = ?, time_ms = ?, mac = ? WHERE id = 1", cp.Seq, cp.Hash, cp.Time.UnixMilli(), cp.MAC)
		}
		// A checkpoint moved forward by hand, to hide removed events, does
		// not carry the platform's signature.
		var h10 string
		if err := db.QueryRow(ctx, "SELECT hash FROM audit_events WHERE seq = 10").Scan(&h10); err != nil {
			t.Fatal(err)
		}
		exec(t, db, "DELETE FROM audit_events WHERE seq = 10")
		exec(t, db, "UPDATE audit_checkpoint SET seq = 10, hash = ? WHERE id = 1", h10)
		wantBroken(t, check(t, a), 10, iam.BreakCheckpoint)
		restore()
		wantBroken(t, check(t, a), 10, iam.BreakMissing)
		// Nor does one whose time was changed.
		exec(t, db, "UPDATE audit_checkpoint SET time_ms = ? WHERE id = 1", cp.Time.UnixMilli()+1)
		wantBroken(t, check(t, a), 9, iam.BreakCheckpoint)
		// Removing the checkpoint altogether makes the chain start at 1,
		// which is gone.
		exec(t, db, "UPDATE audit_checkpoint SET seq = 0, hash = '', time_ms = 0, mac = '' WHERE id = 1")
		wantBroken(t, check(t, a), 1, iam.BreakMissing)

		// Another key (another installation's master key) does not verify
		// the checkpoint; the previous key after a rotation does.
		restore()
		other := bytes.Repeat([]byte{8}, 32)
		wantBroken(t, check(t, iam.NewAudit(db, clk.now, iam.WithCheckpointKey(other))), 9, iam.BreakCheckpoint)
		wantBroken(t, check(t, iam.NewAudit(db, clk.now, iam.WithCheckpointKey(other, checkpointKey))), 10, iam.BreakMissing)
		// Without any key a checkpoint cannot be judged: an error, not a verdict.
		if _, err := iam.NewAudit(db, clk.now).Check(ctx); err == nil {
			t.Error("Check with a checkpoint and no key: no error")
		}
	})
}

// Retention never erases evidence: a broken link among the events it would
// remove stops it.
func TestAuditTruncateKeepsBrokenChain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := newClock()
		a := iam.NewAudit(db, clk.now, iam.WithCheckpointKey(checkpointKey))
		recordN(t, a, clk, 6)
		exec(t, db, "UPDATE audit_events SET result = 'OK' WHERE seq = 3")
		clk.add(time.Hour)
		_, err := a.Truncate(ctx, clk.now(), iam.TruncateBatch)
		if !errors.Is(err, iam.ErrChainBroken) || !strings.Contains(err.Error(), "event 3: hash mismatch") {
			t.Fatalf("Truncate over an edited row = %v", err)
		}
		if recs, _ := a.List(ctx, "", 0, 100); len(recs) != 6 {
			t.Errorf("%d events left, want all 6", len(recs))
		}
		if cp, _ := a.Checkpoint(ctx); !cp.IsZero() {
			t.Errorf("checkpoint moved: %+v", cp)
		}
		if _, err := iam.NewAudit(db, clk.now).Truncate(ctx, clk.now(), 10); err == nil {
			t.Error("Truncate without a key: no error")
		}
	})
}

// An event is kept while one before it is younger than the cutoff: only a
// prefix of the chain can go.
func TestAuditTruncatePrefixOnly(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	clk := newClock()
	a := iam.NewAudit(db, clk.now, iam.WithCheckpointKey(checkpointKey))
	recordN(t, a, clk, 2)
	clk.add(time.Hour)
	recordN(t, a, clk, 1) // 3: young
	clk.add(-2 * time.Hour)
	recordN(t, a, clk, 1) // 4: an old time from a replica whose clock is behind
	clk.add(2 * time.Hour)
	tr, err := a.Truncate(ctx, clk.now().Add(-30*time.Minute), iam.TruncateBatch)
	if err != nil || tr.ThroughSeq != 2 {
		t.Fatalf("Truncate = %+v, %v; want through 2", tr, err)
	}
}

func TestAuditNoteRetention(t *testing.T) {
	ctx := context.Background()
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		a := iam.NewAudit(db, newClock().now)
		for _, d := range []time.Duration{0, 720 * time.Hour, 720 * time.Hour, 24 * time.Hour, 0} {
			if err := a.NoteRetention(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := a.List(ctx, "", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			if r.Actor != "system" || r.Action != "SetAuditRetention" {
				t.Errorf("event %+v", r)
			}
			got = append(got, r.Detail)
		}
		want := []string{`{"Previous":"0s","Retention":"720h0m0s"}`, `{"Previous":"720h0m0s","Retention":"24h0m0s"}`, `{"Previous":"24h0m0s","Retention":"0s"}`}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("retention events %v, want %v", got, want)
		}
	})
}

func TestDescribeAuditEventsFilters(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		a := iam.NewAudit(db, clk.now)
		recordN(t, a, clk, 12) // 12:00:01 .. 12:00:12; 3, 6, 9, 12 denied
		clk.add(time.Second)
		if err := a.Record(context.Background(), api.AuditEvent{ProjectID: "prj-a", Actor: "user:alice", Action: "DeleteThing",
			Resource: "thing-1", Result: "OK", RequestID: "req-13"}); err != nil {
			t.Fatal(err)
		}
		reg := api.NewRegistry()
		iam.RegisterActions(reg, a)
		root := &api.Caller{UserName: "root", Role: api.RoleAdmin}
		for _, c := range []struct {
			body  string
			total int
			seqs  string
		}{
			{`{}`, 13, "1-13"},
			{`{"Filters": [{"Name": "Result", "Values": ["AuthFailure.UnauthorizedOperation"]}]}`, 4, "3,6,9,12"},
			{`{"Filters": [{"Name": "Actor", "Values": ["user:alice"]}]}`, 1, "13"},
			{`{"Filters": [{"Name": "Action", "Values": ["DeleteThing", "Nothing"]}]}`, 1, "13"},
			{`{"Filters": [{"Name": "Resource", "Values": ["thing-2", "thing-4"]}]}`, 2, "2,4"},
			{`{"Filters": [{"Name": "Resource", "Values": ["thing-1"]}, {"Name": "Actor", "Values": ["app:app-1"]}]}`, 1, "1"},
			{`{"StartTime": "2026-05-04T12:00:05Z", "EndTime": "2026-05-04T12:00:08Z"}`, 3, "5,6,7"},
			{`{"StartTime": "2026-05-04T20:00:05+08:00"}`, 9, "5-13"},
			{`{"ProjectId": "prj-a"}`, 1, "13"},
			{`{"Offset": 4, "Limit": 3}`, 13, "5,6,7"},
			{`{"AfterSeq": 10}`, 3, "11,12,13"},
			{`{"AfterSeq": 2, "Offset": 1, "Limit": 2, "Filters": [{"Name": "Result", "Values": ["OK"]}]}`, 7, "5,7"},
		} {
			resp, err := callAction(reg, root, "DescribeAuditEvents", c.body)
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
				continue
			}
			d := resp.(*iam.DescribeAuditEventsResponse)
			var seqs []string
			for _, e := range d.AuditEventSet {
				seqs = append(seqs, fmt.Sprint(e.Seq))
			}
			got := strings.Join(seqs, ",")
			if want := expand(c.seqs); d.TotalCount != c.total || got != want {
				t.Errorf("%s: TotalCount %d, events %s; want %d, %s", c.body, d.TotalCount, got, c.total, want)
			}
		}
		_, err := callAction(reg, root, "DescribeAuditEvents", `{"Filters": [{"Name": "Colour", "Values": ["red"]}]}`)
		wantCode(t, err, api.InvalidParameterValue, `Filters[0].Name: unknown filter "Colour"; known: Action, Actor, Resource, Result`)
		_, err = callAction(reg, root, "DescribeAuditEvents", `{"StartTime": "yesterday"}`)
		wantCode(t, err, api.InvalidParameterValue, `StartTime: "yesterday" is not an RFC 3339 time such as 2026-11-28T08:00:00Z`)
	})
}

// expand turns "1-3" into "1,2,3".
func expand(s string) string {
	var lo, hi int
	if n, _ := fmt.Sscanf(s, "%d-%d", &lo, &hi); n == 2 {
		var out []string
		for i := lo; i <= hi; i++ {
			out = append(out, fmt.Sprint(i))
		}
		return strings.Join(out, ",")
	}
	return s
}

func TestVerifyAuditLogAction(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	clk := newClock()
	a := iam.NewAudit(db, clk.now, iam.WithCheckpointKey(checkpointKey))
	recordN(t, a, clk, 5)
	reg := api.NewRegistry()
	iam.RegisterActions(reg, a)
	verify := func() iam.VerifyAuditLogResponse {
		t.Helper()
		resp, err := callAction(reg, &api.Caller{AppID: "app-v", ProjectID: "default", Role: api.RoleViewer}, "VerifyAuditLog", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(resp)
		var out iam.VerifyAuditLogResponse
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if v := verify(); !v.Valid || v.CheckedCount != 5 || v.HeadSeq != 5 || v.CheckpointSeq != 0 || v.CheckpointTime != "" || v.Reason != "" {
		t.Errorf("VerifyAuditLog = %+v", v)
	}
	clk.add(time.Hour)
	if _, err := a.Truncate(ctx, clk.now().Add(-30*time.Minute), iam.TruncateBatch); err != nil {
		t.Fatal(err)
	}
	if v := verify(); !v.Valid || v.CheckedCount != 1 || v.CheckpointSeq != 5 || v.CheckpointTime != "2026-05-04T13:00:05Z" || v.HeadSeq != 6 {
		t.Errorf("VerifyAuditLog after truncation = %+v", v)
	}
	recordN(t, a, clk, 3)
	exec(t, db, "UPDATE audit_events SET detail = '{}' WHERE seq = 8")
	if v := verify(); v.Valid || v.BrokenSeq != 8 || v.Reason != "hash mismatch" || v.CheckedCount != 2 {
		t.Errorf("VerifyAuditLog after an edit = %+v", v)
	}
}
