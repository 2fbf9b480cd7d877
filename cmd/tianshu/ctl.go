package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/app"
)

const ctlUsage = `usage: tianshu ctl [--endpoint URL] [--secret-id ID] [--secret-key KEY] ACTION [--Field value ...] [--json '{...}']

Calls ACTION and prints its Response as JSON. Field values are typed from the
action's request (strings stay strings; numbers, booleans, arrays and objects
are JSON). --json gives the whole body; --Field flags override its fields.
Credentials come from flags or TIANSHU_ENDPOINT, TIANSHU_SECRET_ID,
TIANSHU_SECRET_KEY. Exits 1 on an error response (its code on stderr), 2 on a
usage or transport error.

Actions:
`

// ctl is a thin client: it signs like the official SDKs and types field
// flags from the same registry the server uses.
func ctl(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("tianshu ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", envOr(getenv, "TIANSHU_ENDPOINT", "http://127.0.0.1:8080"), "platform URL (env TIANSHU_ENDPOINT)")
	secretID := fs.String("secret-id", getenv("TIANSHU_SECRET_ID"), "SecretId (env TIANSHU_SECRET_ID)")
	secretKey := fs.String("secret-key", getenv("TIANSHU_SECRET_KEY"), "SecretKey (env TIANSHU_SECRET_KEY)")
	timeout := fs.Duration("timeout", 30*time.Second, "request timeout")
	reg := app.NewRegistry(nil)
	fs.Usage = func() {
		fmt.Fprint(stderr, ctlUsage)
		for _, a := range reg.Actions() {
			fmt.Fprintf(stderr, "  %-24s %s\n", a.Name, a.Summary)
		}
		fmt.Fprintln(stderr, "\nOptions:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	action := fs.Arg(0)
	body, err := ctlBody(reg, action, fs.Args()[1:])
	if err != nil {
		fmt.Fprintf(stderr, "tianshu ctl: %v\n", err)
		return 2
	}
	if *secretID == "" || *secretKey == "" {
		fmt.Fprintln(stderr, "tianshu ctl: --secret-id and --secret-key (or TIANSHU_SECRET_ID and TIANSHU_SECRET_KEY) are required")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, err := Call(ctx, http.DefaultClient, *endpoint, tc3.Signer{SecretID: *secretID, SecretKey: *secretKey}, action, body)
	if err != nil {
		fmt.Fprintf(stderr, "tianshu ctl: %v\n", err)
		return 2
	}
	var env struct {
		Response map[string]json.RawMessage `json:"Response"`
	}
	if err := json.Unmarshal(resp, &env); err != nil || env.Response == nil {
		fmt.Fprintf(stderr, "tianshu ctl: not an action API response: %.200s\n", resp)
		return 2
	}
	if raw, ok := env.Response["Error"]; ok {
		var e struct{ Code, Message string }
		_ = json.Unmarshal(raw, &e)
		var rid string
		_ = json.Unmarshal(env.Response["RequestId"], &rid)
		fmt.Fprintf(stderr, "%s: %s (RequestId %s)\n", e.Code, e.Message, rid)
		return 1
	}
	var out bytes.Buffer
	if err := json.Indent(&out, mustJSON(env.Response), "", "  "); err != nil {
		return 2
	}
	out.WriteByte('\n')
	_, _ = stdout.Write(out.Bytes())
	return 0
}

// mustJSON encodes without HTML escaping, so URLs print as they are.
func mustJSON(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(v)
	return bytes.TrimRight(b.Bytes(), "\n")
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

// ctlBody builds the JSON body from --json and --Field value pairs.
func ctlBody(reg *api.Registry, action string, args []string) ([]byte, error) {
	body := map[string]any{}
	var reqType reflect.Type
	if a, ok := reg.Lookup(action); ok {
		reqType = a.Request
	}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "--") || name == "" {
			return nil, fmt.Errorf("unexpected argument %q (want --Field value)", args[i])
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
			i++
			val = args[i]
		}
		if name == "json" {
			dec := json.NewDecoder(strings.NewReader(val))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				return nil, fmt.Errorf("--json: %v", err)
			}
			for k, v := range m {
				body[k] = v
			}
			continue
		}
		v, err := fieldValue(reqType, name, val)
		if err != nil {
			return nil, err
		}
		body[name] = v
	}
	return json.Marshal(body)
}

// fieldValue types a flag value from the request field it sets.
func fieldValue(t reflect.Type, name, val string) (any, error) {
	if ft, ok := fieldType(t, name); ok && ft.Kind() == reflect.String {
		return val, nil
	}
	dec := json.NewDecoder(strings.NewReader(val))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		if ft, ok := fieldType(t, name); ok {
			return nil, fmt.Errorf("--%s: want JSON for a %s field, got %q", name, ft.Kind(), val)
		}
		return val, nil // unknown field: the server will say so
	}
	return v, nil
}

func fieldType(t reflect.Type, name string) (reflect.Type, bool) {
	if t == nil {
		return nil, false
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if ft, ok := fieldType(f.Type, name); ok {
				return ft, true
			}
			continue
		}
		n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if n == name || (n == "" && f.Name == name) {
			return f.Type, true
		}
	}
	return nil, false
}

// Call signs and posts one action and returns the raw response body.
func Call(ctx context.Context, hc *http.Client, endpoint string, s tc3.Signer, action string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", api.Version)
	s.Sign(req, body, time.Now())
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	return b, nil
}
