package api_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
)

type echoRequest struct {
	ProjectId string       `json:"ProjectId" validate:"max=64"`
	Name      string       `json:"Name" validate:"required,max=8"`
	Role      string       `json:"Role" validate:"oneof=admin viewer"`
	Count     int          `json:"Count" validate:"min=0,max=10"`
	Ratio     float64      `json:"Ratio" validate:"max=1"`
	Tags      []string     `json:"Tags" validate:"max=3"`
	Note      *string      `json:"Note" validate:"min=2,max=5"`
	Inner     *innerPart   `json:"Inner"`
	Filters   []api.Filter `json:"Filters" validate:"max=2"`
	Free      map[string]any
	Long      string `json:"Long"`
	Hidden    string `json:"-"`
	api.Paging
}

type innerPart struct {
	Id    string   `json:"Id" validate:"required"`
	Kinds []string `json:"Kinds" validate:"oneof=a b"`
}

type echoResponse struct {
	Got     echoRequest
	Caller  string
	Offset  int
	Limit   int
	Project string
}

// echoRegistry has one action that answers its decoded request, so tests
// see exactly what validation and normalisation let through.
func echoRegistry() *api.Registry {
	reg := api.NewRegistry()
	api.Register(reg, api.Spec{Name: "EchoThing", Summary: "Echo.", Permission: api.Permission{Resource: "thing", Access: api.Write}, Audit: true},
		func(_ context.Context, c *api.Caller, r *echoRequest) (*echoResponse, error) {
			off, lim := r.Page()
			return &echoResponse{Got: *r, Caller: c.Actor(), Offset: off, Limit: lim, Project: r.ProjectId}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeThings", Summary: "List.", Permission: api.Permission{Resource: "thing", Access: api.Read}},
		func(_ context.Context, _ *api.Caller, _ *struct{}) (*struct{}, error) { return &struct{}{}, nil })
	return reg
}

var platformAdmin = &api.Caller{AppID: "app-root", ProjectID: "default", Role: api.RoleAdmin}

func callEcho(t *testing.T, c *api.Caller, body string) (*echoResponse, error) {
	t.Helper()
	a, ok := echoRegistry().Lookup("EchoThing")
	if !ok {
		t.Fatal("EchoThing not registered")
	}
	resp, err := a.Call(context.Background(), c, []byte(body))
	if err != nil {
		return nil, err
	}
	return resp.(*echoResponse), nil
}

func wantAPIError(t *testing.T, err error, code api.Code, msg string) {
	t.Helper()
	e, ok := api.AsError(err)
	if !ok {
		t.Fatalf("error %v (%T); want *api.Error %s", err, err, code)
	}
	if e.Code != code || e.Message != msg {
		t.Errorf("error = %s %q\n want   %s %q", e.Code, e.Message, code, msg)
	}
}

func TestRegistryLookupAndOrder(t *testing.T) {
	reg := echoRegistry()
	a, ok := reg.Lookup("EchoThing")
	if !ok {
		t.Fatal("Lookup(EchoThing) not found")
	}
	if a.Name != "EchoThing" || a.Permission.String() != "thing:write" || !a.Audit {
		t.Errorf("spec = %+v", a.Spec)
	}
	if a.Request != reflect.TypeFor[echoRequest]() || a.Response != reflect.TypeFor[echoResponse]() {
		t.Errorf("types = %v, %v", a.Request, a.Response)
	}
	if _, ok := reg.Lookup("echoThing"); ok {
		t.Error("Lookup is not case-sensitive")
	}
	if _, ok := reg.Lookup("Nope"); ok {
		t.Error("Lookup(Nope) found something")
	}
	var names []string
	for _, a := range reg.Actions() {
		names = append(names, a.Name)
	}
	if want := []string{"DescribeThings", "EchoThing"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Actions() = %v, want %v (sorted)", names, want)
	}
}

func TestRegisterPanicsOnProgrammingErrors(t *testing.T) {
	perm := api.Permission{Resource: "thing", Access: api.Read}
	h := func(context.Context, *api.Caller, *struct{}) (*struct{}, error) { return nil, nil }
	cases := map[string]struct {
		register func(*api.Registry)
		panic    string
	}{
		"duplicate": {func(r *api.Registry) {
			api.Register(r, api.Spec{Name: "DescribeThings", Permission: perm}, h)
			api.Register(r, api.Spec{Name: "DescribeThings", Permission: perm}, h)
		}, "api: duplicate action DescribeThings"},
		"lower-case name": {func(r *api.Registry) { api.Register(r, api.Spec{Name: "describeThings", Permission: perm}, h) }, "api: malformed action name describeThings"},
		"too short":       {func(r *api.Registry) { api.Register(r, api.Spec{Name: "Do", Permission: perm}, h) }, "api: malformed action name Do"},
		"punctuation":     {func(r *api.Registry) { api.Register(r, api.Spec{Name: "Describe.Things", Permission: perm}, h) }, "api: malformed action name Describe.Things"},
		"no permission":   {func(r *api.Registry) { api.Register(r, api.Spec{Name: "DescribeThings"}, h) }, "api: action DescribeThings has no permission"},
		"unknown access": {func(r *api.Registry) {
			api.Register(r, api.Spec{Name: "DescribeThings", Permission: api.Permission{Resource: "thing", Access: "admin"}}, h)
		}, "api: action DescribeThings has no permission"},
		"no resource": {func(r *api.Registry) {
			api.Register(r, api.Spec{Name: "DescribeThings", Permission: api.Permission{Access: api.Read}}, h)
		}, "api: action DescribeThings has no permission"},
		"non-struct request": {func(r *api.Registry) {
			api.Register(r, api.Spec{Name: "DescribeThings", Permission: perm}, func(context.Context, *api.Caller, *string) (*struct{}, error) { return nil, nil })
		}, "api: request of DescribeThings is not a struct"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				p := recover()
				if p == nil {
					t.Fatal("Register did not panic")
				}
				if p != c.panic {
					t.Errorf("panic %q, want %q", p, c.panic)
				}
			}()
			c.register(api.NewRegistry())
		})
	}
}

func TestDecodeAndValidate(t *testing.T) {
	cases := []struct {
		name, body string
		code       api.Code
		msg        string
	}{
		{"not an object", `[1]`, api.InvalidParameter, "body: must be a JSON object"},
		{"string body", `"x"`, api.InvalidParameter, "body: must be a JSON object"},
		{"truncated", `{"Name": "a"`, api.InvalidParameter, "body: truncated JSON"},
		{"trailing data", `{"Name": "a"} {}`, api.InvalidParameter, "body: unexpected data after the JSON object"},
		{"unknown field", `{"Name": "a", "Nmae": "b"}`, api.UnknownParameter, "Nmae: the action takes no such field"},
		{"json:- field", `{"Name": "a", "Hidden": "b"}`, api.UnknownParameter, "Hidden: the action takes no such field"},
		{"missing", `{}`, api.MissingParameter, "Name: required"},
		{"empty string is missing", `{"Name": ""}`, api.MissingParameter, "Name: required"},
		{"string as number", `{"Name": 5}`, api.InvalidParameterValue, "Name: want a string, got JSON number"},
		{"number as string", `{"Name": "a", "Count": "5"}`, api.InvalidParameterValue, "Count: want an integer, got JSON string"},
		{"fractional integer", `{"Name": "a", "Count": 1.5}`, api.InvalidParameterValue, "Count: want an integer, got JSON number 1.5"},
		{"bool as string", `{"Name": true}`, api.InvalidParameterValue, "Name: want a string, got JSON bool"},
		{"object as array", `{"Name": "a", "Tags": {}}`, api.InvalidParameterValue, "Tags: want an array, got JSON object"},
		{"too long", `{"Name": "abcdefghi"}`, api.InvalidParameterValue, "Name: 9 characters; at most 8 allowed"},
		{"length counts characters", `{"Name": "天枢天枢天枢天枢"}`, "", ""},
		{"default string max", `{"Name": "a", "Long": "` + strings.Repeat("é", api.DefaultMaxString+1) + `"}`, api.InvalidParameterValue, "Long: 4097 characters; at most 4096 allowed"},
		{"oneof", `{"Name": "a", "Role": "root"}`, api.InvalidParameterValue, `Role: "root" is not one of admin, viewer`},
		{"number over max", `{"Name": "a", "Count": 11}`, api.InvalidParameterValue, "Count: 11 is more than the maximum 10"},
		{"number under min", `{"Name": "a", "Count": -1}`, api.InvalidParameterValue, "Count: -1 is less than the minimum 0"},
		{"nested wrong type", `{"Name": "a", "Inner": {"Id": 5}}`, api.InvalidParameterValue, "Inner.Id: want a string, got JSON number"},
		{"float over max", `{"Name": "a", "Ratio": 1.5}`, api.InvalidParameterValue, "Ratio: 1.5 is more than the maximum 1"},
		{"too many items", `{"Name": "a", "Tags": ["1", "2", "3", "4"]}`, api.InvalidParameterValue, "Tags: 4 items; at most 3 allowed"},
		{"pointer too short", `{"Name": "a", "Note": "x"}`, api.InvalidParameterValue, "Note: 1 characters; at least 2 required"},
		{"pointer set to empty", `{"Name": "a", "Note": ""}`, api.InvalidParameterValue, "Note: 0 characters; at least 2 required"},
		{"nested missing", `{"Name": "a", "Inner": {}}`, api.MissingParameter, "Inner.Id: required"},
		{"nested slice oneof", `{"Name": "a", "Inner": {"Id": "i", "Kinds": ["a", "c"]}}`, api.InvalidParameterValue, `Inner.Kinds[1]: "c" is not one of a, b`},
		{"filter missing values", `{"Name": "a", "Filters": [{"Name": "x", "Values": ["v"]}, {"Name": "y"}]}`, api.MissingParameter, "Filters[1].Values: required"},
		{"too many filters", `{"Name": "a", "Filters": [{"Name": "x", "Values": ["v"]}, {"Name": "x", "Values": ["v"]}, {"Name": "x", "Values": ["v"]}]}`, api.InvalidParameterValue, "Filters: 3 items; at most 2 allowed"},
		// Embedded Paging's fields are the request's own: no "Paging." prefix.
		{"limit over 100", `{"Name": "a", "Limit": 101}`, api.InvalidParameterValue, "Limit: 101 is more than the maximum 100"},
		{"negative offset", `{"Name": "a", "Offset": -1}`, api.InvalidParameterValue, "Offset: -1 is less than the minimum 0"},
		{"valid", `{"Name": "a", "Role": "admin", "Count": 10, "Tags": ["x"], "Note": "ok", "Inner": {"Id": "i", "Kinds": ["b"]}}`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := callEcho(t, platformAdmin, c.body)
			if c.code == "" {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			wantAPIError(t, err, c.code, c.msg)
		})
	}
}

// A wrong-typed field must be named as the client wrote it, the way the
// validator names fields: with list indexes, and without the Go name of an
// embedded struct.
func TestTypeErrorsNameTheFieldAsSent(t *testing.T) {
	for body, msg := range map[string]string{
		`{"Name": "a", "Limit": "20"}`:              "Limit: want an integer, got JSON string",
		`{"Name": "a", "Filters": [{"Name": 1}]}`:   "Filters[0].Name: want a string, got JSON number",
		`{"Name": "a", "Inner": {"Kinds": [true]}}`: "Inner.Kinds[0]: want a string, got JSON bool",
	} {
		_, err := callEcho(t, platformAdmin, body)
		wantAPIError(t, err, api.InvalidParameterValue, msg)
	}
}

func TestDecodeMalformedJSONNamesTheOffset(t *testing.T) {
	_, err := callEcho(t, platformAdmin, `{"Name": "a",, }`)
	e, ok := api.AsError(err)
	if !ok || e.Code != api.InvalidParameter || !strings.HasPrefix(e.Message, "body: malformed JSON at byte 14:") {
		t.Fatalf("error = %v; want InvalidParameter naming byte 14", err)
	}
}

func TestEmptyBodyIsAnEmptyObject(t *testing.T) {
	a, _ := echoRegistry().Lookup("DescribeThings")
	for _, body := range []string{"", "  \n", "{}"} {
		if _, err := a.Call(context.Background(), platformAdmin, []byte(body)); err != nil {
			t.Errorf("body %q: %v", body, err)
		}
	}
}

func TestPaging(t *testing.T) {
	for _, c := range []struct {
		body          string
		offset, limit int
	}{
		{`{"Name": "a"}`, 0, 20},
		{`{"Name": "a", "Limit": 0}`, 0, 20},
		{`{"Name": "a", "Offset": 40, "Limit": 100}`, 40, 100},
		{`{"Name": "a", "Offset": 3, "Limit": 1}`, 3, 1},
	} {
		r, err := callEcho(t, platformAdmin, c.body)
		if err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		if r.Offset != c.offset || r.Limit != c.limit {
			t.Errorf("%s: Page() = %d, %d; want %d, %d", c.body, r.Offset, r.Limit, c.offset, c.limit)
		}
	}
	if off, lim := (api.Paging{}).Page(); off != 0 || lim != 20 {
		t.Errorf("zero Paging.Page() = %d, %d; want 0, 20", off, lim)
	}
}

func TestParseFilters(t *testing.T) {
	got, err := api.ParseFilters([]api.Filter{{Name: "Name", Values: []string{"a"}}, {Name: "Role", Values: []string{"admin"}}, {Name: "Name", Values: []string{"b"}}}, "Role", "Name")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]string{"Name": {"a", "b"}, "Role": {"admin"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("ParseFilters = %v, want %v", got, want)
	}
	_, err = api.ParseFilters([]api.Filter{{Name: "Name"}, {Name: "Colour", Values: []string{"red"}}}, "Role", "Name")
	wantAPIError(t, err, api.InvalidParameterValue, `Filters[1].Name: unknown filter "Colour"; known: Name, Role`)
}

func TestNormalize(t *testing.T) {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"i": 3, "f": 2.5, "big": 9007199254740993, "list": [1, 1.25, {"n": -4}], "s": "7"}`))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	got := api.NormalizeMap(m)
	want := map[string]any{"i": int64(3), "f": 2.5, "big": int64(9007199254740993), "list": []any{int64(1), 1.25, map[string]any{"n": int64(-4)}}, "s": "7"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NormalizeMap = %#v\nwant %#v", got, want)
	}
	if n := api.NormalizeMap(nil); n == nil || len(n) != 0 {
		t.Errorf("NormalizeMap(nil) = %#v, want an empty map", n)
	}
}

func TestProjectScoping(t *testing.T) {
	app := &api.Caller{AppID: "app-cam", ProjectID: "prj-a", Role: api.RoleAdmin}
	// An app's empty ProjectId becomes its own project.
	r, err := callEcho(t, app, `{"Name": "a"}`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Project != "prj-a" {
		t.Errorf("empty ProjectId became %q, want prj-a", r.Project)
	}
	if _, err := callEcho(t, app, `{"Name": "a", "ProjectId": "prj-a"}`); err != nil {
		t.Errorf("own project refused: %v", err)
	}
	_, err = callEcho(t, app, `{"Name": "a", "ProjectId": "prj-b"}`)
	wantAPIError(t, err, api.AuthFailureUnauthorizedOperation, "ProjectId: app app-cam belongs to project prj-a and cannot act on project prj-b")

	// Platform admins (admin apps of the default project, console users)
	// may name any project, and an empty one stays empty ("every project").
	for _, c := range []*api.Caller{platformAdmin, {UserName: "alice", Role: api.RoleViewer}} {
		r, err := callEcho(t, c, `{"Name": "a"}`)
		if err != nil || r.Project != "" {
			t.Errorf("%s: empty ProjectId = %q, %v; want it left empty", c.Actor(), r.Project, err)
		}
		if r, err := callEcho(t, c, `{"Name": "a", "ProjectId": "prj-b"}`); err != nil || r.Project != "prj-b" {
			t.Errorf("%s: ProjectId prj-b refused: %v", c.Actor(), err)
		}
	}
	// A viewer app of the default project is not a platform admin.
	viewer := &api.Caller{AppID: "app-v", ProjectID: "default", Role: api.RoleViewer}
	_, err = callEcho(t, viewer, `{"Name": "a", "ProjectId": "prj-b"}`)
	wantAPIError(t, err, api.AuthFailureUnauthorizedOperation, "ProjectId: app app-v belongs to project default and cannot act on project prj-b")
}

func TestCallerPermissions(t *testing.T) {
	read := api.Permission{Resource: "flow", Access: api.Read}
	write := api.Permission{Resource: "flow", Access: api.Write}
	for _, c := range []struct {
		role        string
		read, write bool
	}{{api.RoleOwner, true, true}, {api.RoleAdmin, true, true}, {api.RoleOperator, true, true},
		{api.RoleViewer, true, false}, {api.RoleAuditor, false, false}, {"", false, false}, {"nobody", false, false}} {
		caller := &api.Caller{Role: c.role}
		if got := caller.Allowed(read); got != c.read {
			t.Errorf("role %q Allowed(read) = %v", c.role, got)
		}
		if got := caller.Allowed(write); got != c.write {
			t.Errorf("role %q Allowed(write) = %v", c.role, got)
		}
	}
	app := &api.Caller{AppID: "app-1", ProjectID: "prj-a", Role: api.RoleAdmin}
	if !app.Sees("prj-a") || !app.Sees("*") || app.Sees("prj-b") || app.Sees("default") {
		t.Error("an app of prj-a must see prj-a and built-ins (*) only")
	}
	if !platformAdmin.Sees("prj-b") {
		t.Error("a platform admin must see every project")
	}
	if app.Actor() != "app:app-1" || (&api.Caller{UserName: "bob", AppID: "x"}).Actor() != "user:bob" {
		t.Error("Actor names the user when there is one, else the app")
	}
}

func TestRedactJSON(t *testing.T) {
	got := api.RedactJSON([]byte(`{"Name": "cam", "Password": "p", "Inner": {"SecretKey": "k", "list": [{"AccessToken": "t"}]}, "Credentials": {"a": 1}}`), 4096)
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatalf("RedactJSON = %q: %v", got, err)
	}
	want := map[string]any{"Name": "cam", "Password": "***", "Inner": map[string]any{"SecretKey": "***", "list": []any{map[string]any{"AccessToken": "***"}}}, "Credentials": "***"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("RedactJSON = %v, want %v", m, want)
	}
	if got := api.RedactJSON([]byte(`not json`), 100); got != "" {
		t.Errorf("RedactJSON(not json) = %q, want empty", got)
	}
	if got := api.RedactJSON([]byte(`{"Name": "`+strings.Repeat("x", 100)+`"}`), 20); got != `{"Name":"xxxxxxxxxxx…` {
		t.Errorf("RedactJSON truncated = %q", got)
	}
}

func TestCodeTableIsComplete(t *testing.T) {
	seen := map[api.Code]bool{}
	for _, c := range api.CodeTable() {
		if seen[c.Code] {
			t.Errorf("code %s listed twice", c.Code)
		}
		seen[c.Code] = true
		if c.Description == "" {
			t.Errorf("code %s has no description", c.Code)
		}
	}
	for _, c := range []api.Code{api.AuthFailureSignatureFailure, api.AuthFailureSignatureExpire, api.AuthFailureSecretIDNotFound,
		api.AuthFailureInvalidAuthorization, api.AuthFailureUnauthorizedOperation, api.RequestLimitExceeded, api.RequestSizeLimitExceeded,
		api.InvalidAction, api.NoSuchVersion, api.UnsupportedProtocol, api.MissingParameter, api.UnknownParameter, api.InvalidParameter,
		api.InvalidParameterValue, api.ResourceNotFound, api.ResourceInUse, api.ResourceUnavailable, api.LimitExceeded,
		api.FailedOperation, api.InternalError} {
		if !seen[c] {
			t.Errorf("code %s missing from CodeTable", c)
		}
	}
}

func TestMarkdownListsActions(t *testing.T) {
	md := api.Markdown(echoRegistry())
	for _, want := range []string{
		"| [DescribeThings](#describethings) | `thing:read` | no | List. |",
		"| [EchoThing](#echothing) | `thing:write` | yes | Echo. |",
		"- `Name` (string) — required, max=8",
		"- `Limit` (integer) — min=0, max=100",
		"  - `Id` (string) — required",
		"| `AuthFailure.SignatureExpire` |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "`Hidden`") {
		t.Error("Markdown documents a json:\"-\" field")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := api.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	for name, mod := range map[string]func(*api.Config){
		"tiny body":        func(c *api.Config) { c.MaxBodyBytes = 100 },
		"huge body":        func(c *api.Config) { c.MaxBodyBytes = 2 << 30 },
		"window too short": func(c *api.Config) { c.SignatureWindow = 0 },
		"window too long":  func(c *api.Config) { c.SignatureWindow = 2 * 3600e9 },
		"negative rps":     func(c *api.Config) { c.DefaultReadRPS = -1 },
		"negative burst":   func(c *api.Config) { c.DefaultBurst = -1 },
	} {
		c := api.DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil", name)
		}
	}
}
