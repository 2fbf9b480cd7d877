package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// An operator exports the audit log page by page to JSON lines and
// verifies it, through the action API of a gateway over real stores.
func TestAuditExportAndVerify(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	box, err := secrets.New(bytes.Repeat([]byte{3}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	apps := appcenter.New(db, box, log, nil)
	audit := iam.NewAudit(db, nil, iam.WithCheckpointKey(box.DeriveKey("audit-checkpoint")))
	reg := api.NewRegistry()
	appcenter.RegisterActions(reg, apps)
	iam.RegisterActions(reg, audit)
	srv := httptest.NewServer(api.NewGateway(api.DefaultConfig(), reg, api.GatewayOptions{Keys: apps, Auditor: audit, Logger: log}))
	t.Cleanup(srv.Close)
	a, err := apps.CreateApp(ctx, "default", "auditor", "", api.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	id, key, err := apps.CreateKey(ctx, a.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// 250 events: more than two pages.
	for i := 1; i <= 250; i++ {
		result := "OK"
		if i%50 == 0 {
			result = "ResourceNotFound"
		}
		if err := audit.Record(ctx, api.AuditEvent{Actor: "app:x", Action: "ModifyThing", Resource: fmt.Sprint("thing-", i), Result: result}); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"TIANSHU_ENDPOINT": srv.URL, "TIANSHU_SECRET_ID": id, "TIANSHU_SECRET_KEY": key}
	audited := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"audit"}, args...), &out, &errOut, func(k string) string { return env[k] })
		return code, out.String(), errOut.String()
	}

	code, out, errOut := audited("export", "--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	if code != 0 || !strings.Contains(errOut, "exported 250 events") {
		t.Fatalf("export: exit %d, stderr %s", code, errOut)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var n int64
	prev := ""
	for sc.Scan() {
		var ev iam.AuditEventInfo
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d: %v: %s", n+1, err, sc.Text())
		}
		n++
		if ev.Seq != n || ev.PrevHash != prev || ev.Resource != fmt.Sprint("thing-", n) {
			t.Fatalf("line %d: %+v", n, ev)
		}
		prev = ev.Hash
	}
	if n != 250 {
		t.Fatalf("%d lines, want 250", n)
	}

	// Filters, and resuming after a sequence number.
	if code, out, _ := audited("export", "--result", "ResourceNotFound", "--after-seq", "100"); code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"Resource":"thing-150"`) {
		t.Errorf("filtered export: exit %d\n%s", code, out)
	}
	if code, _, errOut := audited("export", "--since", "yesterday"); code != 1 || !strings.Contains(errOut, "InvalidParameterValue: StartTime") {
		t.Errorf("bad --since: exit %d, %s", code, errOut)
	}

	code, out, _ = audited("verify")
	if code != 0 || !strings.Contains(out, `"Valid":true`) || !strings.Contains(out, `"CheckedCount":250`) {
		t.Errorf("verify: exit %d, %s", code, out)
	}
	if _, err := db.Exec(ctx, "UPDATE audit_events SET result = 'OK' WHERE seq = 100"); err != nil {
		t.Fatal(err)
	}
	code, out, _ = audited("verify")
	if code != 1 || !strings.Contains(out, `"BrokenSeq":100`) || !strings.Contains(out, `"Reason":"hash mismatch"`) {
		t.Errorf("verify of an edited log: exit %d, %s", code, out)
	}
	if code, _, _ := audited("shred"); code != 2 {
		t.Errorf("unknown subcommand: exit %d", code)
	}
}
