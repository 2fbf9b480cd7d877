package secrets_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/secrets"
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func ringBox(t *testing.T, k secrets.Keyring) *secrets.Box {
	t.Helper()
	b, err := secrets.NewKeyring(k)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return b
}

// The rotation's steps, seen from the boxes of processes at each stage:
// nothing sealed at any step becomes unreadable to a process one step
// behind or ahead, and derived keys never change.
func TestRotationSteps(t *testing.T) {
	a, b := key(0xa), key(0xb)
	onlyA := newBox(t, a)
	staged, err := secrets.Keyring{Keys: [][]byte{a}}.Stage(b)
	if err != nil {
		t.Fatal(err)
	}
	stagedBox := ringBox(t, staged)
	promoted, ok := staged.Promote()
	if !ok {
		t.Fatal("Promote found no staged key")
	}
	if got := promoted.Describe(); got != "current "+secrets.KeyID(b)+", previous "+secrets.KeyID(a) {
		t.Fatalf("promoted keyring = %s", got)
	}
	rotated := ringBox(t, promoted)

	// Before the first rotation values keep the v1 form, which binaries
	// without keyrings read too; staging changes nothing of that.
	underA := onlyA.Seal("alpha")
	if !strings.HasPrefix(underA, "v1:") || !strings.HasPrefix(stagedBox.Seal("x"), "v1:") {
		t.Fatalf("values under the first key are not v1: %q", underA)
	}
	// After promotion values name key B.
	underB := rotated.Seal("beta")
	if want := "v2:" + secrets.KeyID(b) + ":"; !strings.HasPrefix(underB, want) {
		t.Fatalf("value under B = %q, want prefix %q", underB, want)
	}
	if rotated.CurrentKeyID() != secrets.KeyID(b) || stagedBox.CurrentKeyID() != secrets.KeyID(a) {
		t.Fatal("wrong current key ids")
	}

	for name, box := range map[string]*secrets.Box{"staged": stagedBox, "rotated": rotated} {
		for _, v := range []string{underA, underB} {
			if _, err := box.Open(v); err != nil {
				t.Errorf("%s box cannot open %.12s…: %v", name, v, err)
			}
		}
	}
	if got, err := rotated.Open(underA); err != nil || got != "alpha" {
		t.Fatalf("keyring {B, A} opens the value under A as %q, %v", got, err)
	}

	// A process that never got B says which key it lacks.
	_, err = onlyA.Open(underB)
	if !errors.Is(err, secrets.ErrUnknownKey) || !strings.Contains(err.Error(), secrets.KeyID(b)) {
		t.Fatalf("box of A alone opening a value under B: %v; want ErrUnknownKey naming %s", err, secrets.KeyID(b))
	}
	if strings.Contains(err.Error(), b64(b)) || strings.Contains(err.Error(), b64(a)) {
		t.Fatal("error holds key material")
	}

	// Derived keys (signed URLs, upload tokens) stay those of the first key.
	for _, box := range []*secrets.Box{stagedBox, rotated} {
		if !bytes.Equal(box.DeriveKey("blob-url-signing"), onlyA.DeriveKey("blob-url-signing")) {
			t.Fatal("a rotation changed a derived key")
		}
	}

	// Reseal moves values to the current key once.
	if !rotated.Current(underB) || rotated.Current(underA) || !onlyA.Current(underA) {
		t.Fatal("Current misjudges a value")
	}
	re, changed, err := rotated.Reseal(underA)
	if err != nil || !changed || !rotated.Current(re) {
		t.Fatalf("Reseal(under A) = %q, %v, %v", re, changed, err)
	}
	if got, _ := rotated.Open(re); got != "alpha" {
		t.Fatalf("resealed value opens as %q", got)
	}
	if same, changed, err := rotated.Reseal(re); err != nil || changed || same != re {
		t.Fatalf("Reseal of a current value = %v, %v", changed, err)
	}

	// A second rotation: values under A and B open under {C, B, A}.
	twice, _ := secrets.Keyring{Keys: promoted.Keys, Next: key(0xc)}.Promote()
	box3 := ringBox(t, twice)
	for _, v := range []string{underA, underB} {
		if _, err := box3.Open(v); err != nil {
			t.Fatalf("after two rotations: %v", err)
		}
	}
	if !bytes.Equal(box3.DeriveKey("upload-token"), onlyA.DeriveKey("upload-token")) {
		t.Fatal("a second rotation changed a derived key")
	}
}

func TestSetKeyring(t *testing.T) {
	a, b := key(0xa), key(0xb)
	box := newBox(t, a)
	underA := box.Seal("alpha")
	staged, _ := secrets.Keyring{Keys: [][]byte{a}}.Stage(b)
	promoted, _ := staged.Promote()
	if err := box.SetKeyring(promoted); err != nil {
		t.Fatalf("SetKeyring: %v", err)
	}
	if box.CurrentKeyID() != secrets.KeyID(b) {
		t.Fatal("SetKeyring did not change the current key")
	}
	if got, err := box.Open(underA); err != nil || got != "alpha" {
		t.Fatalf("Open after SetKeyring = %q, %v", got, err)
	}
	// A keyring without the derivation root would change derived keys.
	if err := box.SetKeyring(secrets.Keyring{Keys: [][]byte{b}}); err == nil {
		t.Fatal("SetKeyring accepted a keyring without the oldest key")
	}
}

func TestParseKeyring(t *testing.T) {
	a, b, c := key(1), key(2), key(3)
	env := " " + b64(b) + " , " + b64(a) + ",next:" + b64(c) + "\n"
	k, err := secrets.ParseKeyring(env, "TIANSHU_MASTER_KEY")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Keys) != 2 || !bytes.Equal(k.Keys[0], b) || !bytes.Equal(k.Keys[1], a) || !bytes.Equal(k.Next, c) {
		t.Fatalf("parsed %s", k.Describe())
	}
	file := "# rotated\n" + k.Format("\n") + "\n\n"
	k2, err := secrets.ParseKeyring(file, "file")
	if err != nil || k2.Format(",") != k.Format(",") {
		t.Fatalf("file form parses as %v, %v", k2.Describe(), err)
	}
	for name, text := range map[string]string{
		"two next":  b64(a) + ",next:" + b64(b) + ",next:" + b64(c),
		"only next": "next:" + b64(a),
		"duplicate": b64(a) + "," + b64(a),
		"bad entry": b64(a) + "," + b64(b)[:10],
		"empty":     " , ",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := secrets.ParseKeyring(text, "TIANSHU_MASTER_KEY")
			if err == nil {
				t.Fatal("no error")
			}
			for _, k := range []string{b64(a), b64(b), b64(c)} {
				if strings.Contains(err.Error(), k) {
					t.Fatalf("error %q holds key material", err)
				}
			}
		})
	}
	if _, err := (secrets.Keyring{Keys: [][]byte{a}, Next: a}).Stage(b); err == nil {
		t.Error("Stage over a staged key: nil error")
	}
	if _, err := (secrets.Keyring{Keys: [][]byte{a}}).Stage(a); err == nil {
		t.Error("Stage of a key in the ring: nil error")
	}
}

func TestKeyringFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "master.key")
	first, err := loadKey("", file) // created as before keyrings: one line
	if err != nil {
		t.Fatal(err)
	}
	staged, err := secrets.Keyring{Keys: [][]byte{first}}.Stage(key(9))
	if err != nil {
		t.Fatal(err)
	}
	promoted, _ := staged.Promote()
	if err := secrets.WriteKeyringFile(file, promoted); err != nil {
		t.Fatalf("WriteKeyringFile: %v", err)
	}
	got, err := secrets.LoadKeyring("", file)
	if err != nil {
		t.Fatalf("LoadKeyring: %v", err)
	}
	if got.Format(",") != promoted.Format(",") {
		t.Fatalf("file holds %s, want %s", got.Describe(), promoted.Describe())
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("keyring file mode %v, %v; want 600", fi.Mode(), err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*tmp*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
