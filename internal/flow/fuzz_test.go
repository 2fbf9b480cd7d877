package flow

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/function"
)

func TestParsePath(t *testing.T) {
	good := map[string]string{
		"$input":                 "$input",
		"$detect.faces[0].box":   "$detect.faces[0].box",
		"$item.score":            "$item.score",
		"$a-b.c_d[-1]":           "$a-b.c_d[-1]",
		`$x["a key"]['b']`:       `$x["a key"].b`,
		`$x["q\"uote"]`:          `$x["q\"uote"]`,
		"$params.threshold":      "$params.threshold",
		"$n[1][2].x":             "$n[1][2].x",
		"$_private.field-with-d": "$_private.field-with-d",
	}
	for in, want := range good {
		p, err := ParsePath(in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", in, err)
			continue
		}
		if p.String() != want {
			t.Errorf("ParsePath(%q) = %s, want %s", in, p, want)
		}
	}
	for _, bad := range []string{"", "$", "x.y", "$.a", "$a.", "$a..b", "$a[", "$a[x]", "$a[1", `$a["x]`, `$a["x"`, "$a b", "$1a", "$a[+1]", "$a[99999999999]"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) should fail", bad)
		}
	}
	v := map[string]any{"l": []any{map[string]any{"k": "v"}}, "typed": []map[string]any{{"k": 1}}, "s": map[string]string{"a": "b"}}
	for path, want := range map[string]any{"$x.l[0].k": "v", "$x.l[-1].k": "v", "$x.l[5]": nil, "$x.typed[0].k": 1, "$x.s.a": "b", "$x.l.k": nil, "$x.missing.deeper": nil} {
		p, _ := ParsePath(path)
		if got := walk(v, p.Steps); got != want {
			t.Errorf("walk %s = %v, want %v", path, got, want)
		}
	}
}

// FuzzParsePath checks that the path parser never panics and that what it
// accepts prints back to something it parses to the same path.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"$input.image", "$detect.faces[0].box", `$a["x y"][-1]`, "$item", "$a..b", "$[", `$a["\"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		q, err := ParsePath(p.String())
		if err != nil || q.String() != p.String() {
			t.Fatalf("%q -> %s -> %v, %v", s, p, q, err)
		}
		walk(map[string]any{"a": []any{1}}, p.Steps)
	})
}

// FuzzParseDocument feeds arbitrary documents through Parse, Validate and,
// when valid, one Run: none may panic or hang.
func FuzzParseDocument(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/validate/*.json")
	for _, s := range seeds {
		data, _ := os.ReadFile(s)
		f.Add(data)
	}
	f.Add([]byte(faceFlow))
	f.Add([]byte(switchDoc))
	f.Add([]byte("name: y\nnodes:\n  - {id: a, kind: noop}\n"))
	opts := testOptions()
	opts.FunctionLimits = function.Limits{MaxSteps: 10000, MaxDuration: 50 * time.Millisecond}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse(data, Limits{})
		if err != nil {
			return
		}
		p, err := Compile(t.Context(), spec, opts)
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("Compile returned %T, want Errors", err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = p.Run(ctx, Input{Data: map[string]any{"image": "ab", "l": []any{1, 2}}, Sinks: &fakeSinks{}})
	})
}
