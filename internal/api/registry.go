// Package api is Tianshu's action API: a registry where every action is
// described once (name, request and response types, permission, audit), and
// the gateway that serves them over POST / in the "API 3.0" envelope with
// TC3-HMAC-SHA256 signatures. Docs, the CLI and the console's client all come
// from the same registry.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// Version is the API version this server serves (X-TC-Version).
const Version = "2026-11-28"

// Service is the service name in TC3 credential scopes.
const Service = "tianshu"

// Access is what an action does to its resource.
type Access string

// Accesses. Read actions are Describe*; everything else writes.
const (
	Read  Access = "read"
	Write Access = "write"
)

// Permission is what a caller must be granted to run an action: a resource
// kind and an access, written "app:write".
type Permission struct {
	Resource string
	Access   Access
}

// String returns "resource:access".
func (p Permission) String() string { return p.Resource + ":" + string(p.Access) }

// Spec describes an action.
type Spec struct {
	// Name is the VerbNoun action name, e.g. "CreateApp".
	Name string
	// Summary is one sentence for the docs and the CLI's help.
	Summary string
	// Permission must be granted to the caller.
	Permission Permission
	// Audit records every call (successful or not) in the audit log.
	Audit bool
	// Public actions need no key and no session (Login is the one): the
	// gateway skips authentication and the permission check.
	Public bool
	// Self actions act only on the calling person's own account and
	// sessions (Logout, ModifyMyPassword): any person with a session may
	// call them whatever their role, and apps may not.
	Self bool
	// Union marks a list whose handler covers several projects at once
	// (Caller.ListProjects): a ProjectId left empty then lists the union
	// of every project where the caller's roles grant the action, instead
	// of one of them.
	Union bool
	// Invoke marks an action that runs a flow or an algorithm on the
	// caller's input: CPU work far heavier than a read or a write of the
	// store, so the gateway bounds such calls in a class of their own
	// (api.concurrency.invoke).
	Invoke bool
}

// Action is a registered action.
type Action struct {
	Spec
	Request, Response reflect.Type
	call              func(ctx context.Context, c *Caller, body []byte) (any, error)
	index             int // in Registry.list, the bit of the action in an ActionSet
}

// Handler serves one action.
type Handler[Req, Resp any] func(ctx context.Context, c *Caller, req *Req) (*Resp, error)

// Registry holds actions by name. Register all actions before serving; the
// registry is read-only afterwards.
type Registry struct {
	actions map[string]*Action
	list    []*Action // in registration order: ActionSet bits
	builtin [5]ActionSet
	v       validators
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{actions: map[string]*Action{}} }

var actionName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{2,63}$`)

// Register adds an action. It panics on a duplicate or malformed name, since
// both are programming errors found by the first test that builds the
// registry.
func Register[Req, Resp any](r *Registry, s Spec, h Handler[Req, Resp]) {
	if !actionName.MatchString(s.Name) {
		panic("api: malformed action name " + s.Name)
	}
	if _, dup := r.actions[s.Name]; dup {
		panic("api: duplicate action " + s.Name)
	}
	if s.Permission.Resource == "" || (s.Permission.Access != Read && s.Permission.Access != Write) {
		panic("api: action " + s.Name + " has no permission")
	}
	rt := reflect.TypeFor[Req]()
	if rt.Kind() != reflect.Struct {
		panic("api: request of " + s.Name + " is not a struct")
	}
	rules := r.v.rules(rt)
	projectField := -1
	if f, ok := rt.FieldByName("ProjectId"); ok && f.Type.Kind() == reflect.String && len(f.Index) == 1 {
		projectField = f.Index[0]
	}
	a := &Action{Spec: s, Request: rt, Response: reflect.TypeFor[Resp](), index: len(r.list)}
	fast := fastPlanOf(rt)
	// The project is checked before the rest of the request is validated,
	// so that a caller learns nothing about a project it has no role in.
	a.call = func(ctx context.Context, c *Caller, body []byte) (any, error) {
		if c != nil {
			c.act = a
		}
		req := new(Req)
		if fast == nil || !fast.decode(body, reflect.ValueOf(req).Elem()) {
			*req = *new(Req) // the fast path may have filled part of it
			if err := decodeStrict(body, req); err != nil {
				return nil, err
			}
		}
		project := ""
		if projectField >= 0 {
			field := reflect.ValueOf(req).Elem().Field(projectField)
			if err := scopeProject(c, a, field); err != nil {
				return nil, err
			}
			project = field.String()
		}
		if err := c.chargeProject(ctx, a, project); err != nil {
			return nil, err
		}
		if err := rules.validate("", reflect.ValueOf(req).Elem()); err != nil {
			return nil, err
		}
		resp, err := h(ctx, c, req)
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
	r.actions[s.Name] = a
	r.list = append(r.list, a)
	for i, role := range Roles() {
		if BuiltinAllows(role, s.Permission) {
			r.builtin[i].add(a.index)
		}
	}
}

// Lookup returns the action named name.
func (r *Registry) Lookup(name string) (*Action, bool) {
	a, ok := r.actions[name]
	return a, ok
}

// Actions returns every action, sorted by name.
func (r *Registry) Actions() []*Action {
	out := make([]*Action, 0, len(r.actions))
	for _, a := range r.actions {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Call runs an action in-process with a JSON body, as the gateway does after
// authentication. The console's server side and tests use it too.
func (a *Action) Call(ctx context.Context, c *Caller, body []byte) (any, error) {
	return a.call(ctx, c, body)
}

// decodeStrict decodes a JSON object into v, refusing unknown fields,
// trailing data, duplicate keys and NUL characters, and turns decoding
// errors into API errors naming the field. It is the one decode path of
// every action, so every backend sees the same inputs.
func decodeStrict(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if err := decodeJSON(body, v); err != nil {
		return err
	}
	if len(body) == 0 {
		return nil
	}
	if err := checkJSON(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	return nil
}

// decodeJSON is decodeStrict without the checks of checkJSON.
func decodeJSON(body []byte, v any) error {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if body[0] != '{' {
		return Errorf(InvalidParameter, "body: must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(InvalidParameter, "body: unexpected data after the JSON object")
	}
	return nil
}

func jsonError(body []byte, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		// te.Field is a Go path: it names embedded structs and drops list
		// indexes, so name the field from where the value sits in the body.
		field := pathAt(body, te.Offset)
		if field == "" {
			field = te.Field
		}
		if field == "" {
			field = "body"
		}
		return InvalidValue(field, "want %s, got JSON %s", typeName(te.Type), te.Value)
	case errors.As(err, &se):
		return Errorf(InvalidParameter, "body: malformed JSON at byte %d: %s", se.Offset, se.Error())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Errorf(UnknownParameter, "%s: the action takes no such field", f)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return Errorf(InvalidParameter, "body: truncated JSON")
	}
	return Errorf(InvalidParameter, "body: %v", err)
}

// pathAt returns the path of the value in body (a JSON object) that ends at
// offset, or whose opening bracket does, as the client sent it and as the
// validator writes it: Inner.Kinds[0]. It returns "" when no value there
// belongs to a field.
func pathAt(body []byte, offset int64) string {
	type frame struct {
		prefix  string // what the paths of the children start with
		array   bool
		n       int    // the next index in an array
		wantKey bool   // an object's next token is a key
		key     string // the key of an object's current value
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		var path string
		switch {
		case top == nil: // the body itself
		case top.array:
			path = indexPath(top.prefix, top.n)
			top.n++
		case top.wantKey: // an object key: a bad map key is named by it
			top.key, _ = tok.(string)
			top.wantKey = false
			if dec.InputOffset() >= offset {
				return top.prefix + top.key
			}
			continue
		default:
			path = top.prefix + top.key
			top.wantKey = true
		}
		if dec.InputOffset() >= offset {
			return path
		}
		switch tok {
		case json.Delim('{'):
			prefix := ""
			if top != nil {
				prefix = path + "."
			}
			stack = append(stack, &frame{prefix: prefix, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{prefix: path, array: true})
		}
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return fmt.Sprint(t)
}
