package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/config"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
	"github.com/tianshu-ai/tianshu/internal/store"
)

const secretsUsage = `usage: tianshu secrets COMMAND [flags as for serve]

Rotate the master key without downtime (docs/secrets.md):
  stage    add a new key to the keyring as "next": it opens values but does
           not seal yet. Give every replica the new keyring and restart it.
  rotate   make the staged key current, then re-encrypt every sealed value
           under it. Run again (it skips what is done) after a crash and once
           every replica runs with the new keyring.
  status   count the sealed values under each key

The keyring is TIANSHU_MASTER_KEY when set, otherwise <data-dir>/master.key.
stage takes the new key from TIANSHU_NEW_MASTER_KEY (base64, 32 bytes) when
set, otherwise generates one. With TIANSHU_MASTER_KEY, the value to set on
every replica is written to <data-dir>/master-key.env (mode 0600); keys are
never printed.
`

// keyringSource is where the keyring comes from and goes back to.
type keyringSource struct {
	env     string // TIANSHU_MASTER_KEY, "" when the file holds the keyring
	file    string // <data-dir>/master.key
	envFile string // <data-dir>/master-key.env, written in the env case
}

func secretsCmd(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "help" {
		fmt.Fprint(stderr, secretsUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return 0
		}
		return 2
	}
	sub := args[0]
	if sub != "stage" && sub != "rotate" && sub != "status" {
		fmt.Fprintf(stderr, "tianshu secrets: unknown command %q\n\n%s", sub, secretsUsage)
		return 2
	}
	name := "secrets " + sub
	cfg, code := loadConfig(name, args[1:], stderr, getenv)
	if code >= 0 {
		return code
	}
	src := keyringSource{env: getenv("TIANSHU_MASTER_KEY"), file: filepath.Join(cfg.DataDir, "master.key"),
		envFile: filepath.Join(cfg.DataDir, "master-key.env")}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch sub {
	case "stage":
		err = stageKey(src, getenv("TIANSHU_NEW_MASTER_KEY"), stdout)
	case "rotate":
		err = rotate(ctx, cfg, src, stdout)
	case "status":
		err = sealedStatus(ctx, cfg, src, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tianshu %s: %v\n", name, err)
		return 1
	}
	return 0
}

func (s keyringSource) load() (secrets.Keyring, error) {
	if strings.TrimSpace(s.env) != "" {
		return secrets.ParseKeyring(s.env, "TIANSHU_MASTER_KEY")
	}
	k, err := secrets.ReadKeyringFile(s.file)
	if errors.Is(err, os.ErrNotExist) {
		return k, fmt.Errorf("no master key: %s does not exist and TIANSHU_MASTER_KEY is not set", s.file)
	}
	return k, err
}

// save writes k back where it came from and says where, and what the
// operator must do with it.
func (s keyringSource) save(k secrets.Keyring, stdout io.Writer) error {
	if strings.TrimSpace(s.env) == "" {
		if err := secrets.WriteKeyringFile(s.file, k); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote the keyring (%s) to %s\n", k.Describe(), s.file)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.envFile), 0o700); err != nil {
		return err
	}
	tmp := s.envFile + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "TIANSHU_MASTER_KEY=%s\n", k.Format(","))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.envFile)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	fmt.Fprintf(stdout, "wrote TIANSHU_MASTER_KEY for the keyring (%s) to %s (mode 0600);\nset it on every replica (and for the next tianshu secrets command)\n", k.Describe(), s.envFile)
	return nil
}

func stageKey(src keyringSource, newKey string, stdout io.Writer) error {
	k, err := src.load()
	if err != nil {
		return err
	}
	key := secrets.NewKey()
	if strings.TrimSpace(newKey) != "" {
		key, err = base64.StdEncoding.DecodeString(strings.TrimSpace(newKey))
		if err != nil || len(key) != secrets.KeySize {
			return fmt.Errorf("TIANSHU_NEW_MASTER_KEY must be %d bytes in base64", secrets.KeySize)
		}
	}
	staged, err := k.Stage(key)
	if err != nil {
		return err
	}
	if err := src.save(staged, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "staged key %s. Next: give every replica this keyring, restart each, then run tianshu secrets rotate\n", secrets.KeyID(key))
	return nil
}

func openStore(ctx context.Context, cfg config.Config) (*store.DB, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DB, store.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

func rotate(ctx context.Context, cfg config.Config, src keyringSource, stdout io.Writer) error {
	k, err := src.load()
	if err != nil {
		return err
	}
	promoted, ok := k.Promote()
	if ok {
		// The keyring is saved before any value moves, so that after a crash
		// the rerun (which finds no staged key) goes on under the same key.
		if err := src.save(promoted, stdout); err != nil {
			return err
		}
		k = promoted
	} else {
		fmt.Fprintf(stdout, "no staged key: re-encrypting what is not under the current key %s\n", secrets.KeyID(k.Keys[0]))
	}
	box, err := secrets.NewKeyring(k)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	var total reseal.Counts
	for _, col := range app.SealedColumns() {
		n, err := reseal.Run(ctx, db, box, col, nil)
		total = total.Add(n)
		fmt.Fprintf(stdout, "%s: %d rows, %d re-encrypted, %d current or empty, %d changed meanwhile\n", col, n.Rows, n.Resealed, n.Current, n.Raced)
		if err != nil {
			return fmt.Errorf("%w (run tianshu secrets rotate again to go on)", err)
		}
	}
	fmt.Fprintf(stdout, "done: %d values re-encrypted under key %s\n", total.Resealed, box.CurrentKeyID())
	if total.Raced > 0 {
		fmt.Fprintf(stdout, "%d values changed while this ran: run tianshu secrets rotate again\n", total.Raced)
	}
	if ok {
		fmt.Fprintln(stdout, "Next: restart every replica with this keyring, then run tianshu secrets rotate once more to move what replicas sealed under the old key meanwhile")
	}
	return nil
}

func sealedStatus(ctx context.Context, cfg config.Config, src keyringSource, stdout io.Writer) error {
	k, err := src.load()
	if err != nil {
		return err
	}
	box, err := secrets.NewKeyring(k)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "keyring: %s\n", k.Describe())
	db, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	role := map[string]string{}
	for _, part := range strings.Split(k.Describe(), ", ") {
		r, id, _ := strings.Cut(part, " ")
		role[id] = r
	}
	for _, col := range app.SealedColumns() {
		st, err := reseal.Status(ctx, db, box, col)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(st))
		for id := range st {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var parts []string
		for _, id := range ids {
			switch {
			case id == "":
				parts = append(parts, fmt.Sprintf("%d empty", st[id]))
			case role[id] != "":
				parts = append(parts, fmt.Sprintf("%d under %s (%s)", st[id], id, role[id]))
			default:
				parts = append(parts, fmt.Sprintf("%d under %s (NOT IN THE KEYRING)", st[id], id))
			}
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(stdout, "%s: %s\n", col, strings.Join(parts, ", "))
	}
	return nil
}
