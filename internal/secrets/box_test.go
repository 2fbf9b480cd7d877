package secrets_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/secrets"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, secrets.KeySize) }

// loadKey is LoadKeyring for the single-key case: the current key.
func loadKey(env, file string) ([]byte, error) {
	k, err := secrets.LoadKeyring(env, file)
	if err != nil {
		return nil, err
	}
	return k.Keys[0], nil
}

func newBox(t *testing.T, k []byte) *secrets.Box {
	t.Helper()
	b, err := secrets.New(k)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func TestLoadKeyFromEnv(t *testing.T) {
	want := key(7)
	enc := base64.StdEncoding.EncodeToString(want)
	file := filepath.Join(t.TempDir(), "master.key")
	// Surrounding whitespace (a trailing newline from a secret file mounted
	// into the environment) is accepted.
	got, err := loadKey("  "+enc+"\n", file)
	if err != nil {
		t.Fatalf("LoadKey: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("key = %x, want %x", got, want)
	}
	// The environment wins: the file is neither read nor created.
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("key file touched though the env value was set: stat err %v", err)
	}
}

func TestLoadKeyFromEnvRefusesBadValues(t *testing.T) {
	file := filepath.Join(t.TempDir(), "master.key")
	for name, v := range map[string]string{
		"short":      base64.StdEncoding.EncodeToString(key(1)[:16]),
		"long":       base64.StdEncoding.EncodeToString(append(key(1), 0)),
		"not base64": "this is not base64!",
		"raw url":    base64.RawURLEncoding.EncodeToString(key(0xfb)), // wrong alphabet and no padding
	} {
		t.Run(name, func(t *testing.T) {
			k, err := loadKey(v, file)
			if err == nil {
				t.Fatalf("LoadKey(%q) = %x, nil; want an error", v, k)
			}
			if !strings.Contains(err.Error(), "TIANSHU_MASTER_KEY must be 32 bytes in base64") {
				t.Errorf("error %q does not say what the env value must be", err)
			}
		})
	}
}

func TestLoadKeyCreatesFileOnce(t *testing.T) {
	// The directory does not exist yet: LoadKey makes it.
	dir := filepath.Join(t.TempDir(), "state", "keys")
	file := filepath.Join(dir, "master.key")
	k1, err := loadKey("", file)
	if err != nil {
		t.Fatalf("first LoadKey: %v", err)
	}
	if len(k1) != secrets.KeySize {
		t.Fatalf("key has %d bytes, want %d", len(k1), secrets.KeySize)
	}
	if bytes.Equal(k1, make([]byte, secrets.KeySize)) {
		t.Fatal("new key is all zeros")
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("key file not created: %v", err)
	}
	if runtime.GOOS != "windows" {
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("key file mode %o, want 600", perm)
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := di.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("key directory mode %o is open to group or others", perm)
		}
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(raw)); got != base64.StdEncoding.EncodeToString(k1) {
		t.Errorf("file holds %q, want the key in base64", got)
	}

	k2, err := loadKey("", file)
	if err != nil {
		t.Fatalf("second LoadKey: %v", err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("reloading the key file gave a different key")
	}
	// What one box sealed, a box over the reloaded key opens.
	sealed := newBox(t, k1).Seal("s3cr3t")
	if got, err := newBox(t, k2).Open(sealed); err != nil || got != "s3cr3t" {
		t.Fatalf("Open with reloaded key = %q, %v", got, err)
	}
}

func TestLoadKeyRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"short":      base64.StdEncoding.EncodeToString(key(2)[:31]) + "\n",
		"not base64": "hello world\n",
		"empty":      "",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".key")
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := loadKey("", file)
			if err == nil {
				t.Fatalf("LoadKey = %x, nil; want an error for %q", k, content)
			}
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "does not hold a 32-byte base64 key") {
				t.Errorf("error %q does not name the file and the problem", err)
			}
			// A bad file is reported, never replaced by a new key.
			b, _ := os.ReadFile(file)
			if string(b) != content {
				t.Errorf("key file rewritten: %q", b)
			}
		})
	}
}

func TestLoadKeyUnreadableFile(t *testing.T) {
	// A path whose parent is a regular file can be neither read nor
	// created; the error must not be taken for "does not exist".
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := loadKey("", filepath.Join(parent, "master.key")); err == nil {
		t.Fatalf("LoadKey under a regular file = %x, nil; want an error", k)
	}
}

func TestNewRefusesBadKeyLengths(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := secrets.New(make([]byte, n)); err == nil {
			t.Errorf("New with a %d-byte key: nil error", n)
		} else if !strings.Contains(err.Error(), "must be 32 bytes") {
			t.Errorf("New with a %d-byte key: error %q does not state the size", n, err)
		}
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	b := newBox(t, key(3))
	for _, pt := range []string{"", "AKIDsecret", "天枢 🚀", strings.Repeat("x", 10000)} {
		s := b.Seal(pt)
		if !strings.HasPrefix(s, "v1:") {
			t.Errorf("sealed value %q lacks the version prefix", s)
		}
		if pt != "" && strings.Contains(s, pt) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := b.Open(s)
		if err != nil {
			t.Fatalf("Open(Seal(%q)): %v", pt, err)
		}
		if got != pt {
			t.Errorf("Open(Seal(%q)) = %q", pt, got)
		}
	}
	// A fresh nonce per seal: the same plaintext never seals the same way.
	if first, second := b.Seal("same"), b.Seal("same"); first == second {
		t.Error("two seals of one plaintext are identical")
	}
}

func TestOpenRefusesTamperingAndWrongKeys(t *testing.T) {
	b := newBox(t, key(4))
	sealed := b.Seal("the secret key")
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		c := append([]byte(nil), raw...)
		c[i] ^= 0x01
		return "v1:" + base64.RawStdEncoding.EncodeToString(c)
	}
	cases := map[string]struct {
		sealed, msg string
	}{
		"nonce bit":       {flip(0), "cannot decrypt"},
		"ciphertext bit":  {flip(len(raw) / 2), "cannot decrypt"},
		"tag bit":         {flip(len(raw) - 1), "cannot decrypt"},
		"truncated":       {"v1:" + base64.RawStdEncoding.EncodeToString(raw[:len(raw)-1]), "cannot decrypt"},
		"shorter than IV": {"v1:" + base64.RawStdEncoding.EncodeToString(raw[:5]), "malformed sealed value"},
		"not base64":      {"v1:***", "malformed sealed value"},
		"no prefix":       {strings.TrimPrefix(sealed, "v1:"), "unknown sealed format"},
		"future version":  {"v3:" + strings.TrimPrefix(sealed, "v1:"), "unknown sealed format"},
		"v2 without id":   {"v2:" + strings.TrimPrefix(sealed, "v1:"), "malformed sealed value"},
		"empty":           {"", "unknown sealed format"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := b.Open(c.sealed)
			if err == nil {
				t.Fatalf("Open = %q, nil; want an error", got)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q, want one saying %q", err, c.msg)
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		if got, err := newBox(t, key(5)).Open(sealed); err == nil {
			t.Fatalf("another key opened the value: %q", got)
		}
	})
}

func TestDeriveKey(t *testing.T) {
	b := newBox(t, key(6))
	k1 := b.DeriveKey("url-signing")
	if len(k1) != 32 {
		t.Fatalf("derived key has %d bytes", len(k1))
	}
	if !bytes.Equal(k1, b.DeriveKey("url-signing")) {
		t.Fatal("DeriveKey is not stable for one purpose")
	}
	// Stable across boxes over the same master key (another process).
	if !bytes.Equal(k1, newBox(t, key(6)).DeriveKey("url-signing")) {
		t.Fatal("DeriveKey differs between two boxes of one master key")
	}
	seen := map[string]string{string(k1): "url-signing"}
	for _, p := range []string{"sessions", "url-signing ", "Url-signing", ""} {
		k := b.DeriveKey(p)
		if prev, dup := seen[string(k)]; dup {
			t.Errorf("purposes %q and %q derive the same key", prev, p)
		}
		seen[string(k)] = p
	}
	if bytes.Equal(k1, key(6)) {
		t.Error("derived key equals the master key")
	}
	if bytes.Equal(k1, newBox(t, key(8)).DeriveKey("url-signing")) {
		t.Error("two master keys derive the same key for one purpose")
	}
}

// Processes of one installation that start together (a scaled-out
// deployment's first boot) all call LoadKey on a missing file; every one
// must get the key the winner wrote.
func TestLoadKeyConcurrentFirstUse(t *testing.T) {
	for round := 0; round < 50; round++ {
		file := filepath.Join(t.TempDir(), "master.key")
		const n = 8
		keys := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				keys[i], errs[i] = loadKey("", file)
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("round %d: callers 0 and %d got different keys", round, i)
			}
		}
	}
}
