package api

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// objectCases are free-form objects as clients send them, odd corners
// included: escapes, surrogate pairs, invalid UTF-8, numbers at and past
// int64 and float64 ranges, empty and nested containers.
var objectCases = []string{
	`{}`,
	`{"faces": [{"age": 10, "box": [0, 20, 40, 40]}, {"age": 35, "box": [40, 20, 40, 40]}], "seq": "1"}`,
	`{"a": null, "b": true, "c": false, "d": "", "e": [], "f": {}, "g": [[], [{}], [[1]]]}`,
	`{"esc": "q\"b\\s\/n\n\r\t\b\f\u0001\u00e9\ud83d\ude00 end", "k\u00e9y": 1}`,
	"{\"utf8\": \"h\u00e9llo \u4e16\u754c \U0001F600\", \"bad\": \"a\xffb\xc3\"}",
	`{"n": [0, -0, 1, -1, 255, 256, 9223372036854775807, -9223372036854775808, 9223372036854775808, 123456789012345678901]}`,
	`{"f": [0.5, -1.25, 1e3, 1E-7, 2.5e+21, 1e999, -1e999, 1e-400, 3.0, 1.0e2]}`,
	` { "space" : [ 1 , 2 ] , "x" :	{ "y" : null } } `,
	`{"html": "<a href=\"x?a=1&b=2\">", "line": "\u2028\u2029"}`,
}

// TestObjectDecodesAsNormalize: Object decodes every case to what the
// strict decoder's json.Numbers give after Normalize.
func TestObjectDecodesAsNormalize(t *testing.T) {
	for _, c := range objectCases {
		var want map[string]any
		dec := json.NewDecoder(strings.NewReader(c))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		Normalize(want)
		var got Object
		if err := json.Unmarshal([]byte(c), &got); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if !reflect.DeepEqual(map[string]any(got), want) {
			t.Errorf("%s:\n got %#v\nwant %#v", c, got, want)
		}
	}
}

// TestObjectOutEncodesAsEncodingJSON: the answer's bytes are the ones
// encoding/json writes for the same map, with and without HTML escaping.
func TestObjectOutEncodesAsEncodingJSON(t *testing.T) {
	type wrap struct {
		Output ObjectOut `json:"Output"`
	}
	type plain struct {
		Output map[string]any `json:"Output"`
	}
	for _, c := range objectCases {
		var m Object
		if err := json.Unmarshal([]byte(c), &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range m { // ±Inf is not JSON: encoding/json refuses it, so does ObjectOut
			if l, ok := v.([]any); ok {
				for i, e := range l {
					if f, ok := e.(float64); ok && math.IsInf(f, 0) {
						l[i] = 0.0
					}
				}
				m[k] = l
			}
		}
		m["typed"] = []map[string]any{{"int": 3, "t": struct{ A string }{"<&>"}}} // left to encoding/json
		for _, html := range []bool{true, false} {
			var got, want bytes.Buffer
			eg, ew := json.NewEncoder(&got), json.NewEncoder(&want)
			eg.SetEscapeHTML(html)
			ew.SetEscapeHTML(html)
			if err := eg.Encode(wrap{ObjectOut(m)}); err != nil {
				t.Fatal(err)
			}
			if err := ew.Encode(plain{m}); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("%s (html %v):\n got %s\nwant %s", c, html, got.String(), want.String())
			}
		}
	}
	if _, err := json.Marshal(ObjectOut{"x": math.Inf(1)}); err == nil {
		t.Error("ObjectOut encoded +Inf; want an error as encoding/json gives")
	}
	if b, err := json.Marshal(wrap{}); err != nil || string(b) != `{"Output":null}` {
		t.Errorf("nil ObjectOut = %s, %v", b, err)
	}
}

// TestObjectRefusesNonObjects: a request field of type Object takes an
// object or null and names itself when given anything else.
func TestObjectRefusesNonObjects(t *testing.T) {
	type req struct {
		Input Object `json:"Input"`
	}
	for body, want := range map[string]string{
		`{"Input": [1]}`:  "Input: want an object, got JSON array",
		`{"Input": "x"}`:  "Input: want an object, got JSON string",
		`{"Input": 3}`:    "Input: want an object, got JSON number",
		`{"Input": true}`: "Input: want an object, got JSON bool",
	} {
		var r req
		err := decodeStrict([]byte(body), &r)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", body, err, want)
		}
	}
	var r req
	if err := decodeStrict([]byte(`{"Input": null}`), &r); err != nil || r.Input != nil {
		t.Errorf("null: %v, %#v", err, r.Input)
	}
	if err := decodeStrict([]byte(`{"Input": {"a": 1, "a": 2}}`), &r); err == nil || !strings.Contains(err.Error(), dupKeyMsg) {
		t.Errorf("duplicate key: %v", err)
	}
	if err := decodeStrict([]byte(`{"Input": {"a": "\u0000"}}`), &r); err == nil || !strings.Contains(err.Error(), nulCharMsg) {
		t.Errorf("NUL: %v", err)
	}
}

// BenchmarkObjectDecode compares Object with the strict decoder's
// map[string]any and Normalize on a 5-face input.
func BenchmarkObjectDecode(b *testing.B) {
	body := []byte(`{"FlowId": "flow-0123456789abcdef", "Input": {"faces": [{"age":10,"box":[0,20,40,40]},{"age":15,"box":[10,20,40,40]},{"age":20,"box":[20,20,40,40]},{"age":25,"box":[30,20,40,40]},{"age":30,"box":[40,20,40,40]}]}}`)
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r struct {
				FlowId string
				Input  map[string]any
			}
			if err := decodeStrict(body, &r); err != nil {
				b.Fatal(err)
			}
			NormalizeMap(r.Input)
		}
	})
	b.Run("object", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r struct {
				FlowId string
				Input  Object
			}
			if err := decodeStrict(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) { // what Register runs for such a request
		p := fastPlanOf(reflect.TypeFor[fastReq]())
		b.ReportAllocs()
		for b.Loop() {
			var r fastReq
			if !p.decode(body, reflect.ValueOf(&r).Elem()) {
				b.Fatal("fast path gave up")
			}
		}
	})
}

// fastReq is shaped like InvokeFlow's request.
type fastReq struct {
	FlowId     string `json:"FlowId"`
	Version    int64  `json:"Version"`
	Input      Object `json:"Input"`
	Parameters Object `json:"Parameters,omitempty"`
	Trace      bool   `json:"Trace"`
	TimeoutMs  int    `json:"TimeoutMs"`
}

// TestFastPlanAgreesWithDecodeStrict: on every body, the fast path either
// gives up or decodes what decodeStrict decodes; it gives up on every body
// decodeStrict refuses.
func TestFastPlanAgreesWithDecodeStrict(t *testing.T) {
	p := fastPlanOf(reflect.TypeFor[fastReq]())
	if p == nil {
		t.Fatal("no fast plan for an InvokeFlow-shaped request")
	}
	if p := fastPlanOf(reflect.TypeFor[benchTask]()); p == nil ||
		p.decode([]byte(`{"Name": "t", "Sources": []}`), reflect.ValueOf(new(benchTask)).Elem()) {
		t.Error("the fast plan of a request with lists decoded a body naming a list")
	}
	bodies := []string{
		`{}`, ` {} `, `{"FlowId": "f-1", "Version": 3, "Trace": true, "TimeoutMs": 100}`,
		`{"FlowId": "f\u00e9\n", "Input": null, "Parameters": {"k": [1, 2.5, "x", null, true, {"y": {}}]}}`,
		`{"FlowId": "f", "Version": -1, "Trace": false}`,
		// refused, or unusual enough to be left to decodeStrict
		`{"flowid": "f"}`, `{"FlowId": "a", "FlowId": "b"}`, `{"Input": {"a": 1, "a": 2}}`, `{"Input": {"a": "\u0000"}}`,
		`{"FlowId": "\u0000"}`, `{"Fl\u006fwId": "f"}`, `{"Other": 1}`, `{"FlowId": 1}`, `{"Version": "1"}`, `{"Version": 1.0}`,
		`{"Version": 1e2}`, `{"Version": 99999999999999999999}`, `{"Version": 01}`, `{"Version": -}`, `{"Trace": 1}`,
		`{"Trace": tru}`, `{"Input": [1]}`, `{"Input": {"a": 1,}}`, `{"Input": {"a": [1,]}}`, `{"Input": {"a": .5}}`,
		`{"Input": {"a": 1.}}`, `{"Input": {"a": 1e}}`, `{"Input": {"a": "x\y"}}`, "{\"Input\": {\"a\": \"x\ty\"}}",
		`{"FlowId": "f"} x`, `{"FlowId": "f",}`, `{"FlowId" "f"}`, `[]`, ``, `{"FlowId": "f"`, `{"Input": {"a": truex}}`,
		"{\"FlowId\": \"a\xffb\"}", `{"Input": {"k\u00e9": 1, "k\u00e9": 2}}`,
	}
	const plain = 5 // the first bodies are plain: the fast path must take them
	for i, body := range bodies {
		var want fastReq
		werr := decodeStrict([]byte(body), &want)
		var got fastReq
		ok := p.decode([]byte(body), reflect.ValueOf(&got).Elem())
		if i < plain && !ok {
			t.Errorf("%s: the fast path gave up on a plain body", body)
		}
		switch {
		case ok && werr != nil:
			t.Errorf("%s: fast path decoded a body decodeStrict refuses (%v)", body, werr)
		case ok:
			Normalize(map[string]any(want.Input))
			Normalize(map[string]any(want.Parameters))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\n fast %#v\nwant %#v", body, got, want)
			}
		}
	}
}

// pagedReq is shaped like DescribeApps' request: lists, and Paging
// embedded.
type pagedReq struct {
	ProjectId string   `json:"ProjectId"`
	AppIds    []string `json:"AppIds"`
	Filters   []Filter `json:"Filters"`
	Paging
}

// TestFastPlanEmbedded: the fast path decodes the fields of an embedded
// struct and gives up on a body naming a field it does not decode, as
// decodeStrict would decode them.
func TestFastPlanEmbedded(t *testing.T) {
	p := fastPlanOf(reflect.TypeFor[pagedReq]())
	if p == nil {
		t.Fatal("no fast plan for a DescribeApps-shaped request")
	}
	for i, body := range []string{`{"Limit":1}`, ``, ` `, `{"ProjectId": "p", "Offset": 3, "Limit": 10}`,
		`{"AppIds": ["a"]}`, `{"Filters": []}`, `{"limit": 1}`, `{"Paging": {"Limit": 1}}`, `{"Limit": 1.5}`} {
		var want, got pagedReq
		werr := decodeStrict([]byte(body), &want)
		ok := p.decode([]byte(body), reflect.ValueOf(&got).Elem())
		switch {
		case i < 4 && !ok:
			t.Errorf("%q: the fast path gave up on a plain body", body)
		case i >= 4 && ok:
			t.Errorf("%q: the fast path decoded a body it should leave to decodeStrict", body)
		case ok && (werr != nil || !reflect.DeepEqual(got, want)):
			t.Errorf("%q: fast %#v, decodeStrict %#v (%v)", body, got, want, werr)
		}
	}
}

type appendedResp struct {
	Name string
	N    int
}

func (r *appendedResp) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"Name":`...)
	b = AppendJSONString(b, r.Name)
	b = append(b, `,"N":`...)
	b = strconv.AppendInt(b, int64(r.N), 10)
	return append(b, '}'), nil
}

type plainResp appendedResp

// TestWriteResponseAppender: an answer that encodes itself is wrapped in
// the envelope exactly as one encoding/json encodes.
func TestWriteResponseAppender(t *testing.T) {
	for _, name := range []string{"x", "<&> \u2028 é", strings.Repeat("long ", 2000)} {
		a, p := httptest.NewRecorder(), httptest.NewRecorder()
		writeResponse(a, "req-1", &appendedResp{Name: name, N: 7})
		writeResponse(p, "req-1", &plainResp{Name: name, N: 7})
		if a.Body.String() != p.Body.String() {
			t.Errorf("appended %s\nplain    %s", a.Body.String(), p.Body.String())
		}
	}
}
