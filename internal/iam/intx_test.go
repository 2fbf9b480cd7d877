package iam_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// An audited call's event bound with WithEvent commits in the transaction
// that makes the call's change, on every dialect: with it or not at all.
func TestAuditEventCommitsWithChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := iam.NewAudit(db, nil)
		q := a.StartQueue(nil) // as the platform wires it: in-transaction events bypass the queue
		t.Cleanup(func() { _ = q.Close(context.Background()) })
		ins := "INSERT INTO settings (name, value, updated_at) VALUES (?, 'v', 0)"
		count := func(name string) int {
			return storetest.Count(t, db, "SELECT COUNT(*) FROM settings WHERE name = ?", name)
		}
		events := func(resource string) int {
			recs, _, err := a.Search(ctx, iam.AuditQuery{Resources: []string{resource}, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			return len(recs)
		}
		bind := func(resource string) (context.Context, func() bool) {
			return q.WithEvent(ctx, func() (api.AuditEvent, bool) { return event(1, "default"), resource != "" })
		}

		// A statement outside a transaction of the caller's: one event.
		c, written := q.WithEvent(ctx, func() (api.AuditEvent, bool) {
			e := event(1, "default")
			e.Resource = "plain"
			return e, true
		})
		if _, err := db.Exec(c, ins, "plain"); err != nil {
			t.Fatal(err)
		}
		if !written() || count("plain") != 1 || events("plain") != 1 {
			t.Fatalf("plain exec: written %v, rows %d, events %d; want true, 1, 1", written(), count("plain"), events("plain"))
		}
		// Later statements under the same context do not write it again.
		if _, err := db.Exec(c, ins, "plain-2"); err != nil {
			t.Fatal(err)
		}
		if events("plain") != 1 {
			t.Fatalf("second statement wrote the event again: %d events", events("plain"))
		}

		// A transaction that rolls back takes its event with it; the next
		// one that commits carries it.
		c, written = q.WithEvent(ctx, func() (api.AuditEvent, bool) {
			e := event(2, "default")
			e.Resource = "tx"
			return e, true
		})
		err := db.InTx(c, func(tx *store.Tx) error {
			if _, err := tx.Exec(c, ins, "tx-rolled-back"); err != nil {
				return err
			}
			return errors.New("the action fails")
		})
		if err == nil || written() || count("tx-rolled-back") != 0 || events("tx") != 0 {
			t.Fatalf("rolled back: err %v, written %v, rows %d, events %d", err, written(), count("tx-rolled-back"), events("tx"))
		}
		if err := db.InTx(c, func(tx *store.Tx) error { _, err := tx.Exec(c, ins, "tx"); return err }); err != nil {
			t.Fatal(err)
		}
		if !written() || count("tx") != 1 || events("tx") != 1 {
			t.Fatalf("committed: written %v, rows %d, events %d", written(), count("tx"), events("tx"))
		}

		// A statement that changes nothing, and an event not ready to be
		// written (no resource yet), leave it to the caller.
		c, written = bind("x")
		if _, err := db.Exec(c, "UPDATE settings SET value = 'w' WHERE name = ?", "nothing"); err != nil {
			t.Fatal(err)
		}
		if written() {
			t.Fatal("an UPDATE of no row wrote the event")
		}
		c, written = bind("")
		if _, err := db.Exec(c, ins, "not-ready"); err != nil {
			t.Fatal(err)
		}
		if written() || count("not-ready") != 1 {
			t.Fatalf("event not ready: written %v, rows %d; want false, 1", written(), count("not-ready"))
		}

		// When the event cannot be staged, the change is not made.
		exec(t, db, "ALTER TABLE audit_pending RENAME TO audit_pending_off")
		c, written = bind("x")
		if _, err := db.Exec(c, ins, "unaudited"); err == nil || written() || count("unaudited") != 0 {
			t.Fatalf("staging failed: err %v, written %v, rows %d; want an error and no row", err, written(), count("unaudited"))
		}
		exec(t, db, "ALTER TABLE audit_pending_off RENAME TO audit_pending")

		// In-transaction events and queued ones share one chain.
		if err := q.Record(ctx, event(3, "default")); err != nil {
			t.Fatal(err)
		}
		if n, err := a.Verify(ctx); err != nil || n != 3 {
			t.Fatalf("Verify = %d, %v; want 3 events, valid", n, err)
		}
	})
}

// killEnv is the URL of the database of the writer process that
// TestAuditEventSurvivesKill kills.
const killEnv = "TIANSHU_TEST_AUDIT_KILL_DB"

// A process writing audited changes is killed with SIGKILL mid-stream:
// every change that committed, acknowledged or not, has its event, no
// event names a change that did not commit, and the chain verifies.
func TestAuditEventSurvivesKill(t *testing.T) {
	db, acked := killedWriter(t, "sqlite", true)
	checkKilled(t, db, iam.NewAudit(db, nil), acked)
}

// killedWriter runs the calling test in a child process that writes
// audited changes (writeUntilKilled, with a chainer when chain is set),
// kills it with SIGKILL once it has acknowledged 300 of them while it
// writes more, and returns its database and the last change it
// acknowledged. In the child it writes until killed and never returns.
func killedWriter(t *testing.T, dialect string, chain bool) (*store.DB, int) {
	if u := os.Getenv(killEnv); u != "" {
		writeUntilKilled(t, u, chain) // returns only by failing the test
	}
	u := storetest.URL(t, dialect)
	cmd := osexec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$")
	cmd.Env = append(os.Environ(), killEnv+"="+u)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	lines := bufio.NewScanner(out)
	for lines.Scan() && acked < 300 {
		if n, err := strconv.Atoi(lines.Text()); err == nil {
			acked = n
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 300 {
		t.Fatalf("the writer acknowledged only %d changes before it ended", acked)
	}
	db, err := store.Open(context.Background(), u, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, acked
}

// checkKilled checks the killed writer's database through a: every
// committed change has its event, no event names a change that did not
// commit, every acknowledged change is there and the chain verifies.
func checkKilled(t *testing.T, db *store.DB, a *iam.Audit, acked int) {
	ctx := context.Background()
	rows := map[string]bool{}
	r, err := db.Query(ctx, "SELECT name FROM settings WHERE name LIKE 'change-%'")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var name string
		if err := r.Scan(&name); err != nil {
			t.Fatal(err)
		}
		rows[name] = true
	}
	r.Close()
	recs, err := a.List(ctx, "", 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	evs := map[string]bool{}
	for _, rec := range recs {
		if evs[rec.Resource] {
			t.Errorf("two events for %s", rec.Resource)
		}
		evs[rec.Resource] = true
		if !rows[rec.Resource] {
			t.Errorf("event for %s, a change that did not commit", rec.Resource)
		}
	}
	for name := range rows {
		if !evs[name] {
			t.Errorf("change %s committed without its event", name)
		}
	}
	for i := 0; i <= acked; i++ {
		if !rows[fmt.Sprintf("change-%d", i)] {
			t.Errorf("acknowledged change %d is gone", i)
		}
	}
	if n, err := a.Verify(ctx); err != nil || n != int64(len(recs)) {
		t.Fatalf("Verify = %d, %v; want %d events, valid", n, err, len(recs))
	}
	t.Logf("killed after %d acknowledged changes: %d committed, each with its event", acked+1, len(rows))
}

// writeUntilKilled is the writer process: audited changes, one after
// another, each acknowledged on stdout once committed; with chain false it
// runs no chainer, so that every event is still staged when it is killed.
func writeUntilKilled(t *testing.T, u string, chain bool) {
	ctx := context.Background()
	db, err := store.Open(ctx, u, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a := iam.NewAudit(db, nil)
	if chain {
		a.StartQueue(nil)
	}
	for i := 0; ; i++ {
		if err := auditedInsert(ctx, db, a, i, fmt.Sprintf("change-%d", i)); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		fmt.Println(i)
	}
}

// Through the gateway: an audited write whose event cannot be staged
// makes no change (before, the change committed and was answered OK with
// no event), and one whose event can be has exactly one event, written
// with its change.
func TestGatewayMakesNoChangeWithoutItsEvent(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	box, err := secrets.New(bytes.Repeat([]byte{5}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	apps := appcenter.New(db, box, log, nil)
	audit := iam.NewAudit(db, nil)
	q := audit.StartQueue(log)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	reg := api.NewRegistry()
	appcenter.RegisterActions(reg, apps)
	gw := api.NewGateway(api.DefaultConfig(), reg, api.GatewayOptions{Keys: apps, Auditor: audit.Auditor(), Logger: log})
	a, err := apps.CreateApp(ctx, "default", "audited", "", api.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	id, key, err := apps.CreateKey(ctx, a.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	signer := tc3.Signer{SecretID: id, SecretKey: key}
	modify := func(desc string) string {
		body := []byte(`{"AppId": "` + a.ID + `", "Description": "` + desc + `"}`)
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", "ModifyApp")
		req.Header.Set("X-TC-Version", api.Version)
		signer.Sign(req, body, time.Now())
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, req)
		return w.Body.String()
	}
	description := func() string {
		var d string
		if err := db.QueryRow(ctx, "SELECT description FROM apps WHERE id = ?", a.ID).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}

	if out := modify("first"); strings.Contains(out, `"Error"`) {
		t.Fatalf("ModifyApp: %s", out)
	}
	recs, _, err := audit.Search(ctx, iam.AuditQuery{Actions: []string{"ModifyApp"}, Limit: 10})
	if err != nil || len(recs) != 1 || recs[0].Resource != a.ID || recs[0].Result != "OK" {
		t.Fatalf("events of one ModifyApp: %+v, %v; want one, OK, on %s", recs, err, a.ID)
	}

	exec(t, db, "ALTER TABLE audit_pending RENAME TO audit_pending_off") // staging now fails
	out := modify("unaudited")
	if !strings.Contains(out, `"Error"`) || description() != "first" {
		t.Errorf("ModifyApp while its audit event cannot be staged: answered %s, description %q; want an error and no change", out, description())
	}
}
