package blob_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/blob"
)

func TestValidateKey(t *testing.T) {
	seg := strings.Repeat("s", blob.MaxSegmentLen)
	valid := []string{
		"a", "a/b", "a/b/c.jpg", ".hidden", "..x", "x..", "...", "a b", "日本/語", "a%2F", "a+b?c#d",
		seg, strings.Repeat(seg+"/", 4) + strings.Repeat("t", blob.MaxKeyLen-4*(blob.MaxSegmentLen+1)),
	}
	for _, k := range valid {
		if err := blob.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%.40q) = %v", k, err)
		}
	}
	invalid := []string{
		"", "/", "/a", "a/", "a//b", ".", "..", "a/.", "a/..", "./a", "../a", "a/./b", "a/../b",
		`a\b`, `..\x`, "a\x00", "a\x1f", "a\x7f", "a\u0085", "\xff", "a\xc0/b",
		seg + "s", strings.Repeat("k", blob.MaxKeyLen+1),
	}
	for _, k := range invalid {
		if err := blob.ValidateKey(k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidateKey(%.40q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"", "a", "a/", "a/b", "a/b/", "a/.", "a/..", ".", ".."} {
		if err := blob.ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"/", "/a", "a//", "./", "../", "a/../", `a\`, "\x00", strings.Repeat("p", blob.MaxKeyLen+1)} {
		if err := blob.ValidatePrefix(p); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
}

func TestValidateContentType(t *testing.T) {
	for _, ct := range []string{"", "image/jpeg", `text/plain; charset="utf-8"`} {
		if err := blob.ValidateContentType(ct); err != nil {
			t.Errorf("ValidateContentType(%q) = %v", ct, err)
		}
	}
	for _, ct := range []string{"text/html\r\nSet-Cookie: x", "ü", strings.Repeat("x", blob.MaxContentTypeLen+1)} {
		if err := blob.ValidateContentType(ct); err == nil {
			t.Errorf("ValidateContentType(%.40q) succeeded", ct)
		}
	}
}

// FuzzValidateKey checks that every accepted key is one the file backend
// can map under its root: no segment could climb out or collide.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a/b", "../a", "a/./b", `a\b`, "日本", "a//b", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if blob.ValidateKey(key) != nil {
			return
		}
		if key == "" || len(key) > blob.MaxKeyLen || strings.HasPrefix(key, "/") || strings.ContainsAny(key, "\\\x00") {
			t.Fatalf("accepted %q", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." || len(seg) > blob.MaxSegmentLen {
				t.Fatalf("accepted %q with segment %q", key, seg)
			}
		}
		if blob.ValidatePrefix(key) != nil {
			t.Fatalf("valid key %q is not a valid prefix", key)
		}
	})
}
