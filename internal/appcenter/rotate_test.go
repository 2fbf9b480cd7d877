package appcenter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// verifies signs a request with the pair as a client would and checks it
// with the key the app center resolves, as the gateway does.
func verifies(t *testing.T, s *appcenter.Service, id, key string) error {
	t.Helper()
	cred, err := s.ResolveKey(context.Background(), id)
	if err != nil {
		return err
	}
	body := []byte(`{"Limit":1}`)
	r, _ := http.NewRequest(http.MethodPost, "http://tianshu.test/", bytes.NewReader(body))
	r.Header.Set("X-TC-Action", "DescribeApps")
	now := time.Now()
	tc3.Signer{SecretID: id, SecretKey: key}.Sign(r, body, now)
	a, err := tc3.ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if !tc3.Verify(r, body, a, cred.SecretKey, now.Unix()) {
		return errors.New("signature does not verify with the resolved key")
	}
	return nil
}

func rotateAll(ctx context.Context, db *store.DB, box *secrets.Box, onRow func(reseal.Counts)) (reseal.Counts, error) {
	var total reseal.Counts
	for _, c := range appcenter.SealedColumns() {
		n, err := reseal.Run(ctx, db, box, c, onRow)
		total = total.Add(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Keys created under master key A keep signing calls through a rotation to
// B: on a replica that holds {A, next B} and one that holds {B, A}, before,
// during and after the re-encryption, which survives being cut short.
func TestRotateMasterKey(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db) // box over key A = {1,1,...}
		a := bytes.Repeat([]byte{1}, secrets.KeySize)
		b := bytes.Repeat([]byte{2}, secrets.KeySize)
		app := mustApp(t, e, "prj-a", "cam", "")
		const n = 7
		pairs := map[string]string{}
		for i := range n {
			if i%2 == 0 && i > 0 {
				app = mustApp(t, e, "prj-a", fmt.Sprintf("cam%d", i), "")
			}
			id, key, err := e.s.CreateKey(ctx, app.ID, "", "")
			if err != nil {
				t.Fatal(err)
			}
			pairs[id] = key
		}

		staged, _ := secrets.Keyring{Keys: [][]byte{a}}.Stage(b)
		promoted, _ := staged.Promote()
		stagedBox, _ := secrets.NewKeyring(staged)
		newBox, _ := secrets.NewKeyring(promoted)
		log := slog.New(slog.DiscardHandler)
		// Fresh services: no cached credentials hide what the store holds.
		replicas := func() map[string]*appcenter.Service {
			return map[string]*appcenter.Service{
				"staged": appcenter.New(db, stagedBox, log, e.clk.now),
				"new":    appcenter.New(db, newBox, log, e.clk.now),
			}
		}
		check := func(when string) {
			t.Helper()
			for name, s := range replicas() {
				for id, key := range pairs {
					if err := verifies(t, s, id, key); err != nil {
						t.Fatalf("%s, replica %s, key %s: %v", when, name, id, err)
					}
				}
			}
		}
		check("before the rotation")

		// A crash after 3 rows: the rest stay under A and still work.
		cctx, cancel := context.WithCancel(ctx)
		got, err := rotateAll(cctx, db, newBox, func(c reseal.Counts) {
			if c.Resealed == 3 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) || got.Resealed != 3 {
			t.Fatalf("cut-short run: %+v, %v", got, err)
		}
		check("after a cut-short rotation")

		// A key created meanwhile by a replica not yet restarted is under A.
		id, key, err := appcenter.New(db, stagedBox, log, e.clk.now).CreateKey(ctx, app.ID, "", "")
		if err != nil {
			t.Fatal(err)
		}
		pairs[id] = key

		got, err = rotateAll(ctx, db, newBox, nil)
		if err != nil || got.Resealed != n+1-3 || got.Current != 3 || got.Rows != n+1 {
			t.Fatalf("rerun: %+v, %v; want %d resealed, 3 current", got, err, n+1-3)
		}
		check("after the rotation")

		st, err := reseal.Status(ctx, db, newBox, appcenter.SealedColumns()[0])
		if err != nil || len(st) != 1 || st[secrets.KeyID(b)] != n+1 {
			t.Fatalf("status %v, %v; want every row under %s", st, err, secrets.KeyID(b))
		}
		var enc string
		if err := db.QueryRow(ctx, "SELECT secret_key_enc FROM app_keys WHERE secret_id = ?", id).Scan(&enc); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "v2:"+secrets.KeyID(b)+":") {
			t.Fatalf("row after rotation: %.20s…", enc)
		}

		// Idempotent: nothing left to do.
		if got, err := rotateAll(ctx, db, newBox, nil); err != nil || got.Resealed != 0 || got.Current != n+1 {
			t.Fatalf("third run: %+v, %v", got, err)
		}

		// A replica that never learned B cannot resolve the keys, and says why.
		onlyA, _ := secrets.New(a)
		err = verifies(t, appcenter.New(db, onlyA, log, e.clk.now), id, key)
		if !errors.Is(err, secrets.ErrUnknownKey) || !strings.Contains(err.Error(), secrets.KeyID(b)) {
			t.Fatalf("replica with A alone: %v", err)
		}
	})
}
