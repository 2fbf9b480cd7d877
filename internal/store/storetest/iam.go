package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/store"
)

// iamTables checks what the IAM center relies on from the tables of users,
// sessions, projects, roles, bindings, the audit log and its checkpoint:
// unique constraints, values as long as the columns, the audit chain read
// back in sequence order, and millisecond times that round-trip exactly.
func iamTables(t *testing.T, db *store.DB) {
	ctx := context.Background()
	exec := func(q string, args ...any) error {
		_, err := db.Exec(ctx, q, args...)
		return err
	}
	mustExec := func(q string, args ...any) {
		t.Helper()
		if err := exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	wantUnique := func(what, q string, args ...any) {
		t.Helper()
		if err := exec(q, args...); !db.IsUniqueViolation(err) {
			t.Errorf("%s: err %v; want a unique violation", what, err)
		}
	}
	// Times are Unix milliseconds; one past 2^41 (year 2039) and a far
	// future one must come back as written.
	times := []int64{1<<41 + 123, 4102444800999}
	long := strings.Repeat("天", 128) // 128 characters, 384 bytes: the widest VARCHAR(128)

	// Users: names unique, display names as long as the column.
	ins := "INSERT INTO users (id, name, password_hash, role, status, created_at, updated_at, display_name, password_changed_at) VALUES (?, ?, ?, 'viewer', 'active', ?, ?, ?, ?)"
	hash := "$argon2id$v=19$m=65536,t=1,p=4$" + strings.Repeat("A", 22) + "$" + strings.Repeat("B", 43)
	mustExec(ins, "usr-1", "alice", hash, times[0], times[1], long, times[0])
	wantUnique("second user named alice", ins, "usr-2", "alice", hash, 0, 0, "", 0)
	var gotHash, gotName string
	var created, changed int64
	if err := db.QueryRow(ctx, "SELECT password_hash, display_name, created_at, password_changed_at FROM users WHERE id = ?", "usr-1").Scan(&gotHash, &gotName, &created, &changed); err != nil {
		t.Fatal(err)
	}
	if gotHash != hash || gotName != long || created != times[0] || changed != times[0] {
		t.Errorf("user read back: hash %q, display name %d bytes, created %d, changed %d", trunc(gotHash), len(gotName), created, changed)
	}

	// Sessions: token hashes unique; a user's listed in creation order.
	sess := "INSERT INTO sessions (id, token_hash, csrf_hash, user_id, source_ip, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, 'usr-1', ?, ?, ?, ?)"
	for i, at := range []int64{30, 10, 20} {
		mustExec(sess, fmt.Sprintf("ses-%d", i), strings.Repeat(string(rune('a'+i)), 64), strings.Repeat("c", 64), "2001:db8::1", at, at, times[1])
	}
	wantUnique("second session with one token hash", sess, "ses-9", strings.Repeat("a", 64), "x", "", 0, 0, 0)
	if got := column(t, db, "SELECT id FROM sessions WHERE user_id = ? ORDER BY created_at", "usr-1"); got != "ses-1 ses-2 ses-0" {
		t.Errorf("sessions by creation: %s", got)
	}

	// Projects: names unique.
	mustExec("INSERT INTO projects (id, name, description, created_at, updated_at) VALUES ('prj-a', 'city', ?, ?, ?)", strings.Repeat("d", 1024), times[0], times[1])
	wantUnique("second project named city", "INSERT INTO projects (id, name, description, created_at, updated_at) VALUES ('prj-b', 'city', '', 0, 0)")

	// Roles: one name per project, long action lists.
	actions := `["` + strings.Repeat("DescribeDevice*", 5000) + `"]` // 75 kB
	role := "INSERT INTO roles (id, project_id, name, description, actions, scopes, created_at, updated_at) VALUES (?, ?, 'site-a', '', ?, '{}', 0, 0)"
	mustExec(role, "rol-1", "prj-a", actions)
	mustExec(role, "rol-2", "default", "[]")
	wantUnique("second role site-a in prj-a", role, "rol-3", "prj-a", "[]")
	var gotActions string
	if err := db.QueryRow(ctx, "SELECT actions FROM roles WHERE id = ?", "rol-1").Scan(&gotActions); err != nil || gotActions != actions {
		t.Errorf("role actions read back: %d bytes, err %v; want %d bytes", len(gotActions), err, len(actions))
	}

	// Bindings: a principal holds each role once per project.
	bind := "INSERT INTO role_bindings (principal_id, project_id, role, created_at) VALUES (?, ?, ?, 0)"
	mustExec(bind, "usr-1", "prj-a", "site-a")
	mustExec(bind, "usr-1", "prj-a", "viewer")
	mustExec(bind, "usr-1", "default", "site-a")
	wantUnique("the same binding twice", bind, "usr-1", "prj-a", "viewer")
	if got := column(t, db, "SELECT project_id, role FROM role_bindings WHERE principal_id = ? ORDER BY project_id, role", "usr-1"); got != "default/site-a prj-a/site-a prj-a/viewer" {
		t.Errorf("bindings: %s", got)
	}

	// The audit log: sequence numbers unique and past 2^32, rows read back
	// in sequence order whatever the insertion order, each linking to the
	// one before, with full-length fields.
	const base = int64(1) << 33
	ev := "INSERT INTO audit_events (seq, time_ms, project_id, actor, action, resource, result, source_ip, request_id, detail, prev_hash, hash) VALUES (?, ?, 'prj-a', ?, 'ModifyDevice', ?, 'OK', ?, 'req', ?, ?, ?)"
	detail := strings.Repeat("é", 2048) // 4096 bytes, 2048 characters
	hashOf := func(seq int64) string { return fmt.Sprintf("%064x", seq) }
	for _, i := range []int64{3, 1, 4, 2, 0} {
		seq := base + i
		mustExec(ev, seq, times[0]+i, "user:"+long[:3*40], strings.Repeat("r", 256), "2001:0db8:0000:0000:0000:ff00:0042:8329", detail, hashOf(seq-1), hashOf(seq))
	}
	wantUnique("a second event with one sequence number", ev, base+2, 0, "", "", "", "", "", "")
	rows, err := db.Query(ctx, "SELECT seq, time_ms, detail, prev_hash, hash FROM audit_events WHERE project_id = ? ORDER BY seq", "prj-a")
	if err != nil {
		t.Fatal(err)
	}
	prev := hashOf(base - 1)
	n := int64(0)
	for rows.Next() {
		var seq, ms int64
		var d, ph, h string
		if err := rows.Scan(&seq, &ms, &d, &ph, &h); err != nil {
			t.Fatal(err)
		}
		if seq != base+n || ms != times[0]+n || d != detail || ph != prev || h != hashOf(seq) {
			t.Errorf("event %d read back as seq %d, time %d, detail %d bytes, prev %s", n, seq, ms, len(d), trunc(ph))
		}
		prev = h
		n++
	}
	if err := rows.Err(); err != nil || n != 5 {
		t.Errorf("read %d events, err %v; want 5", n, err)
	}
	rows.Close()

	// The head and the checkpoint: single rows updated in place, locked
	// for update inside a transaction.
	err = db.InTx(ctx, func(tx *store.Tx) error {
		var seq int64
		var h string
		if err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1"+tx.Dialect().ForUpdate()).Scan(&seq, &h); err != nil {
			return err
		}
		if seq != 0 || h != "" {
			return fmt.Errorf("fresh head = %d %q; want 0 and empty", seq, h)
		}
		if _, err := tx.Exec(ctx, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", base+4, hashOf(base+4)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE audit_checkpoint SET seq = ?, hash = ?, time_ms = ?, mac = ? WHERE id = 1", base-1, hashOf(base-1), times[1], strings.Repeat("f", 64))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var headSeq, cpSeq, cpMs int64
	var cpMac string
	if err := db.QueryRow(ctx, "SELECT h.seq, c.seq, c.time_ms, c.mac FROM audit_head h, audit_checkpoint c WHERE h.id = 1 AND c.id = 1").Scan(&headSeq, &cpSeq, &cpMs, &cpMac); err != nil {
		t.Fatal(err)
	}
	if headSeq != base+4 || cpSeq != base-1 || cpMs != times[1] || cpMac != strings.Repeat("f", 64) {
		t.Errorf("head %d, checkpoint %d at %d mac %s", headSeq, cpSeq, cpMs, trunc(cpMac))
	}
	wantUnique("a second head row", "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '')")
}

// column returns the rows of a one- or two-column query, joined: "a/b c/d".
func column(t *testing.T, db *store.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		v := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range v {
			ptrs[i] = &v[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(v, "/"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// unitCommitsWithChange checks the unit-of-work hook (DB.WithUnit): its
// work commits with the first change under its context and rolls back
// with it.
func unitCommitsWithChange(t *testing.T, db *store.DB) {
	ctx := context.Background()
	ins := "INSERT INTO settings (name, value, updated_at) VALUES (?, 'v', 0)"
	count := func(name string) int { return Count(t, db, "SELECT COUNT(*) FROM settings WHERE name = ?", name) }
	ctx2, u := db.WithUnit(ctx, func(ctx context.Context, tx *store.Tx) (bool, error) {
		_, err := tx.ExecCached(ctx, ins, "unit-work")
		return err == nil, err
	})
	err := db.InTx(ctx2, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx2, ins, "change-1"); err != nil {
			return err
		}
		return errors.New("rolled back")
	})
	if err == nil || u.Committed() || count("unit-work") != 0 {
		t.Fatalf("rolled back: err %v, committed %v, unit rows %d", err, u.Committed(), count("unit-work"))
	}
	if _, err := db.Exec(ctx2, ins, "change-2"); err != nil {
		t.Fatal(err)
	}
	if !u.Committed() || count("unit-work") != 1 || count("change-2") != 1 {
		t.Fatalf("committed: %v, unit rows %d, change rows %d", u.Committed(), count("unit-work"), count("change-2"))
	}
	if _, err := db.Exec(ctx2, ins, "change-3"); err != nil || count("unit-work") != 1 {
		t.Fatalf("the unit ran twice: err %v, rows %d", err, count("unit-work"))
	}
	// Its failure keeps the change from committing.
	ctx3, u3 := db.WithUnit(ctx, func(ctx context.Context, tx *store.Tx) (bool, error) {
		_, err := tx.ExecCached(ctx, ins, "unit-work") // a duplicate
		return err == nil, err
	})
	if _, err := db.Exec(ctx3, ins, "change-4"); !db.IsUniqueViolation(err) || u3.Committed() || count("change-4") != 0 {
		t.Fatalf("failing unit: err %v, committed %v, change rows %d", err, u3.Committed(), count("change-4"))
	}
}

// unitRowCommitsWithChange checks a unit that offers its work as a row
// (Unit.SetRow), which engines that can fold run in the change's own
// statement: the same outcomes as unitCommitsWithChange, and the change's
// rows affected as the statement's.
func unitRowCommitsWithChange(t *testing.T, db *store.DB) {
	ctx := context.Background()
	ins := "INSERT INTO settings (name, value, updated_at) VALUES (?, 'v', ?)"
	count := func(name string) int { return Count(t, db, "SELECT COUNT(*) FROM settings WHERE name = ?", name) }
	withRow := func(name string, ready *bool) (context.Context, *store.Unit) {
		ctx, u := db.WithUnit(ctx, func(ctx context.Context, tx *store.Tx) (bool, error) {
			if !*ready {
				return false, nil
			}
			_, err := tx.Exec(ctx, ins, name, 7)
			return err == nil, err
		})
		u.SetRow(func() (store.UnitRow, bool) {
			return store.UnitRow{Into: "settings (name, value, updated_at)", Args: []any{name, "v", int64(7)}}, *ready
		})
		return ctx, u
	}
	if _, err := db.Exec(ctx, ins, "a", 0); err != nil {
		t.Fatal(err)
	}
	ready := true
	c, u := withRow("row-1", &ready)
	// A statement that changes nothing leaves the unit for the next.
	res, err := db.Exec(c, "UPDATE settings SET updated_at = ? WHERE name = ?", 1, "none")
	if n, _ := res.RowsAffected(); err != nil || n != 0 || u.Committed() || count("row-1") != 0 {
		t.Fatalf("no change: err %v, rows %d, committed %v, unit rows %d", err, n, u.Committed(), count("row-1"))
	}
	res, err = db.Exec(c, "UPDATE settings SET updated_at = ? WHERE name = ?", 2, "a")
	if n, _ := res.RowsAffected(); err != nil || n != 1 || !u.Committed() || count("row-1") != 1 {
		t.Fatalf("change: err %v, rows %d, committed %v, unit rows %d", err, n, u.Committed(), count("row-1"))
	}
	// The same values again: the row matched counts as changed on every
	// engine (MySQL counts rows found, clientFoundRows), so the unit runs.
	c3, u3 := withRow("row-3", &ready)
	res, err = db.Exec(c3, "UPDATE settings SET updated_at = ? WHERE name = ?", 2, "a")
	if n, _ := res.RowsAffected(); err != nil || n != 1 || !u3.Committed() || count("row-3") != 1 {
		t.Fatalf("same values: err %v, rows %d, committed %v, unit rows %d", err, n, u3.Committed(), count("row-3"))
	}
	if _, err := db.Exec(c, "DELETE FROM settings WHERE name = ?", "a"); err != nil || count("row-1") != 1 {
		t.Fatalf("the unit ran twice: err %v, rows %d", err, count("row-1"))
	}
	// A row not ready yet: the statement commits alone and the unit waits.
	ready = false
	c, u = withRow("row-2", &ready)
	if _, err := db.Exec(c, ins, "b", 0); err != nil || u.Committed() || count("b") != 1 || count("row-2") != 0 {
		t.Fatalf("not ready: err %v, committed %v, change rows %d, unit rows %d", err, u.Committed(), count("b"), count("row-2"))
	}
	ready = true
	if _, err := db.Exec(c, ins, "c", 0); err != nil || !u.Committed() || count("row-2") != 1 {
		t.Fatalf("ready: err %v, committed %v, unit rows %d", err, u.Committed(), count("row-2"))
	}
	// A row that fails (a duplicate) keeps the change from committing.
	c, u = withRow("row-1", &ready)
	if _, err := db.Exec(c, ins, "d", 0); !db.IsUniqueViolation(err) || u.Committed() || count("d") != 0 {
		t.Fatalf("failing unit: err %v, committed %v, change rows %d", err, u.Committed(), count("d"))
	}
	// The failed unit left no transaction open on its connection: writes
	// on every connection of the pool go on (SQLite: none waits for a
	// write lock left held).
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = db.Exec(ctx, ins, fmt.Sprint("after-", i), 0) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil || Count(t, db, "SELECT COUNT(*) FROM settings WHERE name LIKE 'after-%'") != len(errs) {
		t.Fatalf("writes after a failed unit: %v", err)
	}
}

// Count runs a COUNT query and returns its result.
func Count(t testing.TB, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
