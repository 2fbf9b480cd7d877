package iam_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// clock is a settable time source, so tests move time instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)} }

func wantCode(t *testing.T, err error, code api.Code, msg string) {
	t.Helper()
	e, ok := api.AsError(err)
	if !ok {
		t.Fatalf("error %v; want %s", err, code)
	}
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Errorf("error %s %q; want %s %q", e.Code, e.Message, code, msg)
	}
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestPasswordHashing(t *testing.T) {
	h := iam.HashPassword("correct horse")
	if !phc.MatchString(h) {
		t.Fatalf("hash %q is not a PHC argon2id string with the expected parameters", h)
	}
	if h2 := iam.HashPassword("correct horse"); h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct horse ": false, "Correct horse": false, "": false} {
		ok, err := iam.CheckPassword(h, pw)
		if err != nil || ok != want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	// Parameters come from the hash, so hashes made with other settings
	// (older or stronger ones) still verify.
	salt := []byte("0123456789abcdef")
	other := fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=2$%s$%s", base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("correct horse"), salt, 1, 8192, 2, 16)))
	if ok, err := iam.CheckPassword(other, "correct horse"); !ok || err != nil {
		t.Errorf("hash with other parameters: %v, %v", ok, err)
	}
	if ok, err := iam.CheckPassword(other, "wrong"); ok || err != nil {
		t.Errorf("hash with other parameters, wrong password: %v, %v", ok, err)
	}
	parts := strings.Split(h, "$")
	for name, bad := range map[string]string{
		"bcrypt":      "$2a$10$abcdefghijklmnopqrstuuJ9bC8a2n7n0pGl9Ph3UeT1fUaZ0wP2y",
		"argon2i":     strings.Replace(h, "$argon2id$", "$argon2i$", 1),
		"few fields":  "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA",
		"bad params":  strings.Replace(h, "m=19456,t=2,p=1", "m=lots", 1),
		"bad salt":    strings.Join([]string{parts[0], parts[1], parts[2], parts[3], "!!!", parts[5]}, "$"),
		"bad key":     strings.Join([]string{parts[0], parts[1], parts[2], parts[3], parts[4], "!!!"}, "$"),
		"empty input": "",
	} {
		if ok, err := iam.CheckPassword(bad, "correct horse"); err == nil || ok {
			t.Errorf("%s: CheckPassword = %v, %v; want false and an error", name, ok, err)
		}
	}
}

// A stored hash that is damaged (or planted by someone who can write the
// users table) must fail the check with an error, not crash the login.
func TestCheckPasswordDamagedHash(t *testing.T) {
	parts := strings.Split(iam.HashPassword("pw"), "$")
	for name, h := range map[string]string{
		"empty key": strings.Join([]string{parts[0], parts[1], parts[2], parts[3], parts[4], ""}, "$"),
		"t=0":       strings.Join([]string{parts[0], parts[1], parts[2], "m=19456,t=0,p=1", parts[4], parts[5]}, "$"),
		"p=0":       strings.Join([]string{parts[0], parts[1], parts[2], "m=19456,t=2,p=0", parts[4], parts[5]}, "$"),
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("CheckPassword panicked: %v", p)
				}
			}()
			if ok, err := iam.CheckPassword(h, "pw"); ok || err == nil {
				t.Errorf("CheckPassword = %v, %v; want false and an error", ok, err)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	u := iam.NewUsers(db, newClock().now)
	if n, err := u.Count(ctx); err != nil || n != 0 {
		t.Fatalf("Count on a fresh store = %d, %v", n, err)
	}
	id, err := u.Create(ctx, "alice", "s3cret!", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "usr-") {
		t.Errorf("user id %q", id)
	}
	if _, err := u.Create(ctx, "alice", "other", "viewer"); !errors.Is(err, iam.ErrUserExists) {
		t.Errorf("duplicate name: %v; want ErrUserExists", err)
	}
	if _, err := u.Create(ctx, "bob", "pw", "viewer"); err != nil {
		t.Fatal(err)
	}
	if n, _ := u.Count(ctx); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	// The password is stored hashed.
	var hash string
	if err := db.QueryRow(ctx, "SELECT password_hash FROM users WHERE name = ?", "alice").Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, "s3cret!") || !phc.MatchString(hash) {
		t.Errorf("stored password_hash %q", hash)
	}

	for _, c := range []struct {
		name, pw, role string
		ok             bool
	}{
		{"alice", "s3cret!", "admin", true},
		{"bob", "pw", "viewer", true},
		{"alice", "pw", "admin", false},
		{"alice", "", "admin", false},
		{"carol", "s3cret!", "", false},
	} {
		role, ok, err := u.Authenticate(ctx, c.name, c.pw)
		if err != nil || ok != c.ok || role != c.role {
			t.Errorf("Authenticate(%s, %q) = %q, %v, %v; want %q, %v", c.name, c.pw, role, ok, err, c.role, c.ok)
		}
	}
	// A user who is not active cannot log in with the right password.
	if _, err := db.Exec(ctx, "UPDATE users SET status = 'disabled' WHERE name = ?", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := u.Authenticate(ctx, "bob", "pw"); ok || err != nil {
		t.Errorf("disabled user: ok %v, err %v", ok, err)
	}
}

func TestProjects(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	clk := newClock()
	p := iam.NewProjects(db, clk.now)
	ps, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].ID != "default" || ps[0].Name != "default" {
		t.Fatalf("projects of a fresh store = %+v; want only default", ps)
	}
	clk.add(time.Second)
	demo, err := p.Create(ctx, "demo", "Demo", "for shows")
	if err != nil {
		t.Fatal(err)
	}
	if demo.ID != "demo" || demo.Name != "Demo" || !demo.CreatedAt.Equal(clk.now()) {
		t.Errorf("Create = %+v", demo)
	}
	clk.add(time.Second)
	gen, err := p.Create(ctx, "", "Gen", "")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^prj-[0-9a-z]{8}$`).MatchString(gen.ID) {
		t.Errorf("generated project id %q", gen.ID)
	}
	_, err = p.Create(ctx, "", "Demo", "")
	wantCode(t, err, api.ResourceInUse, "")
	_, err = p.Create(ctx, "demo", "Another", "")
	wantCode(t, err, api.ResourceInUse, `Name: a project named "Another" (or with id "demo") exists`)

	ps, err = p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range ps {
		got = append(got, x.ID)
	}
	if want := "default," + demo.ID + "," + gen.ID; strings.Join(got, ",") != want {
		t.Errorf("List = %v, want %s (oldest first)", got, want)
	}

	// The actions over the same store.
	reg := api.NewRegistry()
	iam.RegisterProjectActions(reg, p)
	admin := &api.Caller{UserName: "alice", Role: api.RoleAdmin}
	clk.add(time.Second)
	resp, err := callAction(reg, admin, "CreateProject", `{"Name": "Lab", "Description": "bench"}`)
	if err != nil {
		t.Fatal(err)
	}
	if id := resp.(*iam.CreateProjectResponse).ProjectId; !strings.HasPrefix(id, "prj-") || admin.Resource() != id {
		t.Errorf("CreateProject = %q, audited resource %q", id, admin.Resource())
	}
	_, err = callAction(reg, admin, "CreateProject", `{"Description": "no name"}`)
	wantCode(t, err, api.MissingParameter, "Name: required")
	resp, err = callAction(reg, admin, "DescribeProjects", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if d := resp.(*iam.DescribeProjectsResponse); d.TotalCount != 4 || d.ProjectSet[3].Name != "Lab" || d.ProjectSet[3].Description != "bench" {
		t.Errorf("DescribeProjects = %+v", d)
	}
}

func callAction(reg *api.Registry, c *api.Caller, name, body string) (any, error) {
	a, ok := reg.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("no action %s", name)
	}
	return a.Call(context.Background(), c, []byte(body))
}

func event(i int, project string) api.AuditEvent {
	return api.AuditEvent{ProjectID: project, Actor: "app:app-1", Action: "CreateThing", Resource: fmt.Sprintf("thing-%d", i),
		Result: "OK", SourceIP: "10.0.0.1", RequestID: fmt.Sprintf("req-%d", i), Detail: `{"Name":"x"}`}
}

func TestAudit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := newClock()
		a := iam.NewAudit(db, clk.now)
		if n, err := a.Verify(ctx); err != nil || n != 0 {
			t.Fatalf("Verify on an empty log = %d, %v", n, err)
		}
		for i := 1; i <= 5; i++ {
			p := "prj-a"
			if i%2 == 0 {
				p = "prj-b"
			}
			clk.add(time.Second)
			if err := a.Record(ctx, event(i, p)); err != nil {
				t.Fatal(err)
			}
		}
		// An event without a project belongs to the default project, and
		// oversized fields are clipped to their columns.
		clk.add(time.Second)
		long := event(6, "")
		long.Detail = strings.Repeat("d", 5000)
		long.Resource = strings.Repeat("r", 300)
		if err := a.Record(ctx, long); err != nil {
			t.Fatal(err)
		}

		all, err := a.List(ctx, "", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 6 {
			t.Fatalf("List = %d events, want 6", len(all))
		}
		prev := ""
		for i, r := range all {
			if r.Seq != int64(i+1) || r.PrevHash != prev || len(r.Hash) != 64 {
				t.Errorf("event %d: seq %d prev %q hash %q; want a chain", i, r.Seq, r.PrevHash, r.Hash)
			}
			if want := time.Date(2026, 5, 4, 12, 0, i+1, 0, time.UTC); !r.Time.Equal(want) {
				t.Errorf("event %d at %v, want %v", i, r.Time, want)
			}
			prev = r.Hash
		}
		if got := all[0]; got.AuditEvent != event(1, "prj-a") {
			t.Errorf("event 1 = %+v", got.AuditEvent)
		}
		if got := all[5]; got.ProjectID != "default" || len(got.Detail) != 4096 || len(got.Resource) != 256 {
			t.Errorf("clipped event: project %q, detail %d bytes, resource %d bytes", got.ProjectID, len(got.Detail), len(got.Resource))
		}

		// Filters: project, after a sequence number, limit.
		seqs := func(rs []iam.AuditRecord) string {
			var s []string
			for _, r := range rs {
				s = append(s, fmt.Sprint(r.Seq))
			}
			return strings.Join(s, ",")
		}
		for _, c := range []struct {
			project string
			after   int64
			limit   int
			want    string
		}{
			{"prj-a", 0, 100, "1,3,5"},
			{"prj-b", 0, 100, "2,4"},
			{"default", 0, 100, "6"},
			{"", 3, 100, "4,5,6"},
			{"", 0, 2, "1,2"},
			{"prj-a", 1, 1, "3"},
			{"prj-a", 5, 100, ""},
			{"prj-none", 0, 100, ""},
		} {
			rs, err := a.List(ctx, c.project, c.after, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(rs); got != c.want {
				t.Errorf("List(%q, after %d, limit %d) = %s, want %s", c.project, c.after, c.limit, got, c.want)
			}
		}

		if n, err := a.Verify(ctx); err != nil || n != 6 {
			t.Fatalf("Verify = %d, %v; want 6, nil", n, err)
		}
		// Editing a row breaks the chain at that row...
		if _, err := db.Exec(ctx, "UPDATE audit_events SET result = ? WHERE seq = ?", "AuthFailure.UnauthorizedOperation", 3); err != nil {
			t.Fatal(err)
		}
		if n, err := a.Verify(ctx); err == nil || err.Error() != "iam: audit chain broken at event 3: hash mismatch" || n != 2 {
			t.Errorf("Verify after an edit = %d, %v", n, err)
		}
		if _, err := db.Exec(ctx, "UPDATE audit_events SET result = ? WHERE seq = ?", "OK", 3); err != nil {
			t.Fatal(err)
		}
		// ...and removing one is found too.
		if _, err := db.Exec(ctx, "DELETE FROM audit_events WHERE seq = ?", 4); err != nil {
			t.Fatal(err)
		}
		if n, err := a.Verify(ctx); err == nil || err.Error() != "iam: audit chain broken at event 4: missing row" || n != 3 {
			t.Errorf("Verify after a removal = %d, %v", n, err)
		}
	})
}

// Appends from many goroutines (or replicas) serialise on the chain head:
// no sequence number is taken twice and the chain stays whole.
func TestAuditConcurrentRecord(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	a := iam.NewAudit(db, newClock().now)
	b := iam.NewAudit(db, newClock().now) // a second replica
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := a
			if w%2 == 1 {
				log = b
			}
			for i := range each {
				if err := log.Record(ctx, event(w*each+i, "default")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := a.Verify(ctx); err != nil || n != workers*each {
		t.Fatalf("Verify = %d, %v; want %d, nil", n, err, workers*each)
	}
}

func TestDescribeAuditEvents(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	a := iam.NewAudit(db, newClock().now)
	for i := 1; i <= 25; i++ {
		p := "default"
		if i > 22 {
			p = "prj-a"
		}
		if err := a.Record(ctx, event(i, p)); err != nil {
			t.Fatal(err)
		}
	}
	reg := api.NewRegistry()
	iam.RegisterActions(reg, a)
	list := func(c *api.Caller, body string) []iam.AuditEventInfo {
		t.Helper()
		resp, err := callAction(reg, c, "DescribeAuditEvents", body)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		// The answer must survive the gateway's JSON encoding.
		b, _ := json.Marshal(resp)
		var out iam.DescribeAuditEventsResponse
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out.AuditEventSet
	}
	root := &api.Caller{UserName: "alice", Role: api.RoleAdmin}
	if got := list(root, `{}`); len(got) != 20 || got[0].Seq != 1 || got[19].Seq != 20 {
		t.Errorf("default page: %d events from %d", len(got), got[0].Seq)
	}
	got := list(root, `{"AfterSeq": 20, "Limit": 100}`)
	if len(got) != 5 || got[0].Seq != 21 || got[0].RequestId != "req-21" || got[0].Actor != "app:app-1" || got[0].Hash == "" {
		t.Errorf("after 20: %+v", got)
	}
	if _, err := time.Parse(time.RFC3339Nano, got[0].Time); err != nil {
		t.Errorf("Time %q: %v", got[0].Time, err)
	}
	_, err := callAction(reg, root, "DescribeAuditEvents", `{"Limit": 101}`)
	wantCode(t, err, api.InvalidParameterValue, "Limit: 101 is more than the maximum 100")
	_, err = callAction(reg, root, "DescribeAuditEvents", `{"AfterSeq": -1}`)
	wantCode(t, err, api.InvalidParameterValue, "AfterSeq: -1 is less than the minimum 0")

	// An auditor app of prj-a reads its own project's events only; a
	// viewer reads none (the audit log is the auditor's).
	app := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAuditor}
	if got := list(app, `{"Limit": 100}`); len(got) != 3 || got[0].Seq != 23 || got[0].ProjectId != "prj-a" {
		t.Errorf("prj-a's events: %+v", got)
	}
	_, err = callAction(reg, app, "DescribeAuditEvents", `{"ProjectId": "default"}`)
	wantCode(t, err, api.AuthFailureUnauthorizedOperation, "")
	app.Role = api.RoleViewer
	_, err = callAction(reg, app, "DescribeAuditEvents", `{}`)
	wantCode(t, err, api.AuthFailureUnauthorizedOperation, `ProjectId: role "viewer" does not grant DescribeAuditEvents in project prj-a`)
}

// DescribeProjects lists only the caller's projects (issue #26, part 6):
// an app of project A, even an owner, does not learn that B exists.
func TestDescribeProjectsListsOnlyTheCallersProjects(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	p := iam.NewProjects(db, newClock().now)
	ctx := context.Background()
	for _, id := range []string{"prj-a", "prj-b"} {
		if _, err := p.Create(ctx, id, strings.ToUpper(id), ""); err != nil {
			t.Fatal(err)
		}
	}
	reg := api.NewRegistry()
	iam.RegisterProjectActions(reg, p)
	list := func(c *api.Caller) string {
		t.Helper()
		resp, err := callAction(reg, c, "DescribeProjects", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, pr := range resp.(*iam.DescribeProjectsResponse).ProjectSet {
			got = append(got, pr.ProjectId)
		}
		return fmt.Sprintf("%d %s", resp.(*iam.DescribeProjectsResponse).TotalCount, strings.Join(got, ","))
	}
	for _, role := range []string{api.RoleOwner, api.RoleAdmin, api.RoleViewer} {
		if got := list(&api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: role}); got != "1 prj-a" {
			t.Errorf("DescribeProjects for a %s app of prj-a = %s, want 1 prj-a", role, got)
		}
	}
	viewer, _ := reg.BuiltinRole(api.RoleViewer)
	bound := &api.Caller{UserID: "usr-1", UserName: "bob"}
	bound.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: "prj-b", Role: viewer}}))
	if got := list(bound); got != "1 prj-b" {
		t.Errorf("DescribeProjects for a viewer of prj-b = %s", got)
	}
	if got := list(&api.Caller{AppID: "app-root", ProjectID: "default", Role: api.RoleAdmin}); got != "3 default,prj-a,prj-b" {
		t.Errorf("DescribeProjects for the platform admin = %s", got)
	}
}

// Project quotas have defaults and are set per project only by a platform
// admin (issue #26, part 6).
func TestProjectQuotas(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	ctx := context.Background()
	p := iam.NewProjects(db, newClock().now)
	p.SetDefaultQuotas(iam.Quotas{Apps: 100, Devices: 1000, Tasks: 1000})
	if _, err := p.Create(ctx, "prj-a", "A", ""); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]int{"apps": 100, "devices": 1000, "tasks": 1000} {
		if n, err := p.Quota(ctx, "prj-a", kind); err != nil || n != want {
			t.Errorf("default quota of %s = %d, %v; want %d", kind, n, err, want)
		}
	}
	reg := api.NewRegistry()
	iam.RegisterProjectActions(reg, p)
	admin := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleOwner}
	_, err := callAction(reg, admin, "ModifyProjectQuota", `{"ProjectId": "prj-a", "MaxApps": 100000}`)
	wantCode(t, err, api.AuthFailureUnauthorizedOperation, "")
	// Nor a custom role of every action: project writes are platform-only,
	// no role grants them (and the handler asks for a platform admin too).
	all, err := reg.MatchActions("Actions", []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	custom := &api.Caller{UserID: "usr-1", UserName: "mallory"}
	custom.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: "prj-a", Role: &api.Role{Name: "everything", Actions: all}}}))
	_, err = callAction(reg, custom, "ModifyProjectQuota", `{"ProjectId": "prj-a", "MaxApps": 100000}`)
	wantCode(t, err, api.AuthFailureUnauthorizedOperation, "")
	root := &api.Caller{AppID: "app-root", ProjectID: "default", Role: api.RoleAdmin}
	if _, err := callAction(reg, root, "ModifyProjectQuota", `{"ProjectId": "prj-a", "MaxApps": 3, "MaxTasks": 7}`); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]int{"apps": 3, "devices": 1000, "tasks": 7} {
		if n, err := p.Quota(ctx, "prj-a", kind); err != nil || n != want {
			t.Errorf("quota of %s after ModifyProjectQuota = %d, %v; want %d", kind, n, err, want)
		}
	}
	_, err = callAction(reg, root, "ModifyProjectQuota", `{"ProjectId": "prj-nope", "MaxApps": 3}`)
	wantCode(t, err, api.ResourceNotFound, "")
	// DescribeProjects shows the quotas in force.
	resp, err := callAction(reg, admin, "DescribeProjects", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.(*iam.DescribeProjectsResponse).ProjectSet[0].Quota; got != (iam.ProjectQuota{MaxApps: 3, MaxDevices: 1000, MaxTasks: 7}) {
		t.Errorf("DescribeProjects quota = %+v", got)
	}
}
