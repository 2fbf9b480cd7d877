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
       tianshu ctl login [--endpoint URL] --user NAME
       tianshu ctl logout

Calls ACTION and prints its Response as JSON. Field values are typed from the
action's request (strings stay strings; numbers, booleans, arrays and objects
are JSON). --json gives the whole body; --Field flags override its fields.
Credentials come from flags or TIANSHU_ENDPOINT, TIANSHU_SECRET_ID,
TIANSHU_SECRET_KEY. Without a key, ctl calls as the person that
'ctl login' logged in (password from TIANSHU_PASSWORD or a prompt; the
session is kept in TIANSHU_SESSION_FILE or ~/.config/tianshu/session.json,
mode 0600) until 'ctl logout'. Exits 1 on an error response (its code on
stderr), 2 on a usage or transport error.

Actions:
`

// ctl is a thin client: it signs like the official SDKs and types field
// flags from the same registry the server uses.
func ctl(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 {
		switch args[0] {
		case "login":
			return ctlLogin(args[1:], stdout, stderr, getenv)
		case "logout":
			return ctlLogout(stdout, stderr, getenv)
		}
	}
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
	// A key signs; without one, the session 'ctl login' kept is used.
	var authorize func(*http.Request, []byte)
	switch {
	case *secretID != "" && *secretKey != "":
		signer := tc3.Signer{SecretID: *secretID, SecretKey: *secretKey}
		authorize = func(r *http.Request, b []byte) { signer.Sign(r, b, time.Now()) }
	case *secretID == "" && *secretKey == "":
		s, err := loadSession(getenv)
		if err != nil {
			fmt.Fprintf(stderr, "tianshu ctl: no key and no session: set --secret-id and --secret-key (or TIANSHU_SECRET_ID and TIANSHU_SECRET_KEY), or run 'tianshu ctl login' (%v)\n", err)
			return 2
		}
		authorize = s.authorize
		if !endpointSet(fs, getenv) {
			*endpoint = s.Endpoint
		}
	default:
		fmt.Fprintln(stderr, "tianshu ctl: --secret-id and --secret-key (or TIANSHU_SECRET_ID and TIANSHU_SECRET_KEY) go together")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, _, err := post(ctx, http.DefaultClient, *endpoint, action, body, authorize)
	if err != nil {
		fmt.Fprintf(stderr, "tianshu ctl: %v\n", err)
		return 2
	}
	r, code := decodeResponse(resp, stderr)
	if code != 0 {
		return code
	}
	var out bytes.Buffer
	if err := json.Indent(&out, mustJSON(r), "", "  "); err != nil {
		return 2
	}
	out.WriteByte('\n')
	_, _ = stdout.Write(out.Bytes())
	return 0
}

// endpointSet reports whether the endpoint was chosen by flag or
// environment rather than defaulted.
func endpointSet(fs *flag.FlagSet, getenv func(string) string) bool {
	set := getenv("TIANSHU_ENDPOINT") != ""
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "endpoint" })
	return set
}

// decodeResponse returns an answer's Response fields, or prints its error
// and returns the exit code (1 for an error answer, 2 for a malformed one).
func decodeResponse(resp []byte, stderr io.Writer) (map[string]json.RawMessage, int) {
	var env struct {
		Response map[string]json.RawMessage `json:"Response"`
	}
	if err := json.Unmarshal(resp, &env); err != nil || env.Response == nil {
		fmt.Fprintf(stderr, "tianshu ctl: not an action API response: %.200s\n", resp)
		return nil, 2
	}
	if raw, ok := env.Response["Error"]; ok {
		var e struct{ Code, Message string }
		_ = json.Unmarshal(raw, &e)
		var rid string
		_ = json.Unmarshal(env.Response["RequestId"], &rid)
		fmt.Fprintf(stderr, "%s: %s (RequestId %s)\n", e.Code, e.Message, rid)
		return nil, 1
	}
	return env.Response, 0
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
	b, _, err := post(ctx, hc, endpoint, action, body, func(r *http.Request, b []byte) { s.Sign(r, b, time.Now()) })
	return b, err
}

// post posts one action, authorized by authorize (nil for Login), and
// returns the raw response body and the cookies it set.
func post(ctx context.Context, hc *http.Client, endpoint, action string, body []byte, authorize func(*http.Request, []byte)) ([]byte, []*http.Cookie, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", api.Version)
	if authorize != nil {
		authorize(req, body)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	return b, resp.Cookies(), nil
}
