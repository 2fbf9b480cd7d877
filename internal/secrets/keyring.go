package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Keyring is the set of master keys a Box uses.
//
// Its text form, in <data-dir>/master.key (one entry a line) or
// TIANSHU_MASTER_KEY (entries separated by commas), lists the keys in base64,
// current first and oldest last; an entry "next:<base64>" is the staged key.
// A file of one line, as written before keyrings, is a keyring of one key.
type Keyring struct {
	// Keys are the keys that seal or have sealed: Keys[0] is current, the
	// rest only open, newest first. The last is the derivation root.
	Keys [][]byte
	// Next is the staged key, nil when none: it opens but never seals, so
	// every process can learn it before a rotation makes it current.
	Next []byte
}

const nextPrefix = "next:"

// ParseKeyring reads a keyring's text form; what names the source ("file
// x", "TIANSHU_MASTER_KEY") goes into errors, which never hold key
// material.
func ParseKeyring(text, what string) (Keyring, error) {
	var k Keyring
	entries := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	n := 0
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		n++
		enc, staged := strings.CutPrefix(e, nextPrefix)
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil || len(key) != KeySize {
			return Keyring{}, fmt.Errorf("secrets: %s must be %d bytes in base64 per key (entry %d is not)", what, KeySize, n)
		}
		if staged {
			if k.Next != nil {
				return Keyring{}, fmt.Errorf("secrets: %s stages two next: keys", what)
			}
			k.Next = key
			continue
		}
		k.Keys = append(k.Keys, key)
	}
	if len(k.Keys) == 0 {
		return Keyring{}, fmt.Errorf("secrets: %s must be %d bytes in base64 and holds no current key", what, KeySize)
	}
	if _, err := k.build(); err != nil {
		return Keyring{}, fmt.Errorf("%w (in %s)", err, what)
	}
	return k, nil
}

// Format returns the text form with entries separated by sep: "\n" for
// the file, "," for the environment variable.
func (k Keyring) Format(sep string) string {
	var parts []string
	for _, key := range k.Keys {
		parts = append(parts, base64.StdEncoding.EncodeToString(key))
	}
	if k.Next != nil {
		parts = append(parts, nextPrefix+base64.StdEncoding.EncodeToString(k.Next))
	}
	return strings.Join(parts, sep)
}

// Describe names the keys by id, never by value: "current 1a2b3c4d,
// previous 5e6f7a8b, next 9c0d1e2f".
func (k Keyring) Describe() string {
	var parts []string
	for i, key := range k.Keys {
		role := "previous"
		if i == 0 {
			role = "current"
		}
		parts = append(parts, role+" "+KeyID(key))
	}
	if k.Next != nil {
		parts = append(parts, "next "+KeyID(k.Next))
	}
	return strings.Join(parts, ", ")
}

// Stage returns the keyring with key added as the staged next key.
func (k Keyring) Stage(key []byte) (Keyring, error) {
	if k.Next != nil {
		return Keyring{}, fmt.Errorf("secrets: key %s is staged already; finish that rotation first", KeyID(k.Next))
	}
	for _, have := range k.Keys {
		if bytes.Equal(have, key) {
			return Keyring{}, fmt.Errorf("secrets: key %s is in the keyring already", KeyID(key))
		}
	}
	out := Keyring{Keys: k.Keys, Next: key}
	if _, err := out.build(); err != nil {
		return Keyring{}, err
	}
	return out, nil
}

// Promote returns the keyring with the staged key made current and the
// others kept to open what they sealed; ok is false when none is staged.
func (k Keyring) Promote() (promoted Keyring, ok bool) {
	if k.Next == nil {
		return k, false
	}
	return Keyring{Keys: append([][]byte{k.Next}, k.Keys...)}, true
}

// NewKey returns a fresh random master key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return k
}

// LoadKeyring returns the keyring: from envValue (TIANSHU_MASTER_KEY) when
// it is set, otherwise from file, creating file with one new random key
// (mode 0600) when it does not exist. Every process of one installation
// must hold the same keys, so scaled-out deployments set them explicitly.
func LoadKeyring(envValue, file string) (Keyring, error) {
	if strings.TrimSpace(envValue) != "" {
		return ParseKeyring(envValue, "TIANSHU_MASTER_KEY")
	}
	k, err := ReadKeyringFile(file)
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	key := NewKey()
	if err := publishKey(file, key); err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return ReadKeyringFile(file)
		}
		return Keyring{}, fmt.Errorf("secrets: create master key: %w", err)
	}
	return Keyring{Keys: [][]byte{key}}, nil
}

// ReadKeyringFile reads a keyring file; the error wraps os.ErrNotExist
// when there is no file.
func ReadKeyringFile(file string) (Keyring, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Keyring{}, fmt.Errorf("secrets: read master key: %w", err)
	}
	k, err := ParseKeyring(string(b), "each key")
	if err != nil {
		return Keyring{}, fmt.Errorf("secrets: %s does not hold a %d-byte base64 key (%s)", file, KeySize, strings.TrimPrefix(err.Error(), "secrets: "))
	}
	return k, nil
}

// WriteKeyringFile replaces file with k (mode 0600) atomically: a process
// reading it sees the old keyring or the new one, never a mix.
func WriteKeyringFile(file string, k Keyring) error {
	if _, err := k.build(); err != nil {
		return err
	}
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := writeTemp(dir, filepath.Base(file), k.Format("\n")+"\n")
	if err != nil {
		return err
	}
	defer os.Remove(f)
	if err := os.Rename(f, file); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// writeTemp writes content to a new file (mode 0600) beside base in dir and
// returns its name.
func writeTemp(dir, base, content string) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp*") // mode 0600
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil { // make the new name durable
		_ = d.Sync()
		_ = d.Close()
	}
}

// publishKey writes k to a temporary file beside file and links it into
// place, so file appears whole or not at all: a process that loses the
// creation race never reads a half-written key. It returns an error
// wrapping os.ErrExist, and leaves the file alone, when file already exists.
func publishKey(file string, k []byte) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := writeTemp(dir, filepath.Base(file), base64.StdEncoding.EncodeToString(k)+"\n")
	if err != nil {
		return err
	}
	defer os.Remove(f)
	// Unlike rename, link fails when file exists, so a key already in use
	// is never replaced.
	if err := os.Link(f, file); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}
