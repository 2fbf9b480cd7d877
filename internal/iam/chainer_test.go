package iam_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// auditedInsert inserts the settings row name under an event bound with
// WithEvent, and reports an error when the event was not written with it.
func auditedInsert(ctx context.Context, db *store.DB, a interface {
	WithEvent(context.Context, func() (api.AuditEvent, bool)) (context.Context, func() bool)
}, i int, name string) error {
	c, written := a.WithEvent(ctx, func() (api.AuditEvent, bool) {
		e := event(i, "default")
		e.Resource = name
		return e, true
	})
	if _, err := db.Exec(c, "INSERT INTO settings (name, value, updated_at) VALUES (?, 'v', 0)", name); err != nil {
		return err
	}
	if !written() {
		return errors.New("the event was not written with the change")
	}
	return nil
}

// An audited write does not wait for the chain head: while another
// transaction holds it (a chaining pass, a truncation, a replica's
// append), the write and its event still commit. Before, the event was
// appended to the chain in the write's transaction, which locked the head
// until the write committed, so concurrent audited writes committed one at
// a time. (SQLite locks the whole database for a write transaction, so
// only the servers are tried.)
func TestAuditedWriteDoesNotWaitForChainHead(t *testing.T) {
	for _, d := range []string{"postgres", "mysql"} {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			a := iam.NewAudit(db, nil)

			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			t.Cleanup(free)
			go func() {
				_ = db.InTx(ctx, func(tx *store.Tx) error {
					var seq int64
					var h string
					if err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1"+tx.Dialect().ForUpdate()).Scan(&seq, &h); err != nil {
						return err
					}
					close(held)
					<-release
					return nil
				})
			}()
			<-held

			done := make(chan error, 1)
			go func() { done <- auditedInsert(ctx, db, a, 1, "while-held") }()
			var err error
			testenv.Eventually(t, 15*time.Second, "the audited write while another transaction holds the chain head", func() bool {
				select {
				case err = <-done:
					return true
				default:
					return false
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			free()
			recs, _, err := a.Search(ctx, iam.AuditQuery{Resources: []string{"while-held"}, Limit: 10})
			if err != nil || len(recs) != 1 {
				t.Fatalf("events of the write: %+v, %v; want one", recs, err)
			}
			if n, err := a.Verify(ctx); err != nil || n != 1 {
				t.Fatalf("Verify = %d, %v; want 1 event, valid", n, err)
			}
		})
	}
}

// pendingAndChained counts the staged events and the chained ones,
// straight from the tables (reads through an Audit chain what is staged
// first).
func pendingAndChained(t *testing.T, db *store.DB) (pending, chained int) {
	t.Helper()
	return storetest.Count(t, db, "SELECT COUNT(*) FROM audit_pending"), storetest.Count(t, db, "SELECT COUNT(*) FROM audit_events")
}

// Two platforms on one PostgreSQL (or MariaDB), each with its queue and
// chainer, writing audited changes at once: one chain, valid, with every
// change's event exactly once and nothing left staged.
func TestConcurrentChainersMakeOneChain(t *testing.T) {
	for _, d := range []string{"postgres", "mysql"} {
		t.Run(d, func(t *testing.T) { concurrentChainers(t, d) })
	}
}

func concurrentChainers(t *testing.T, dialect string) {
	ctx := context.Background()
	u := storetest.URL(t, dialect)
	var dbs [2]*store.DB
	var audits [2]*iam.Audit
	var queues [2]*iam.AuditQueue
	for i := range dbs {
		db, err := store.Open(ctx, u, store.Options{MaxOpenConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		dbs[i], audits[i] = db, iam.NewAudit(db, nil)
		queues[i] = audits[i].StartQueue(nil)
	}
	const writers, each = 4, 60
	var wg sync.WaitGroup
	for p := range dbs {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					n := (p*writers+w)*each + i
					if err := auditedInsert(ctx, dbs[p], queues[p], n, fmt.Sprint("change-", n)); err != nil {
						t.Error(err)
						return
					}
					if i%10 == 0 { // events through the queue (creations, failures) too
						e := event(n, "default")
						e.Resource = fmt.Sprint("queued-", n)
						if err := queues[p].Record(ctx, e); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	const want = 2 * writers * (each + each/10) // changes and queued events
	// The chainers, woken by the commits, chain everything on their own.
	testenv.Eventually(t, 30*time.Second, "the chainers to chain every staged event", func() bool {
		p, c := pendingAndChained(t, dbs[0])
		return p == 0 && c == want
	})
	for _, q := range queues {
		if err := q.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if dup := storetest.Count(t, dbs[0], "SELECT COUNT(*) FROM (SELECT resource FROM audit_events GROUP BY resource HAVING COUNT(*) > 1) d"); dup != 0 {
		t.Errorf("%d events chained twice", dup)
	}
	if n := storetest.Count(t, dbs[0], "SELECT COUNT(DISTINCT resource) FROM audit_events"); n != want {
		t.Errorf("%d distinct events chained; want %d", n, want)
	}
	if n, err := audits[1].Verify(ctx); err != nil || n != want {
		t.Fatalf("Verify = %d, %v; want %d events, valid", n, err, want)
	}
}

// A writer killed between staging its events and chaining them: the next
// platform's chainer, once started, chains every one of them on its own,
// and the chain verifies. On PostgreSQL the writer runs no chainer, so
// every event it staged is left unchained; on SQLite writers chain in
// their own transactions every writerChainEvery events, so those staged
// since the last time are.
func TestChainerCatchesUpAfterKill(t *testing.T) {
	for _, d := range []string{"sqlite", "postgres"} {
		t.Run(d, func(t *testing.T) {
			db, acked := killedWriter(t, d, false)
			committed := storetest.Count(t, db, "SELECT COUNT(*) FROM settings WHERE name LIKE 'change-%'")
			p, c := pendingAndChained(t, db)
			if p+c != committed || (d == "postgres" && c != 0) {
				t.Fatalf("after the kill: %d staged, %d chained, %d changes committed", p, c, committed)
			}
			a := iam.NewAudit(db, nil)
			if n, err := a.Pending(context.Background()); err != nil || n != int64(p) {
				t.Fatalf("Pending = %d, %v; want %d", n, err, p)
			}
			q := a.StartQueue(nil) // a restarted platform
			t.Cleanup(func() { _ = q.Close(context.Background()) })
			testenv.Eventually(t, 30*time.Second, "the chainer to catch up", func() bool {
				p, _ := pendingAndChained(t, db)
				return p == 0
			})
			t.Logf("%d events staged and not chained at the kill", p)
			checkKilled(t, db, a, acked)
		})
	}
}

// On SQLite, where writers chain in their own transactions, a write whose
// chaining fails (the head row is gone) still commits with its staged
// event; once the head is back, a read chains every event.
func TestWriterChainingFailureKeepsWrites(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	a := iam.NewAudit(db, nil)
	exec(t, db, "DELETE FROM audit_head WHERE id = 1") // chaining now fails
	const n = 150                                      // more than twice the writes after which a writer chains
	for i := range n {
		if err := auditedInsert(ctx, db, a, i, fmt.Sprint("change-", i)); err != nil {
			t.Fatalf("write %d while chaining fails: %v", i, err)
		}
	}
	if p, c := pendingAndChained(t, db); p != n || c != 0 {
		t.Fatalf("%d staged, %d chained; want %d staged", p, c, n)
	}
	exec(t, db, "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '')")
	if got, err := a.Verify(ctx); err != nil || got != n {
		t.Fatalf("Verify = %d, %v; want %d events, valid", got, err, n)
	}
}

// Chaining takes the events a process staged from what it remembers and
// reads the others' from their rows: with two platforms on one store,
// each staging events and one chaining all of them, every event is
// chained once with the fields its action committed, and the chain
// verifies; text that is not valid UTF-8 is made valid when staged, so
// that every engine takes the row and the chain hashes what it holds.
func TestChainingMixesKnownAndReadEvents(t *testing.T) {
	for _, d := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			audits := [2]*iam.Audit{iam.NewAudit(db, nil), iam.NewAudit(db, nil)}
			const each = 20 // fewer than a writer chains after on SQLite
			want := map[string]string{}
			for i := range 2 * each {
				a := audits[i%2]
				name := fmt.Sprint("change-", i)
				c, written := a.WithEvent(ctx, func() (api.AuditEvent, bool) {
					e := event(i, "default")
					e.Resource, e.Detail = name, fmt.Sprintf("{\"Name\":\"bad \xff %d\"}", i)
					return e, true
				})
				if _, err := db.Exec(c, "INSERT INTO settings (name, value, updated_at) VALUES (?, 'v', 0)", name); err != nil || !written() {
					t.Fatalf("write %d: %v, event written %v", i, err, written())
				}
				want[name] = fmt.Sprintf(`{"Name":"bad  %d"}`, i)
			}
			// A staged row edited before it is chained: the process that
			// staged it chains the event as its action committed it.
			exec(t, db, "UPDATE audit_pending SET detail = 'edited' WHERE resource = 'change-0'")
			if n, err := audits[0].Chain(ctx); err != nil || n != 2*each {
				t.Fatalf("Chain = %d, %v; want %d", n, err, 2*each)
			}
			rows, err := db.Query(ctx, "SELECT resource, detail FROM audit_events ORDER BY seq")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := map[string]string{}
			for rows.Next() {
				var r, detail string
				if err := rows.Scan(&r, &detail); err != nil {
					t.Fatal(err)
				}
				if _, dup := got[r]; dup {
					t.Errorf("%s chained twice", r)
				}
				got[r] = detail
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("chained %v\nwant %v", got, want)
			}
			if n, err := audits[1].Verify(ctx); err != nil || n != 2*each {
				t.Fatalf("Verify = %d, %v; want %d events, valid", n, err, 2*each)
			}
		})
	}
}
