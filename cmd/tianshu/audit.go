package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
)

const auditUsage = `usage: tianshu audit export [flags] > events.jsonl
       tianshu audit verify [flags]

export  writes the audit events the flags select, oldest first, one JSON
        object a line (the fields of DescribeAuditEvents' AuditEventSet,
        Seq, PrevHash and Hash included, so a copy can be checked offline).
        It pages by sequence number, so events appended meanwhile are not
        skipped or repeated.
verify  runs VerifyAuditLog and prints its answer; exits 1 when the chain
        is broken.

Credentials as for ctl: flags or TIANSHU_ENDPOINT, TIANSHU_SECRET_ID,
TIANSHU_SECRET_KEY; the key's app needs audit:read.

Flags:
`

// auditCmd is the operator's side of the audit log: an export to JSON
// lines and a verification, both through the action API.
func auditCmd(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("tianshu audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", envOr(getenv, "TIANSHU_ENDPOINT", "http://127.0.0.1:8080"), "platform URL (env TIANSHU_ENDPOINT)")
	secretID := fs.String("secret-id", getenv("TIANSHU_SECRET_ID"), "SecretId (env TIANSHU_SECRET_ID)")
	secretKey := fs.String("secret-key", getenv("TIANSHU_SECRET_KEY"), "SecretKey (env TIANSHU_SECRET_KEY)")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of each request")
	since := fs.String("since", "", "export: events at or after this time (RFC 3339)")
	until := fs.String("until", "", "export: events before this time (RFC 3339)")
	project := fs.String("project", "", "export: events of this project only")
	afterSeq := fs.Int64("after-seq", 0, "export: events after this sequence number (resume an earlier export)")
	var filters []api.Filter
	for _, name := range []string{"Actor", "Action", "Resource", "Result"} {
		fs.Func(lower(name), "export: events whose "+name+" is this (repeat for several)", func(v string) error {
			for i := range filters {
				if filters[i].Name == name {
					filters[i].Values = append(filters[i].Values, v)
					return nil
				}
			}
			filters = append(filters, api.Filter{Name: name, Values: []string{v}})
			return nil
		})
	}
	fs.Usage = func() {
		fmt.Fprint(stderr, auditUsage)
		fs.PrintDefaults()
	}
	if len(args) == 0 || (args[0] != "export" && args[0] != "verify") {
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tianshu audit: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *secretID == "" || *secretKey == "" {
		fmt.Fprintln(stderr, "tianshu audit: --secret-id and --secret-key (or TIANSHU_SECRET_ID and TIANSHU_SECRET_KEY) are required")
		return 2
	}
	c := actionClient{endpoint: *endpoint, signer: tc3.Signer{SecretID: *secretID, SecretKey: *secretKey}, timeout: *timeout}
	var err error
	if args[0] == "verify" {
		var res struct {
			Valid bool `json:"Valid"`
		}
		var raw json.RawMessage
		if raw, err = c.call("VerifyAuditLog", map[string]any{}, &res); err == nil {
			fmt.Fprintf(stdout, "%s\n", raw)
			if !res.Valid {
				return 1
			}
		}
	} else {
		req := map[string]any{}
		for k, v := range map[string]string{"StartTime": *since, "EndTime": *until, "ProjectId": *project} {
			if v != "" {
				req[k] = v
			}
		}
		if len(filters) > 0 {
			req["Filters"] = filters
		}
		var n int
		n, err = exportAudit(c, req, *afterSeq, stdout)
		if err == nil {
			fmt.Fprintf(stderr, "tianshu audit: exported %d events\n", n)
		}
	}
	var ae *actionError
	switch {
	case errors.As(err, &ae):
		fmt.Fprintf(stderr, "%s: %s (RequestId %s)\n", ae.Code, ae.Message, ae.RequestID)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "tianshu audit: %v\n", err)
		return 2
	}
	return 0
}

// exportAudit pages DescribeAuditEvents by AfterSeq and writes each event
// as one line.
func exportAudit(c actionClient, req map[string]any, after int64, out io.Writer) (int, error) {
	w := bufio.NewWriter(out)
	n := 0
	for {
		req["AfterSeq"], req["Limit"] = after, 100
		var page struct {
			AuditEventSet []json.RawMessage `json:"AuditEventSet"`
		}
		if _, err := c.call("DescribeAuditEvents", req, &page); err != nil {
			_ = w.Flush()
			return n, err
		}
		for _, ev := range page.AuditEventSet {
			var s struct {
				Seq int64 `json:"Seq"`
			}
			if err := json.Unmarshal(ev, &s); err != nil || s.Seq <= after {
				_ = w.Flush()
				return n, fmt.Errorf("DescribeAuditEvents: event %.100s does not follow seq %d", ev, after)
			}
			after = s.Seq
			_, _ = w.Write(ev)
			if err := w.WriteByte('\n'); err != nil {
				return n, err
			}
			n++
		}
		if len(page.AuditEventSet) < 100 {
			return n, w.Flush()
		}
	}
}

// actionClient calls actions and decodes their Response.
type actionClient struct {
	endpoint string
	signer   tc3.Signer
	timeout  time.Duration
}

// actionError is an error answer of the API.
type actionError struct {
	Code, Message, RequestID string
}

func (e *actionError) Error() string { return e.Code + ": " + e.Message }

// call posts the action and decodes the Response into out; it returns the
// Response as received, or an *actionError for an error answer.
func (c actionClient) call(action string, req any, out any) (json.RawMessage, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	b, err := Call(ctx, http.DefaultClient, c.endpoint, c.signer, action, body)
	if err != nil {
		return nil, err
	}
	var env struct {
		Response json.RawMessage `json:"Response"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.Response == nil {
		return nil, fmt.Errorf("not an action API response: %.200s", b)
	}
	var e struct {
		Error *struct {
			Code, Message string
		} `json:"Error"`
		RequestId string `json:"RequestId"`
	}
	if err := json.Unmarshal(env.Response, &e); err != nil {
		return nil, err
	}
	if e.Error != nil {
		return nil, &actionError{Code: e.Error.Code, Message: e.Error.Message, RequestID: e.RequestId}
	}
	return env.Response, json.Unmarshal(env.Response, out)
}

func lower(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}
