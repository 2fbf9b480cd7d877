package algorepo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
)

const vendorKey = "vk-live-7f3a9c2e51"

// mappedSecretDef is an http-mapped version whose request script names the
// vendor key only as ${secret:API_KEY}; input "mode" picks the path.
func mappedSecretDef(endpoint string) map[string]any {
	return map[string]any{
		"runtime": "endpoint", "protocol": "http-mapped", "endpoints": []string{endpoint},
		"contract": map[string]any{
			"inputs":  []any{map[string]any{"name": "mode", "type": "text", "required": true}},
			"outputs": []any{map[string]any{"name": "ok", "type": "bool"}},
		},
		"mapping": map[string]any{
			"request":  "def main(input):\n    return {\"path\": \"/\" + input[\"mode\"], \"headers\": {\"X-Api-Key\": \"${secret:API_KEY}\", \"Authorization\": \"Bearer ${secret:API_KEY}\"}, \"json\": {}}\n",
			"response": "def main(resp):\n    return {\"ok\": True}\n",
		},
	}
}

// vendor is an HTTP API that records the key it was sent and, on /fail,
// echoes it in its error answer, as some vendors do.
type vendor struct {
	mu   sync.Mutex
	keys []string
}

func (v *vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.keys = append(v.keys, r.Header.Get("X-Api-Key")+" | "+r.Header.Get("Authorization"))
	v.mu.Unlock()
	if r.URL.Path == "/fail" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error": "key %s is not valid for this route"}`, r.Header.Get("X-Api-Key"))
		return
	}
	w.Write([]byte(`{}`))
}

// A version's secrets are write-only: sealed in the store, shown to every
// role by name with the value masked, given to the http-mapped endpoint as
// header values, and masked in a failing call's error (issue #26, part 5).
func TestVersionSecretsWriteOnly(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	box, _ := secrets.New(bytes.Repeat([]byte{7}, secrets.KeySize))
	e.s.UseSecrets(box)
	ven := &vendor{}
	srv := httptest.NewServer(ven)
	defer srv.Close()

	admin := &api.Caller{AppID: "app-a", ProjectID: "prj-a", Role: api.RoleAdmin}
	viewer := &api.Caller{AppID: "app-v", ProjectID: "prj-a", Role: api.RoleViewer}
	var alg algorepo.CreateAlgorithmResponse
	if err := call(t, e, admin, "CreateAlgorithm", map[string]any{"Name": "vendor"}, &alg); err != nil {
		t.Fatal(err)
	}
	create := func(secrets any) error {
		return call(t, e, admin, "CreateAlgorithmVersion", map[string]any{"AlgorithmId": alg.AlgorithmId,
			"Definition": mappedSecretDef(srv.URL), "Secrets": secrets, "Start": true}, nil)
	}

	// Bad secrets name the field.
	many := make([]map[string]string, 17)
	for i := range many {
		many[i] = map[string]string{"Name": fmt.Sprintf("K%d", i), "Value": "value"}
	}
	for _, c := range []struct {
		secrets any
		code    api.Code
		msg     string
	}{
		{[]map[string]string{{"Name": "1KEY", "Value": "x"}}, api.InvalidParameterValue, `Secrets[0].Name: "1KEY" is not a secret name (a letter or _, then letters, digits or _, at most 64)`},
		{[]map[string]string{{"Name": "A", "Value": "x"}, {"Name": "A", "Value": "y"}}, api.InvalidParameterValue, `Secrets[1].Name: "A" is given twice`},
		{[]map[string]string{{"Name": "PATH", "Value": "x"}}, api.InvalidParameterValue, `Secrets[0].Name: "PATH" is a variable the platform sets`},
		{[]map[string]string{{"Name": "A"}}, api.MissingParameter, ""},
		{[]map[string]string{{"Name": "A", "Value": strings.Repeat("x", 4097)}}, api.InvalidParameterValue, "Secrets[0].Value: 4097 characters; at most 4096 allowed"},
		{many, api.InvalidParameterValue, ""},
	} {
		wantCode(t, create(c.secrets), c.code, c.msg)
	}

	if err := create([]map[string]string{{"Name": "API_KEY", "Value": vendorKey}}); err != nil {
		t.Fatal(err)
	}
	var desc struct {
		VersionSet []struct {
			Secrets []algorepo.Secret
		}
	}
	for _, c := range []*api.Caller{viewer, admin} {
		a, _ := e.reg.Lookup("DescribeAlgorithmVersions")
		resp, err := a.Call(ctx, c, []byte(`{"AlgorithmId":"`+alg.AlgorithmId+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(resp)
		if strings.Contains(string(raw), vendorKey) {
			t.Fatalf("DescribeAlgorithmVersions (%s) shows the secret: %s", c.Role, raw)
		}
		_ = json.Unmarshal(raw, &desc)
		if len(desc.VersionSet) != 1 || fmt.Sprint(desc.VersionSet[0].Secrets) != "[{API_KEY ***}]" {
			t.Fatalf("secrets shown as %s", raw)
		}
	}
	var def, sealed string
	if err := e.db.QueryRow(ctx, "SELECT definition FROM algorithm_versions WHERE algorithm_id = ?", alg.AlgorithmId).Scan(&def); err != nil {
		t.Fatal(err)
	}
	if err := e.db.QueryRow(ctx, "SELECT secrets_enc FROM algorithm_secrets WHERE algorithm_id = ?", alg.AlgorithmId).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(def, vendorKey) || strings.Contains(sealed, vendorKey) {
		t.Fatal("the secret is stored in clear")
	}
	body, _ := json.Marshal(map[string]any{"Secrets": []map[string]string{{"Name": "API_KEY", "Value": vendorKey}}})
	if strings.Contains(api.RedactJSON(body, 4096), vendorKey) {
		t.Fatal("the audit record of CreateAlgorithmVersion shows the secret")
	}

	ref := flow.AlgorithmRef{ID: alg.AlgorithmId}
	invoke := func() error {
		_, err := e.s.Invoke(ctx, ref, map[string]any{"mode": "ok"})
		return err
	}
	if err := invoke(); err != nil {
		t.Fatal(err)
	}
	// Stopped and started again, the version's secrets come from the store.
	for _, action := range []string{"StopAlgorithmVersion", "StartAlgorithmVersion"} {
		if err := call(t, e, admin, action, map[string]any{"AlgorithmId": alg.AlgorithmId}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := invoke(); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.Invoke(ctx, ref, map[string]any{"mode": "fail"})
	if err == nil || strings.Contains(err.Error(), vendorKey) || !strings.Contains(err.Error(), "key *** is not valid") {
		t.Fatalf("failing call's error: %v", err)
	}
	// The action shows the vendor's answer on its own: masked too.
	err = call(t, e, admin, "InvokeAlgorithm", map[string]any{"AlgorithmId": alg.AlgorithmId, "Inputs": map[string]any{"mode": "fail"}}, nil)
	if err == nil || strings.Contains(err.Error(), vendorKey) || !strings.Contains(err.Error(), "key *** is not valid") {
		t.Fatalf("InvokeAlgorithm's error: %v", err)
	}
	ven.mu.Lock()
	defer ven.mu.Unlock()
	want := vendorKey + " | Bearer " + vendorKey
	if len(ven.keys) != 4 || ven.keys[0] != want || ven.keys[3] != want {
		t.Fatalf("the vendor received %q; want %q each time", ven.keys, want)
	}
	st, _ := e.s.Instances(ctx, alg.AlgorithmId, "")
	for _, s := range st {
		if strings.Contains(s.LastError, vendorKey) {
			t.Fatalf("LastError shows the secret: %s", s.LastError)
		}
	}
}

// `tianshu secrets rotate` re-encrypts versions' secrets: after a run
// under a new key, a repository that holds only the new key starts the
// version with its secret.
func TestRotateAlgorithmSecrets(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := bytes.Repeat([]byte{0xa}, secrets.KeySize)
	b := bytes.Repeat([]byte{0xb}, secrets.KeySize)
	boxA, _ := secrets.New(a)
	staged, _ := secrets.Keyring{Keys: [][]byte{a}}.Stage(b)
	promoted, _ := staged.Promote()
	rotating, _ := secrets.NewKeyring(promoted)
	onlyB, _ := secrets.New(b)
	e.s.UseSecrets(boxA)
	ven := &vendor{}
	srv := httptest.NewServer(ven)
	defer srv.Close()
	alg, err := e.s.Create(ctx, "prj-a", "vendor", "")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(mappedSecretDef(srv.URL))
	var def algorithm.Version
	if err := json.Unmarshal(raw, &def); err != nil {
		t.Fatal(err)
	}
	if err := algorepo.SetSecrets(&def, []algorepo.Secret{{Name: "API_KEY", Value: vendorKey}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.CreateVersion(ctx, alg.ID, "", def, false); err != nil {
		t.Fatal(err)
	}
	cols := algorepo.SealedColumns()
	if len(cols) != 2 || cols[0].String() != "algorithm_secrets.secrets_enc" || cols[1].String() != "image_registry_credentials.password_enc" {
		t.Fatalf("sealed columns %v", cols)
	}
	if n, err := reseal.Run(ctx, e.db, rotating, cols[0], nil); err != nil || n.Resealed != 1 {
		t.Fatalf("rotate: %+v, %v", n, err)
	}
	e.s.UseSecrets(onlyB)
	if err := e.s.SetDesired(ctx, alg.ID, "", algorepo.Running); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Invoke(ctx, flow.AlgorithmRef{ID: alg.ID}, map[string]any{"mode": "ok"}); err != nil {
		t.Fatal(err)
	}
	ven.mu.Lock()
	defer ven.mu.Unlock()
	if len(ven.keys) != 1 || ven.keys[0] != vendorKey+" | Bearer "+vendorKey {
		t.Fatalf("the vendor received %q", ven.keys)
	}
}
